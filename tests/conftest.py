"""Fixtures shared by every test live in helpers.py, loaded here as a plugin.

Every test that needs a Docker engine is marked `docker`, so `pytest -m "not docker"` runs
the rest in seconds on a machine without one: tests that use an engine fixture are marked
here by the fixtures they ask for, or by a parameter named "docker" (the backend suites run
once per backend); a module that reaches the engine some other way says so with
`pytestmark = pytest.mark.docker`.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["helpers"]

ENGINE_FIXTURES = frozenset({"docker_client", "sandbox_image", "sandbox", "spec", "services_image"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        by_param = callspec is not None and "docker" in callspec.params.values()
        if by_param or ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.docker)
