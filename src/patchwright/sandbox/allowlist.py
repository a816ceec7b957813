"""Which hosts setup may reach: the package registries, plus the hosts the user adds.

Kept apart from the proxy (egress.py) so the settings can check a host without Docker.
Entries are host names, or `*.domain` for a domain's subdomains; each becomes an anchored
extended regex for tinyproxy's filter, matched against the requested host alone, so
`pypi.org.evil.com` or `evilpypi.org` never pass for `pypi.org`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Package registries reachable during setup.
REGISTRY_HOSTS: tuple[str, ...] = (
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "registry.yarnpkg.com",
    "repo.yarnpkg.com",
    "proxy.golang.org",
    "sum.golang.org",
    "crates.io",
    "static.crates.io",
    "index.crates.io",
    "rubygems.org",
    "index.rubygems.org",
    "deb.debian.org",
    "security.debian.org",
    "archive.ubuntu.com",
    "security.ubuntu.com",
)
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(\*\.)?({_LABEL}\.)*{_LABEL}")


def bad_host(host: str) -> str | None:
    """Why `host` cannot be an allowlist entry (a host name, optionally `*.domain`), or None."""
    if len(host) > 253 or not _HOST.fullmatch(host.lower()):
        return f"{host[:80]!r} is not a host name (like pypi.org, or *.example.com for its subdomains)"
    return None


def allowed_hosts(extra: Iterable[str]) -> tuple[str, ...]:
    """The registries and the user's own hosts, each once, lower case."""
    return tuple(dict.fromkeys(h.lower() for h in (*REGISTRY_HOSTS, *extra)))


def filter_patterns(hosts: Iterable[str]) -> list[str]:
    """tinyproxy Filter lines (extended regexes, matched against the host alone) for `hosts`."""
    patterns = []
    for host in dict.fromkeys(h.lower() for h in hosts):
        if host.startswith("*."):
            patterns.append(rf"(^|\.){re.escape(host[2:])}$")
        else:
            patterns.append(rf"^{re.escape(host)}$")
    return patterns
