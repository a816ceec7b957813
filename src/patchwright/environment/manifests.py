"""Install and test commands from a project's lockfiles and manifests, for one folder.

The lockfile names the tool the project really uses (uv.lock -> uv, yarn.lock -> yarn, ...);
without one, the manifests (requirements files, pyproject.toml extras and dependency groups,
package.json, go.mod, Cargo.toml, Gemfile) say what to install. Commands run in the sandbox as
its user: pip installs go to ~/.local (PIP_USER), npm globals to ~/.local too.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from patchwright.environment.files import RepoFiles, join
from patchwright.environment.toolchains import Requirement

TEST_EXTRAS = ("test", "tests", "testing", "dev")  # pyproject extras / groups worth installing for tests
REQUIREMENT_NAMES = ("requirements.txt", "requirements-dev.txt", "requirements_dev.txt",
                     "requirements-test.txt", "requirements_test.txt", "requirements-tests.txt",
                     "dev-requirements.txt", "test-requirements.txt")  # fmt: skip
REQUIREMENT_FOLDER_PREFERENCE = ("test", "tests", "testing", "dev", "local", "ci", "base", "common")
PIP = "python3 -m pip install -q"
NO_TEST_SCRIPT = "no test specified"


@dataclass
class ManifestPlan:
    """What the manifests of one folder say: how to install, how to test, and which tools."""

    folder: str
    ecosystem: str  # python, node, go, rust, ruby
    install: list[str] = field(default_factory=list)
    test_cmd: str | None = None
    tools: list[Requirement] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the files this came from

    @property
    def useful(self) -> bool:
        return bool(self.install or self.test_cmd)


def plans_for(files: RepoFiles, folder: str) -> list[ManifestPlan]:
    """Every ecosystem found in `folder`, Python first (a backend's tests are what a task is about
    more often than a frontend's)."""
    found = [
        _python(files, folder),
        _node(files, folder),
        _go(files, folder),
        _rust(files, folder),
        _ruby(files, folder),
    ]
    return [plan for plan in found if plan is not None and plan.useful]


# -- Python ----------------------------------------------------------------------------------


def _python(files: RepoFiles, folder: str) -> ManifestPlan | None:
    here = {name for name, is_dir in files.listdir(folder) if not is_dir}
    folders = {name for name, is_dir in files.listdir(folder) if is_dir}
    pyproject_path = join(folder, "pyproject.toml")
    pyproject = files.toml(pyproject_path) if "pyproject.toml" in here else None
    plan = ManifestPlan(folder, "python")
    runner = "python3 -m"
    if "uv.lock" in here:
        plan.install.append("uv sync --frozen --all-extras" if _extras(pyproject) else "uv sync --frozen")
        plan.tools.append(Requirement("uv", "", join(folder, "uv.lock")))
        plan.sources.append(join(folder, "uv.lock"))
        runner = "uv run python -m"
    elif "poetry.lock" in here:
        extras = [e for e in _extras(pyproject) if e in TEST_EXTRAS]
        with_extras = "".join(f" -E {shlex.quote(e)}" for e in extras)
        plan.install.append(
            "poetry config virtualenvs.in-project true && poetry install --no-interaction" + with_extras
        )
        plan.tools.append(Requirement("poetry", "", join(folder, "poetry.lock")))
        plan.sources.append(join(folder, "poetry.lock"))
        runner = "poetry run python -m"
    elif "pdm.lock" in here:
        plan.install.append("pdm install --frozen-lockfile")
        plan.tools.append(Requirement("pdm", "", join(folder, "pdm.lock")))
        plan.sources.append(join(folder, "pdm.lock"))
        runner = "pdm run python -m"
    elif "Pipfile.lock" in here:
        plan.install.append("pipenv sync --dev")
        plan.tools.append(Requirement("pipenv", "", join(folder, "Pipfile.lock")))
        plan.sources.append(join(folder, "Pipfile.lock"))
        runner = "pipenv run python -m"
    else:
        plan.install += _requirements_files(files, folder, here, folders, plan.sources)
        plan.install += _pyproject_install(pyproject, here, pyproject_path, plan.sources)
    markers = {"setup.py", "pytest.ini", "conftest.py", "tox.ini", "manage.py", "setup.cfg"}
    if not plan.install and not (here & markers) and not _has_python_tests(files, folder):
        return None
    plan.test_cmd = _python_test(files, folder, here, pyproject, runner)
    return plan


def _extras(pyproject: dict[str, Any] | None) -> list[str]:
    project = (pyproject or {}).get("project")
    extras = project.get("optional-dependencies") if isinstance(project, dict) else None
    return [str(name) for name in extras] if isinstance(extras, dict) else []


def _requirements_files(
    files: RepoFiles, folder: str, here: set[str], folders: set[str], sources: list[str]
) -> list[str]:
    """`pip install -r` of the requirements files; in a `requirements/` folder the test/dev/local
    file (which usually includes the base one) is preferred over installing every file."""
    chosen = [join(folder, name) for name in REQUIREMENT_NAMES if name in here]
    if "requirements" in folders:
        sub = join(folder, "requirements")
        names = [n for n, is_dir in files.listdir(sub) if not is_dir and n.endswith((".txt", ".in"))]
        txt = [n for n in names if n.endswith(".txt")] or names
        preferred = [n for key in REQUIREMENT_FOLDER_PREFERENCE for n in txt if n.rsplit(".", 1)[0] == key]
        picked = preferred[:1] if preferred else txt
        # a test/dev file that does not include the base one gets the base file too
        if preferred and not _includes(files, join(sub, preferred[0])):
            picked = [n for n in txt if n.rsplit(".", 1)[0] in ("base", "common")] + picked
        chosen += [join(sub, n) for n in dict.fromkeys(picked)]
    sources += chosen
    relative = [c[len(folder) + 1 :] if folder not in ("", ".") else c for c in chosen]
    return [f"{PIP} " + " ".join(f"-r {shlex.quote(path)}" for path in relative)] if relative else []


def _includes(files: RepoFiles, path: str) -> bool:
    return bool(re.search(r"^\s*-r\s", files.text(path) or "", re.MULTILINE))


def _pyproject_install(
    pyproject: dict[str, Any] | None, here: set[str], path: str, sources: list[str]
) -> list[str]:
    """`pip install -e .[test]` of an installable project, and its PEP 735 test/dev groups."""
    lines: list[str] = []
    if pyproject is not None and ("build-system" in pyproject or "project" in pyproject):
        extras = [e for e in _extras(pyproject) if e in TEST_EXTRAS]
        target = "." + (f"[{','.join(extras)}]" if extras else "")
        lines.append(f"{PIP} -e {shlex.quote(target)}")
        sources.append(path)
    elif "setup.py" in here:
        lines.append(f"{PIP} -e .")
        sources.append(path.rsplit("/", 1)[0] + "/setup.py" if "/" in path else "setup.py")
    groups = (pyproject or {}).get("dependency-groups")
    if isinstance(groups, dict):
        wanted = [g for g in TEST_EXTRAS if g in groups]
        requirements = [r for g in wanted for r in _group(groups, g, 0)]
        if requirements:
            lines.append(f"{PIP} " + " ".join(shlex.quote(r) for r in dict.fromkeys(requirements)))
            if path not in sources:
                sources.append(path)
    return lines


def _group(groups: dict[str, Any], name: str, depth: int) -> list[str]:
    """A dependency group's requirements, `{include-group = ...}` followed (bounded)."""
    found: list[str] = []
    entries = groups.get(name)
    if depth > 5 or not isinstance(entries, list):
        return found
    for entry in entries:
        if isinstance(entry, str):
            found.append(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("include-group"), str):
            found += _group(groups, entry["include-group"], depth + 1)
    return found


def _has_python_tests(files: RepoFiles, folder: str) -> bool:
    """test_*.py / *_test.py in the folder, or in a test* subfolder or the folders right under it
    (tests/unit/test_x.py). A test folder of other languages' files is not a Python suite."""
    pattern = re.compile(r"test_.*\.py|.*_test\.py")

    def has_test_file(path: str) -> bool:
        return any(pattern.fullmatch(n) for n, d in files.listdir(path) if not d)

    for name, is_dir in files.listdir(folder):
        if not is_dir and pattern.fullmatch(name):
            return True
        if is_dir and name.startswith("test"):
            sub = join(folder, name)
            if has_test_file(sub) or any(has_test_file(join(sub, n)) for n, d in files.listdir(sub) if d):
                return True
    return False


def _python_test(
    files: RepoFiles, folder: str, here: set[str], pyproject: dict[str, Any] | None, runner: str
) -> str:
    """pytest, unless the project is a Django one whose tests run with `manage.py test` and
    that shows no sign of pytest."""
    text = " ".join(files.text(join(folder, n)) or "" for n in here if n.startswith("requirements"))
    sub = join(folder, "requirements")
    text += " ".join(files.text(join(sub, n)) or "" for n, d in files.listdir(sub) if not d)
    uses_pytest = (
        "pytest" in text
        or "pytest.ini" in here
        or "conftest.py" in here
        or "pytest" in str((pyproject or {}).get("tool", {}))
        or "pytest" in str((pyproject or {}).get("project", {}))
        or "pytest" in str((pyproject or {}).get("dependency-groups", {}))
    )
    if "manage.py" in here and not uses_pytest:
        return f"{runner.replace(' -m', '')} manage.py test"
    # One tests.py at the root (Flask tutorials: miguelgrinberg/microblog), which pytest's own
    # pattern (test_*.py) never collects: named to pytest, or to unittest where pytest is not used
    # (-v: a line per test, which testresults.py reads).
    module = next((name for name in ("tests.py", "test.py") if name in here), None)
    if module is not None and not _has_python_tests(files, folder):
        return f"{runner} pytest -q {module}" if uses_pytest else f"{runner} unittest -v {module[:-3]}"
    return f"{runner} pytest -q"


# -- Node ------------------------------------------------------------------------------------


def _node(files: RepoFiles, folder: str) -> ManifestPlan | None:
    package_path = join(folder, "package.json")
    package = files.json(package_path)
    if not isinstance(package, dict):
        return None
    here = {name for name, is_dir in files.listdir(folder) if not is_dir}
    plan = ManifestPlan(folder, "node", sources=[package_path])
    manager = _node_manager(here, package)
    lock = {"npm": "package-lock.json", "yarn": "yarn.lock", "pnpm": "pnpm-lock.yaml", "bun": "bun.lock"}[
        manager
    ]
    if manager == "bun" and "bun.lockb" in here:
        lock = "bun.lockb"
    locked = lock in here
    if locked:
        plan.sources.insert(0, join(folder, lock))
    berry = manager == "yarn" and (
        ".yarnrc.yml" in here or "__metadata:" in files.head(join(folder, "yarn.lock"))
    )
    install = {
        "npm": "npm ci" if locked else "npm install",
        "yarn": ("yarn install --immutable" if berry else "yarn install --frozen-lockfile")
        if locked
        else "yarn install",
        "pnpm": "pnpm install --frozen-lockfile" if locked else "pnpm install",
        "bun": "bun install --frozen-lockfile" if locked else "bun install",
    }[manager]
    plan.install.append(install + (" --no-fund --no-audit" if manager == "npm" else ""))
    if manager != "npm":
        version = _package_manager_version(package, manager)
        plan.tools.append(Requirement(manager, version, join(folder, lock if locked else "package.json")))
    scripts = package.get("scripts")
    test = scripts.get("test") if isinstance(scripts, dict) else None
    if isinstance(test, str) and NO_TEST_SCRIPT not in test:
        plan.test_cmd = f"{manager} test" if manager != "bun" or "bun test" not in test else "bun run test"
    return plan


def _node_manager(here: set[str], package: dict[str, Any]) -> str:
    declared = package.get("packageManager")
    if isinstance(declared, str):
        name = declared.split("@", 1)[0]
        if name in ("npm", "yarn", "pnpm", "bun"):
            return name
    for lock, manager in (("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"), ("bun.lockb", "bun"),
                          ("bun.lock", "bun"), ("package-lock.json", "npm")):  # fmt: skip
        if lock in here:
            return manager
    return "npm"


def _package_manager_version(package: dict[str, Any], manager: str) -> str:
    """`packageManager: pnpm@8.15.4+sha...` -> 8.15.4, for that manager only."""
    declared = package.get("packageManager")
    if isinstance(declared, str) and declared.startswith(manager + "@"):
        match = re.match(r"(\d+\.\d+\.\d+)", declared.split("@", 1)[1])
        return match[1] if match else ""
    return ""


# -- Go, Rust, Ruby --------------------------------------------------------------------------


def _go(files: RepoFiles, folder: str) -> ManifestPlan | None:
    if not files.exists(join(folder, "go.mod")):
        return None
    return ManifestPlan(folder, "go", ["go mod download"], "go test ./...", [], [join(folder, "go.mod")])


def _rust(files: RepoFiles, folder: str) -> ManifestPlan | None:
    if not files.exists(join(folder, "Cargo.toml")):
        return None
    source = (
        join(folder, "Cargo.lock") if files.exists(join(folder, "Cargo.lock")) else join(folder, "Cargo.toml")
    )
    locked = " --locked" if source.endswith(".lock") else ""
    return ManifestPlan(
        folder, "rust", [f"cargo fetch{locked}"], "cargo test", [Requirement("rust", "", source)], [source]
    )


def _ruby(files: RepoFiles, folder: str) -> ManifestPlan | None:
    if not files.exists(join(folder, "Gemfile")):
        return None
    lock = join(folder, "Gemfile.lock")
    source = lock if files.exists(lock) else join(folder, "Gemfile")
    spec = files.exists(join(folder, ".rspec")) or any(n == "spec" for n, d in files.listdir(folder) if d)
    test = "bundle exec rspec" if spec else "bundle exec rake test"
    install = "bundle config set --local path vendor/bundle && bundle install"
    return ManifestPlan(folder, "ruby", [install], test, [Requirement("ruby", "", source)], [source])
