"""`agent fix` from start to finish, as named steps:

    prepare  ->  open the run record  ->  in the sandbox: start, run the agent, take the patch
             ->  write outputs  ->  verify and apply  ->  close the record

Input errors are found before any container starts. Once the run record exists, every
ending (done, limit, API failure, Ctrl-C) writes the patch of the changes so far, the
trajectory and summary.json, and removes the sandbox.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from patchwright import resume
from patchwright.applygate import apply_patch, gate_rules
from patchwright.capabilities import ModelKnowledge, check_model_use, choose_effort, know_model
from patchwright.ci import is_ci
from patchwright.config import Settings
from patchwright.context import ContextPolicy
from patchwright.display import Display
from patchwright.environment.detect import Recipe, detect, setup_script
from patchwright.environment.phase import Environment, Plan, prepare_environment
from patchwright.environment.repair import RepairBudget, model_repairer
from patchwright.environment.report import describe, environment_report, unmet_in
from patchwright.environment.reuse import SetupStates, default_cache_dir, state_key
from patchwright.errors import ExitCode, PatchwrightError, SuiteCannotRun, UsageError
from patchwright.loop import AgentLoop, Limits, LoopState, first_message
from patchwright.model import ModelClient, ModelInfo, check_credentials, make_client, model_info
from patchwright.outputs import (
    RunSummary,
    TrajectoryWriter,
    copy_file,
    files_in_patch_file,
    move_file,
    write_text_file,
)
from patchwright.params import max_tokens_for, request_params
from patchwright.patchsplit import split_patch
from patchwright.persona import AgentDefinition, find_agent, load_project_instructions
from patchwright.preload import SdkPreload
from patchwright.prompt import RunFacts, system_blocks
from patchwright.record import RunRecord, RunStart
from patchwright.repocopy import PendingScan
from patchwright.sandbox.background import BackgroundStart
from patchwright.sandbox.base import PatchFile, Sandbox, SetupFailed, StartResult
from patchwright.sandbox.baseline import PatchTooLarge
from patchwright.sandbox.factory import SandboxFactory, open_factory
from patchwright.sanitize import clean_line
from patchwright.selfcheck import SelfCheck, sandbox_check
from patchwright.services.plan import ServicePlan, plan_services, service_notes
from patchwright.services.variables import RepoVariables, repo_variables
from patchwright.status import RunStatus, exit_code_for
from patchwright.tools import build_toolset
from patchwright.verdict import Verdict, VerdictKind
from patchwright.verify import SuiteOutcome, Verification, verify_patch
from patchwright.workspace import Workspace, open_workspace

MAX_TASK_CHARS = 100_000  # about 25k tokens: a task, not a document
PATCH_NAME = "patch.diff"
PARTIAL_NAME = "patch.partial.diff"  # past the patch limits: the files that fit; never applied
TESTS_PART_NAME = "patch.tests.diff"  # the patch's test files: run alone on the original code
CODE_PART_NAME = "patch.code.diff"  # the rest of the patch
REPAIR_TRAJECTORY = "setup-repair.jsonl"  # the setup repair's own conversation (environment/repair.py)
INCOMING_NAME = ".patch.incoming"  # where the sandbox's diff lands before it is named
LEFT_OUT_SHOWN = 5  # paths left out of a partial patch named in the one-line error


@dataclass(frozen=True)
class FixRequest:
    task: str
    repo: Path
    settings: Settings
    patch_path: Path | None = None
    apply: bool = False
    apply_unproven: bool = False  # --apply also when the verdict is not `fixed`
    apply_symlinks: bool = False  # --apply also new or retargeted symlinks (applygate.py)
    attempt_of: tuple[str, int] | None = None  # one attempt of `agent fix --attempts N` (attempts.py)
    resume: str | None = None
    ignored_repo_settings: tuple[str, ...] = ()  # the repo's untrusted settings left out (config.py)
    sdk: SdkPreload | None = field(default=None, compare=False, repr=False)  # begun at launch (cli.py)
    # the repo's listing, begun too; its caller closes it (cli.py), whether a sandbox took it or not
    scan: PendingScan | None = field(default=None, compare=False, repr=False)


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM; a BaseException so no `except Exception` swallows it."""


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
    resumed: resume.Resumed | None
    services: ServicePlan = field(default_factory=lambda: ServicePlan([], detected=False))
    knowledge: ModelKnowledge | None = None  # what the model can do (capabilities.py)
    effort: str | None = None  # the effort level sent, checked against the model's levels
    notes: list[str] = field(default_factory=list)  # one-line warnings about the model settings
    variables: RepoVariables = field(default_factory=RepoVariables)  # the repo's compose and CI `env`
    setup: str | None = None  # the user's setup, else the detected one (detect_setup), else None
    # where the setup and test command came from (environment/report.py), for summary.json
    detected: dict[str, object] = field(default_factory=dict)

    def run_start(self) -> RunStart:
        return RunStart(
            self.workspace, self.task, self.model, self.agent.name, self.agent.path, self.variables.values
        )


