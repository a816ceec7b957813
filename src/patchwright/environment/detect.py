"""The project's recipe: how it installs itself, which runtimes it needs, how its tests run and
from which folder, each piece with the file it came from.

Evidence is taken in the order an engineer new to the project would: the repository's CI job
that runs the tests first, then its lockfiles and manifests. In a monorepo the sub-project is the
one the CI job works in, else the one the task, the services and the test files point at.
Nothing here runs anything: `setup_script` renders the recipe as the bash run in the sandbox.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchwright.environment import ci
from patchwright.environment.files import RepoFiles, join
from patchwright.environment.manifests import ManifestPlan, plans_for
from patchwright.environment.toolchains import (
    NPM_TOOLS,
    PIP_TOOLS,
    Requirement,
    dedupe,
    find_requirements,
    install_lines,
)

PROJECT_MARKERS = ("package.json", "pyproject.toml", "setup.py", "requirements.txt", "manage.py", "go.mod",
                   "Cargo.toml", "Gemfile", "Pipfile")  # fmt: skip
BACKEND_NAMES = ("backend", "server", "api", "app", "service", "services")
SERVER_ECOSYSTEMS = ("python", "go", "ruby", "rust")  # a database service points at these first
MAX_SUBPROJECTS = 50
TOOL_WORD = re.compile(r"(?:^|[\s;&|(])(" + "|".join(PIP_TOOLS + NPM_TOOLS) + r")\s")


@dataclass(frozen=True)
class Source:
    """Where one piece of the recipe came from: `what` (setup, test, workdir, python...) and `where`."""

    what: str
    where: str

    def describe(self) -> str:
        return f"{self.what}: {self.where}"


@dataclass
class Recipe:
    """How to make the project's tests runnable, and run them.

    `setup`: shell commands, each run from the repository's root (in a subshell) after the
    toolchain lines; `test_cmd`: the bare test command, run in `workdir` ("" = the root) with
    `env`; `test_command` is what the run uses (both folded in)."""

    setup: list[str] = field(default_factory=list)
    test_cmd: str | None = None
    workdir: str = ""
    requirements: list[Requirement] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def test_command(self) -> str | None:
        """The test command as run from the repository's root. Every caller (run_tests, the
        self-check, verification) runs it in a subshell, so a `cd` here never moves the model's
        shell, and run_tests' extra arguments still land on the runner."""
        if self.test_cmd is None:
            return None
        steps = []
        if self.workdir:
            steps.append(f"cd {shlex.quote(self.workdir)}")
        if self.env:
            steps.append(_exports(self.env))
        return " && ".join([*steps, self.test_cmd])

    @property
    def empty(self) -> bool:
        return not self.setup and not self.requirements

    def as_dict(self) -> dict[str, Any]:
        """The recipe as summary.json's `environment` carries it."""
        return {
            "sources": [s.describe() for s in self.sources],
            "setup": setup_script(self),
            "test_cmd": self.test_command,
            "workdir": self.workdir or ".",
            "requirements": [
                {"tool": r.tool, "version": r.version, "source": r.source} for r in self.requirements
            ],
            "notes": list(self.notes),
        }


def _exports(env: dict[str, str]) -> str:
    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())


