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

from patchwright.errors import ExitCode, SandboxError
from patchwright.sandbox.base import CommandResult

BASE_REF = "refs/patchwright/base"
PATCH_LIMIT = 256 * 1024 * 1024  # bytes of patch taken back at most (held in memory twice over)
PATCH_FILE_LIMIT = 20_000  # files one patch may change


class PatchTooLarge(SandboxError):
    """The changes are past the patch limits: a limit was hit (exit 3), not "no changes"."""

    exit_code = ExitCode.LIMIT


def trusted_git(index_file: str) -> str:
    """A git command line the model cannot redirect: fixed binary and PATH, no user/system config,
    no hooks, its own index (the model's own git use never moves the base)."""
    return (
        f"env -i HOME=/tmp PATH=/usr/bin:/bin GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null "
        f"GIT_INDEX_FILE={index_file} /usr/bin/git -c core.hooksPath=/dev/null -c core.quotepath=off "
        "-c core.fsmonitor=false -c core.splitIndex=false"
    )


# A git dir of patchwright's own, made afresh for each use in a new folder: no config file (so
# no filter, textconv or fsmonitor program the repo or the model set in .git/config runs), no
# info/attributes, no hooks; the workspace's .git is only an object store to read (and, while
# recording, before the model's first command, to write). Made under /tmp, not the control dir,
# which the sandbox user could have turned into a link.
FRESH_GIT_DIR = (
    'g=$(mktemp -d "${TMPDIR:-/tmp}/pwgit.XXXXXX"); mkdir -p "$g/refs" "$g/objects" "$g/info"; '
    "echo 'ref: refs/heads/main' > \"$g/HEAD\"; "
)