def prepare(request: FixRequest) -> Prepared:
    """Check the input; every failure here is a UsageError (exit 2) and nothing has started."""
    settings = request.settings
    workspace = open_workspace(request.repo)
    resumed = resume.load(workspace, request.resume, request.task) if request.resume else None
    task = resumed.task if resumed else request.task
    if not task.strip():
        raise UsageError('the task is empty: say what to fix, e.g. agent fix "db connection errors"')
    for text in (task, (resumed.followup if resumed else None) or ""):
        if len(text) > MAX_TASK_CHARS:
            raise UsageError(
                f"the task is {len(text):,} characters, over the limit of {MAX_TASK_CHARS:,}; "
                "put long material in a file in the repo and point the task at it"
            )
    if request.patch_path is not None:
        _check_writable(request.patch_path)
    agent = find_agent(settings.agent, workspace.root, Path.home())
    services = plan_services(settings.services, workspace.root)  # a bad spec is exit 2 here
    recipe = detect(workspace.root, task, [spec.kind for spec in services.specs])
    test_command, setup = choose_environment(settings, recipe)
    if agent.tools is not None and not [t for t in agent.tools if t != "run_tests" or test_command]:
        offered = ", ".join(agent.tools) or "none"
        raise UsageError(
            f"agent {agent.name!r} ({agent.path}) leaves the model no tools: its `tools:` maps to {offered}"
            + (" and there is no test command" if "run_tests" in agent.tools else "")
        )
    model = settings.resolved_model(agent.model, dict(os.environ))  # aliases, ANTHROPIC_DEFAULT_*_MODEL
    # What the model can do, from the user's rows, the capability cache and the table (no network):
    # a cold cache is filled by a lookup begun in run_fix, and checked again before the run starts.
    knowledge = know_model(model, settings.provider, Path.home(), os.environ)
    effort, notes = check_model_settings(settings, agent, knowledge)
    instructions = load_project_instructions(workspace.root)
    variables = repo_variables(workspace.root)
    detected = setup is not None and settings.setup is None
    return Prepared(
        workspace, task, agent, model, instructions, test_command, resumed, services, knowledge, effort, notes,
        variables, setup, environment_report(recipe, setup, test_command, detected),
    )  # fmt: skip


def choose_environment(settings: Settings, recipe: Recipe) -> tuple[str | None, str | None]:
    """(test command, setup): the user's when given; else the recipe's (its setup only with
    `detect_setup` on)."""
    test_command = settings.test_cmd or recipe.test_command
    setup = settings.setup or (setup_script(recipe) if settings.detect_setup else None)
    return test_command, setup


def lookup_can_refuse(settings: Settings) -> bool:
    """Whether the Models API's answer can make the run an input error: an effort level the user
    asked for (the model may lack it) or compaction (it may not take it)."""
    return settings.effort is not None or settings.context_strategy == "compact"


def check_model_settings(
    settings: Settings, agent: AgentDefinition, knowledge: ModelKnowledge
) -> tuple[str | None, list[str]]:
    """--max-cost, the context strategy and the effort level against what the model can do."""
    policy = ContextPolicy(settings.context_strategy, settings.context_trigger)
    notes = check_model_use(knowledge, settings.max_cost, policy)
    effort, effort_notes = choose_effort(knowledge.model, knowledge.info, settings.effort, agent.effort)
    return effort, notes + effort_notes


