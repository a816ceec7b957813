"""pyproject.toml: every package the source imports is one a plain `pip install .` brings.

A fresh install once failed at `agent setup` with `No module named 'packaging'`: the
development environment had it, the wheel's dependencies did not name it."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "src" / "patchwright").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "patchwright"}


def test_every_imported_package_is_installed_by_the_projects_own_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    extras = {
        _name(r) for name, reqs in project["optional-dependencies"].items() if name != "dev" for r in reqs
    }
    # what the declared packages themselves install (the SDK's own HTTP library, for one)
    brought = {_name(r) for dist in declared for r in (metadata.requires(dist) or []) if "extra ==" not in r}
    providers = metadata.packages_distributions()
    missing = []
    for module in sorted(imported_top_level_modules()):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
        if not dists & (declared | extras | brought):
            missing.append(f"{module} ({', '.join(sorted(dists))})")
    assert not missing, f"imported but not a dependency in pyproject.toml: {missing}"
