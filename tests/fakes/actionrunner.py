"""Runs a composite action's steps the way the GitHub runner does, on this machine.

action.yml is parsed; each step's `if:` and `env:` are evaluated against the contexts the
action uses (inputs, steps.<id>.outputs, github, runner; `always()`, `success()`, `==`,
`!=`, `&&`, `||`, `!`); each `run:` script is written to a file and run with
`bash --noprofile --norc -eo pipefail FILE` in GITHUB_WORKSPACE, with a fresh GITHUB_OUTPUT
file per step and GITHUB_PATH honoured. As on the runner, a composite action's inputs reach
a script only through its step's `env:` (nothing is exported as INPUT_* on its own).
`uses:` steps are not run: their evaluated `with:` is recorded, and their outputs come from
`uses_outputs`. A step's script can be replaced (`replace_run`) or the step skipped
(`skip`), so a test can feed a prepared run folder to the later steps.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_*][A-Za-z0-9_-]*)*))"
)


def tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    at = 0
    text = text.strip()
    while at < len(text):
        m = TOKEN.match(text, at)
        if not m or m.end() == at:
            raise ValueError(f"cannot parse expression at {text[at:]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        at = m.end()
        while at < len(text) and text[at].isspace():
            at += 1
    return out


@dataclass
class Evaluator:
    """A recursive-descent evaluator for the small expression language the action uses."""

    contexts: dict[str, Any]
    failed: bool  # a step before this one failed

    def evaluate(self, text: str) -> Any:
        self._tokens = tokens(text)
        self._at = 0
        value = self._or()
        if self._at != len(self._tokens):
            raise ValueError(f"trailing tokens in {text!r}")
        return value

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == ("op", "||"):
            self._take()
            right = self._and()
            value = value or right
        return value

    def _and(self) -> Any:
        value = self._cmp()
        while self._peek() == ("op", "&&"):
            self._take()
            right = self._cmp()
            value = value and right
        return value

    def _cmp(self) -> Any:
        value = self._unary()
        while self._peek() in (("op", "=="), ("op", "!=")):
            op = self._take()[1]
            right = self._unary()
            same = (
                str(value if value is not None else "").lower()
                == str(right if right is not None else "").lower()
            )
            value = same if op == "==" else not same
        return value

    def _unary(self) -> Any:
        if self._peek() == ("op", "!"):
            self._take()
            return not self._unary()
        return self._primary()

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if kind == "op" and text == "(":
            value = self._or()
            self._take()
            return value
        if kind == "name":
            if self._peek() == ("op", "("):
                self._take()
                self._take()  # the functions used take no arguments
                return {"always": True, "success": not self.failed, "failure": self.failed}[text]
            if text in ("true", "false"):
                return text == "true"
            value: Any = self.contexts
            for part in text.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            return "" if value is None else value
        raise ValueError(f"unexpected {text!r}")


def interpolate(text: Any, evaluator: Evaluator) -> str:
    return EXPRESSION.sub(lambda m: _as_text(evaluator.evaluate(m.group(1))), _as_text(text))


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


@dataclass
class StepRun:
    id: str
    name: str
    outcome: str  # success, failure or skipped
    exit_code: int | None = None
    output: str = ""
    uses: str | None = None
    with_: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    run: str | None = None  # the script as written in action.yml


@dataclass
class ActionResult:
    steps: list[StepRun]
    outputs: dict[str, str]
    summary: str

    def step(self, step_id: str) -> StepRun:
        return next(s for s in self.steps if s.id == step_id)

    @property
    def failed(self) -> bool:
        return any(s.outcome == "failure" for s in self.steps)


def parse_outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT's two forms: name=value, and name<<DELIMITER ... DELIMITER."""
    outputs: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").split("\n") if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            outputs[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
        i += 1
    return outputs


