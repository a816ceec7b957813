"""`agent fix --attempts N`: several independent attempts at one task, the proven one kept.

Each attempt is an `agent fix` process of its own (its own sandbox, services, verification
and run folder, `attempt-K/` under the run's folder), so a crash, a kill or a hang stays
with its attempt. Up to `parallel` run at once; `max_cost` bounds the total: each attempt
is started with a share of what is left (what finished attempts spent is counted, what
running ones may spend is reserved), and none is started once nothing is left.
`until_fixed` starts no new attempt once one is `fixed`. Then each fixed attempt's code is
run against the other attempts' bug-showing tests (cross-validation), the attempts are
ranked (selection.py), selection.json written, and the chosen patch becomes patch.diff.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchwright.applygate import apply_patch, gate_rules
from patchwright.config import (
    Settings,
    check,
    memory_bytes,
    pairs_text,
    parse_pairs,
    secret_values,
    settings_record,
)
from patchwright.display import Display
from patchwright.errors import ExitCode, OutputError, PatchwrightError, UsageError
from patchwright.fixer import (
    CODE_PART_NAME,
    PATCH_NAME,
    TESTS_PART_NAME,
    FixRequest,
    Interrupted,
    prepare,
    signals_interrupt,
    unproven_refusal,
)
from patchwright.judge import JUDGE_MAX_TOKENS, judge, tied
from patchwright.model import ModelClient, Usage, check_credentials, make_client, model_info
from patchwright.outputs import (
    Redactor,
    RunSummary,
    copy_file,
    read_trajectory,
    write_summary,
    write_text_file,
)
from patchwright.record import new_run_id
from patchwright.selection import AttemptResult, Selection, cross_pairs, prefer, select
from patchwright.services.spec import ServiceSpec
from patchwright.status import RunStatus
from patchwright.verify import cross_check
from patchwright.workspace import Workspace, hide_run_dir, real_run_dir

SETTINGS_NAME = "settings.json"  # the settings an attempt runs with, written by the parent
# the user's `env` values reach an attempt in its environment: settings.json holds their names only
ENV_VARIABLE = "PATCHWRIGHT_ATTEMPT_ENV"
TASK_NAME = "task.txt"
SELECTION_NAME = "selection.json"
PROCESS_NAME = "process.json"  # the attempt's pid, while it runs
POLL_SECONDS = 0.2
KILL_AFTER = 120.0  # SIGTERM to SIGKILL: time for an attempt to save its work and remove its sandbox


def attempt_folder(run_dir: Path, number: int) -> Path:
    return run_dir / f"attempt-{number}"


def default_parallel(settings: Settings, attempts: int) -> int:
    """As `agent batch`'s workers: a core and the sandbox's memory limit for each attempt. With
    --until-fixed, one at a time: the point is to pay for no attempt after the first fixed one."""
    if settings.until_fixed:
        return 1
    cpus = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = 0
    per_sandbox = memory_bytes(settings.memory) or 1
    by_memory = max(1, memory // per_sandbox) if memory else 1
    return max(1, min(attempts, cpus, by_memory))


def load_attempt_settings(run_dir: Path, number: int) -> Settings:
    """An attempt's settings, as the parent resolved them (flags, config, environment) once for all."""
    path = attempt_folder(run_dir, number) / SETTINGS_NAME
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read the attempt's settings {path}: {err}") from None
    if not isinstance(values, dict):
        raise UsageError(f"{path}: not the settings of an attempt")
    if values.get("services") is not None:
        values["services"] = tuple(values["services"])
    for key in ("allow_hosts",):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    passed = os.environ.get(ENV_VARIABLE, "")
    lines = [line for line in passed.split("\n") if line.strip()]
    values["env"] = () if lines in ([], ["none"]) else parse_pairs(lines, ENV_VARIABLE)
    try:
        settings = dataclasses.replace(Settings(), **values)
    except TypeError as err:
        raise UsageError(f"{path}: not the settings of an attempt ({err})") from None
    check(settings)
    return settings


