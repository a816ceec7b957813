"""The SDK's preload: the client it makes, and that the garbage collector is paused only for as
long as the import and the client take.

Each case runs in a fresh interpreter: the collector's state and the SDK's import are per process.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

from patchwright.preload import begin_for

PROBE = """
import gc, json, sys
from patchwright.preload import SdkPreload
preload = SdkPreload()
preload.begin()
paused_on_begin = not gc.isenabled()
client = preload.take_client()
print(json.dumps({
    "client": type(client).__name__,
    "paused_on_begin": paused_on_begin,
    "collecting_on_return": gc.isenabled(),
    "frozen_on_return": gc.get_freeze_count(),
}))
"""


def probe(**env_extra: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(env_extra)
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_client_comes_made_and_the_collector_runs_again_with_the_imports_frozen() -> None:
    found = probe(ANTHROPIC_API_KEY="sk-ant-preload-test")
    assert found["client"] == "Anthropic"
    # paused while the SDK is imported; collecting again after, the survivors frozen
    assert found["paused_on_begin"] is True
    assert found["collecting_on_return"] is True
    assert isinstance(found["frozen_on_return"], int) and found["frozen_on_return"] > 100_000


def test_without_credentials_no_client_is_made_and_the_collector_still_comes_back() -> None:
    found = probe()
    assert found["client"] == "NoneType"  # the caller's own client creation says what is missing
    assert found["collecting_on_return"] is True


def test_a_command_that_does_not_preload_leaves_the_collector_alone() -> None:
    preload = begin_for(["agent", "setup"])
    assert preload.take_client() is None
    assert gc.isenabled()
