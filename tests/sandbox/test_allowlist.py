"""The allowlist: which host names are entries, and the filter lines the proxy matches them with."""

from __future__ import annotations

import re

import pytest

from patchwright.sandbox.allowlist import REGISTRY_HOSTS, allowed_hosts, bad_host, filter_patterns


def _allowed(host: str, hosts: tuple[str, ...]) -> bool:
    """As tinyproxy decides: any filter line matching the host, case-insensitively."""
    return any(re.search(p, host, re.IGNORECASE) for p in filter_patterns(hosts))


def test_the_registries_are_on_the_list_and_lookalikes_are_not() -> None:
    hosts = allowed_hosts(())
    for host in (
        "pypi.org",
        "files.pythonhosted.org",
        "registry.npmjs.org",
        "proxy.golang.org",
        "static.crates.io",
        "rubygems.org",
        "deb.debian.org",
        "PyPI.org",
    ):
        assert _allowed(host, hosts), host
    for host in (
        "example.org",
        "pypi.org.evil.com",
        "evilpypi.org",
        "pypiXorg",
        "127.0.0.1",
        "sub.pypi.org",
        "github.com",
    ):
        assert not _allowed(host, hosts), host


def test_user_hosts_are_added_and_a_wildcard_admits_subdomains_only_of_that_domain() -> None:
    hosts = allowed_hosts(("git.corp.example", "*.artifacts.example"))
    assert hosts[: len(REGISTRY_HOSTS)] == REGISTRY_HOSTS
    assert _allowed("git.corp.example", hosts)
    assert _allowed("eu.artifacts.example", hosts) and _allowed("artifacts.example", hosts)
    assert not _allowed("artifacts.example.evil", hosts) and not _allowed("xartifacts.example", hosts)


@pytest.mark.parametrize("host", ["pypi.org", "*.corp.example", "10.0.0.5", "a-b.example"])
def test_host_names_are_entries(host: str) -> None:
    assert bad_host(host) is None


@pytest.mark.parametrize(
    "host", ["", "*", ".*", "pypi.org/simple", "a b", "pypi.org:443", "*.*.x", "-a.x", "x$"]
)
def test_anything_else_is_refused(host: str) -> None:
    assert bad_host(host) is not None