def _check_writable(path: Path) -> None:
    """--patch FILE: found out now, not after the run, when FILE cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"--patch {path}: is a directory")
    if not folder.is_dir():
        raise UsageError(f"--patch {path}: no such directory {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--patch {path}: not writable")


def run_fix(request: FixRequest, display: Display) -> RunSummary:
    """The whole `agent fix`; raises PatchwrightError only before the run record exists."""
    started = time.monotonic()
    # The SDK takes a second or more to import; it loads while the input is checked and the
    # engine and image are looked up, which wait on other processes (the CLI began it at launch).
    sdk = request.sdk if request.sdk is not None else SdkPreload().begin()
    prepared = prepare(request)
    check_credentials(request.settings.provider)  # type: ignore[arg-type]
    if prepared.setup != request.settings.setup:  # the detected setup runs as a given one would
        request = dataclasses.replace(
            request, settings=dataclasses.replace(request.settings, setup=prepared.setup)
        )
    knowledge = prepared.knowledge
    if knowledge is not None and knowledge.lookup is not None:
        knowledge.lookup.begin(
            sdk.take_client
        )  # a cold capability cache: asked while the engine is looked up
    plan = prepared.services
    for note in plan.notes:
        display.status(f"warning: {note}")
    if (missing := plan.unsupported_warning()) is not None:
        display.status(f"warning: {missing}")
    if plan.specs:
        display.status(f"services{' (detected)' if plan.detected else ''}: {plan.describe()}")
    variables = prepared.variables
    if variables.values:
        names = ", ".join(f"{n} ({s})" for n, s in variables.sources.items())
        display.status(f"variables from the repository (values not shown): {names}")
    if variables.unavailable:
        display.status(
            f"warning: not set (only the repository's CI has them): {', '.join(variables.unavailable)}; "
            "pass them with --env KEY=VALUE if the tests need them"
        )
    factory = open_factory(
        request.settings, display.status, prepared.workspace.root, tuple(plan.specs), variables.values
    )
    for line in describe(prepared.detected):  # after the engine answered: a usage error stays one line
        display.status(line)

    def settle_model() -> None:
        """Take the lookup's answer (waiting for it) and check the model settings again."""
        if knowledge is not None and knowledge.lookup is not None:
            warnings = knowledge.finish()
            prepared.effort, prepared.notes = check_model_settings(
                request.settings, prepared.agent, knowledge
            )
            prepared.notes = warnings + prepared.notes
        for note in prepared.notes:
            display.status(f"warning: {note}")

    # The lookup waits for the SDK. When its answer can refuse the run, no container starts before
    # it; otherwise the sandbox starts first and the answer is taken before the first request.
    early = knowledge is None or knowledge.lookup is None or lookup_can_refuse(request.settings)
    if early:
        settle_model()
    record = RunRecord.open(
        prepared.run_start(), request.settings, request.resume, started, request.attempt_of
    )
    record.summary.ignored_repo_settings = list(request.ignored_repo_settings)
    record.summary.services_unsupported = [u.as_dict() for u in plan.unsupported]
    record.summary.environment_variables = variables.describe()
    record.summary.environment = dict(prepared.detected)
    patch: PatchFile | None = None
    try:
        with signals_interrupt() as shield:
            patch = _run_in_sandbox(
                request, prepared, factory, record, display, shield, sdk, None if early else settle_model
            )
            _write_outputs(request, record, patch, display)
        # The work is saved; verification and --apply may still be interrupted without losing it.
        with signals_interrupt():
            _verify_and_apply(request, prepared, factory, record, patch, display, started)
    except Interrupted as err:
        record.fail(RunStatus.INTERRUPTED, ExitCode.INTERRUPTED, f"interrupted by {err} during verification")
    finally:
        record.close()
    return record.summary