@dataclass
class Running:
    number: int
    proc: subprocess.Popen[bytes]
    reserved: float  # the budget it was started with (0 without --max-cost)


@dataclass
class AttemptRun:
    """The parent: starts attempts, collects them, selects, writes the run's outputs."""

    request: FixRequest
    display: Display
    workspace: Workspace
    run_id: str
    run_dir: Path
    test_command: str | None
    services: tuple[ServiceSpec, ...]
    model: str

    @property
    def settings(self) -> Settings:
        return self.request.settings

    def launch(self, number: int, max_cost: float | None) -> subprocess.Popen[bytes]:
        folder = attempt_folder(self.run_dir, number)
        folder.mkdir(exist_ok=False)
        settings = dataclasses.replace(self.settings, attempts=1, max_cost=max_cost)
        write_text_file(folder / SETTINGS_NAME, json.dumps(settings_record(settings), indent=2))
        argv = [
            sys.executable,
            "-m",
            "patchwright",
            "fix",
            "--task-file",
            str(self.run_dir / TASK_NAME),
            "--repo",
            str(self.workspace.root),
            "--attempt-of",
            f"{self.run_id}:{number}",
            "--format",
            "json",
            "--quiet",
        ]
        with (folder / "stdout.json").open("wb") as out, (folder / "stderr.log").open("wb") as err:
            # A session of its own: a Ctrl-C reaches the parent, which stops each attempt in order.
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, ENV_VARIABLE: pairs_text(settings.env)},
            )
        write_text_file(folder / PROCESS_NAME, json.dumps({"pid": proc.pid}))
        self.display.status(f"attempt {number} started" + (f" (up to ${max_cost:.4f})" if max_cost else ""))
        return proc

    def result(self, number: int, returncode: int | None) -> AttemptResult:
        """What attempt `number` left in its folder."""
        folder = attempt_folder(self.run_dir, number)
        (folder / PROCESS_NAME).unlink(missing_ok=True)
        try:
            summary: dict[str, Any] = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = {}
        status = str(summary.get("status", "crashed"))
        error = summary.get("error")
        if returncode is not None and returncode < 0:
            status, error = "killed", f"attempt process killed by {signal.Signals(-returncode).name}"
            self.remove_containers(f"{self.run_id}-a{number}")
        cost = float(summary.get("cost_usd") or 0.0)
        if status in (
            "killed",
            "crashed",
        ):  # its summary missed the last turns: count them from the trajectory
            cost = max(cost, self.trajectory_cost(folder))
        verification = summary.get("verification") or {}
        tests_only = (summary.get("tests") or {}).get("tests_only") or {}
        patch = folder / PATCH_NAME
        return AttemptResult(
            number=number,
            folder=str(folder),
            status=status,
            exit_code=summary.get("exit_code") if status != "killed" else returncode,
            verdict=verification.get("verdict") if status != "killed" else None,
            reason=verification.get("reason"),
            fail_to_pass=list(verification.get("FAIL_TO_PASS") or []),
            pass_to_fail=list(verification.get("PASS_TO_FAIL") or []),
            patch_bytes=patch.stat().st_size if patch.is_file() and status != "killed" else 0,
            cost_usd=cost,
            shows_bug=bool(tests_only)
            and tests_only.get("passed") is False
            and not tests_only.get("timed_out"),
            error=error,
        )

    def trajectory_cost(self, folder: Path) -> float:
        """What the model's replies recorded in an attempt's trajectory cost (0 when unpriced)."""
        usage = Usage()
        with contextlib.suppress(OSError):
            for record in read_trajectory(folder / "trajectory.jsonl"):
                if record.get("event") == "response" and isinstance(record.get("usage"), dict):
                    usage.add(Usage.from_dict(record["usage"]))
        return usage.cost(model_info(self.model)) or 0.0

    def remove_containers(self, run_id: str) -> None:
        """What a killed attempt could not remove (its sandbox, services) goes now."""
        from patchwright.sandbox.engine import docker_client  # names Docker: only after a kill
        from patchwright.sandbox.prune import remove_left_by

        try:
            removed = remove_left_by(docker_client(), run_id)
        except PatchwrightError as err:
            self.display.status(f"warning: {err}")
            return
        if removed:
            self.display.status(f"removed {len(removed)} container(s) the killed attempt left")

    def run_all(self) -> tuple[list[AttemptResult], list[dict[str, Any]], bool]:
        """Every attempt to its end; (results, attempts not started and why, interrupted)."""
        settings = self.settings
        total = settings.attempts
        parallel = settings.parallel or default_parallel(settings, total)
        running: dict[int, Running] = {}
        results: list[AttemptResult] = []
        not_started: list[dict[str, Any]] = []
        next_number = 1
        stop_reason: str | None = None
        interrupted = False
        with signals_interrupt():
            try:
                while True:
                    while stop_reason is None and next_number <= total and len(running) < parallel:
                        budget = self.budget(results, running, total - next_number + 1)
                        if budget is not None and budget <= 0:
                            stop_reason = "--max-cost spent"
                            break
                        running[next_number] = Running(
                            next_number, self.launch(next_number, budget), budget or 0.0
                        )
                        next_number += 1
                    if not running:
                        break
                    time.sleep(POLL_SECONDS)
                    for number, child in list(running.items()):
                        code = child.proc.poll()
                        if code is None:
                            continue
                        del running[number]
                        result = self.result(number, code)
                        results.append(result)
                        self.display.status(
                            f"attempt {number}: {result.status}, verdict {result.verdict or 'none'}"
                            + (f", ${result.cost_usd:.4f}" if result.cost_usd else "")
                        )
                        if settings.until_fixed and result.fixed and stop_reason is None:
                            stop_reason = f"--until-fixed: attempt {number} is fixed"
            except Interrupted:
                interrupted = True
                self.stop_all(running)
                results += [self.result(n, c.proc.returncode) for n, c in running.items()]
        for result in results:  # again at the end: the engine may finish a create the killed process began
            if result.status == "killed":
                self.remove_containers(f"{self.run_id}-a{result.number}")
        if stop_reason is None and interrupted:
            stop_reason = "interrupted"
        not_started = [{"attempt": n, "why": stop_reason} for n in range(next_number, total + 1)]
        return sorted(results, key=lambda r: r.number), not_started, interrupted

    def budget(self, results: list[AttemptResult], running: dict[int, Running], left: int) -> float | None:
        """The next attempt's share of --max-cost: what is neither spent nor reserved, over those left."""
        if self.settings.max_cost is None:
            return None
        spent = sum(r.cost_usd for r in results)
        reserved = sum(r.reserved for r in running.values())
        return (self.settings.max_cost - spent - reserved) / max(1, left)

    def stop_all(self, running: dict[int, Running]) -> None:
        """SIGTERM to each attempt (each saves its work and removes its sandbox), SIGKILL past KILL_AFTER."""
        for child in running.values():
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + KILL_AFTER
        for child in running.values():
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()

    def cross_validate(self, results: list[AttemptResult]) -> list[dict[str, Any]]:
        """Each fixed attempt's code with each other attempt's bug-showing tests, in fresh sandboxes."""
        pairs = cross_pairs(results)
        if not pairs or self.test_command is None:
            return []
        from patchwright.sandbox.factory import open_factory  # names Docker: only when there is work

        command = self.test_command
        from patchwright.services.variables import repo_variables

        variables = repo_variables(self.workspace.root).values  # as each attempt's own sandboxes have
        factory = open_factory(
            self.settings, self.display.status, self.workspace.root, self.services, variables
        )
        by_number = {r.number: r for r in results}
        records: list[dict[str, Any]] = []
        for candidate, tests in pairs:
            code_part = Path(by_number[candidate].folder) / CODE_PART_NAME
            tests_part = Path(by_number[tests].folder) / TESTS_PART_NAME
            self.display.status(
                f"cross-validation: attempt {tests}'s tests against attempt {candidate}'s code"
            )
            sandbox = factory.create(
                f"{self.run_id}-x{candidate}-{tests}", self.workspace, self.display.status
            )
            try:
                outcome = cross_check(
                    sandbox, tests_part, code_part, command, self.settings.command_timeout * 5
                )
            except PatchwrightError as err:
                records.append({"code_of": candidate, "tests_of": tests, "passed": False, "error": str(err)})
                by_number[candidate].cross_failed.append(tests)
                continue
            wanted = set(by_number[tests].fail_to_pass)
            if outcome is None:
                passed, how = False, "the two parts do not apply together"
            elif wanted and outcome.results:
                passed, how = wanted <= outcome.results.passed(), "by the tests' names"
            else:
                passed, how = outcome.passed, "by the exit code"
            (by_number[candidate].cross_passed if passed else by_number[candidate].cross_failed).append(tests)
            records.append({"code_of": candidate, "tests_of": tests, "passed": passed, "decided": how})
        return records


