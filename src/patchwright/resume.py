"""`agent fix --resume ID`: carry an interrupted run on from its trajectory and partial patch.

The conversation is rebuilt from the recorded `message` records (loop.messages_from_trajectory),
steps and usage are counted over the whole run, and the partial patch is re-applied in the new
sandbox before the model's next turn. A task given with --resume (as `claude --resume ID "..."`)
is the next instruction in that conversation; the run's own task stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchwright import loop
from patchwright.errors import UsageError
from patchwright.loop import LoopState
from patchwright.model import Usage
from patchwright.outputs import TrajectoryWriter, read_trajectory
from patchwright.sandbox.base import Sandbox
from patchwright.verify import apply_in
from patchwright.workspace import Workspace, real_run_dir


@dataclass(frozen=True)
class Resumed:
    """What an interrupted run left: its records, its task, and a follow-up instruction if given."""

    records: list[dict[str, Any]]
    task: str
    followup: str | None


def load(ws: Workspace, run_id: str, task: str) -> Resumed:
    """Read the run's trajectory; UsageError (exit 2) when there is no such run."""
    trajectory = real_run_dir(ws, run_id, create=False) / "trajectory.jsonl"
    if trajectory.is_symlink() or not trajectory.is_file():
        raise UsageError(f"--resume {run_id}: no run with that id in {ws.root / '.patchwright/runs'}")
    records = read_trajectory(trajectory)
    start = next((r for r in records if r.get("event") == "run_start"), None)
    if start is None:
        raise UsageError(f"--resume {run_id}: the trajectory has no run_start record")
    recorded_task = str(start.get("task", ""))
    followup = task if task.strip() and task.strip() != recorded_task.strip() else None
    return Resumed(records, recorded_task, followup)


def restore_patch(sandbox: Sandbox, run_dir: Path) -> bool:
    """Re-apply the interrupted run's patch in the sandbox; whether there was one."""
    patch_file = run_dir / "patch.diff"  # never patch.partial.diff: a cut patch is not the run's state
    if not patch_file.is_file() or patch_file.is_symlink() or patch_file.stat().st_size == 0:
        return False
    result = apply_in(sandbox, patch_file)
    if result.exit_code != 0:
        raise UsageError(
            f"--resume: the run's partial patch no longer applies: {result.output.strip()[:200]}"
        )
    return True


def rebuild(state: LoopState, resumed: Resumed, trajectory: TrajectoryWriter) -> None:
    """Bring `state` to where the run stopped; record the user turn this adds, if any."""
    records = resumed.records
    state.messages = loop.messages_from_trajectory(records)
    for record in records:  # steps, tokens and cost count the whole run
        if record.get("event") == "response":
            state.steps += 1
            if isinstance(record.get("usage"), dict):
                state.usage.add(Usage.from_dict(record["usage"]))
    recorded = [r for r in records if r.get("event") == "message"]
    rebuilt = bool(recorded) and recorded[-1]["role"] == "assistant"  # a user turn was added
    if resumed.followup:
        said = [{"type": "text", "text": resumed.followup}]
        if rebuilt and state.messages[-1]["content"] == loop.CONTINUE:
            state.messages[-1]["content"] = said  # the new instruction, not "Continue."
        else:
            loop.merge_with_last(state.messages, "user", said)
            if not rebuilt:
                trajectory.write("message", role="user", content=said)
    if rebuilt:  # record the turn rebuilt for resume
        trajectory.write("message", role="user", content=state.messages[-1]["content"])
