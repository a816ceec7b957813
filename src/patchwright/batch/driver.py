"""The batch loop: skip what a former run finished, start instances while there is room and budget,
write each result as it arrives, and stop cleanly on Ctrl-C.

First Ctrl-C (or SIGINT): no new instance starts, running ones go on to their end.
A second one (or SIGTERM): each running `agent fix` is interrupted, writes its partial
patch and removes its container. Either way DIR holds everything that ended.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

from patchwright.batch.execute import FixOptions, Outcome
from patchwright.batch.instances import Instance
from patchwright.batch.progress import BatchView
from patchwright.batch.results import BatchDir, InstanceRow
from patchwright.errors import ExitCode

SANDBOX_MEMORY_GB = 4  # the sandbox's default memory limit


class Runner(Protocol):
    capacity: int

    def submit(self, instance: Instance) -> None: ...

    def busy(self) -> int: ...

    def wait(self, timeout: float) -> list[Outcome]: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BatchRequest:
    instances: list[Instance]
    out: Path
    options: FixOptions
    total_cost: float | None = None
    redo: bool = False


@dataclass(frozen=True)
class BatchResult:
    state: str  # completed, interrupted, budget_spent
    exit_code: int
    rows: list[InstanceRow]
    not_run: list[str]
    wall_s: float


def default_workers() -> int:
    """What this machine can hold: a core and the sandbox's memory limit for each fix."""
    cpus = os.cpu_count() or 1
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory_gb = SANDBOX_MEMORY_GB
    return max(1, min(cpus, int(memory_gb // SANDBOX_MEMORY_GB)))


class Stop:
    """Ctrl-C and SIGTERM, counted; the loop acts on them (a signal handler only sets flags)."""

    def __init__(self) -> None:
        self.requested = False  # start nothing new
        self.interrupt = False  # interrupt the running fixes

    def on_signal(self, signum: int, _: FrameType | None) -> None:
        if self.requested or signum == signal.SIGTERM:
            self.interrupt = True
        self.requested = True


@contextmanager
def catching_signals(stop: Stop) -> Iterator[None]:
    previous = {sig: signal.signal(sig, stop.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_batch(request: BatchRequest, runner: Runner, view: BatchView, stop: Stop) -> BatchResult:
    started = time.monotonic()
    out = BatchDir(request.out, request.options.settings.get("model"))
    out.prepare()
    order = [i.instance_id for i in request.instances]
    rows: dict[str, InstanceRow] = {}
    if not request.redo:
        for instance in request.instances:
            row = out.previous(instance.instance_id)
            if row is not None and row.finished:
                rows[instance.instance_id] = row
    if rows:
        view.status(
            f"{len(rows)} instances already finished in {request.out}: skipped (--redo runs them again)"
        )
    out.rewrite_predictions(rows[i] for i in order if i in rows)
    pending = deque(i for i in request.instances if i.instance_id not in rows)

    def spent() -> float:
        return sum(r.cost_usd or 0.0 for r in rows.values())

    def over_budget() -> bool:
        return request.total_cost is not None and spent() >= request.total_cost

    def report(state: str) -> None:
        done = [rows[i] for i in order if i in rows]
        out.write_report(done, [i for i in order if i not in rows], time.monotonic() - started, state)

    interrupted_children = False
    while pending or runner.busy():
        if stop.interrupt and not interrupted_children:
            view.status("interrupting the running instances")
            runner.interrupt()
            interrupted_children = True
        while pending and runner.busy() < runner.capacity and not stop.requested and not over_budget():
            instance = pending.popleft()
            runner.submit(instance)
            view.started(instance.instance_id)
        if not runner.busy():
            break  # stopped or out of budget, with nothing left running
        for outcome in runner.wait(0.5):
            rows[outcome.instance_id] = row = out.write(outcome)
            view.finished(row)
            report("running")
    state = "interrupted" if stop.requested else "budget_spent" if pending else "completed"
    out.rewrite_predictions(rows[i] for i in order if i in rows)
    report(state)
    ordered = [rows[i] for i in order if i in rows]
    not_run = [i for i in order if i not in rows]
    return BatchResult(state, _exit_code(state, ordered), ordered, not_run, time.monotonic() - started)


def _exit_code(state: str, rows: list[InstanceRow]) -> int:
    if state == "interrupted":
        return int(ExitCode.INTERRUPTED)
    if state == "budget_spent":
        return int(ExitCode.LIMIT)
    return int(ExitCode.INFRA) if any(not r.finished for r in rows) else 0
