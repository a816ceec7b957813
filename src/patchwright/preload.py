"""The SDK made ready on a thread begun at launch, before the CLI's own imports.

Importing `anthropic` takes about 1.5 s of CPU here and making its client another few tenths
(an SSL context). All of it is CPU in one interpreter, so it only overlaps what waits on other
processes (git, Docker, the repo's copy), and it must begin before anything else: this module
imports nothing heavy, and `cli` starts it before importing typer. (The first reply needs no
warming: its events are read as JSON, not built into the SDK's types; see reply.py.)

The cyclic garbage collector is paused from `begin` until the client is made: the import makes
about 220,000 tracked objects that nearly all stay alive, and the collections they set off took
about a sixth of the import's time. Then everything is frozen (`gc.freeze`) uncollected, so the
loop's collections never walk those objects again; the start's few thousand garbage objects
stay with them.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Sequence
from typing import Any

COMMANDS = frozenset({"fix"})  # commands whose first work is a model request
WAIT = 120.0  # seconds a caller waits for the client before making its own
CREDENTIALS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


class SdkPreload:
    """`anthropic` imported and one client made (with the environment's credentials) on a daemon
    thread. Every failure leaves `client` None: the caller then makes its own and meets the error
    the usual way."""

    def __init__(self) -> None:
        self.client: Any = None
        self._made = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self) -> SdkPreload:
        gc.disable()  # until the client is made (`_load`); see the module's docstring
        self._thread = threading.Thread(target=self._load, name="patchwright-sdk-preload", daemon=True)
        self._thread.start()
        return self

    def take_client(self, timeout: float = WAIT) -> Any:
        """The preloaded client (an `anthropic.Anthropic`), or None."""
        if self._thread is None:
            return None
        self._made.wait(timeout)
        return self.client

    def _load(self) -> None:
        try:
            import anthropic

            if any(os.environ.get(name) for name in CREDENTIALS):
                self.client = anthropic.Anthropic()
        except Exception:  # the caller's own client creation reports it
            self.client = None
        finally:
            gc.freeze()
            gc.enable()
            self._made.set()


def begin_for(argv: Sequence[str]) -> SdkPreload:
    """Begun only for a command that talks to the model first (`agent fix`)."""
    preload = SdkPreload()
    if len(argv) > 1 and argv[1] in COMMANDS:
        preload.begin()
    return preload