def run_attempts(request: FixRequest, display: Display) -> RunSummary:
    """`agent fix --attempts N`; raises PatchwrightError only before the run folder exists."""
    started = time.monotonic()
    if request.resume:
        raise UsageError("--resume continues one run; it cannot be combined with --attempts")
    prepared = prepare(request)  # every input error now, before any attempt starts
    check_credentials(request.settings.provider)  # type: ignore[arg-type]
    ws = prepared.workspace
    run_id = new_run_id()
    hide_run_dir(ws)
    run_dir = real_run_dir(ws, run_id, create=True)
    write_text_file(run_dir / TASK_NAME, prepared.task)
    parent = AttemptRun(
        request,
        display,
        ws,
        run_id,
        run_dir,
        prepared.test_command,
        tuple(prepared.services.specs),
        prepared.model,
    )
    results, not_started, interrupted = parent.run_all()
    cross = [] if interrupted else parent.cross_validate(results)
    selection = select(results, not_started)
    if request.settings.judge and not interrupted:
        _judge(parent, prepared.model, prepared.task, selection)
    data = {**selection.as_dict(), "cross_validation": cross}
    redactor = Redactor.from_environment().with_values(secret_values(request.settings))
    write_text_file(run_dir / SELECTION_NAME, json.dumps(redactor.data(data), indent=2) + "\n")
    summary = _summary(parent, prepared.model, prepared.agent.name, selection, interrupted)
    _write_patch(parent, selection, summary, prepared.test_command)
    summary.duration_s = round(time.monotonic() - started, 2)
    write_summary(run_dir / "summary.json", summary, redactor)
    return summary