def _run_in_sandbox(
    request: FixRequest,
    prepared: Prepared,
    factory: SandboxFactory,
    record: RunRecord,
    display: Display,
    shield: Callable[[], None],
    sdk: SdkPreload,
    settle_model: Callable[[], None] | None = None,
) -> PatchFile | None:
    """Start the sandbox, run the agent, take the patch; the sandbox is gone when this returns.

    The sandbox starts on a thread of its own: the SDK's import and the model's first request
    need no sandbox, so they overlap the copy; the first tool call waits for it. With a setup
    command or services the first request waits too: they are ready before the model's first
    turn, and a setup or service that fails must not cost one.
    None: the sandbox never held the run's starting state (for --resume: the partial patch
    re-applied), so there is nothing new to save, and a saved patch must not be overwritten.
    """
    settings = request.settings

    def started(result: StartResult | None, error: BaseException | None) -> None:
        """The setup command's output goes in the trajectory, whether setup worked or not."""
        setup = result.setup if result is not None else getattr(error, "result", None)
        if setup is not None:
            record.setup(recipe or prepared.setup, setup)  # a kept state's recipe, when replayed
        services = sandbox.services
        if services is not None and prepared.services.specs:  # started or not: what was asked for
            record.summary.services = services.describe()
            record.write("services", detected=prepared.services.detected, services=record.summary.services)

    # With a test command, the run first learns whether its tests can run (environment/phase.py):
    # the setup window stays open for that, and for a repair when they cannot.
    env_phase = prepared.test_command is not None and prepared.resumed is None
    # Verification starts from the state setup left (with services, setup runs again over it:
    # their databases start empty each time, and what setup put there must be there again).
    saved = bool(prepared.setup or env_phase)
    checkpoint = str(record.checkpoint.folder) if saved else None
    # An earlier run on the same tree kept its state after setup: start from it (reuse.py).
    reuse = _reuse(settings, prepared, factory) if env_phase and saved else None
    reused = reuse is not None and _take_state(reuse, record, display, bool(prepared.services.specs))
    recipe = record.environment.setup_line if reused and record.environment is not None else None
    sandbox = BackgroundStart(
        factory.create(
            record.summary.run_id,
            prepared.workspace,
            display.status,
            checkpoint_to=None if reused else checkpoint,
            restore_from=str(record.checkpoint.folder) if reused else None,
            setup_command=recipe or prepared.setup,
            setup_repairable=env_phase and not reused,
            scan=request.scan,
        ),
        started,
    )
    sandbox.begin()
    state = LoopState(messages=[])
    restored = prepared.resumed is None  # a resumed run is ready once its partial patch is back
    patch: PatchFile | None = None
    try:
        if settle_model is not None:  # the model lookup's answer, while the sandbox starts
            settle_model()
        client = make_client(
            settings.provider,  # type: ignore[arg-type]
            max_retries=settings.max_retries,
            preloaded=sdk.take_client() if settings.provider == "anthropic" else None,
        )
        if prepared.setup or prepared.services.specs or prepared.resumed is not None or env_phase:
            # a failed setup or service must not cost a turn; resume and the environment need the sandbox
            start = sandbox.start()
            if env_phase and not reused:
                environment = _environment(prepared, settings, client, sandbox, start, record, display)
                if reuse is not None and environment.tests_runnable and not settings.network:
                    states, key = reuse
                    if states.keep(key, record.checkpoint, environment.as_dict()):
                        display.status("kept the state after setup for the next run on this tree")
        if prepared.resumed is not None:
            if resume.restore_patch(sandbox, record.run_dir):
                display.status("restored the interrupted run's changes")
            resume.rebuild(state, prepared.resumed, record.trajectory)
            restored = True
        if not state.messages:
            state.messages = [first_message(prepared.task)]
            record.write("message", role="user", content=state.messages[0]["content"])
        status = _run_agent(prepared, settings, client, sandbox, state, record, display)
        sandbox.start()  # a sandbox that never started fails the run, even if no tool was called
        record.summary.status = status
    except Interrupted as err:
        record.fail(RunStatus.INTERRUPTED, ExitCode.INTERRUPTED, f"interrupted by {err}")
    except (SuiteCannotRun, SetupFailed) as err:  # the environment's failure, not an infrastructure one
        trajectory = record.run_dir / "trajectory.jsonl"
        record.fail(
            RunStatus.ENVIRONMENT, ExitCode.ENVIRONMENT, f"{err} (the whole output is in {trajectory})"
        )
    except PatchwrightError as err:
        unmet = unmet_in(getattr(getattr(err, "result", None), "output", "") or "")
        if unmet:  # setup said which runtime it could not provide
            record.fail(RunStatus.ERROR, ExitCode.ENVIRONMENT, unmet[0].message())
        else:
            record.fail(RunStatus.ERROR, err.exit_code, str(err))
    except Exception as err:  # a bug of ours: still save the work, then report it
        record.write("internal_error", error=repr(err))
        record.fail(RunStatus.ERROR, ExitCode.INFRA, f"internal error: {type(err).__name__}: {err}")
    finally:
        shield()
        try:
            if restored and sandbox.started:
                patch = _collect_patch(sandbox, record)
        finally:
            sandbox.stop()
        record.finish(state, _model(prepared))
    return patch


