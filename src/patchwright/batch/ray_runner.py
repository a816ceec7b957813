"""Instances as Ray tasks on an existing cluster: each task runs `agent fix` on its node and hands the
patch, summary and trajectory back, and the driver writes DIR exactly as a local batch does.

Nodes offer sandboxes with the custom resource `patchwright_sandbox` (`ray start ...
--resources '{"patchwright_sandbox": 2}'`); a task takes one. A task lost with its
worker or node is resubmitted by the driver, at most `retries` times, and the report
names why (Ray's own retry would hide that it happened).
"""

from __future__ import annotations

import os
from typing import Any

from patchwright.batch.execute import FixOptions, Outcome, run_instance
from patchwright.batch.instances import Instance
from patchwright.errors import ExitCode, UsageError

RESOURCE = "patchwright_sandbox"
FORWARDED_ENV = ("ANTHROPIC_", "PATCHWRIGHT_")  # the driver's settings and key reach the nodes' fixes
FORWARDED_NAMES = ("CI",)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'patchwright[ray]'") from None
    return ray


def fix_on_node(instance: Instance, options: FixOptions) -> Outcome:
    """The Ray task: runs on a node with a sandbox slot."""
    import ray

    return run_instance(instance, options, node=ray.get_runtime_context().get_node_id()[:12])


def forwarded_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(FORWARDED_ENV) or k in FORWARDED_NAMES}


class RayRunner:
    """Submits instances to the cluster at `address`, as many at a time as it has sandbox slots."""

    def __init__(self, address: str, options: FixOptions, workers: int | None, retries: int) -> None:
        ray = self.ray = _import_ray()
        try:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR", configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise UsageError(f"--ray {address}: cannot connect to the cluster: {err}") from None
        slots = int(ray.cluster_resources().get(RESOURCE, 0))
        if slots < 1:
            ray.shutdown()
            raise UsageError(
                f"--ray {address}: no node offers the resource {RESOURCE} "
                f"(start nodes with --resources '{{\"{RESOURCE}\": 2}}')"
            )
        self.capacity = workers or slots
        self.retries = retries
        self.options = FixOptions(
            **{**options.__dict__, "env": {**forwarded_env(dict(os.environ)), **options.env}}
        )
        self.task = ray.remote(fix_on_node).options(resources={RESOURCE: 1}, num_cpus=0, max_retries=0)
        self._running: dict[Any, tuple[Instance, int, list[str]]] = {}

    def submit(self, instance: Instance, attempt: int = 1, retries: list[str] | None = None) -> None:
        ref = self.task.remote(instance, self.options)
        self._running[ref] = (instance, attempt, retries or [])

    def busy(self) -> int:
        return len(self._running)

    def wait(self, timeout: float) -> list[Outcome]:
        ray = self.ray
        done, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
        outcomes = []
        for ref in done:
            instance, attempt, retries = self._running.pop(ref)
            try:
                outcome: Outcome = ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                outcome = Outcome(instance.instance_id, "interrupted", int(ExitCode.INTERRUPTED), "cancelled")
            except ray.exceptions.RayTaskError as err:  # our code raised on the node: a bug, not the node
                outcome = Outcome(instance.instance_id, "error", int(ExitCode.INFRA), f"task failed: {err}")
            except ray.exceptions.RayError as err:  # worker or node lost: try again elsewhere
                reason = f"attempt {attempt}: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
                if attempt <= self.retries:
                    self.submit(instance, attempt + 1, [*retries, reason])
                    continue
                outcome = Outcome(
                    instance.instance_id, "error", int(ExitCode.INFRA), f"gave up after {reason}"
                )
            outcome.attempts, outcome.retries = attempt, retries
            outcomes.append(outcome)
        return outcomes

    def interrupt(self) -> None:
        """Second Ctrl-C: cancel the tasks; each forwards SIGINT to its fix, which cleans up on its node."""
        for ref in list(self._running):
            self.ray.cancel(ref, force=False)

    def close(self) -> None:
        self.ray.shutdown()
