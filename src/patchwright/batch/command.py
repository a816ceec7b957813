"""`agent batch`: from flags to a runner (local or Ray), a view, the loop, and the final summary."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from patchwright.batch.driver import (
    BatchRequest,
    BatchResult,
    Runner,
    Stop,
    catching_signals,
    default_workers,
    run_batch,
)
from patchwright.batch.execute import FixOptions
from patchwright.batch.instances import load_instances
from patchwright.batch.progress import Tally, make_view
from patchwright.batch.results import report
from patchwright.ci import is_ci
from patchwright.errors import UsageError


@dataclass(frozen=True)
class BatchCommand:
    instances: Path
    out: Path
    options: FixOptions
    workers: int | None = None
    total_cost: float | None = None
    redo: bool = False
    ray: str | None = None
    ray_retries: int = 2
    output_format: str = "text"
    quiet: bool = False


def check(command: BatchCommand) -> None:
    if command.workers is not None and command.workers < 1:
        raise UsageError("--workers must be at least 1")
    if command.total_cost is not None and command.total_cost <= 0:
        raise UsageError("--total-cost must be more than 0")
    if command.ray_retries < 0:
        raise UsageError("--ray-retries must be 0 or more")
    if command.out.exists() and not command.out.is_dir():
        raise UsageError(f"--out {command.out}: not a directory")
    if command.options.repos_dir is not None and not Path(command.options.repos_dir).is_dir():
        raise UsageError(f"--repos {command.options.repos_dir}: no such directory")


def make_runner(command: BatchCommand) -> Runner:
    if command.ray is not None:
        from patchwright.batch.ray_runner import RayRunner

        return RayRunner(command.ray, command.options, command.workers, command.ray_retries)
    from patchwright.batch.local import LocalRunner

    return LocalRunner(command.options, command.workers or default_workers())


def batch(command: BatchCommand) -> int:
    """The whole `agent batch`; returns its exit code. Usage errors raise before anything runs."""
    check(command)
    instances = load_instances(command.instances)
    if command.ray is not None:
        from patchwright.batch.ray_runner import _import_ray

        _import_ray()  # without Ray installed: one line, exit 2, before anything else
    runner = make_runner(command)
    tally = Tally(total=len(instances))
    view = make_view(
        tally, runner.capacity, command.output_format, command.quiet, sys.stderr.isatty(), is_ci(os.environ)
    )
    stop = Stop()
    try:
        with catching_signals(stop):
            result = run_batch(
                BatchRequest(instances, command.out, command.options, command.total_cost, command.redo),
                runner,
                view,
                stop,
            )
    finally:
        view.close()
        runner.close()
    _print_result(command, result)
    return result.exit_code


def _print_result(command: BatchCommand, result: BatchResult) -> None:
    data = report(result.rows, result.not_run, result.wall_s, result.state)
    if command.output_format == "json":
        print(json.dumps(data, indent=2))
    elif command.output_format == "stream-json":
        print(
            json.dumps(
                {"event": "batch_end", "state": result.state, "exit_code": result.exit_code, **data["totals"]}
            )
        )
    else:
        totals = data["totals"]
        print(
            f"batch {result.state}: {totals['finished']}/{totals['instances']} finished "
            f"({totals['patched']} with a patch), {totals['failed']} failed, {totals['not_run']} not run, "
            f"${totals['cost_usd']:.2f}, {totals['wall_s']:.0f}s; predictions in {command.out / 'predictions.jsonl'}"
        )
    sys.stdout.flush()