def _reuse(settings: Settings, prepared: Prepared, factory: SandboxFactory) -> tuple[SetupStates, str] | None:
    """Where states after setup are kept, and this run's key; None where reuse is off (as snapshots
    are: off in CI unless asked for) or the tree cannot be read."""
    wanted = settings.snapshots if settings.snapshots is not None else not is_ci(os.environ)
    if not wanted or prepared.test_command is None:
        return None
    try:
        services = tuple(spec.requested for spec in prepared.services.specs)
        key = state_key(prepared.workspace, factory.image, prepared.setup, prepared.test_command, services)
    except PatchwrightError:
        return None
    return SetupStates(default_cache_dir()), key


def _take_state(reuse: tuple[SetupStates, str], record: RunRecord, display: Display, services: bool) -> bool:
    """Put the kept state in the run's checkpoint folder and record its environment. With
    `services`, setup runs again over it (the databases start empty; DockerFactory.create)."""
    states, key = reuse
    saved = states.find(key)
    if saved is None or not states.take(key, record.checkpoint):
        return False
    environment = Environment.reloaded(saved, key)
    record.environment = environment
    record.summary.environment = record.redactor.data(
        {**(record.summary.environment or {}), **environment.as_dict()}
    )
    record.write("environment", **record.summary.environment)
    display.status(
        "starting from the state after setup an earlier run kept for this tree "
        + (
            "(setup runs again for the empty databases; its installs are there)"
            if services
            else "(no setup, no installs)"
        )
    )
    return True


def _environment(
    prepared: Prepared,
    settings: Settings,
    client: object,
    sandbox: Sandbox,
    start: StartResult,
    record: RunRecord,
    display: Display,
) -> Environment:
    """Can the tests run? If not, a bounded repair by the model; then the network is cut.
    SuiteCannotRun when setup failed and stays failed: the task is not started then."""
    assert prepared.test_command is not None
    repairer = None
    if settings.repair_steps > 0:
        info = _model(prepared)
        params = request_params(
            info, prepared.effort, ContextPolicy(settings.context_strategy, settings.context_trigger)
        )
        model = ModelClient(client, prepared.model, max_tokens_for(info, settings.max_tokens), params)  # type: ignore[arg-type]
        trajectory = TrajectoryWriter(record.run_dir / REPAIR_TRAJECTORY, record.redactor)
        budget = RepairBudget(
            settings.repair_steps, settings.repair_max_cost, settings.setup_timeout, settings.timeout
        )
        repairer = model_repairer(
            model,
            info,
            budget,
            trajectory,
            lambda kind, data: display.event(kind, record.redactor.data(data)),
        )
    plan = Plan(
        prepared.setup,
        prepared.test_command,
        settings.command_timeout * 5,  # as verification gives the suite
    )
    try:
        environment = prepare_environment(
            sandbox, start, plan, repairer, lambda line: display.status(record.redactor.text(line))
        )
    finally:
        if repairer is not None:
            trajectory.close()
    record.environment = environment
    record.summary.environment = record.redactor.data(
        {**(record.summary.environment or {}), **environment.as_dict()}
    )
    record.write("environment", **record.summary.environment)
    if environment.setup_failed:
        raise SuiteCannotRun(environment.reason)
    if not environment.tests_runnable:
        display.status(f"warning: the tests cannot run: {environment.reason}; the model works without them")
    return environment


