"""What a service is, as data: its kind, the names it answers to, its credentials and port.

A spec comes from `--service KIND[:VERSION]` / `NAME=KIND[:VERSION]`, the config key
`services`, or detection (detect.py). Everything here is checked before any container starts,
so a bad spec is a UsageError (exit 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from patchwright.errors import UsageError

# The image names (last path component) each kind answers to, and what Debian bookworm ships.
ALIASES = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mariadb",
    "mariadb": "mariadb",
    "redis": "redis",
}
DEBIAN_VERSIONS = {"postgres": "15", "mariadb": "10.11", "redis": "7.0"}
DEFAULT_PORTS = {"postgres": 5432, "mariadb": 3306, "redis": 6379}
MAX_SERVICES = 8
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$.-]{0,62}")  # users and databases: no quoting games
RESERVED_NAMES = frozenset({"localhost", "sandbox", "ip6-localhost", "ip6-loopback"})
MAX_SECRET = 200


@dataclass(frozen=True)
class ServiceSpec:
    """One database server of a run. `names` are the host names it answers to in the sandbox."""

    kind: str  # postgres | mariadb | redis
    names: tuple[str, ...]
    requested: str  # what was asked for, e.g. "mysql:8" or "postgres:16-alpine"
    version: str | None = None  # the version asked for (None: any)
    user: str = ""
    password: str = ""
    database: str = ""
    trust: bool = False  # postgres: POSTGRES_HOST_AUTH_METHOD=trust
    port: int = 0
    source: str = "--service"  # where it came from: a flag, the config, a compose or workflow file
    notes: tuple[str, ...] = field(default=())  # warnings to print once (version, ignored settings)

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def runs_version(self) -> str:
        return DEBIAN_VERSIONS[self.kind]


def kind_of(image: str) -> str | None:
    """The kind an image reference names ("docker.io/library/postgres:15-alpine" -> postgres)."""
    repository = image.split("@", 1)[0].strip().lower()
    last = repository.rsplit("/", 1)[-1]
    base = last.split(":", 1)[0]
    return ALIASES.get(base)


def version_of(image: str) -> str | None:
    """The tag of an image reference, or None ("latest" and digests count as none)."""
    reference = image.split("@", 1)[0].strip()
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    tag = last.split(":", 1)[1]
    return None if tag in ("", "latest") else tag


def check_name(name: str, source: str) -> str:
    if not _NAME.fullmatch(name) or name in RESERVED_NAMES:
        raise UsageError(
            f"{source}: service name {name!r} is not usable as a host name "
            "(lowercase letters, digits, '-' and '_', not 'localhost')"
        )
    return name


def check_identifier(value: str, what: str, source: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise UsageError(f"{source}: {what} {value!r} is not a plain name (letters, digits, _ $ . -)")
    return value


def check_secret(value: str, what: str, source: str) -> str:
    if len(value) > MAX_SECRET or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise UsageError(f"{source}: {what} is over {MAX_SECRET} characters or holds control characters")
    return value


def with_defaults(spec: ServiceSpec) -> ServiceSpec:
    """Credentials and the port as the official images default them; a note when Debian's version
    is not the one asked for."""
    kind = spec.kind
    user = spec.user or {"postgres": "postgres", "mariadb": "root", "redis": ""}[kind]
    password = spec.password or {"postgres": "postgres", "mariadb": "root", "redis": ""}[kind]
    if kind == "postgres":
        database = spec.database or user
    elif kind == "mariadb":
        database = spec.database or "test"
    else:
        database = spec.database or "0"
    notes = list(spec.notes)
    if spec.version and not _same_version(spec.version, spec.runs_version):
        product = "MariaDB" if kind == "mariadb" else kind
        notes.append(
            f"{spec.requested}: no registry here; running Debian's {product} {spec.runs_version} "
            "(the nearest available)"
        )
    elif kind == "mariadb" and spec.requested.lower().startswith("mysql"):
        notes.append(f"{spec.requested}: running MariaDB {spec.runs_version} (MySQL-compatible)")
    return replace(
        spec,
        user=user,
        password=password,
        database=database,
        port=spec.port or DEFAULT_PORTS[kind],
        notes=tuple(notes),
    )


def _same_version(asked: str, have: str) -> bool:
    """ "15", "15.4", "15-alpine", "15.4-bookworm" are 15; "7" and "7.0.15" are 7.0."""
    match = re.match(r"\d+(?:\.\d+)?", asked)
    if match is None:
        return True  # "alpine", "bookworm": no version to miss
    numbers, have_numbers = match.group(0).split("."), have.split(".")
    shared = min(len(numbers), len(have_numbers))
    return numbers[:shared] == have_numbers[:shared]


def parse_spec(text: str, source: str = "--service") -> ServiceSpec:
    """`postgres`, `postgres:15`, `db=postgres:15`, `mysql:8`, `redis:7`; UsageError otherwise."""
    raw = text.strip()
    name, sep, image = raw.partition("=")
    if not sep:
        name, image = "", raw
    kind = kind_of(image) if "/" not in image else None
    if kind is None or not image:
        known = ", ".join(sorted(ALIASES))
        raise UsageError(f"{source}: unknown service {text!r} (known: {known}; e.g. postgres:15)")
    version = version_of(image)
    if version is not None and not _VERSION.fullmatch(version):
        raise UsageError(f"{source}: bad version in {text!r}")
    base = image.split(":", 1)[0].lower()
    names = [check_name(name, source)] if name else []
    for default in (base, kind):
        if default not in names:
            names.append(default)
    return with_defaults(
        ServiceSpec(kind=kind, names=tuple(names), requested=image, version=version, source=source)
    )


def merge(specs: list[ServiceSpec]) -> list[ServiceSpec]:
    """One server per kind: later specs of a kind add their names (and a note when their
    credentials differ), so a repo declaring postgres in compose.yaml and in CI gets one."""
    merged: dict[str, ServiceSpec] = {}
    for spec in specs:
        have = merged.get(spec.kind)
        if have is None:
            merged[spec.kind] = spec
            continue
        names = have.names + tuple(n for n in spec.names if n not in have.names)
        notes = have.notes
        if (spec.user, spec.password, spec.database) != (have.user, have.password, have.database):
            notes += (
                f"{spec.source}: {spec.kind} service {spec.name!r} uses other credentials than "
                f"{have.source}; the run's one {spec.kind} server uses {have.source}'s",
            )
        merged[spec.kind] = replace(have, names=names, notes=notes)
    if len(merged) > MAX_SERVICES:
        raise UsageError(f"at most {MAX_SERVICES} services per run")
    _check_names_unique(list(merged.values()))
    return list(merged.values())


def _check_names_unique(specs: list[ServiceSpec]) -> None:
    owner: dict[str, str] = {}
    for spec in specs:
        for name in spec.names:
            if owner.setdefault(name, spec.kind) != spec.kind:
                raise UsageError(f"service name {name!r} is given to both {owner[name]} and {spec.kind}")