def _judge(parent: AttemptRun, model: str, task: str, selection: Selection) -> None:
    """--judge: one model call among fixed attempts tied on every rule; recorded in selection.json."""
    candidates = tied(selection.ranked)
    if not candidates:
        return
    numbers = [a.number for a in candidates]
    settings = parent.settings
    spent = sum(a.cost_usd for a in selection.ranked)
    if settings.max_cost is not None and spent >= settings.max_cost:
        selection.judge = {"candidates": numbers, "choice": None, "skipped": "--max-cost spent"}
        return
    parent.display.status(f"judge: comparing attempts {', '.join(map(str, numbers))}")
    try:
        client = ModelClient(
            make_client(settings.provider, max_retries=settings.max_retries),  # type: ignore[arg-type]
            model,
            JUDGE_MAX_TOKENS,
        )
        verdict = judge(client, task, candidates)
    except (PatchwrightError, OSError) as err:
        selection.judge = {"candidates": numbers, "choice": None, "error": str(err)}
        return
    cost = verdict.usage.cost(model_info(model))
    selection.judge = verdict.as_dict(numbers, cost)
    selection.judge_cost = cost or 0.0
    if verdict.choice is not None:
        prefer(selection, verdict.choice)


def _summary(
    parent: AttemptRun, model: str, agent: str, selection: Selection, interrupted: bool
) -> RunSummary:
    """The run's summary: the chosen attempt's, with the run's folder, total cost and the attempts."""
    chosen = selection.chosen
    base: dict[str, Any] = {}
    if chosen is not None:
        with contextlib.suppress(OSError, ValueError):
            base = json.loads((Path(chosen.folder) / "summary.json").read_text(encoding="utf-8"))
    fields = {f.name for f in dataclasses.fields(RunSummary)}
    kept = {k: v for k, v in base.items() if k in fields}
    summary = RunSummary(
        **{
            **kept,
            "run_id": parent.run_id,
            "status": kept.get("status", RunStatus.ERROR),
            "exit_code": kept.get("exit_code", int(ExitCode.INFRA)),
            "repo": str(parent.workspace.root),
            "run_dir": str(parent.run_dir),
            "model": model,
            "agent": agent,
            "task": kept.get("task", ""),
            "patch": None,
            "applied": False,
            "apply_error": None,
        }
    )
    summary.cost_usd = round(sum(r.cost_usd for r in selection.ranked) + selection.judge_cost, 6)
    summary.chosen_attempt = chosen.number if chosen else None
    summary.selection = str(parent.run_dir / SELECTION_NAME)
    summary.attempts = [
        {"attempt": r.number, "status": r.status, "verdict": r.verdict, "cost_usd": r.cost_usd}
        for r in sorted(selection.ranked, key=lambda r: r.number)
    ]
    if chosen is None or not base or chosen.status in ("killed", "crashed"):
        summary.status, summary.exit_code = RunStatus.ERROR, int(ExitCode.INFRA)
        summary.error = "no attempt finished" + (f" ({chosen.error})" if chosen and chosen.error else "")
        summary.verified, summary.verification = None, None
    if interrupted:
        summary.status, summary.exit_code = RunStatus.INTERRUPTED, int(ExitCode.INTERRUPTED)
        summary.error = "interrupted: the attempts were stopped"
    return summary


