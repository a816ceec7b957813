"""`agent fix` from start to finish: check input, start the sandbox, run the loop, write outputs.

Input errors are found before any container starts. Once a run directory
exists, every ending (done, limit, API failure, Ctrl-C) writes the patch of the
changes so far, the trajectory and summary.json, and removes the container.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from patchwright import loop as loop_mod
from patchwright.config import Settings
from patchwright.display import Display
from patchwright.errors import ExitCode, OutputError, PatchwrightError, UsageError
from patchwright.loop import AgentLoop, Limits, LoopState
from patchwright.model import ModelClient, Usage, make_client, model_info
from patchwright.outputs import (
    Redactor,
    RunSummary,
    TrajectoryWriter,
    files_in_patch,
    read_trajectory,
    write_summary,
    write_text_file,
)
from patchwright.persona import AgentDefinition, find_agent, load_project_instructions
from patchwright.sandbox.base import WORKSPACE, SandboxSpec
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.image import docker_client, ensure_image
from patchwright.services import ServiceSet
from patchwright.services.image import ensure_services_image
from patchwright.services.plan import ServicePlan, plan_services, service_notes
from patchwright.tools import build_toolset
from patchwright.verify import verify_patch
from patchwright.workspace import Workspace, apply_patch, detect_test_command, hide_run_dir, open_workspace

PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")
LIMIT_STATUSES = {loop_mod.MAX_STEPS, loop_mod.MAX_COST, loop_mod.TIMEOUT}
RUN_NOTES = """

# How this run works
- You are running unattended: nobody will answer questions. Decide and proceed.
- The repository is at {workspace}. Commands run in a sandbox {network}.
- Tools: `bash` (a persistent shell), `str_replace_based_edit_tool` (view and edit files){extra}.
- patchwright takes the diff of the working tree when you finish; do not commit.
"""


@dataclass(frozen=True)
class FixRequest:
    task: str
    repo: Path
    settings: Settings
    patch_path: Path | None = None
    apply: bool = False
    resume: str | None = None


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM; a BaseException so no `except Exception` swallows it."""


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


@contextmanager
def signals_interrupt() -> Iterator[Callable[[], None]]:
    """SIGINT/SIGTERM raise Interrupted once; after `shield()`, further signals are ignored.

    Once a signal has arrived, further ones are ignored and then held back until
    the process exits, so a second Ctrl-C can never cut the cleanup or the exit short.
    """
    shielded = False
    interrupted = False

    def handler(signum: int, _: FrameType | None) -> None:
        nonlocal interrupted
        if shielded or interrupted:
            print("patchwright: cleaning up, please wait", file=sys.stderr, flush=True)
            return
        interrupted = True
        raise Interrupted(signal.Signals(signum).name)

    def shield() -> None:
        nonlocal shielded
        shielded = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield shield
    finally:
        if interrupted:
            # Keep later signals pending until exit: interpreter shutdown resets Python's
            # handlers, and a second Ctrl-C then would kill the process mid-exit.
            signal.pthread_sigmask(signal.SIG_BLOCK, set(previous))
        else:
            for sig, old in previous.items():
                signal.signal(sig, old)


@dataclass
class Prepared:
    """Everything checked and loaded before any container starts."""

    workspace: Workspace
    task: str
    agent: AgentDefinition
    model: str
    instructions: str | None
    test_command: str | None
    resume_records: list[dict[str, Any]] | None
    followup: str | None = None  # --resume with a task: the next instruction in the conversation
    services: ServicePlan | None = None  # services (issue 11): what runs beside the sandbox


MAX_TASK_CHARS = 100_000  # about 25k tokens: a task, not a document


