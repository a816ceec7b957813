"""The SDK's preload: which stream it warms, that the run's client waits for the warm-up, and
that the garbage collector is paused only for as long as the import and warm-up take.

Each case runs in a fresh interpreter: pydantic builds a type once per process, so only a
process that has not streamed yet can show what the warm-up built.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import pytest

from patchwright.preload import begin_for

PROBE = """
import gc, json, sys
from patchwright.preload import SdkPreload
preload = SdkPreload()
preload.expect(beta=sys.argv[1] == "beta")
preload.begin()
paused_on_begin = not gc.isenabled()
client = preload.take_client(warmed=sys.argv[2] == "warmed")
warmed_on_return = preload.warmed
collecting_on_return = gc.isenabled()
frozen_on_return = gc.get_freeze_count()
from anthropic.types import Message
from anthropic.types.beta import BetaMessage
print(json.dumps({
    "client": type(client).__name__,
    "warmed_on_return": warmed_on_return,
    "beta_built": BetaMessage.__pydantic_complete__,
    "plain_built": Message.__pydantic_complete__,
    "paused_on_begin": paused_on_begin,
    "collecting_on_return": collecting_on_return,
    "frozen_on_return": frozen_on_return,
}))
"""


def probe(stream: str, wait: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env["ANTHROPIC_API_KEY"] = "sk-ant-preload-test"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, stream, wait], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("stream", ["beta", "plain"])
def test_only_the_runs_own_stream_is_warmed_and_the_client_waits_for_it(stream: str) -> None:
    found = probe(stream, "warmed")
    assert found["client"] == "Anthropic"
    assert found["warmed_on_return"] is True
    assert found["beta_built"] is (stream == "beta")
    assert found["plain_built"] is (stream == "plain")
    # paused while the SDK is imported and warmed; collecting again after, the survivors frozen
    assert found["paused_on_begin"] is True
    assert found["collecting_on_return"] is True
    assert isinstance(found["frozen_on_return"], int) and found["frozen_on_return"] > 100_000


def test_the_model_lookup_takes_the_client_without_waiting_for_the_warm_up() -> None:
    found = probe("beta", "now")
    assert found["client"] == "Anthropic"
    assert found["warmed_on_return"] is False  # the warm-up takes tenths of a second more
    assert found["collecting_on_return"] is False  # nor is the collector back yet


def test_a_command_that_does_not_preload_leaves_the_collector_alone() -> None:
    preload = begin_for(["agent", "setup"])
    assert preload.take_client() is None
    assert gc.isenabled()
