"""`agent batch --attempts N`: each instance's `agent fix` runs N attempts, and has the time for them."""

from __future__ import annotations

from patchwright.batch.execute import FixOptions, _deadline, fix_env
from patchwright.batch.instances import Instance


def test_attempts_reach_each_instances_fix_and_stretch_its_deadline() -> None:
    instance = Instance("i-1", "fix it")
    assert fix_env(instance, FixOptions(settings={"attempts": 3}))["PATCHWRIGHT_ATTEMPTS"] == "3"
    assert "PATCHWRIGHT_ATTEMPTS" not in fix_env(instance, FixOptions(settings={"attempts": None}))
    one = _deadline(FixOptions(settings={"timeout": 100}))
    three = _deadline(FixOptions(settings={"timeout": 100, "attempts": 3}))
    assert three - one == 2 * (100 + 900)