def prepare(request: FixRequest) -> Prepared:
    """Check the input; every failure here is a UsageError (exit 2) and nothing has started."""
    settings = request.settings
    workspace = open_workspace(request.repo)
    records = None
    task = request.task
    followup: str | None = None
    if request.resume:
        trajectory = workspace.run_dir(request.resume) / "trajectory.jsonl"
        if not trajectory.is_file():
            raise UsageError(
                f"--resume {request.resume}: no run with that id in {workspace.root / '.patchwright/runs'}"
            )
        records = read_trajectory(trajectory)
        start = next((r for r in records if r.get("event") == "run_start"), None)
        if start is None:
            raise UsageError(f"--resume {request.resume}: the trajectory has no run_start record")
        recorded_task = str(start.get("task", ""))
        if task.strip() and task.strip() != recorded_task.strip():
            followup = task  # as `claude --resume ID "..."`: the conversation goes on with it
        task = recorded_task
    if not task.strip():
        raise UsageError('the task is empty: say what to fix, e.g. agent fix "db connection errors"')
    for text in (task, followup or ""):
        if len(text) > MAX_TASK_CHARS:
            raise UsageError(
                f"the task is {len(text):,} characters, over the limit of {MAX_TASK_CHARS:,}; "
                "put long material in a file in the repo and point the task at it"
            )
    if request.patch_path is not None:
        _check_writable(request.patch_path)
    agent = find_agent(settings.agent, workspace.root, Path.home())
    test_command = settings.test_cmd or detect_test_command(workspace.root)
    if agent.tools is not None and not [t for t in agent.tools if t != "run_tests" or test_command]:
        offered = ", ".join(agent.tools) or "none"
        raise UsageError(
            f"agent {agent.name!r} ({agent.path}) leaves the model no tools: its `tools:` maps to {offered}"
            + (" and there is no test command" if "run_tests" in agent.tools else "")
        )
    model = settings.resolved_model(agent.model)
    info = model_info(model)
    if settings.max_cost is not None and not info.priced:
        raise UsageError(
            f"--max-cost needs a known price, and model {model} has none in patchwright's price table"
        )
    return Prepared(
        workspace,
        task,
        agent,
        model,
        load_project_instructions(workspace.root),
        test_command,
        records,
        followup,
        services=plan_services(settings.services, workspace.root),  # services (issue 11): exit 2 here
    )


