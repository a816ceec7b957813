"""The starting state of a sandbox's workspace, and the patch of everything changed since.

Built only on what every backend offers (`execute` and `read_file`), so a new runtime
gets a correct, binary-safe diff for free. git runs as `trusted_git`: a fixed binary
and PATH, no user or system config, no hooks, an index of its own, so neither the
repository nor the model can redirect what the patch holds.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Protocol

from patchwright.errors import SandboxError
from patchwright.sandbox.base import CommandResult

BASE_REF = "refs/patchwright/base"
PATCH_LIMIT = 1 << 30  # bytes of patch read back at most


def trusted_git(index_file: str) -> str:
    """A git command line the model cannot redirect: fixed binary and PATH, no user/system config,
    no hooks, its own index (the model's own git use never moves the base)."""
    return (
        f"env -i HOME=/tmp PATH=/usr/bin:/bin GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null "
        f"GIT_INDEX_FILE={index_file} /usr/bin/git -c core.hooksPath=/dev/null -c core.quotepath=off "
        "-c core.fsmonitor=false -c core.splitIndex=false"
    )


class Runs(Protocol):
    """What the baseline needs of a sandbox."""

    def execute(
        self,
        argv: list[str],
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        output_limit: int | None = None,
    ) -> CommandResult: ...

    def read_file(self, path: str, max_bytes: int = ...) -> bytes: ...


@dataclass
class Baseline:
    """Records the workspace as a git tree once; `diff` compares the workspace with it."""

    workspace: str
    control_dir: str
    tree: str | None = None

    def record(self, box: Runs, dirty: list[str] | None = None) -> str:
        """Store the starting state as a tree and return its id.

        `dirty`: the paths the host's git found differing from its index, when the workspace
        holds that index unchanged. Only those are hashed (their stat never matches the index),
        not the whole tree walked; a failure falls back to the walk.
        """
        index = f"{self.control_dir}/base.index"
        git = trusted_git(index)
        # The copy kept mtimes and sizes, so the host index's hashes hold for unchanged files;
        # `cp -p` keeps the index's own mtime, which git's racy-entry check relies on.
        walk = f"{git} -c core.checkStat=minimal -c core.trustctime=false add -A"
        fill = walk
        if dirty is not None:
            listing = base64.b64encode(b"".join(os.fsencode(name) + b"\0" for name in dirty)).decode()
            fill = (
                f"if ! printf %s {listing} | base64 -d | {git} update-index -z --add --remove --replace "
                f"--stdin; then {walk}; fi"
            )
        script = (
            f"set -e; mkdir -p {self.control_dir}; cd {self.workspace}; rm -f {index}; "
            f"if [ ! -d .git ]; then {git} init -q; fi; "
            f"if [ -f .git/index ]; then cp -p .git/index {index}; fi; {fill}; "
            f'tree=$({git} write-tree); {git} update-ref {BASE_REF} "$tree"; echo "$tree"'
        )
        result = box.execute(["bash", "-c", script], timeout=600)
        found = result.output.strip().splitlines()[-1:] if result.exit_code == 0 else []
        if not found or len(found[0]) < 40:
            raise SandboxError(
                f"cannot record the starting state in the sandbox: {result.output.strip()[-300:]}"
            )
        self.tree = found[0]
        return self.tree

    def diff(self, box: Runs) -> str:
        """A binary-safe patch of every change since `record`, as `git apply` takes it."""
        if self.tree is None:
            raise SandboxError("the sandbox has no starting state")
        index = f"{self.control_dir}/diff.index"
        patch = f"{self.control_dir}/patch.diff"
        git = trusted_git(index)
        script = (
            f"set -e; cd {self.workspace}; mkdir -p {self.control_dir}; rm -f {index}; "
            f"if [ -f {self.control_dir}/base.index ]; then cp -p {self.control_dir}/base.index {index}; fi; "
            f"{git} -c core.checkStat=minimal -c core.trustctime=false add -A >/dev/null; tree=$({git} write-tree); "
            f"{git} diff --binary --full-index -M --no-color --no-ext-diff --no-textconv "
            f'--src-prefix=a/ --dst-prefix=b/ {self.tree} "$tree" > {patch}'
        )
        result = box.execute(["bash", "-c", script], timeout=600, output_limit=4096)
        if result.exit_code != 0:
            raise SandboxError(
                f"cannot compute the patch (git exited with {result.exit_code}): {result.output.strip()[-200:]}"
            )
        try:
            data = box.read_file(patch, max_bytes=PATCH_LIMIT)
        except FileNotFoundError:
            raise SandboxError("cannot compute the patch (no patch file was written)") from None
        except OSError as err:
            raise SandboxError(f"cannot read the patch: {err}") from None
        # surrogateescape keeps non-UTF-8 bytes intact for writing the patch back out
        return data.decode("utf-8", "surrogateescape")