@dataclass
class ActionRunner:
    action_dir: Path
    workspace: Path
    temp: Path
    event_name: str
    event_path: Path
    inputs: dict[str, str]
    env: dict[str, str]  # the job's environment (GITHUB_API_URL, GITHUB_REPOSITORY, ...)
    token: str = ""  # github.token
    uses_outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    replace_run: dict[str, str] = field(default_factory=dict)
    skip: frozenset[str] = frozenset()
    timeout: float = 600

    def run(self) -> ActionResult:
        action = yaml.safe_load((self.action_dir / "action.yml").read_text())
        assert action["runs"]["using"] == "composite"
        self.temp.mkdir(parents=True, exist_ok=True)
        bin_dir = self.temp / "runner-bin"
        bin_dir.mkdir(exist_ok=True)
        if not (bin_dir / "python").exists():
            (bin_dir / "python").symlink_to(sys.executable)
        summary = self.temp / "step_summary.md"
        summary.touch()
        github = {
            "token": self.token,
            "action_path": str(self.action_dir),
            "event_name": self.event_name,
            "run_id": "4242",
            "run_attempt": "1",
            "job": "fix",
        }
        contexts: dict[str, Any] = {"github": github, "runner": {"temp": str(self.temp)}, "steps": {}}
        inputs: dict[str, str] = {}
        unknown = set(self.inputs) - set(action.get("inputs") or {})
        assert not unknown, f"inputs the action does not declare: {unknown}"
        for name, spec in (action.get("inputs") or {}).items():
            default = interpolate(spec.get("default", ""), Evaluator(contexts, False))
            inputs[name] = self.inputs.get(name, default)
        contexts["inputs"] = inputs
        path_extra: list[str] = [str(bin_dir)]
        runs: list[StepRun] = []
        failed = False
        for index, step in enumerate(action["runs"]["steps"]):
            step_id = str(step.get("id") or f"__{index}")
            evaluator = Evaluator(contexts, failed)
            condition = str(step.get("if", "success()"))
            if not re.search(r"\b(always|success|failure|cancelled)\(\)", condition):
                condition = f"success() && ({condition})"
            record = StepRun(step_id, str(step.get("name", "")), "skipped", run=step.get("run"))
            runs.append(record)
            if step_id in self.skip or not evaluator.evaluate(condition.replace("${{", "").replace("}}", "")):
                contexts["steps"][step_id] = {"outputs": {}, "outcome": "skipped"}
                continue
            record.env = {k: interpolate(v, evaluator) for k, v in (step.get("env") or {}).items()}
            if "uses" in step:
                record.uses = step["uses"]
                record.with_ = {k: interpolate(v, evaluator) for k, v in (step.get("with") or {}).items()}
                record.outcome = "success"
                contexts["steps"][step_id] = {"outputs": dict(self.uses_outputs.get(step["uses"], {}))}
                continue
            assert step.get("shell") == "bash", f"step {step_id} needs `shell: bash` in a composite action"
            script = self.replace_run.get(step_id, step["run"])
            script_path = self.temp / f"step-{index}.sh"
            script_path.write_text(interpolate(script, evaluator))
            output_file = self.temp / f"output-{index}"
            output_file.write_text("")
            path_file = self.temp / f"path-{index}"
            path_file.write_text("")
            env = {
                **self.env,
                "PATH": os.pathsep.join([*reversed(path_extra), self.env.get("PATH", os.environ["PATH"])]),
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": self.event_name,
                "GITHUB_EVENT_PATH": str(self.event_path),
                "GITHUB_WORKSPACE": str(self.workspace),
                "GITHUB_ACTION_PATH": str(self.action_dir),
                "GITHUB_OUTPUT": str(output_file),
                "GITHUB_PATH": str(path_file),
                "GITHUB_STEP_SUMMARY": str(summary),
                "RUNNER_TEMP": str(self.temp),
                **record.env,
            }
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_path)],
                cwd=self.workspace,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=self.timeout,
            )
            record.exit_code, record.output = done.returncode, done.stdout
            record.outcome = "success" if done.returncode == 0 else "failure"
            failed = failed or done.returncode != 0
            path_extra += [line for line in path_file.read_text().splitlines() if line.strip()]
            contexts["steps"][step_id] = {"outputs": parse_outputs(output_file), "outcome": record.outcome}
        evaluator = Evaluator(contexts, failed)
        outputs = {
            name: interpolate(spec.get("value", ""), evaluator)
            for name, spec in (action.get("outputs") or {}).items()
        }
        return ActionResult(runs, outputs, summary.read_text())
