"""The run's record, written as the run goes: trajectory.jsonl a line at a time, summary.json
at every milestone, so an ending of any kind leaves both on disk."""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patchwright.config import Settings, secret_values, settings_record
from patchwright.errors import ExitCode, WorkspaceError
from patchwright.loop import LoopState
from patchwright.model import ModelInfo
from patchwright.outputs import Redactor, RunSummary, TrajectoryWriter, write_summary
from patchwright.sandbox.base import CommandResult
from patchwright.sandbox.checkpoint import Checkpoint
from patchwright.status import RunStatus
from patchwright.workspace import Workspace, hide_run_dir, real_run_dir

if TYPE_CHECKING:
    from patchwright.environment.phase import Environment


@dataclass(frozen=True)
class RunStart:
    """What a run folder is opened for: the checked input, told by the caller (the fixer)."""

    workspace: Workspace
    task: str
    model: str
    agent_name: str
    agent_path: Path
    variables: dict[str, str] = field(default_factory=dict)  # the repo's compose and CI `env`


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


@dataclass
class RunRecord:
    run_dir: Path
    summary: RunSummary
    trajectory: TrajectoryWriter
    redactor: Redactor
    started: float  # time.monotonic() at launch
    checkpoint: Checkpoint  # the state after setup, for verification; removed when the run closes
    environment: Environment | None = None  # can the tests run, and the setup recipe (environment/phase.py)

    @staticmethod
    def open(
        start: RunStart,
        settings: Settings,
        resume_id: str | None,
        started: float,
        attempt_of: tuple[str, int] | None = None,
    ) -> RunRecord:
        """Create the run directory and write run_start; OutputError if the directory cannot be made.
        `attempt_of` (run id, K): one of several attempts, in the folder `attempt-K` of that run."""
        ws = start.workspace
        # the user's `--env` values, and the repo's secret-looking ones (its SECRET_KEY, its tokens)
        repo_secrets = Redactor.from_environment(start.variables).values
        redactor = Redactor.from_environment().with_values([*secret_values(settings), *repo_secrets])
        hide_run_dir(ws)
        if attempt_of is not None:
            parent_id, number = attempt_of
            run_id = f"{parent_id}-a{number}"
            run_dir = real_run_dir(ws, parent_id, create=False) / f"attempt-{number}"
            if run_dir.is_symlink() or not run_dir.is_dir():
                raise WorkspaceError(f"{run_dir} is not the attempt's folder")
        else:
            run_id = resume_id or new_run_id()
            run_dir = real_run_dir(ws, run_id, create=True)  # never through a link
        summary = RunSummary(
            run_id=run_id,
            status=RunStatus.ERROR,
            exit_code=int(ExitCode.INFRA),
            repo=str(ws.root),
            run_dir=str(run_dir),
            model=start.model,
            agent=start.agent_name,
            task=redactor.text(start.task),
        )
        # A private folder (0700, a name no one could have made first): the state after setup.
        saved = Checkpoint(Path(tempfile.mkdtemp(prefix=f"patchwright-checkpoint-{run_id}-")))
        trajectory = TrajectoryWriter(run_dir / "trajectory.jsonl", redactor)
        record = RunRecord(run_dir, summary, trajectory, redactor, started, saved)
        record.write(
            "run_start",
            run_id=run_id,
            task=start.task,
            model=start.model,
            agent=start.agent_name,
            agent_path=str(start.agent_path),
            repo=str(ws.root),
            settings=settings_record(settings),
            resumed=bool(resume_id),
        )
        return record

    def write(self, event: str, **data: Any) -> None:
        self.trajectory.write(event, **data)

    def setup(self, command: str | None, result: CommandResult) -> None:
        self.write(
            "setup",
            command=command,
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            seconds=round(result.duration, 3),
            output=result.output,
        )

    def fail(self, status: RunStatus, exit_code: int, error: str) -> None:
        # redacted here, not only in the files: the screen and --format json show it too
        self.summary.status, self.summary.exit_code = status, int(exit_code)
        self.summary.error = self.redactor.text(error)

    def finish(self, state: LoopState, info: ModelInfo) -> None:
        """What the loop did: steps, tokens, cost, the model's last words."""
        self.summary.steps = state.steps
        self.summary.tokens = state.usage.as_dict()
        self.summary.cost_usd = state.usage.cost(info)
        self.summary.final_message = self.redactor.text(state.final_text) or None

    def save(self) -> None:
        self.summary.duration_s = round(time.monotonic() - self.started, 2)
        write_summary(self.run_dir / "summary.json", self.summary, self.redactor)

    def close(self) -> None:
        self.checkpoint.remove()
        s = self.summary
        self.write("run_end", status=s.status, exit_code=s.exit_code, error=s.error)
        self.trajectory.close()
        self.save()
