"""The `agent` command: fix, sandbox build/prune, agents list.

Every error a user can cause is one line on stderr with a documented exit code;
`--debug` adds the traceback. Nothing ever prompts.
"""

from __future__ import annotations

import sys

from patchwright.preload import begin_for

# First, before typer (and what it pulls in) is imported: the SDK's import is the longest
# thing a start waits for, and only what runs beside it is free (preload.py).
_sdk = begin_for(sys.argv)

import atexit
import contextlib
import os
import threading
import traceback
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from patchwright import __version__
from patchwright.ci import is_ci
from patchwright.errors import ExitCode, PatchwrightError, UsageError
from patchwright.options import with_settings
from patchwright.sanitize import clean_line, clean_lines

EXIT_CODES_HELP = """Exit codes: 0 finished with a non-empty patch; 1 finished without changes;
2 bad usage or input (not a git repo, missing directory, empty task, no API key, bad agent file);
3 a limit was hit (steps, cost or time; partial patch written; or the patch past 256 MiB or
20,000 files: patch.partial.diff holds the files that fit, never applied); 4 infrastructure failure
(Docker unreachable, image build failed, API still failing after retries, key rejected);
5 a runtime the project requires could not be provided (named, with what to pass);
130 interrupted (Ctrl-C or SIGTERM; partial patch written, container removed)."""