def _run_agent(
    prepared: Prepared,
    settings: Settings,
    client: object,
    sandbox: Sandbox,
    state: LoopState,
    record: RunRecord,
    display: Display,
) -> RunStatus:
    """The loop, with the request parameters (thinking, effort, context management), the
    agent's maxTurns and the self-check before the end."""
    info = _model(prepared)
    toolset = build_toolset(
        sandbox, prepared.model, settings.command_timeout, prepared.agent.tools, prepared.test_command
    )
    environment = record.environment
    # Tests that cannot run: the model is told, and no self-check sends it back over that.
    runnable = environment is None or environment.tests_runnable
    facts = RunFacts(
        sandbox.workdir,
        settings.network,
        tuple(toolset.tools),
        prepared.test_command,
        service_notes(prepared.services),
        None if runnable or environment is None else environment.reason,
    )
    params = request_params(
        info, prepared.effort, ContextPolicy(settings.context_strategy, settings.context_trigger)
    )
    max_tokens = max_tokens_for(info, settings.max_tokens)
    record.write(
        "model_capabilities",
        source=info.source,
        context=info.context,
        max_output=info.max_output,
        thinking=info.thinking,
        efforts=None if info.efforts is None else list(info.efforts),
        context_edits=None if info.context_edits is None else list(info.context_edits),
        priced=info.priced,
    )
    record.write("model_params", max_tokens=max_tokens, **params.body(), betas=list(params.betas))
    check = None
    if prepared.test_command and settings.max_continues > 0 and runnable:
        run_check = sandbox_check(sandbox, prepared.test_command, toolset.command_time)
        check = SelfCheck(run_check, prepared.test_command, settings.max_continues)
    agent_loop = AgentLoop(
        model=ModelClient(client, prepared.model, max_tokens, params),  # type: ignore[arg-type]
        info=info,
        tools=toolset,
        system=system_blocks(prepared.agent.prompt, facts, prepared.instructions),
        limits=Limits(
            min(settings.max_steps, prepared.agent.max_turns or settings.max_steps),
            settings.max_cost,
            settings.timeout,
        ),
        trajectory=record.trajectory,
        on_event=lambda kind, data: display.event(kind, record.redactor.data(data)),
        selfcheck=check,
    )
    return agent_loop.run(state)


def _model(prepared: Prepared) -> ModelInfo:
    """The model as the run drives it (prepare() always sets it; the table otherwise)."""
    if prepared.knowledge is not None:
        return prepared.knowledge.info
    return model_info(prepared.model)


def _collect_patch(sandbox: Sandbox, record: RunRecord) -> PatchFile:
    """The sandbox's patch, in a file in the run dir. A patch past the limits is a limit (exit 3),
    and one that cannot be taken an error: neither may pass for "no changes"."""
    incoming = record.run_dir / INCOMING_NAME
    try:
        patch = sandbox.diff(incoming)
    except PatchTooLarge as err:
        record.write("error", stage="diff", error=str(err))
        record.fail(RunStatus.ERROR, err.exit_code, str(err))
        return PatchFile(incoming, 0)
    except (PatchwrightError, Interrupted, OSError) as err:
        record.write("error", stage="diff", error=str(err))
        message = f"could not collect the patch: {err}"
        if record.summary.status in (RunStatus.ERROR, RunStatus.INTERRUPTED):
            record.summary.error = record.summary.error or message
        else:
            record.fail(RunStatus.ERROR, getattr(err, "exit_code", ExitCode.INFRA), message)
        return PatchFile(incoming, 0)
    if patch.late_changes:
        record.summary.late_changes = [clean_line(name, 200) for name in patch.late_changes]
        record.write("late_changes", stage="diff", paths=list(patch.late_changes))
    if patch.over_limit:
        message = limit_message(patch, record.run_dir / PARTIAL_NAME)
        record.write(
            "error",
            stage="diff",
            error=message,
            total_files=patch.total_files,
            total_bytes=patch.total_bytes,
            left_out=patch.left_out_count,
        )
        record.fail(RunStatus.ERROR, ExitCode.LIMIT, message)
    return patch