def _check_writable(path: Path) -> None:
    """--patch FILE: found out now, not after the run, when FILE cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"--patch {path}: is a directory")
    if not folder.is_dir():
        raise UsageError(f"--patch {path}: no such directory {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--patch {path}: not writable")


def system_prompt(prepared: Prepared, settings: Settings, tool_names: list[str]) -> list[dict[str, Any]]:
    extra = ""
    if "search_code" in tool_names:
        extra += ", `search_code` (ripgrep)"
    if "run_tests" in tool_names and prepared.test_command:
        extra += f", `run_tests` (runs `{prepared.test_command}`)"
    if "service" in tool_names:  # services (issue 11)
        extra += ", `service` (status, logs, stop/start/restart of the run's databases)"
    network = "with network access" if settings.network else "with no network: nothing can be downloaded"
    persona = prepared.agent.prompt.rstrip() + RUN_NOTES.format(
        workspace=WORKSPACE, network=network, extra=extra
    )
    persona += service_notes(prepared.services)  # services (issue 11)
    return loop_mod.system_blocks(persona, prepared.instructions)


def exit_code_for(status: str, patch: str) -> ExitCode:
    if status in LIMIT_STATUSES:
        return ExitCode.LIMIT
    return ExitCode.PATCHED if patch.strip() else ExitCode.NO_CHANGES


def run_fix(request: FixRequest, display: Display) -> RunSummary:
    """The whole `agent fix`; raises PatchwrightError only before the run directory exists."""
    started = time.monotonic()
    settings = request.settings
    prepared = prepare(request)
    client = make_client(settings.provider, max_retries=settings.max_retries)  # type: ignore[arg-type]
    docker = docker_client()
    image = ensure_image(docker, settings.image, display.status)
    plan = prepared.services or ServicePlan([], detected=False)  # services (issue 11)
    services_image = ensure_services_image(docker, display.status) if plan.specs else ""

    ws = prepared.workspace
    redactor = Redactor.from_environment()
    run_id = request.resume or new_run_id()
    run_dir = ws.run_dir(run_id)
    hide_run_dir(ws)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create the run directory {run_dir}: {err.strerror}") from None
    trajectory = TrajectoryWriter(run_dir / "trajectory.jsonl", redactor)
    info = model_info(prepared.model)
    summary = RunSummary(
        run_id=run_id,
        status="error",
        exit_code=int(ExitCode.INFRA),
        repo=str(ws.root),
        run_dir=str(run_dir),
        model=prepared.model,
        agent=prepared.agent.name,
        task=redactor.text(prepared.task),
    )
    spec = SandboxSpec(
        image=image,
        run_id=run_id,
        network=settings.network,
        setup_command=settings.setup,
        memory=settings.memory,
        cpus=settings.cpus,
        pids_limit=settings.pids_limit,
        snapshots=settings.snapshots,
        command_timeout=settings.command_timeout,
        setup_timeout=settings.setup_timeout,
        host_ca_bundle=host_ca_bundle(),
        proxy_env={k: v for k, v in os.environ.items() if k.lower() in PROXY_VARIABLES},
    )
    # -- services (issue 11): the run's databases, started by the sandbox in its network namespace
    for note in plan.notes:
        display.status(f"warning: {note}")
    if plan.specs:
        display.status(f"services{' (detected)' if plan.detected else ''}: {plan.describe()}")
    services = ServiceSet(
        docker,
        plan.specs,
        services_image,
        progress=display.status,
    )
    summary.services = services.describe()
    # -- end services
    sandbox = DockerSandbox(docker, spec, ws, progress=display.status, services=services)
    state = LoopState(messages=[])
    patch = ""
    # False until the sandbox holds the run's starting state (for --resume: the partial patch
    # re-applied); until then there is nothing new to save, and a saved patch must not be overwritten.
    workspace_ready = False

    def on_event(kind: str, data: dict[str, Any]) -> None:
        display.event(kind, redactor.data(data))

    with signals_interrupt() as shield:
        try:
            trajectory.write(
                "run_start",
                run_id=run_id,
                task=prepared.task,
                model=prepared.model,
                agent=prepared.agent.name,
                agent_path=str(prepared.agent.path),
                repo=str(ws.root),
                settings=dataclasses.asdict(settings),
                resumed=bool(request.resume),
            )
            try:
                sandbox.start()
            finally:
                _record_setup(sandbox, trajectory)
            if plan.specs:  # services (issue 11)
                summary.services = services.describe()
                trajectory.write(
                    "services", detected=plan.detected, services=summary.services, notes=plan.notes
                )
            if prepared.resume_records is not None:
                _restore_partial_patch(sandbox, run_dir, display)
                state.messages = loop_mod.messages_from_trajectory(prepared.resume_records)
                for record in prepared.resume_records:  # steps, tokens and cost count the whole run
                    if record.get("event") == "response":
                        state.steps += 1
                        if isinstance(record.get("usage"), dict):
                            state.usage.add(Usage.from_dict(record["usage"]))
                recorded = [r for r in prepared.resume_records if r.get("event") == "message"]
                rebuilt = bool(recorded) and recorded[-1]["role"] == "assistant"  # a user turn was added
                if prepared.followup:
                    said = [{"type": "text", "text": prepared.followup}]
                    if rebuilt and state.messages[-1]["content"] == loop_mod.CONTINUE:
                        state.messages[-1]["content"] = said  # the new instruction, not "Continue."
                    else:
                        loop_mod.merge_with_last(state.messages, "user", said)
                        if not rebuilt:
                            trajectory.write("message", role="user", content=said)
                if rebuilt:  # record the turn rebuilt for resume
                    trajectory.write("message", role="user", content=state.messages[-1]["content"])
            workspace_ready = True
            if not state.messages:
                state.messages = [loop_mod.first_message(prepared.task)]
                trajectory.write("message", role="user", content=state.messages[0]["content"])
            toolset = build_toolset(
                sandbox,
                prepared.model,
                settings.command_timeout,
                prepared.agent.tools,
                prepared.test_command,
                services=services,  # services (issue 11)
            )
            agent_loop = AgentLoop(
                model=ModelClient(client, prepared.model, settings.max_tokens),
                info=info,
                tools=toolset,
                system=system_prompt(prepared, settings, list(toolset.tools)),
                limits=Limits(settings.max_steps, settings.max_cost, settings.timeout),
                trajectory=trajectory,
                on_event=on_event,
            )
            summary.status = agent_loop.run(state)
        except Interrupted as err:
            summary.status, summary.exit_code = "interrupted", int(ExitCode.INTERRUPTED)
            summary.error = f"interrupted by {err}"
        except PatchwrightError as err:
            summary.status, summary.exit_code, summary.error = "error", int(err.exit_code), str(err)
        except Exception as err:  # a bug of ours: still save the work, then report it
            summary.status, summary.exit_code = "error", int(ExitCode.INFRA)
            summary.error = f"internal error: {type(err).__name__}: {err}"
            trajectory.write("internal_error", error=repr(err))
        finally:
            shield()
            try:
                if workspace_ready:
                    patch = _collect_patch(sandbox, trajectory, summary)
            finally:
                sandbox.stop()
            if summary.status not in ("error", "interrupted"):
                summary.exit_code = int(exit_code_for(summary.status, patch))
            summary.steps = state.steps
            summary.tokens = state.usage.as_dict()
            summary.cost_usd = state.usage.cost(info)
            summary.final_message = redactor.text(state.final_text) or None
            if workspace_ready or not request.resume:
                _write_outputs(request, ws, run_dir, patch, summary, redactor, trajectory, display)
            else:
                summary.patch = str(run_dir / "patch.diff")  # the interrupted run's patch, kept as it was
            summary.duration_s = round(time.monotonic() - started, 2)
            write_summary(run_dir / "summary.json", summary, redactor)
    # The work is saved; verification and --apply may still be interrupted without losing it.
    try:
        with signals_interrupt():
            if patch.strip() and summary.status == loop_mod.COMPLETED and prepared.test_command:
                _verify(
                    docker,
                    spec,
                    ws,
                    patch,
                    prepared.test_command,
                    settings,
                    summary,
                    trajectory,
                    display,
                    time.monotonic() - started,
                    services.fresh(),  # services (issue 11): verification's own, fresh ones
                )
            if request.apply and patch.strip() and summary.exit_code == ExitCode.PATCHED:
                result = apply_patch(ws, run_dir / "patch.diff")
                summary.applied = result.applied
                summary.apply_error = None if result.applied else result.message
                display.status(result.message)
    except Interrupted as err:
        summary.status, summary.exit_code = "interrupted", int(ExitCode.INTERRUPTED)
        summary.error = f"interrupted by {err} during verification"
    finally:
        summary.duration_s = round(time.monotonic() - started, 2)
        trajectory.write("run_end", status=summary.status, exit_code=summary.exit_code, error=summary.error)
        trajectory.close()
        write_summary(run_dir / "summary.json", summary, redactor)
    return summary


def host_ca_bundle() -> str | None:
    """The CA bundle the host trusts (a TLS-intercepting proxy's CA included), for the setup phase."""
    for candidate in (
        os.environ.get("SSL_CERT_FILE"),
        os.environ.get("REQUESTS_CA_BUNDLE"),
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _restore_partial_patch(sandbox: DockerSandbox, run_dir: Path, display: Display) -> None:
    patch_file = run_dir / "patch.diff"
    if not patch_file.is_file() or not patch_file.read_bytes().strip():
        return
    sandbox.write_file("/tmp/.patchwright/resume.diff", patch_file.read_bytes())
    result = sandbox.run(f"cd {WORKSPACE} && git apply --binary /tmp/.patchwright/resume.diff")
    if result.exit_code != 0:
        raise UsageError(
            f"--resume: the run's partial patch no longer applies: {result.output.strip()[:200]}"
        )
    display.status("restored the interrupted run's changes")


def _record_setup(sandbox: DockerSandbox, trajectory: TrajectoryWriter) -> None:
    """The setup command's output goes in the trajectory, whether setup worked or not."""
    result = sandbox.setup_result
    if result is not None:
        trajectory.write(
            "setup",
            command=sandbox.spec.setup_command,
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            seconds=round(result.duration, 3),
            output=result.output,
        )


def _collect_patch(sandbox: DockerSandbox, trajectory: TrajectoryWriter, summary: RunSummary) -> str:
    if sandbox.container is None:
        return ""
    try:
        return sandbox.diff()
    except (PatchwrightError, Interrupted, OSError) as err:
        trajectory.write("error", stage="diff", error=str(err))
        summary.error = summary.error or f"could not collect the patch: {err}"
        return ""


def _write_outputs(
    request: FixRequest,
    ws: Workspace,
    run_dir: Path,
    patch: str,
    summary: RunSummary,
    redactor: Redactor,
    trajectory: TrajectoryWriter,
    display: Display,
) -> None:
    try:
        write_text_file(run_dir / "patch.diff", patch)
        summary.patch = str(run_dir / "patch.diff") if patch.strip() else None
        if request.patch_path is not None:
            write_text_file(request.patch_path, patch)
            summary.patch = str(request.patch_path) if patch.strip() else None
        summary.files_changed = files_in_patch(patch)
    except PatchwrightError as err:
        summary.status, summary.exit_code, summary.error = "error", int(err.exit_code), str(err)
        display.status(str(err))


def _verify(
    docker: Any,
    spec: SandboxSpec,
    ws: Workspace,
    patch: str,
    test_command: str,
    settings: Settings,
    summary: RunSummary,
    trajectory: TrajectoryWriter,
    display: Display,
    elapsed: float,
    services: ServiceSet | None = None,
) -> None:
    display.status(f"verifying the patch in a fresh sandbox: {test_command}")
    fresh = DockerSandbox(
        docker,
        dataclasses.replace(spec, run_id=f"{spec.run_id}-verify"),
        ws,
        progress=display.status,
        services=services,  # services (issue 11)
    )
    try:
        timeout = settings.command_timeout * 5
        if settings.timeout is not None:  # the run's wall clock bounds verification too (at least 60 s)
            timeout = min(timeout, max(60.0, settings.timeout - elapsed))
        verification = verify_patch(fresh, patch, test_command, timeout)
    except PatchwrightError as err:
        trajectory.write("error", stage="verify", error=str(err))
        summary.tests = {"error": str(err)}
        summary.verified = False
        return
    summary.verified = verification.verified
    summary.tests = verification.as_dict()
    trajectory.write("verification", **verification.as_dict())