app = typer.Typer(
    name="agent",
    help="patchwright: an unattended coding agent that fixes a git repository inside a Docker sandbox.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
sandbox_app = typer.Typer(help="Build or clean up the sandbox image and containers.", no_args_is_help=True)
agents_app = typer.Typer(help="Agent (persona) files.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(agents_app, name="agents")


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    stream_json = "stream-json"


class BuildMethod(StrEnum):
    auto = "auto"
    dockerfile = "dockerfile"
    debootstrap = "debootstrap"


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> typer.Exit:
    print(f"agent: error: {clean_line(message)}", file=sys.stderr, flush=True)
    return typer.Exit(int(code))


def read_task(task: str | None, task_file: str | None) -> str:
    if task and task_file:
        raise UsageError("give the task as an argument or with --task-file, not both")
    if task_file == "-":  # bytes that are not UTF-8 become U+FFFD rather than a crash
        return sys.stdin.buffer.read().decode("utf-8", "replace") if not sys.stdin.isatty() else ""
    if task_file:
        try:
            return Path(task_file).read_bytes().decode("utf-8", "replace")
        except OSError as err:
            raise UsageError(f"--task-file {task_file}: {err.strerror}") from None
    return task or ""


def version_callback(value: bool) -> None:
    if value:
        print(f"patchwright {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """patchwright: an unattended coding agent."""


@app.command(epilog=EXIT_CODES_HELP)
@with_settings
def fix(
    task: Annotated[str | None, typer.Argument(help="What to fix, in words.", show_default=False)] = None,
    repo: Annotated[
        Path | None, typer.Option(help="The git repo (default: the one around the current directory).")
    ] = None,
    task_file: Annotated[str | None, typer.Option(help="Read the task from FILE ('-' for stdin).")] = None,
    patch: Annotated[Path | None, typer.Option(help="Also write the unified diff to FILE.")] = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Apply the patch to the repo if it applies cleanly (with tests: only a fixed one).",
        ),
    ] = False,
    apply_unproven: Annotated[
        bool,
        typer.Option("--apply-unproven", help="With --apply: apply a patch whose verdict is not fixed too."),
    ] = False,
    apply_symlinks: Annotated[
        bool,
        typer.Option(
            "--apply-symlinks",
            help="With --apply: also apply new or retargeted symlinks (relative, no `..`, no protected names).",
        ),
    ] = False,
    resume: Annotated[str | None, typer.Option(help="Continue the interrupted run RUN_ID.")] = None,
    attempt_of: Annotated[
        str | None, typer.Option("--attempt-of", hidden=True, help="RUN_ID:K, one attempt of that run.")
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text, json or stream-json.")
    ] = OutputFormat.text,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    settings_flags: dict[str, Any] | None = None,
) -> None:
    """Fix TASK in a git repository, unattended, and write a patch."""
    from patchwright.config import ignored_warning, load_settings_checked, unknown_env
    from patchwright.repocopy import begin_scan, writes_ahead
    from patchwright.workspace import open_workspace

    display = None
    scan = None
    try:
        text = read_task(task, task_file)
        if not text.strip() and not resume:
            raise UsageError('the task is empty: say what to fix, e.g. agent fix "db connection errors"')
        ws = open_workspace(repo if repo is not None else Path.cwd())
        loaded = load_settings_checked(ws.root, Path.home(), dict(os.environ), settings_flags or {})
        settings = loaded.settings
        attempt = _attempt_of(attempt_of)
        if attempt is not None:  # one attempt of several: the parent resolved the settings for all
            from patchwright.attempts import load_attempt_settings
            from patchwright.workspace import real_run_dir

            settings = load_attempt_settings(real_run_dir(ws, attempt[0], create=False), attempt[1])
        # git lists the files to copy while the rest of the run is imported (one core is the SDK's,
        # the other idle till the sandbox starts); not for a run whose attempts copy for themselves,
        # nor one whose repo is in the image. Closed below, whether the sandbox took it or not.
        copies = (settings.attempts <= 1 or attempt is not None) and not settings.image_workspace
        scan = begin_scan(ws) if copies else None
        if scan is not None and writes_ahead(settings.snapshots, dict(os.environ)):
            from patchwright.repocopy import spool_folder
            from patchwright.sandbox.env import GID, UID

            if (place := spool_folder()) is not None:  # and the host's tar then, into memory
                scan.spool_into(place[0], UID, GID, place[1])
        from patchwright.display import make_display
        from patchwright.fixer import FixRequest, run_fix

        if (ignored := ignored_warning(loaded)) is not None:
            print(f"patchwright: warning: {clean_line(ignored)}", file=sys.stderr)
        for warning in unknown_env(dict(os.environ)):
            print(f"patchwright: warning: {warning}", file=sys.stderr)
        display = make_display(output_format.value, quiet, sys.stderr.isatty(), is_ci(os.environ))
        fix_request = FixRequest(
            task=text,
            repo=ws.root,
            settings=settings,
            patch_path=patch,
            apply=apply,
            apply_unproven=apply_unproven,
            apply_symlinks=apply_symlinks,
            resume=resume,
            ignored_repo_settings=tuple(loaded.ignored),
            attempt_of=attempt,
            sdk=_sdk,
            scan=scan,
        )
        if settings.attempts > 1 and attempt is None:
            from patchwright.attempts import run_attempts

            summary = run_attempts(fix_request, display)
        else:
            summary = run_fix(fix_request, display)
        display.finish(summary)
        if summary.error and output_format == OutputFormat.text:
            print(f"agent: error: {clean_line(summary.error)}", file=sys.stderr, flush=True)
        if summary.apply_error:
            print(f"agent: warning: {clean_line(summary.apply_error)}", file=sys.stderr, flush=True)
        _skip_teardown.add("fix")
        raise typer.Exit(summary.exit_code)
    except PatchwrightError as err:
        if display is not None:
            display.close()
        if debug:
            traceback.print_exc()
        raise fail(str(err), err.exit_code) from None
    except KeyboardInterrupt:
        if display is not None:
            display.close()
        raise fail("interrupted", ExitCode.INTERRUPTED) from None
    finally:
        if scan is not None:  # a listing (and a copy written ahead) no start used is stopped and freed
            scan.close()


SETUP_EXIT_HELP = """Exit codes: 0 the tests ran (collected and ran, passing or failing); 2 bad usage or
input; 4 infrastructure failure (Docker, image build); 5 the tests could not run (setup failed,
a runtime the project needs could not be provided, the test command not found, nothing collected)."""


@app.command("setup", epilog=SETUP_EXIT_HELP)
@with_settings
def setup_command(
    repo: Annotated[
        Path | None, typer.Option(help="The git repo (default: the one around the current directory).")
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text or json.")
    ] = OutputFormat.text,
    settings_flags: dict[str, Any] | None = None,
) -> None:
    """Prepare the repository's environment without a model: show the recipe, services and test
    command found, run the setup and the tests once."""
    import json

    from patchwright.config import ignored_warning, load_settings_checked
    from patchwright.environment.readiness import first_error, prepare_environment, report_lines
    from patchwright.workspace import open_workspace

    try:
        ws = open_workspace(repo if repo is not None else Path.cwd())
        loaded = load_settings_checked(ws.root, Path.home(), dict(os.environ), settings_flags or {})
        if (ignored := ignored_warning(loaded)) is not None:
            print(f"patchwright: warning: {clean_line(ignored)}", file=sys.stderr)
        readiness = prepare_environment(ws, loaded.settings, _progress)
    except PatchwrightError as err:
        raise fail(str(err), err.exit_code) from None
    code = ExitCode.PATCHED if readiness.runnable else ExitCode.ENVIRONMENT
    if output_format == OutputFormat.json:
        body = {
            **readiness.report,
            "tests_runnable": readiness.runnable,
            "reason": readiness.reason,
            "unmet": [u.as_dict() for u in readiness.unmet],
            "tests": readiness.results.as_dict() if readiness.tests is not None else None,
            "first_error": first_error(failed.output) if (failed := readiness.failed_output) else None,
        }
        print(json.dumps(body, indent=2))
    else:
        for line in report_lines(readiness):
            print("\n".join(clean_lines(line)))
    raise typer.Exit(int(code))


def _attempt_of(value: str | None) -> tuple[str, int] | None:
    """The hidden --attempt-of RUN_ID:K that `agent fix --attempts N` starts each attempt with."""
    if value is None:
        return None
    run_id, _, number = value.rpartition(":")
    if not run_id or not number.isdigit():
        raise UsageError(f"--attempt-of {value!r}: expected RUN_ID:K")
    return run_id, int(number)


# -- agent batch: the work is in patchwright/batch/ ------------------------------------------------
BATCH_EXIT_CODES_HELP = """Exit codes: 0 every instance ran to an ending (with or without a patch);
2 bad usage or input (instances file, flags, --ray without Ray installed); 3 --total-cost was spent
with instances left; 4 one or more instances failed (see DIR/report.json); 130 interrupted."""


@app.command(epilog=BATCH_EXIT_CODES_HELP)
@with_settings
def batch(
    instances: Annotated[
        Path, typer.Argument(help="JSONL (or a JSON list) of instances.", show_default=False)
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (rerun the same command to resume).")],
    repos: Annotated[
        Path | None, typer.Option("--repos", help="Folder of local mirrors: owner/name is DIR/owner__name.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Instances at a time (default: what the machine or cluster holds).")
    ] = None,
    total_cost: Annotated[
        float | None, typer.Option(help="Start no new instance once the batch has spent USD.")
    ] = None,
    redo: Annotated[bool, typer.Option("--redo", help="Run finished instances again.")] = False,
    ray: Annotated[
        str | None, typer.Option("--ray", help="Run on the Ray cluster at ADDRESS (or 'auto').")
    ] = None,
    ray_retries: Annotated[int, typer.Option(help="Resubmit an instance lost with its node N times.")] = 2,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text, json (the report) or stream-json.")
    ] = OutputFormat.text,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    settings_flags: dict[str, Any] | None = None,
) -> None:
    """Run `agent fix` over many instances; write SWE-bench predictions, runs and a report to --out."""
    from patchwright.batch.command import BatchCommand
    from patchwright.batch.command import batch as run_batch_command
    from patchwright.batch.execute import FixOptions

    options = FixOptions(settings=settings_flags or {}, repos_dir=str(repos.resolve()) if repos else None)
    command = BatchCommand(
        instances,
        out.resolve(),
        options,
        workers,
        total_cost,
        redo,
        ray,
        ray_retries,
        output_format.value,
        quiet,
    )
    try:
        code = run_batch_command(command)
    except PatchwrightError as err:
        if debug:
            traceback.print_exc()
        raise fail(str(err), err.exit_code) from None
    raise typer.Exit(code)


# -- end of agent batch ---------------------------------------------------------------------------


@sandbox_app.command("build")
def sandbox_build(
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if the image exists.")] = False,
    method: Annotated[
        BuildMethod, typer.Option(help="auto, dockerfile (needs a registry) or debootstrap.")
    ] = BuildMethod.auto,
    services: Annotated[
        bool, typer.Option("--services", help="Also build the image of the run's databases.")
    ] = False,
) -> None:
    """Build the default sandbox image and the setup proxy's (tagged by a hash of their definition;
    seconds when up to date)."""
    from patchwright.sandbox.egress import build_egress_image
    from patchwright.sandbox.engine import docker_client
    from patchwright.sandbox.image import build_image
    from patchwright.services.image import build_services_image

    try:
        client = docker_client()
        results = [build_image(client, method=method.value, force=force, progress=_progress)]
        # the setup proxy (tinyproxy): the package registries are setup's only way out
        results.append(build_egress_image(client, method=method.value, force=force, progress=_progress))
        if services:  # PostgreSQL, MariaDB and Redis from Debian packages
            results.append(build_services_image(client, method=method.value, force=force, progress=_progress))
    except PatchwrightError as err:
        raise fail(str(err), err.exit_code) from None
    for result in results:
        state = "up to date" if result.skipped else f"built with {result.method} in {result.seconds:.0f}s"
        print(f"{result.tag} ({state})")


@sandbox_app.command("image-tag")
def sandbox_image_tag(
    services: Annotated[
        bool, typer.Option("--services", help="Also print the tag of the run's databases image.")
    ] = False,
) -> None:
    """Print the content-hash tags of the images, one a line (a cache key for CI)."""
    from patchwright.github.steps import image_tags

    try:
        print("\n".join(image_tags(services)))
    except PatchwrightError as err:
        raise fail(str(err), err.exit_code) from None


@sandbox_app.command("prune")
def sandbox_prune(
    include_live: Annotated[
        bool, typer.Option("--all", help="Also stop runs in progress (their `agent` process is alive).")
    ] = False,
) -> None:
    """Remove containers of finished runs, superseded images and repo snapshots (found by label),
    and copies of a repo that killed runs had written ahead in /dev/shm."""
    from patchwright.sandbox.base import default_manifest_dir
    from patchwright.sandbox.engine import docker_client
    from patchwright.sandbox.prune import prune

    try:
        report = prune(docker_client(), manifest_dir=default_manifest_dir(), include_live=include_live)
    except PatchwrightError as err:
        raise fail(str(err), err.exit_code) from None
    print(
        f"removed {len(report.containers_removed)} containers, {len(report.images_removed)} images, "
        f"{len(report.networks_removed)} networks"
        + (
            f", {len(report.spools_removed)} copies left in memory by killed runs"
            if report.spools_removed
            else ""
        )
    )
    if report.containers_kept:
        print(f"kept {len(report.containers_kept)} containers of runs in progress (--all stops them too)")


@agents_app.command("list")
def agents_list(
    repo: Annotated[
        Path | None, typer.Option(help="The repo whose agents to include (default: current).")
    ] = None,
) -> None:
    """List the agents found and where each came from."""
    from patchwright.persona import list_agents
    from patchwright.workspace import open_workspace

    root: Path | None = None
    try:
        root = open_workspace(repo or Path.cwd()).root
    except PatchwrightError:
        if repo is not None:
            raise fail(f"{repo} is not a git repository") from None
    listing = list_agents(root, Path.home())
    for found in listing.agents:
        print(clean_line(f"{found.name:24} {found.origin:28} {found.path}"))
    for _path, message in listing.errors:
        print(f"agent: warning: {clean_line(message)}", file=sys.stderr)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _kinds(err: BaseException) -> set[str]:
    """Class names in an exception's MRO: typer may vendor click, so match click's errors by name."""
    return {cls.__name__ for cls in type(err).__mro__}


_skip_teardown: set[str] = set()  # commands whose work is done and saved: main() then calls exit_now


def exit_now(code: int) -> NoReturn:
    """Exit without the interpreter's teardown, after the parts of it that matter: atexit handlers
    run, output flushed. With the SDK loaded (thousands of modules, ~1,500 pydantic classes) the
    teardown alone took 0.5-0.9 s after the run was over. With a thread still to wait for (not a
    daemon: a pool's worker, say), the usual exit, which knows how to end and join them."""
    if any(t is not threading.current_thread() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def main() -> None:
    """Console-script entry: usage errors become one line and exit 2, like every other input error."""
    try:
        code = app(standalone_mode=False)
        if _skip_teardown and isinstance(code, int):
            exit_now(code)
    except KeyboardInterrupt:
        print("agent: error: interrupted", file=sys.stderr)
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as err:
        kinds = _kinds(err)
        ctx = getattr(err, "ctx", None)
        if "NoArgsIsHelpError" in kinds and ctx is not None:
            print(ctx.get_help())
            sys.exit(int(ExitCode.USAGE))
        if "UsageError" in kinds:
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            print(f"agent: error: {err.format_message()}{hint}", file=sys.stderr)  # type: ignore[attr-defined]
            sys.exit(int(ExitCode.USAGE))
        if "Abort" in kinds:
            print("agent: error: interrupted", file=sys.stderr)
            sys.exit(int(ExitCode.INTERRUPTED))
        if "ClickException" in kinds:
            print(f"agent: error: {err.format_message()}", file=sys.stderr)  # type: ignore[attr-defined]
            sys.exit(int(getattr(err, "exit_code", ExitCode.USAGE)))
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
