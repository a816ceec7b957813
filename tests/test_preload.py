"""The SDK's preload: which stream it warms, and that the run's client waits for the warm-up.

Each case runs in a fresh interpreter: pydantic builds a type once per process, so only a
process that has not streamed yet can show what the warm-up built.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from patchwright.preload import SdkPreload
preload = SdkPreload()
preload.expect(beta=sys.argv[1] == "beta")
preload.begin()
client = preload.take_client(warmed=sys.argv[2] == "warmed")
warmed_on_return = preload.warmed
from anthropic.types import Message
from anthropic.types.beta import BetaMessage
print(json.dumps({
    "client": type(client).__name__,
    "warmed_on_return": warmed_on_return,
    "beta_built": BetaMessage.__pydantic_complete__,
    "plain_built": Message.__pydantic_complete__,
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


def test_the_model_lookup_takes_the_client_without_waiting_for_the_warm_up() -> None:
    found = probe("beta", "now")
    assert found["client"] == "Anthropic"
    assert found["warmed_on_return"] is False  # the warm-up takes tenths of a second more
