"""What a batch leaves in DIR: runs/<id>/ per instance, predictions.jsonl, report.json.

Written as instances finish, each file atomically, so a batch killed at any point
leaves files a rerun can resume from. predictions.jsonl is SWE-bench's format
(`instance_id`, `model_name_or_path`, `model_patch`), taken unchanged by
`python -m swebench.harness.run_evaluation --predictions_path`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from patchwright.batch.execute import Outcome
from patchwright.errors import ExitCode, OutputError
from patchwright.outputs import is_utf8, json_text, write_text_file

FINISHED = {int(ExitCode.PATCHED), int(ExitCode.NO_CHANGES), int(ExitCode.LIMIT)}  # ran to an ending
RESULT = "result.json"


@dataclass
class InstanceRow:
    """One line of report.json: how the instance ended, and what it cost."""

    instance_id: str
    status: str
    exit_code: int
    model: str | None = None
    verified: bool | None = None  # true only for the verdict `fixed`
    verdict: str | None = None  # verification.verdict of the instance's summary (verdict.py)
    steps: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    duration_s: float = 0.0
    patch_bytes: int = 0
    patch_not_utf8: bool = False  # kept as patch.diff; predictions.jsonl gets an empty model_patch
    error: str | None = None
    attempts: int = 1
    retries: list[str] = field(default_factory=list)
    node: str | None = None

    @property
    def finished(self) -> bool:
        return self.exit_code in FINISHED

    @staticmethod
    def from_outcome(outcome: Outcome, default_model: str | None) -> InstanceRow:
        summary = outcome.summary or {}
        return InstanceRow(
            instance_id=outcome.instance_id,
            status=outcome.status,
            exit_code=outcome.exit_code,
            model=summary.get("model") or default_model,
            verified=summary.get("verified"),
            verdict=(summary.get("verification") or {}).get("verdict"),
            steps=int(summary.get("steps") or 0),
            tokens={k: int(v) for k, v in (summary.get("tokens") or {}).items()},
            cost_usd=summary.get("cost_usd"),
            duration_s=outcome.duration_s,
            patch_bytes=len(outcome.patch.encode("utf-8", "surrogateescape")),
            patch_not_utf8=not is_utf8(outcome.patch),
            error=outcome.error,
            attempts=outcome.attempts,
            retries=list(outcome.retries),
            node=outcome.node,
        )

    @staticmethod
    def from_dict(data: dict[str, Any]) -> InstanceRow:
        known = {f for f in InstanceRow.__dataclass_fields__}
        return InstanceRow(**{k: v for k, v in data.items() if k in known})


class BatchDir:
    """The batch's output folder; the only place the batch writes."""

    def __init__(self, root: Path, model_fallback: str | None) -> None:
        self.root = root
        self.model_fallback = model_fallback
        self.predictions = root / "predictions.jsonl"
        self.report = root / "report.json"

    def prepare(self) -> None:
        try:
            (self.root / "runs").mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create {self.root}: {err.strerror}") from None

    def run_dir(self, instance_id: str) -> Path:
        return self.root / "runs" / instance_id

    def previous(self, instance_id: str) -> InstanceRow | None:
        """The row a former batch recorded for this instance, if its files are all there."""
        folder = self.run_dir(instance_id)
        try:
            row = InstanceRow.from_dict(json.loads((folder / RESULT).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        return row if (folder / "patch.diff").is_file() else None

    def write(self, outcome: Outcome) -> InstanceRow:
        """The instance's files, then its prediction; the row for the report."""
        folder = self.run_dir(outcome.instance_id)
        row = InstanceRow.from_outcome(outcome, self.model_fallback)
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (folder / RESULT).unlink()  # until the new files are all written, the instance is unfinished
        write_text_file(folder / "patch.diff", outcome.patch)
        try:
            (folder / "trajectory.jsonl").write_bytes(outcome.trajectory)
        except OSError as err:
            raise OutputError(f"cannot write {folder / 'trajectory.jsonl'}: {err.strerror}") from None
        if outcome.summary is not None:
            summary = dict(outcome.summary)
            summary["run_dir"] = str(folder)
            summary["patch"] = str(folder / "patch.diff") if outcome.patch.strip() else None
            write_text_file(folder / "summary.json", json.dumps(summary, indent=2) + "\n")
        write_text_file(folder / RESULT, json.dumps(asdict(row), indent=2) + "\n")
        if row.finished:
            self.append_prediction(outcome.instance_id, row.model, outcome.patch)
        return row

    def prediction(self, instance_id: str, model: str | None, patch: str) -> dict[str, str]:
        """SWE-bench's row. predictions.jsonl is one file for every instance and its readers decode
        it as UTF-8 whole, so a patch that is not UTF-8 goes in empty (its bytes stay in the
        instance's patch.diff, and report.json flags it as `patch_not_utf8`)."""
        return {
            "instance_id": instance_id,
            "model_name_or_path": f"patchwright__{model or self.model_fallback or 'default'}",
            "model_patch": patch if is_utf8(patch) else "",
        }

    def append_prediction(self, instance_id: str, model: str | None, patch: str) -> None:
        line = json_text(self.prediction(instance_id, model, patch))
        try:
            with self.predictions.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError as err:
            raise OutputError(f"cannot write {self.predictions}: {err.strerror}") from None

    def rewrite_predictions(self, rows: Iterable[InstanceRow]) -> None:
        """One line per finished instance, in the instances file's order (a rerun starts from this)."""
        lines = []
        for row in rows:
            if row.finished:
                patch_file = self.run_dir(row.instance_id) / "patch.diff"
                patch = patch_file.read_bytes().decode("utf-8", "surrogateescape")
                lines.append(json_text(self.prediction(row.instance_id, row.model, patch)))
        write_text_file(self.predictions, "".join(line + "\n" for line in lines))

    def write_report(self, rows: list[InstanceRow], pending: list[str], wall_s: float, state: str) -> None:
        write_text_file(self.report, json.dumps(report(rows, pending, wall_s, state), indent=2) + "\n")


def report(rows: list[InstanceRow], pending: list[str], wall_s: float, state: str) -> dict[str, Any]:
    """report.json: per-instance rows and the batch's totals."""
    finished = [r for r in rows if r.finished]
    checked = [r for r in finished if r.verified is not None]
    tokens: dict[str, int] = {}
    for row in rows:
        for key, value in row.tokens.items():
            tokens[key] = tokens.get(key, 0) + value
    return {
        "state": state,  # completed, interrupted, budget_spent
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "totals": {
            "instances": len(rows) + len(pending),
            "finished": len(finished),
            "patched": sum(1 for r in finished if r.exit_code == ExitCode.PATCHED),
            "failed": len(rows) - len(finished),
            "not_run": len(pending),
            "verified": sum(1 for r in checked if r.verified),
            "verified_rate": round(sum(1 for r in checked if r.verified) / len(checked), 4)
            if checked
            else None,
            "cost_usd": round(sum(r.cost_usd or 0.0 for r in rows), 6),
            "tokens": tokens,
            "wall_s": round(wall_s, 2),
        },
        "instances": [asdict(r) for r in rows],
        "not_run": pending,
    }