def isolated_git(workspace: str, index_file: str, objects: str, alternates: str | None = None) -> str:
    """git on `workspace` through the fresh git dir "$g" (FRESH_GIT_DIR): only the command line
    configures it, so only patchwright decides what runs and how content is converted."""
    extra = f"GIT_ALTERNATE_OBJECT_DIRECTORIES={alternates} " if alternates else ""
    return (
        f'env -i HOME="$g" XDG_CONFIG_HOME="$g" PATH=/usr/bin:/bin GIT_CONFIG_NOSYSTEM=1 '
        f'GIT_CONFIG_GLOBAL=/dev/null GIT_ATTR_NOSYSTEM=1 GIT_DIR="$g" GIT_WORK_TREE={workspace} '
        f"GIT_INDEX_FILE={index_file} GIT_OBJECT_DIRECTORY={objects} {extra}GIT_NO_REPLACE_OBJECTS=1 "
        "/usr/bin/git -c core.hooksPath=/dev/null -c core.quotepath=off -c core.fsmonitor=false "
        "-c core.splitIndex=false -c core.autocrlf=false -c core.safecrlf=false "
        "-c core.attributesFile=/dev/null -c core.excludesFile=/dev/null -c core.untrackedCache=false"
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
    index_sum: str = ""  # sha256 of the base index, held where the sandbox cannot change it
    max_bytes: int = PATCH_LIMIT
    max_files: int = PATCH_FILE_LIMIT

    def record(self, box: Runs, dirty: list[str] | None = None) -> str:
        """Store the starting state as a tree and return its id.

        `dirty`: the paths the host's git found differing from its index, when the workspace
        holds that index unchanged. Only those are hashed (their stat never matches the index),
        not the whole tree walked; a failure falls back to the walk.

        The index is kept in the control dir with its checksum held here, on the host: `diff`
        uses it only if it is still that index (a forged entry would put unseen content in).
        """
        index = f"{self.control_dir}/base.index"
        ws = self.workspace
        plain = trusted_git(index)
        git = isolated_git(ws, index, f"{ws}/.git/objects")
        # The copy kept mtimes and sizes, so the host index's hashes hold for unchanged files;
        # `cp -p` keeps the index's own mtime, which git's racy-entry check relies on.
        walk = f"{git} -c core.checkStat=minimal -c core.trustctime=false add -A"
        fill = walk
        settle = ""
        if dirty is not None:
            listing = base64.b64encode(b"".join(os.fsencode(name) + b"\0" for name in dirty)).decode()
            fill = (
                f"if ! printf %s {listing} | base64 -d | {git} update-index -z --add --remove --replace "
                f"--stdin; then {walk}; fi"
            )
            # Every entry now holds its file's content: the host's git checked the rest (racy
            # entries by content), and the dirty ones were hashed here. An index as old as the
            # files (a fresh clone's) would leave entries "racily clean" for good, and each diff's
            # `add -A` would hash and store those files again (thousands: seconds); dated now,
            # only a later change to a file is seen as one.
            settle = f"touch {index}; "
        script = (
            f"set -e; mkdir -p {self.control_dir}; cd {ws}; rm -f {index}; "
            f"if [ ! -d .git ]; then {plain} init -q; fi; mkdir -p .git/objects; {FRESH_GIT_DIR}"
            f"if [ -f .git/index ]; then cp -p .git/index {index}; fi; {fill}; "
            f'tree=$({git} write-tree); {plain} update-ref {BASE_REF} "$tree"; rm -rf "$g"; {settle}'
            f'echo "$tree $(sha256sum < {index} | cut -c1-64)"'
        )
        result = box.execute(["bash", "-c", script], timeout=600)
        found = result.output.strip().splitlines()[-1:] if result.exit_code == 0 else []
        fields = found[0].split() if found else []
        if len(fields) != 2 or len(fields[0]) < 40:
            raise SandboxError(
                f"cannot record the starting state in the sandbox: {result.output.strip()[-300:]}"
            )
        self.tree, self.index_sum = fields
        return self.tree

    def diff(self, box: Runs) -> str:
        """A binary-safe patch of every change since `record`, as `git apply` takes it.

        Computed in a fresh git dir: new content is hashed into its own object store (a blob
        the model planted under a false name in .git/objects is never taken for it), the base
        index is used only if its checksum still matches, and no config or attributes file
        the model could have written is read. Call it when no process of the model runs.
        """
        if self.tree is None:
            raise SandboxError("the sandbox has no starting state")
        ws = self.workspace
        git = isolated_git(ws, '"$g/index"', '"$g/objects"')
        reader = isolated_git(ws, '"$g/index"', '"$g/objects"', alternates=f"{ws}/.git/objects")
        patch = f"{self.control_dir}/patch.diff"
        # The index is compared with the base tree directly (`diff --cached`), not written as a
        # tree first: write-tree would write every directory's tree into the fresh object store
        # (2,000 of them in a 20,000-file repo: most of a second), since it finds none there.
        script = (
            f"set -e; cd {ws}; mkdir -p {self.control_dir}; rm -f {patch}; {FRESH_GIT_DIR}"
            f"if [ -f .git/info/exclude ] && [ ! -L .git/info/exclude ]; then "
            f'cp .git/info/exclude "$g/info/exclude"; fi; '
            f"if [ -f {self.control_dir}/base.index ] && "
            f'[ "$(sha256sum < {self.control_dir}/base.index | cut -c1-64)" = "{self.index_sum}" ]; then '
            f'cp -p {self.control_dir}/base.index "$g/index"; fi; '
            f"{git} -c core.checkStat=minimal -c core.trustctime=false add -A >/dev/null; "
            f"{reader} diff --cached --binary --full-index -M --no-color --no-ext-diff --no-textconv "
            f'--src-prefix=a/ --dst-prefix=b/ {self.tree} > "$g/patch.diff"; '
            f"files=$({reader} diff --cached --name-only -z --no-renames {self.tree} "
            '| tr -cd "\\0" | wc -c); '
            f'mv "$g/patch.diff" {patch}; rm -rf "$g"; echo "$(wc -c < {patch}) $files"'
        )
        result = box.execute(["bash", "-c", script], timeout=600, output_limit=4096)
        if result.exit_code != 0:
            raise SandboxError(
                f"cannot compute the patch (git exited with {result.exit_code}): {result.output.strip()[-200:]}"
            )
        sizes = (result.output.strip().splitlines() or [""])[-1].split()
        if len(sizes) == 2 and all(n.isdigit() for n in sizes):
            size, files = int(sizes[0]), int(sizes[1])
            if size > self.max_bytes or files > self.max_files:
                raise PatchTooLarge(
                    f"the changes make a patch of {size / 2**20:.1f} MiB in {files} files, over the limit of "
                    f"{self.max_bytes / 2**20:.0f} MiB and {self.max_files} files; no patch was written"
                )
        try:
            data = box.read_file(patch, max_bytes=self.max_bytes)
        except FileNotFoundError:
            raise SandboxError("cannot compute the patch (no patch file was written)") from None
        except OSError as err:
            raise SandboxError(f"cannot read the patch: {err}") from None
        # surrogateescape keeps non-UTF-8 bytes intact for writing the patch back out
        return data.decode("utf-8", "surrogateescape")