def detect(root: Path, task: str = "", services: Sequence[str] = ()) -> Recipe:
    """The recipe for the repository at `root` (read safely: it is untrusted). `services`: the
    kinds of the run's services (postgres, redis...), which point at a server-side sub-project."""
    files = RepoFiles(root)
    recipe = Recipe()
    plan = ci.find(files)
    if plan is not None and plan.test is not None:
        recipe.workdir, recipe.test_cmd = _split_cd(plan.workdir, plan.test)
        recipe.sources.append(Source("test", plan.source))
    workdir = recipe.workdir if recipe.test_cmd else _choose_workdir(files, task, services)
    recipe.workdir = workdir
    if workdir:
        recipe.sources.append(
            Source("workdir", plan.source if recipe.test_cmd and plan else _why_workdir(workdir))
        )
    manifests = plans_for(files, workdir)
    if plan is not None and plan.setup:
        recipe.setup = list(plan.setup)
        recipe.env = dict(plan.env)
        recipe.sources.append(Source("setup", plan.source))
    else:
        if plan is not None:
            recipe.env = dict(plan.env)
        for manifest in manifests:
            recipe.setup += [_in(workdir, line) for line in manifest.install]
            if manifest.install:
                recipe.sources.append(Source("setup", ", ".join(manifest.sources)))
    if recipe.test_cmd is None:
        chosen = next((m for m in manifests if m.test_cmd), None)
        if chosen is not None:
            recipe.test_cmd = chosen.test_cmd
            # no manifest named (a bare folder of test_*.py files): say what it was found by
            found_by = ", ".join(chosen.sources) or f"the test files in {workdir or 'the repository root'}"
            recipe.sources.append(Source("test", found_by))
        elif plan is not None and plan.test:
            recipe.test_cmd = plan.test
            recipe.sources.append(Source("test", plan.source))
        elif (make := _make_test(files, workdir)) is not None:
            recipe.test_cmd = make
            recipe.sources.append(Source("test", join(workdir, "Makefile")))
    from_ci = plan is not None and bool(plan.setup)
    if not from_ci and recipe.test_cmd is not None and (sample := _env_sample(files, workdir)):
        # `.env` is never committed (nor copied in: git ignores it); the sample is the README's
        # first step ("cp .env.example .env") and what the app's config check asks for. Not when
        # the CI's own steps are the setup: its tests ran without one (and a sample with inline
        # comments can break a loader that the CI never fed it to)
        recipe.setup.insert(0, _in(workdir, f"[ -e .env ] || cp {shlex.quote(sample)} .env"))
        recipe.sources.append(Source("setup", join(workdir, sample)))
    recipe.requirements = _requirements(files, workdir, plan, manifests, recipe)
    for req in recipe.requirements:
        recipe.sources.append(Source(req.tool, req.source))
    recipe.notes = (plan.notes if plan else []) + files.notes
    return recipe


ENV_SAMPLES = (".env.example", ".env.sample", ".env.template", ".env.dist", ".env.test.example")


def _env_sample(files: RepoFiles, workdir: str) -> str | None:
    """The committed sample of the sub-project's `.env`, when there is no `.env` itself."""
    if files.exists(join(workdir, ".env")):
        return None
    return next((name for name in ENV_SAMPLES if files.exists(join(workdir, name))), None)


def _in(workdir: str, command: str) -> str:
    return f"cd {shlex.quote(workdir)} && {command}" if workdir else command


def _split_cd(workdir: str, test: str) -> tuple[str, str]:
    """A CI test step `cd backend && pytest` run from the root: the folder and the command."""
    test = " && ".join(line.strip() for line in test.strip().splitlines() if line.strip())
    match = re.fullmatch(r"cd\s+([\w./-]+)\s*&&\s*(.+)", test, re.DOTALL)
    if match and not workdir:
        return match[1].strip("/"), match[2]
    return workdir, test


def _requirements(
    files: RepoFiles, workdir: str, plan: ci.CiPlan | None, manifests: list[ManifestPlan], recipe: Recipe
) -> list[Requirement]:
    """CI setup actions first, then the project's version files, then the tools its lockfile or its
    commands use; a runtime only where the project has that ecosystem."""
    ecosystems = {m.ecosystem for m in manifests}
    from_files = [r for r in find_requirements(files, workdir) if _wanted(r.tool, ecosystems)]
    from_ci = [r for r in (plan.tools if plan else []) if r.version or r.tool not in ("python", "node", "go")]
    used = []
    for command in [*recipe.setup, recipe.test_cmd or ""]:
        for tool in TOOL_WORD.findall(" " + command):
            used.append(Requirement(tool, "", "the setup and test commands"))
    tools = [t for m in manifests for t in m.tools]
    return dedupe(from_ci + from_files + tools + used)


def _wanted(tool: str, ecosystems: set[str]) -> bool:
    runtime = {"python": "python", "node": "node", "go": "go"}.get(tool)
    return runtime is None or runtime in ecosystems or not ecosystems


def _make_test(files: RepoFiles, folder: str) -> str | None:
    text = files.text(join(folder, "Makefile"))
    if text and re.search(r"^test\s*:", text, re.MULTILINE):
        return "make test"
    return None


# -- monorepos -------------------------------------------------------------------------------


def _subprojects(files: RepoFiles) -> list[str]:
    """First-level folders holding a project manifest of their own."""
    found = []
    for name, is_dir in files.listdir(""):
        if is_dir and not name.startswith(".") and name != "node_modules":
            names = {n for n, d in files.listdir(name) if not d}
            if names & set(PROJECT_MARKERS) or any(n.startswith("requirements") for n in names):
                found.append(name)
        if len(found) >= MAX_SUBPROJECTS:
            break
    return found


