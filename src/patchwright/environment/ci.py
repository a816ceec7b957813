"""What the repository's own CI does before its tests: the job that runs the tests in
`.github/workflows/*.yml` (its install and pre-test `run:` steps, `env:`, `working-directory` and
the versions asked of the setup actions), else `.gitlab-ci.yml`, `.travis.yml`, the devcontainer's
`postCreateCommand`, or a Makefile's install/setup/deps target.

CI files are the repository's, so untrusted: their commands run only inside the sandbox (as the
tests do), `${{ ... }}` expressions that cannot be resolved drop their step (said in a note), and
steps that need root on a CI runner (sudo, apt-get, docker) are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from patchwright.environment.files import RepoFiles
from patchwright.environment.toolchains import Requirement
from patchwright.services.detect import list_workflows

TEST_WORDS = re.compile(
    r"(^|[\s/;&|(])(pytest|py\.test|tox|nox|manage\.py\s+test|unittest|"
    r"(npm|yarn|pnpm|bun)\s+(run\s+)?test\b|jest|vitest|mocha|ava\b|go\s+test|cargo\s+(test|nextest)|"
    r"make\s+test|rspec|rake\s+test|phpunit|coverage\s+run)"
)
INSTALL_WORDS = re.compile(
    r"\b(pip3?|uv|poetry|pdm|pipenv|npm|yarn|pnpm|bun|npx|go\s+(mod|get|install|build)|cargo\s+(fetch|build)|"
    r"bundle|gem|make|python3?|cp|mv|mkdir|export|corepack|alembic|createdb|psql)\b"
)
INSTALL_COMMAND = re.compile(
    r"\b(pip3?|uv\s+pip|poetry|pipenv|pdm|npm|yarn|pnpm|bun|gem|bundle|go)\s+(install|add|i|ci|sync|get|mod)\b"
)
SKIP_WORDS = re.compile(r"(^|[\s;&|])(sudo|apt-get|apt|apk|yum|brew|docker|docker-compose|systemctl|choco)\b")
LINT_WORDS = re.compile(
    r"\b(ruff|flake8|pylint|mypy|black|isort|eslint|prettier|codecov|pre-commit|lint|tsc\s+--noEmit)\b"
)
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SETUP_ACTIONS = {
    "actions/setup-python": ("python", "python-version"),
    "actions/setup-node": ("node", "node-version"),
    "actions/setup-go": ("go", "go-version"),
    "astral-sh/setup-uv": ("uv", "version"),
    "pnpm/action-setup": ("pnpm", "version"),
    "oven-sh/setup-bun": ("bun", "bun-version"),
    "snok/install-poetry": ("poetry", "version"),
    "pdm-project/setup-pdm": ("pdm", "version"),
}
MAKE_TARGETS = ("install", "setup", "deps", "bootstrap", "dev-install", "install-dev")
MAX_STEPS = 200


@dataclass
class CiPlan:
    """The install steps and test step of the repository's CI job, and what surrounds them."""

    source: str  # e.g. ".github/workflows/ci.yml job `test`"
    setup: list[str] = field(default_factory=list)
    test: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = ""  # "" is the repository's root
    tools: list[Requirement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def find(files: RepoFiles) -> CiPlan | None:
    """The first CI source that shows how the tests run (GitHub, GitLab, Travis), else the setup
    of a devcontainer or Makefile with no test step."""
    for finder in (github, gitlab, travis, devcontainer, makefile):
        plan = finder(files)
        if plan is not None:
            return plan
    return None


# -- GitHub Actions --------------------------------------------------------------------------


def github(files: RepoFiles) -> CiPlan | None:
    """The job (across all workflows) whose `run:` steps run the tests: one named for tests, with
    services, and with more install steps and setup actions wins over the others."""
    best: tuple[int, CiPlan] | None = None
    for name in list_workflows(files.root):
        path = f".github/workflows/{name}"
        document = files.yaml(path)
        if not isinstance(document, dict) or not isinstance(document.get("jobs"), dict):
            continue
        for job_id, job in document["jobs"].items():
            if not isinstance(job, dict):
                continue
            plan = _github_job(path, str(job_id), job, document)
            if plan is None or plan.test is None:
                continue
            named = f"{job_id} {job.get('name', '')}".lower()
            score = 10 * ("test" in named) + 5 * ("services" in job) + len(plan.setup) + len(plan.tools)
            score -= 10 * bool(re.search(r"--collect-only|--co\b|lint", plan.test))
            if best is None or score > best[0]:
                best = (score, plan)
    return best[1] if best else None


def _mapping(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else {}


def _github_job(path: str, job_id: str, job: dict[str, Any], workflow: dict[str, Any]) -> CiPlan | None:
    plan = CiPlan(f"{path} job `{job_id}`")
    matrix = _matrix(job)
    context: dict[str, Any] = {
        "matrix": matrix,
        "env": {},
        "matrix_lists": _mapping(_mapping(job.get("strategy")).get("matrix")),
    }
    for raw in (workflow.get("env"), job.get("env")):
        for key, value in _mapping(raw).items():
            resolved = _resolve(str(value), context)
            if resolved is None:
                plan.notes.append(
                    f"env {key}: left out ({path} sets it from an expression patchwright cannot resolve)"
                )
            else:
                plan.env[str(key)] = resolved
                context["env"][str(key)] = resolved
    defaults = _mapping(_mapping(job.get("defaults")).get("run")) or _mapping(
        _mapping(workflow.get("defaults")).get("run")
    )
    base_dir = str(defaults.get("working-directory") or "")
    steps = job.get("steps")
    if not isinstance(steps, list):
        return None
    pending: list[str] = []
    for step in steps[:MAX_STEPS]:
        if not isinstance(step, dict):
            continue
        uses = step.get("uses")
        if isinstance(uses, str):
            _setup_action(uses, _mapping(step.get("with")), context, plan, path)
            continue
        run = step.get("run")
        if not isinstance(run, str):
            continue
        label = str(step.get("name") or (run.strip().splitlines() or [""])[0])[:80]
        command = _resolve_lines(run, context)
        if command is None:
            plan.notes.append(f"step {label!r}: left out (an expression patchwright cannot resolve)")
            continue
        if command != run and EXPRESSION.search(run) and _resolve(run, context) is None:
            plan.notes.append(f"step {label!r}: lines with an expression patchwright cannot resolve left out")
        workdir = _resolve(str(step.get("working-directory") or base_dir), context) or ""
        step_env = {
            str(k): v
            for k, v in ((k, _resolve(str(v), context)) for k, v in _mapping(step.get("env")).items())
            if v is not None
        }
        lines = command.strip().splitlines()
        at = next((i for i, line in enumerate(lines) if is_test_line(line)), None)
        if at is not None and "\\\n" not in command:
            prefix = f"cd {_quote(workdir)} && " if workdir and workdir not in (".", "./") else ""
            if at and (before := _keep("\n".join(lines[:at]), label, plan)):
                pending.append(prefix + before)
            plan.test = "\n".join(lines[at:]).strip()
            plan.workdir = workdir.strip("./") if workdir not in (".", "./") else ""
            plan.env.update(step_env)
            plan.setup = pending
            return plan
        kept = _keep(command, label, plan)
        if kept:
            prefix = f"cd {_quote(workdir)} && " if workdir and workdir not in (".", "./") else ""
            pending.append(prefix + kept if not step_env else prefix + _exports(step_env) + kept)
    return plan


def is_test_line(line: str) -> bool:
    """A line that runs tests: not an install that names a test tool, not a lint."""
    return bool(TEST_WORDS.search(line)) and not INSTALL_COMMAND.search(line) and not LINT_WORDS.search(line)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _exports(env: dict[str, str]) -> str:
    return (
        "export "
        + " ".join(f"{k}={_quote(v)}" for k, v in env.items() if re.fullmatch(r"[A-Za-z_]\w*", k))
        + " && "
    )


def _keep(command: str, label: str, plan: CiPlan) -> str | None:
    """A pre-test step worth running in the sandbox, its root-only or lint lines left out."""
    lines = [line for line in command.strip().splitlines() if line.strip()]
    if any(line.rstrip().endswith("\\") for line in lines):
        joined = command.strip()  # continued lines: all or nothing
        if SKIP_WORDS.search(joined) or LINT_WORDS.search(joined):
            plan.notes.append(f"step {label!r}: left out (needs root on a CI runner, or lints)")
            return None
        return joined if INSTALL_WORDS.search(joined) else None
    kept = []
    for line in lines:
        if SKIP_WORDS.search(line):
            plan.notes.append(f"step {label!r}: left out {line.strip()[:80]!r} (needs root on a CI runner)")
        elif LINT_WORDS.search(line):
            continue
        elif INSTALL_WORDS.search(line):
            kept.append(line.strip())
    return "\n".join(kept) or None


def _matrix(job: dict[str, Any]) -> dict[str, str]:
    """The first value of each matrix axis (the first combination is as good a pick as any)."""
    matrix = _mapping(_mapping(job.get("strategy")).get("matrix"))
    first: dict[str, str] = {}
    for key, values in matrix.items():
        if isinstance(values, list) and values and isinstance(values[0], (str, int, float)):
            first[str(key)] = str(values[0])
    include = matrix.get("include")
    if not first and isinstance(include, list) and include and isinstance(include[0], dict):
        first = {str(k): str(v) for k, v in include[0].items() if isinstance(v, (str, int, float))}
    return first


def _resolve_lines(run: str, context: dict[str, Any]) -> str | None:
    """The step's lines with their expressions resolved, those that cannot be left out; None when
    nothing is left, or when a line continues onto the next (all or nothing then)."""
    if "\\\n" in run:
        return _resolve(run, context)
    lines = [resolved for line in run.splitlines() if (resolved := _resolve(line, context)) is not None]
    return "\n".join(lines) if any(line.strip() for line in lines) else None


def _matrix_values(context: dict[str, Any], key: str) -> list[str]:
    values = context.get("matrix_lists", {}).get(key)
    return [str(v) for v in values] if isinstance(values, list) else []


def _resolve(text: str, context: dict[str, Any]) -> str | None:
    """`${{ matrix.x }}` and `${{ env.X }}` filled in; None if another expression remains."""
    unresolved = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal unresolved
        expression = match[1]
        parts = expression.split(".")
        if len(parts) == 2 and parts[0] in ("matrix", "env") and parts[1] in context[parts[0]]:
            return str(context[parts[0]][parts[1]])
        if re.fullmatch(r"'[^']*'", expression):
            return expression[1:-1]
        unresolved = True
        return ""

    result = EXPRESSION.sub(substitute, text)
    return None if unresolved else result


def _setup_action(uses: str, with_: dict[str, Any], context: dict[str, Any], plan: CiPlan, path: str) -> None:
    action = uses.split("@", 1)[0].lower()
    if action not in SETUP_ACTIONS:
        return
    tool, key = SETUP_ACTIONS[action]
    raw = with_.get(key)
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    version = _resolve(str(raw), context) if raw is not None else ""
    if version is None:
        plan.notes.append(f"{action}: version left to the project's files (an unresolved expression)")
        version = ""
    if tool == "python" and not version and isinstance(with_.get("python-version-file"), str):
        version = ""
    if isinstance(raw, str) and (match := re.fullmatch(r"\$\{\{\s*matrix\.([\w-]+)\s*\}\}", raw.strip())):
        version = " ".join(_matrix_values(context, match[1])) or version  # any of the versions CI tests on
    plan.tools.append(Requirement(tool, version.strip(), f"{plan.source} {action}", soft=True))


# -- Other CI systems ------------------------------------------------------------------------


def gitlab(files: RepoFiles) -> CiPlan | None:
    document = files.yaml(".gitlab-ci.yml")
    if not isinstance(document, dict):
        return None
    defaults = _mapping(document.get("default"))
    top_before = document.get("before_script", defaults.get("before_script"))
    env = {
        str(k): str(v)
        for k, v in _mapping(document.get("variables")).items()
        if isinstance(v, (str, int, float))
    }
    for job_id, job in document.items():
        if not isinstance(job, dict) or str(job_id).startswith(".") or "script" not in job:
            continue
        script = _lines(job.get("script"))
        tests = [i for i, line in enumerate(script) if is_test_line(line)]
        if not tests:
            continue
        plan = CiPlan(f".gitlab-ci.yml job `{job_id}`", env=dict(env))
        plan.env.update(
            {
                str(k): str(v)
                for k, v in _mapping(job.get("variables")).items()
                if isinstance(v, (str, int, float))
            }
        )
        before = _lines(job.get("before_script", top_before)) + script[: tests[0]]
        plan.setup = [kept for line in before if (kept := _keep(line, line[:60], plan))]
        plan.test = script[tests[0]]
        image = job.get("image", document.get("image"))
        if isinstance(image, str) and (match := re.match(r"(python|node|golang):(\d+(?:\.\d+)?)", image)):
            tool = {"golang": "go"}.get(match[1], match[1])
            plan.tools.append(Requirement(tool, match[2], f"{plan.source} image", soft=True))
        return plan
    return None


def _lines(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    return [str(line) for line in raw if isinstance(line, (str, int))] if isinstance(raw, list) else []


def travis(files: RepoFiles) -> CiPlan | None:
    document = files.yaml(".travis.yml")
    if not isinstance(document, dict):
        return None
    script = _lines(document.get("script"))
    tests = [line for line in script if is_test_line(line)]
    if not tests:
        return None
    plan = CiPlan(".travis.yml")
    before = (
        _lines(document.get("before_install"))
        + _lines(document.get("install"))
        + _lines(document.get("before_script"))
    )
    plan.setup = [kept for line in before if (kept := _keep(line, line[:60], plan))]
    plan.test = tests[0]
    for key, tool in (("python", "python"), ("node_js", "node"), ("go", "go")):
        value = document.get(key)
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, (str, int, float)):
            plan.tools.append(Requirement(tool, str(value), f".travis.yml {key}", soft=True))
    for item in _lines(document.get("env")):
        for key, value in re.findall(r"([A-Za-z_]\w*)=(\S+)", item):
            plan.env[key] = value
    return plan


def devcontainer(files: RepoFiles) -> CiPlan | None:
    for path in (".devcontainer/devcontainer.json", ".devcontainer.json"):
        document = files.json(path)
        if not isinstance(document, dict):
            continue
        plan = CiPlan(f"{path} postCreateCommand")
        for key in ("onCreateCommand", "updateContentCommand", "postCreateCommand"):
            raw = document.get(key)
            commands = list(raw.values()) if isinstance(raw, dict) else [raw]
            for command in commands:
                text = " ".join(str(c) for c in command) if isinstance(command, list) else command
                if isinstance(text, str) and (kept := _keep(text, key, plan)):
                    plan.setup.append(kept)
        features = _mapping(document.get("features"))
        for feature, options in features.items():
            match = re.search(r"/(python|node|go)(?::\d+)?$", str(feature))
            version = _mapping(options).get("version")
            if match and isinstance(version, (str, int)):
                plan.tools.append(Requirement(match[1], str(version), f"{path} features", soft=True))
        plan.env = {
            str(k): str(v)
            for k, v in _mapping(document.get("containerEnv")).items()
            if isinstance(v, str) and "${" not in v
        }
        if plan.setup or plan.tools:
            return plan
    return None


def makefile(files: RepoFiles) -> CiPlan | None:
    text = files.text("Makefile")
    if text is None:
        return None
    targets = set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, re.MULTILINE))
    setup = [f"make {t}" for t in MAKE_TARGETS if t in targets][:1]
    test = "make test" if "test" in targets else None
    if not setup:
        return None
    return CiPlan("Makefile", setup=setup, test=test)
