"""Find the database services a repository declares: image-based services in its compose
file and job `services:` in `.github/workflows/*.yml` whose image is postgres, mysql, mariadb
or redis, with their credentials (`environment` / `env`) and names.

Every byte of the repository is hostile input: files are opened without following a
symlink anywhere on the path, only regular files up to MAX_FILE_BYTES are read, YAML is
loaded with the safe loader and a bound on aliases (no billion-laughs), and a file that does
not parse is skipped with a note rather than failing the run.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from patchwright.errors import UsageError
from patchwright.saferead import plain_files_in, read_bytes
from patchwright.services.spec import (
    ServiceSpec,
    check_identifier,
    check_name,
    check_secret,
    kind_of,
    merge,
    version_of,
    with_defaults,
)
from patchwright.services.unsupported import Unsupported, unsupported

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
WORKFLOW_DIR = (".github", "workflows")
MAX_FILE_BYTES = 512 * 1024
MAX_WORKFLOWS = 200
MAX_ALIASES = 200
_COMPOSE_VARIABLE = re.compile(
    r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)

# The variables of the official images that patchwright honours, per kind.
USER_KEYS = {"postgres": ("POSTGRES_USER",), "mariadb": ("MARIADB_USER", "MYSQL_USER"), "redis": ()}
PASSWORD_KEYS = {
    "postgres": ("POSTGRES_PASSWORD",),
    "mariadb": ("MARIADB_PASSWORD", "MYSQL_PASSWORD"),
    "redis": (),
}
ROOT_PASSWORD_KEYS = ("MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD")
DATABASE_KEYS = {"postgres": ("POSTGRES_DB",), "mariadb": ("MARIADB_DATABASE", "MYSQL_DATABASE"), "redis": ()}


@dataclass(frozen=True)
class Detection:
    specs: list[ServiceSpec]
    notes: list[str] = field(default_factory=list)  # files skipped, services ignored
    unsupported: list[Unsupported] = field(default_factory=list)  # declared, of a kind we cannot run


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader with a cap on aliases: a handful of anchors cannot expand into gigabytes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases")
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_repo_file(root: Path, parts: tuple[str, ...], limit: int = MAX_FILE_BYTES) -> bytes | None:
    """A regular file inside `root`, or None: no symlink is followed on the way (a symlinked
    `.github` or file is as good as absent), FIFOs and devices are not opened, and a file over
    `limit` bytes is refused (OSError)."""
    data = read_bytes(root, parts, limit)
    if data is not None and len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit // 1024} KiB")
    return data


def list_workflows(root: Path) -> list[str]:
    """Names of the regular *.yml / *.yaml files in .github/workflows (no symlinks), sorted."""
    try:
        found = plain_files_in(root, WORKFLOW_DIR, ".yml", MAX_WORKFLOWS)
        found += plain_files_in(root, WORKFLOW_DIR, ".yaml", MAX_WORKFLOWS)
    except OSError:
        return []
    return sorted(found)[:MAX_WORKFLOWS]


def detect(root: Path) -> Detection:
    """The services the repo's compose files and workflows declare, merged one server per kind.
    Raises UsageError only for names shared by two kinds (the sandbox cannot resolve both)."""
    found: list[ServiceSpec] = []
    notes: list[str] = []
    others: list[Unsupported] = []
    sources: list[tuple[str, tuple[str, ...], str]] = [(name, (name,), "compose") for name in COMPOSE_FILES]
    sources += [
        (f"{'/'.join(WORKFLOW_DIR)}/{name}", (*WORKFLOW_DIR, name), "workflow")
        for name in list_workflows(root)
    ]
    for label, parts, kind in sources:
        try:
            data = read_repo_file(root, parts)
        except OSError as err:
            notes.append(f"{label}: not read ({err.strerror or err})")
            continue
        if data is None:
            continue
        try:
            document = load_yaml(data.decode("utf-8", "replace"))
        except (yaml.YAMLError, RecursionError, ValueError) as err:
            notes.append(f"{label}: not valid YAML, ignored ({str(err).splitlines()[0][:120]})")
            continue
        declared = _compose_services(document) if kind == "compose" else _workflow_services(document)
        for name, service, port_of in declared:
            other = unsupported(name, service, label)
            if other is not None:
                if other.kind not in {o.kind for o in others}:  # one server per kind, as for ours
                    others.append(other)
                continue
            try:
                spec = _spec_from(name, service, label, kind, port_of)
            except UsageError as err:
                notes.append(f"{err}; service ignored")
                continue
            if spec is not None:
                found.append(spec)
    return Detection(merge(found), notes, others)


def _compose_services(document: Any) -> list[tuple[str, dict[str, Any], bool]]:
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        return []
    return [(str(name), body, False) for name, body in services.items() if isinstance(body, dict)]


def _workflow_services(document: Any) -> list[tuple[str, dict[str, Any], bool]]:
    """Each job's services; `True`: a job on the runner reaches a service on its published port."""
    jobs = document.get("jobs") if isinstance(document, dict) else None
    if not isinstance(jobs, dict):
        return []
    found = []
    for job in jobs.values():
        if not isinstance(job, dict) or not isinstance(job.get("services"), dict):
            continue
        on_runner = "container" not in job
        for name, body in job["services"].items():
            if isinstance(body, str):
                body = {"image": body}
            if isinstance(body, dict):
                found.append((str(name), body, on_runner))
    return found