def limit_message(patch: PatchFile, partial: Path) -> str:
    """One line: how big, which limit, where the partial patch is, and what it left out (escaped)."""
    kept = patch.total_files - patch.left_out_count
    where = (
        f"a partial patch of the {kept} files that fit is in {partial}"
        if not patch.empty
        else "no file fits, so no partial patch was written"
    )
    names = ", ".join(clean_line(name, 120) for name in patch.left_out[:LEFT_OUT_SHOWN])
    more = ", ..." if patch.left_out_count > min(len(patch.left_out), LEFT_OUT_SHOWN) else ""
    left = f"{patch.left_out_count} left out" + (f": {names}{more}" if names else "")
    return f"{patch.reason}; {where} (not applied); {left}"


def _write_outputs(request: FixRequest, record: RunRecord, patch: PatchFile | None, display: Display) -> None:
    """patch.diff (and --patch FILE), or past the limits patch.partial.diff with patch.diff empty;
    a resumed run that never got going keeps its earlier patch."""
    summary = record.summary
    patched = _complete(patch)
    environment = record.environment
    if summary.status == RunStatus.COMPLETED and environment is not None and not environment.tests_runnable:
        summary.status = RunStatus.ENVIRONMENT  # finished, but nothing it did could be tested
        summary.error = summary.error or f"the tests could not run: {environment.reason}"
    if summary.status not in (RunStatus.ERROR, RunStatus.INTERRUPTED):
        summary.exit_code = int(exit_code_for(RunStatus(summary.status), patched))
    if patch is None and request.resume:
        summary.patch = str(record.run_dir / PATCH_NAME)  # the interrupted run's patch, kept as it was
        record.save()
        return
    final, partial = record.run_dir / PATCH_NAME, record.run_dir / PARTIAL_NAME
    try:
        partial.unlink(missing_ok=True)  # a resumed run's earlier one
        if patch is not None and patch.over_limit and not patch.empty:
            move_file(patch.path, partial)
            summary.partial_patch = str(partial)
            summary.files_changed = files_in_patch_file(partial)
            summary.files_left_out = patch.left_out_count
            summary.files_left_out_first = [clean_line(name, 200) for name in patch.left_out]
        elif patch is not None and patch.over_limit:
            summary.files_left_out = patch.left_out_count
            summary.files_left_out_first = [clean_line(name, 200) for name in patch.left_out]
        if patched:
            assert patch is not None
            move_file(patch.path, final)
            summary.patch = str(final)
            summary.files_changed = files_in_patch_file(final)
        else:
            write_text_file(final, "")  # no complete patch: never a stale one in its place
            if patch is not None:
                patch.path.unlink(missing_ok=True)
        if request.patch_path is not None:
            copy_file(final, request.patch_path)
            summary.patch = str(request.patch_path) if patched else None
    except PatchwrightError as err:
        record.fail(RunStatus.ERROR, err.exit_code, str(err))
        display.status(str(err))
    except OSError as err:
        record.fail(RunStatus.ERROR, ExitCode.INFRA, f"cannot write the patch: {err.strerror or err}")
        display.status(str(err))
    record.save()


def _complete(patch: PatchFile | None) -> bool:
    """A whole, non-empty patch: the only kind verified or applied."""
    return patch is not None and not patch.empty and not patch.over_limit


def _verify_and_apply(
    request: FixRequest,
    prepared: Prepared,
    factory: SandboxFactory,
    record: RunRecord,
    patch: PatchFile | None,
    display: Display,
    started: float,
) -> None:
    summary = record.summary
    final = record.run_dir / PATCH_NAME
    if _complete(patch) and summary.status == RunStatus.COMPLETED and prepared.test_command:
        _verify(request.settings, prepared, factory, record, final, display, time.monotonic() - started)
    elif _complete(patch) and summary.status == RunStatus.ENVIRONMENT and record.environment is not None:
        # The environment phase already ran the tests on the original code: they could not start.
        why = f"the tests could not run on the original code: {record.environment.reason}"
        summary.verified = False
        summary.verification = Verdict(VerdictKind.TESTS_NOT_RUNNABLE, why).as_dict()
        record.write("verification", verdict=summary.verification)
    if request.apply and patch is not None and patch.over_limit:
        summary.applied = False
        summary.apply_error = "patch not applied: the changes are past the patch limits (a partial patch)"
        display.status(summary.apply_error)
    elif request.apply and _complete(patch) and summary.exit_code == ExitCode.PATCHED:
        if (refusal := unproven_refusal(summary, prepared.test_command, request.apply_unproven)) is not None:
            summary.applied = False
            summary.apply_error = refusal
            display.status(refusal)
            return
        assert patch is not None  # _complete(patch)
        rules = gate_rules(prepared.workspace, request.apply_symlinks, patch.late_changes)
        result = apply_patch(prepared.workspace, final, rules)
        summary.applied = result.applied
        summary.apply_error = None if result.applied else result.message
        display.status(result.message)