def _choose_workdir(files: RepoFiles, task: str, services: Sequence[str]) -> str:
    """The root, unless a sub-project has better evidence: named by the task, a server-side
    project when the run has database services, the one with test files. The root wins a tie
    when it is a project with tests of its own."""
    subs = _subprojects(files)
    if not subs:
        return ""
    words = set(re.findall(r"[a-z0-9_-]+", task.lower()))
    scores: dict[str, int] = {}
    for folder in ["", *subs]:
        plans = plans_for(files, folder)
        if not plans:
            continue
        score = 0
        if folder and folder.lower() in words:
            score += 4
        ecosystems = {p.ecosystem for p in plans}
        if services and ecosystems & set(SERVER_ECOSYSTEMS):
            score += 2
        if folder.lower() in BACKEND_NAMES:
            score += 1
        if any(p.test_cmd for p in plans) and _has_tests(files, folder):
            score += 2
        if words & _ecosystem_words(ecosystems):
            score += 1
        if not folder and _delegates(files):
            score -= 3
        scores[folder] = score
    if not scores:
        return ""
    best = max(scores.values())
    return "" if scores.get("", -99) == best else next(f for f, s in scores.items() if s == best)


def _ecosystem_words(ecosystems: set[str]) -> set[str]:
    words = {"python": {"python", "django", "flask", "fastapi", "pytest", "sqlalchemy", "db", "database"},
             "node": {"node", "js", "javascript", "typescript", "react", "vue", "express", "jest", "ui", "frontend"},
             "go": {"go", "golang"}, "rust": {"rust", "cargo"}, "ruby": {"ruby", "rails"}}  # fmt: skip
    return set().union(*(words.get(e, set()) for e in ecosystems))


def _has_tests(files: RepoFiles, folder: str) -> bool:
    """Test files at the folder's top or one folder down (tests/, __tests__/, app/tests/...)."""
    pattern = re.compile(r"(test_.*\.py|.*_test\.(py|go)|.*\.(test|spec)\.[jt]sx?)$")
    for name, is_dir in files.listdir(folder):
        if not is_dir and pattern.fullmatch(name):
            return True
        if is_dir and name not in ("node_modules", ".venv", ".git"):
            sub = join(folder, name)
            for inner, inner_dir in files.listdir(sub):
                if (not inner_dir and pattern.fullmatch(inner)) or (
                    inner_dir and inner in ("tests", "test", "__tests__")
                ):
                    return True
            if name in ("tests", "test", "__tests__", "spec") and files.listdir(sub):
                return True
    return False


def _delegates(files: RepoFiles) -> bool:
    """A root package.json that is only a workspace shell: workspaces, or a test script that
    goes into a sub-folder or runs a tool over several of them."""
    package = files.json("package.json")
    if not isinstance(package, dict):
        return False
    scripts = package.get("scripts")
    test = scripts.get("test", "") if isinstance(scripts, dict) else ""
    return bool(package.get("workspaces")) or bool(
        re.search(r"\b(cd|--prefix|--filter|--workspace|turbo|lerna|nx)\b", str(test))
    )


def _why_workdir(workdir: str) -> str:
    return f"{workdir}/ (the sub-project the task, the services and the test files point at)"


# -- the script run in the sandbox -----------------------------------------------------------


def setup_script(recipe: Recipe) -> str | None:
    """The bash run in the sandbox with the network on: toolchains first (only what is missing),
    then each setup command from the root in a subshell, under `set -e`; None: nothing to do."""
    if recipe.empty:
        return None
    toolchain, _notes = install_lines(recipe.requirements)
    lines = [
        "set -e",
        'mkdir -p "$HOME/.local/bin"',
        'command -v python >/dev/null || ln -sf "$(command -v python3)" "$HOME/.local/bin/python"',
    ]
    lines += toolchain
    if recipe.env:
        lines.append(_exports(recipe.env))
    root = "/workspace"
    lines += [f"(cd {root} && {command})" for command in recipe.setup]
    return "\n".join(lines) + "\n"


def toolchain_notes(recipe: Recipe) -> list[str]:
    """The requirements left to the image (a version patchwright could not read)."""
    return install_lines(recipe.requirements)[1]
