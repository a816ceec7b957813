"""environment/toolchains.py: the runtimes a project asks for and the lines that provide them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from patchwright.environment.files import RepoFiles
from patchwright.environment.toolchains import (
    UNMET_EXIT,
    Requirement,
    find_requirements,
    install_lines,
    node_major,
    poetry_to_pep440,
    python_versions,
    unmet_from_output,
)


def test_versions_from_the_project_files(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / ".python-version").write_text("3.12.1\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.10"\n')
    (tmp_path / ".nvmrc").write_text("lts/iron\n")
    (tmp_path / "go.mod").write_text("module x\n\ngo 1.22.3\n")
    found = {(r.tool, r.version, r.source, r.soft) for r in find_requirements(RepoFiles(tmp_path), "api")}
    assert found == {
        ("python", "3.12.1", "api/.python-version", True),
        ("python", ">=3.10", "pyproject.toml requires-python", False),
        ("node", "lts/iron", ".nvmrc", True),
        ("go", "1.22.3", "go.mod go line", False),
    }


def test_engines_and_tool_versions(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"engines": {"node": ">=18"}}))
    (tmp_path / ".tool-versions").write_text("golang 1.21.0\n")
    found = {(r.tool, r.version) for r in find_requirements(RepoFiles(tmp_path), "")}
    assert found == {("node", ">=18"), ("go", "1.21.0")}


def test_version_arithmetic() -> None:
    assert python_versions(">=3.14") == ["3.15", "3.14"]
    assert python_versions(">=3.10,<3.12") == ["3.11", "3.10"]
    assert python_versions(">=3.11.4") == ["3.15", "3.14", "3.13", "3.12", "3.11"]
    assert python_versions("3.12 3.13") == ["3.12", "3.13"]
    assert python_versions("not a spec") == []
    assert poetry_to_pep440("^3.9") == ">=3.9,<4" and poetry_to_pep440("~3.9") == ">=3.9,<3.10"
    assert node_major("v20.11.0") == (20, False)
    assert node_major("lts/hydrogen") == (18, False)
    assert node_major(">=18 <21") == (18, True)
    assert node_major("lts/*") is None


def test_the_lines_quote_what_the_repository_wrote() -> None:
    evil = Requirement("python", "3.12; rm -rf /", "x")
    lines, notes = install_lines([evil, Requirement("yarn", "1.22.19; touch /tmp/p", "y")])
    assert "rm -rf" not in "\n".join(lines) and notes
    assert any("npm install -g" in line and "'yarn'" not in line and "yarn" in line for line in lines)


def run_bash(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", "set -e\n" + script], capture_output=True, text=True, timeout=60)


def test_an_unmet_python_stops_setup_with_the_requirement_named(tmp_path: Path) -> None:
    """On this machine's python3 (3.11+), asking for a Python that no uv can fetch here ends
    with the marker line and exit code; `unmet_from_output` reads it back."""
    hard = Requirement("python", ">=3.15", "pyproject.toml requires-python")
    lines, _ = install_lines([hard])
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "uv").write_text("#!/bin/sh\nexit 1\n")  # uv present, its downloads unreachable
    (fake_bin / "uv").chmod(0o755)
    result = run_bash(f'export PATH="{fake_bin}:$PATH" HOME="{tmp_path}"\n' + "\n".join(lines))
    assert result.returncode == UNMET_EXIT, result.stderr
    unmet = unmet_from_output(result.stdout)
    assert [(u.requirement, u.source) for u in unmet] == [("python >=3.15", "pyproject.toml requires-python")]
    assert "--image" in unmet[0].message()


def test_a_soft_preference_falls_back_to_the_image_with_a_note(tmp_path: Path) -> None:
    soft = Requirement("python", "3.15", "ci.yml actions/setup-python", soft=True)
    hard = Requirement("python", ">=3.8", "pyproject.toml requires-python")
    lines, _ = install_lines([soft, hard])
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "uv").write_text("#!/bin/sh\nexit 1\n")
    (fake_bin / "uv").chmod(0o755)
    result = run_bash(f'export PATH="{fake_bin}:$PATH" HOME="{tmp_path}"\n' + "\n".join(lines))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "patchwright-note:" in result.stdout and not unmet_from_output(result.stdout)


def test_an_old_node_gets_an_npm_that_runs_on_it_and_yarn_comes_first() -> None:
    """Debian's npm 9 refuses to run on node 12; yarn installed after the switch failed so."""
    lines, _ = install_lines(
        [Requirement("node", "12", ".travis.yml node_js"), Requirement("yarn", "", "yarn.lock")]
    )
    yarn = next(i for i, line in enumerate(lines) if "yarn" in line)
    node = next(i for i, line in enumerate(lines) if "node@12" in line)
    assert yarn < node, lines
    assert "node@12 npm@8" in lines[node]
    current, _ = install_lines([Requirement("node", "22", "package.json engines.node")])
    assert "npm@" not in "\n".join(current)  # a node the image's npm runs on gets no other npm