def _write_patch(
    parent: AttemptRun, selection: Selection, summary: RunSummary, test_command: str | None
) -> None:
    """The chosen attempt's patch is the run's patch.diff (and --patch FILE); --apply as for one run."""
    final = parent.run_dir / PATCH_NAME
    chosen = selection.chosen
    source = Path(chosen.folder) / PATCH_NAME if chosen is not None else None
    request = parent.request
    try:
        if source is not None and source.is_file() and source.stat().st_size:
            shutil.copyfile(source, final)
            summary.patch = str(final)
        else:
            write_text_file(final, "")
        if request.patch_path is not None:
            copy_file(final, request.patch_path)
            summary.patch = str(request.patch_path) if summary.patch else None
    except (OSError, OutputError) as err:
        summary.status, summary.exit_code = RunStatus.ERROR, int(ExitCode.INFRA)
        summary.error = f"cannot write the patch: {err}"
        return
    if request.apply and summary.patch and summary.exit_code == ExitCode.PATCHED:
        refusal = unproven_refusal(summary, test_command, request.apply_unproven)
        if refusal is not None:
            summary.apply_error = refusal
        else:
            # the chosen attempt's late changes (its summary.json), refused as for one run
            late = tuple(summary.late_changes)
            applied = apply_patch(
                parent.workspace, final, gate_rules(parent.workspace, request.apply_symlinks, late)
            )
            summary.applied, summary.apply_error = (
                applied.applied,
                None if applied.applied else applied.message,
            )
        parent.display.status(summary.apply_error or "patch applied")
