"""What a batch shows while it runs: a live table on a terminal, plain lines in CI, JSON events for scripts.

Progress goes to stderr; stdout carries only `--format stream-json` events or the
final summary (text or JSON), as with `agent fix`.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Protocol

from rich.console import Console
from rich.live import Live
from rich.text import Text

from patchwright.batch.results import InstanceRow


@dataclass
class Tally:
    """Counts behind every view: done, running, failed, cost so far, and an ETA from the pace so far."""

    total: int
    started_at: float = field(default_factory=time.monotonic)
    done: int = 0
    failed: int = 0
    cost: float = 0.0
    running: set[str] = field(default_factory=set)

    def eta(self) -> float | None:
        finished = self.done + self.failed
        left = self.total - finished
        if not finished or left <= 0:
            return None
        return (time.monotonic() - self.started_at) / finished * left  # the pace includes the parallelism

    def line(self, workers: int) -> str:
        eta = self.eta()
        return (
            f"{self.done + self.failed}/{self.total} done ({self.failed} failed), {len(self.running)} running, "
            f"${self.cost:.2f}" + (f", ETA {eta:.0f}s" if eta is not None else "")
        )


class BatchView(Protocol):
    def started(self, instance_id: str) -> None: ...

    def finished(self, row: InstanceRow) -> None: ...

    def status(self, message: str) -> None: ...

    def close(self) -> None: ...


class PlainView:
    """One line per event on stderr (CI logs, pipes)."""

    def __init__(
        self, tally: Tally, workers: int, stream: IO[str] | None = None, quiet: bool = False
    ) -> None:
        self.tally, self.workers, self.stream, self.quiet = tally, workers, stream or sys.stderr, quiet

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"batch: {text}", file=self.stream, flush=True)

    def started(self, instance_id: str) -> None:
        self.tally.running.add(instance_id)
        self._say(f"start {instance_id}")

    def finished(self, row: InstanceRow) -> None:
        _count(self.tally, row)
        why = f" ({row.error})" if row.error else ""
        self._say(
            f"end {row.instance_id}: {row.status}, exit {row.exit_code}{why} | {self.tally.line(self.workers)}"
        )

    def status(self, message: str) -> None:
        self._say(message)

    def close(self) -> None:
        pass


class LiveView:
    """A live status line on a terminal: done / running / failed, cost so far, ETA."""

    def __init__(self, tally: Tally, workers: int) -> None:
        self.tally, self.workers = tally, workers
        self.console = Console(stderr=True)
        self.live = Live(self._render(), console=self.console, refresh_per_second=2, transient=True)
        self.live.start()

    def _render(self) -> Text:
        running = ", ".join(sorted(self.tally.running)[:6])
        return Text(f"{self.tally.line(self.workers)}" + (f"  [{running}]" if running else ""))

    def started(self, instance_id: str) -> None:
        self.tally.running.add(instance_id)
        self.live.update(self._render())

    def finished(self, row: InstanceRow) -> None:
        _count(self.tally, row)
        mark = "[green]ok[/]" if row.finished else "[red]failed[/]"
        self.console.print(f"{mark} {row.instance_id}: {row.status}, exit {row.exit_code}", highlight=False)
        self.live.update(self._render())

    def status(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)

    def close(self) -> None:
        self.live.stop()


class EventView:
    """`--format stream-json`: one JSON event a line on stdout, next to a human view on stderr."""

    def __init__(self, inner: BatchView, stream: IO[str] | None = None) -> None:
        self.inner, self.stream = inner, stream or sys.stdout

    def _emit(self, event: str, **data: Any) -> None:
        with contextlib.suppress(BrokenPipeError):
            print(json.dumps({"event": event, **data}), file=self.stream, flush=True)

    def started(self, instance_id: str) -> None:
        self.inner.started(instance_id)
        self._emit("instance_start", instance_id=instance_id)

    def finished(self, row: InstanceRow) -> None:
        self.inner.finished(row)
        self._emit("instance_end", **asdict(row))

    def status(self, message: str) -> None:
        self.inner.status(message)
        self._emit("status", message=message)

    def close(self) -> None:
        self.inner.close()


def _count(tally: Tally, row: InstanceRow) -> None:
    tally.running.discard(row.instance_id)
    if row.finished:
        tally.done += 1
    else:
        tally.failed += 1
    tally.cost += row.cost_usd or 0.0


def make_view(tally: Tally, workers: int, output_format: str, quiet: bool, tty: bool, ci: bool) -> BatchView:
    inner: BatchView = (
        LiveView(tally, workers) if tty and not ci and not quiet else PlainView(tally, workers, quiet=quiet)
    )
    return EventView(inner) if output_format == "stream-json" else inner