def unproven_refusal(summary: RunSummary, test_command: str | None, anyway: bool) -> str | None:
    """Why --apply leaves a patch alone: with a test command, only a `fixed` verdict is applied
    unless the user said --apply-unproven. Without one there is nothing to prove and it applies."""
    if test_command is None or anyway:
        return None
    verdict = (summary.verification or {}).get("verdict")
    if verdict == "fixed":
        return None
    said = f"the verdict is {verdict}" if verdict else "the patch could not be verified"
    return f"patch not applied: {said}, and --apply applies only a fixed patch (--apply-unproven applies it anyway)"


def _verify(
    settings: Settings,
    prepared: Prepared,
    factory: SandboxFactory,
    record: RunRecord,
    patch: Path,
    display: Display,
    elapsed: float,
) -> None:
    """Apply the patch in a fresh sandbox and run the tests before and after.

    After a setup, the fresh sandbox starts from the state the setup left (saved then):
    setup does not run again and the network stays off."""
    assert prepared.test_command is not None
    display.status(f"verifying the patch in a fresh sandbox: {prepared.test_command}")
    saved = record.checkpoint
    restore = str(saved.folder) if saved.complete else None
    # Without the saved state, the run's recipe (a repair's commands included) runs again.
    replay = record.environment.setup_line if record.environment is not None else None
    fresh = factory.create(
        f"{record.summary.run_id}-verify",
        prepared.workspace,
        display.status,
        restore_from=restore,
        setup_command=replay,
    )
    timeout = settings.command_timeout * 5
    if settings.timeout is not None:  # the run's wall clock bounds verification too (at least 60 s)
        timeout = min(timeout, max(60.0, settings.timeout - elapsed))
    try:
        parts = split_patch(patch, record.run_dir / TESTS_PART_NAME, record.run_dir / CODE_PART_NAME)
    except OSError as err:
        record.write("error", stage="verify", error=f"cannot split the patch: {err}")
        record.summary.tests = {"error": f"cannot split the patch: {err.strerror or err}"}
        record.summary.verified = False
        return

    def after_sandbox() -> Sandbox:
        """The whole patch is tested in a sandbox of its own, from the same starting state."""
        return factory.create(
            f"{record.summary.run_id}-verify2",
            prepared.workspace,
            display.status,
            restore_from=restore,
            setup_command=replay,
        )

    try:
        verification = verify_patch(fresh, patch, prepared.test_command, timeout, parts, after_sandbox)
    except PatchwrightError as err:
        record.write("error", stage="verify", error=str(err))
        record.summary.tests = {"error": str(err)}
        record.summary.verified = False
        return
    verdict = verification.verdict
    record.summary.verified = verification.verified
    record.summary.verification = verdict.as_dict()
    record.summary.tests = {
        **verification.as_dict(),
        "from_setup_state": restore is not None,
        "setup_replayed": None if restore is not None else (replay or prepared.setup),
    }
    record.write("verification", **record.summary.tests, verdict=record.summary.verification)
    display.status(verification_line(verification))


def verification_line(verification: Verification) -> str:
    """One line on what verification found, tests before -> after."""

    def outcome(suite: SuiteOutcome | None) -> str:
        if suite is None:
            return "not run"
        return (
            "timed out"
            if suite.timed_out
            else "passed"
            if suite.passed
            else f"failed (exit {suite.exit_code})"
        )

    after = outcome(verification.after) if verification.applied else "the patch did not apply"
    own = f" -> the patch's tests alone {outcome(verification.tests_only)}" if verification.tests_only else ""
    verdict = verification.verdict
    return (
        f"verification: tests {outcome(verification.before)} before{own} -> {after} after: "
        f"{verdict.kind}, patch {'verified' if verification.verified else 'NOT verified'} ({verdict.reason})"
    )