def _value(raw: Any) -> str | None:
    """A setting's value as the service would see it; None when it depends on something we do
    not have (an Actions expression, an unset compose variable without a default)."""
    if not isinstance(raw, str | int | float | bool):  # mappings, lists, dates: nothing we use
        return None
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    if "${{" in text:
        return None

    def substitute(match: re.Match[str]) -> str:
        operator, default = match.group(2), match.group(3)
        return default if operator in (":-", "-") and default is not None else ""

    if "$" in text:
        text = _COMPOSE_VARIABLE.sub(substitute, text.replace("$$", "\0")).replace("\0", "$")
    return text or None


def _environment(raw: Any) -> dict[str, str]:
    """`environment`/`env` as a mapping or a `KEY=VALUE` list."""
    pairs: list[tuple[Any, Any]] = []
    if isinstance(raw, dict):
        pairs = list(raw.items())
    elif isinstance(raw, list):
        for item in raw[:200]:
            if not isinstance(item, str):  # str() of a nested (aliased) list can be exponential
                continue
            key, sep, value = item.partition("=")
            pairs.append((key, value if sep else None))
    env = {}
    for key, value in pairs[:200]:
        text = _value(value)
        if text is not None:
            env[str(key)] = text
    return env


def _published_port(raw: Any, container_port: int) -> int | None:
    """The host side of a `ports:` mapping of `container_port` ("5433:5432"), if fixed."""
    if not isinstance(raw, list):
        return None
    for item in raw[:50]:
        text = _value(item)
        if text is None:
            continue
        fields = text.split("/", 1)[0].split(":")
        if len(fields) >= 2 and fields[-1] == str(container_port) and fields[-2].isdigit():
            port = int(fields[-2])
            return port if 1024 <= port <= 65535 else None
    return None


def _spec_from(
    name: str, body: dict[str, Any], source: str, kind_of_file: str, on_runner: bool
) -> ServiceSpec | None:
    image = _value(body.get("image"))
    if image is None:
        return None  # `build:` services and unresolvable images are not databases we can start
    kind = kind_of(image)
    if kind is None:
        return None
    env = _environment(body.get("environment") if kind_of_file == "compose" else body.get("env"))
    host = check_name(name.lower(), source)
    version = version_of(image)
    if version is not None and "$" in version:
        version = None

    def first(keys: tuple[str, ...]) -> str:
        return next((env[key] for key in keys if env.get(key)), "")

    user, password, database = first(USER_KEYS[kind]), first(PASSWORD_KEYS[kind]), first(DATABASE_KEYS[kind])
    if kind == "mariadb" and not user:
        password = first(ROOT_PASSWORD_KEYS)  # the app connects as root
    if user:
        check_identifier(user, "user", source)
    if database:
        check_identifier(database, "database", source)
    check_secret(password, "password", source)
    default = {"postgres": 5432, "mariadb": 3306, "redis": 6379}[kind]
    port = _published_port(body.get("ports"), default) if on_runner else None
    spec = ServiceSpec(
        kind=kind,
        names=(host,),
        requested=image,
        version=version,
        user=user,
        password=password,
        database=database,
        trust=env.get("POSTGRES_HOST_AUTH_METHOD") == "trust",
        port=port or default,
        source=source,
    )
    if kind == "postgres" and not password and not spec.trust:
        spec = replace(spec, password="postgres")
    return with_defaults(spec)
