"""`agent batch --attempts N`: each instance's `agent fix` runs N attempts, and has the time for them."""

from __future__ import annotations

from pathlib import Path

from patchwright.batch.execute import FixOptions, _deadline, fix_argv
from patchwright.batch.instances import Instance


def test_attempts_reach_each_instances_fix_and_stretch_its_deadline(tmp_path: Path) -> None:
    instance = Instance("i-1", "fix it")
    argv = fix_argv(instance, FixOptions(attempts=3), tmp_path, tmp_path / "p.diff")
    assert argv[argv.index("--attempts") + 1] == "3"
    assert "--attempts" not in fix_argv(instance, FixOptions(), tmp_path, tmp_path / "p.diff")
    one, three = _deadline(FixOptions(timeout=100)), _deadline(FixOptions(timeout=100, attempts=3))
    assert three - one == 2 * (100 + 900)
