"""Local workers: N threads, each waiting on one `agent fix` process at a time."""

from __future__ import annotations

import signal
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from patchwright.batch.execute import Children, FixOptions, Outcome, run_instance
from patchwright.batch.instances import Instance
from patchwright.errors import ExitCode


class LocalRunner:
    """Runs instances as processes on this machine, `workers` at a time."""

    def __init__(self, options: FixOptions, workers: int, scratch: Path | None = None) -> None:
        self.options = options
        self.capacity = workers
        self.scratch = scratch
        self.children = Children()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch")
        self._running: dict[Future[Outcome], str] = {}

    def submit(self, instance: Instance) -> None:
        future = self._pool.submit(run_instance, instance, self.options, self.children, self.scratch, "local")
        self._running[future] = instance.instance_id

    def busy(self) -> int:
        return len(self._running)

    def wait(self, timeout: float) -> list[Outcome]:
        done, _ = wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
        outcomes = []
        for future in done:
            instance_id = self._running.pop(future)
            try:
                outcomes.append(future.result())
            except Exception as err:  # a bug of ours: the instance fails, the batch goes on
                outcomes.append(
                    Outcome(instance_id, "error", int(ExitCode.INFRA), error=f"internal error: {err!r}")
                )
        return outcomes

    def interrupt(self) -> None:
        """Second Ctrl-C: each running fix writes its partial patch, removes its container, exits 130."""
        self.children.signal_all(signal.SIGINT)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
