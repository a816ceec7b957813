"""The starting state of a sandbox's workspace, and the patch of everything changed since.

Built only on what every backend offers (`execute` and `read_file`), so a new runtime
gets a correct, binary-safe diff for free. git runs as `trusted_git`: a fixed binary
and PATH, no user or system config, no hooks, an index of its own, so neither the
repository nor the model can redirect what the patch holds.

The patch never sits whole in the host's memory: it is written in the sandbox, then copied
out in pieces of PIECE bytes to a file on the host. Past the limits, a partial patch is cut
in the sandbox (patchcut.py chooses which files) and copied out the same way.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from patchwright.errors import ExitCode, OutputError, SandboxError
from patchwright.repocopy import nul_listing
from patchwright.sandbox.base import CommandResult, PatchFile
from patchwright.sandbox.patchcut import CUT_FILTER, choose, parse_index

BASE_REF = "refs/patchwright/base"
PATCH_LIMIT = 256 * 1024 * 1024  # bytes a patch may have; past it only a partial patch is written
PATCH_FILE_LIMIT = 20_000  # files one patch may change
PIECE = 16 * 1024 * 1024  # bytes copied out of the sandbox at a time (a multiple of 1 MiB)
INDEX_LIMIT = 16 * 1024 * 1024  # bytes of the section index read back to choose a partial patch
OBJECT_FORMATS = ("sha1", "sha256")
DIFF_OPTIONS = (
    "diff --binary --full-index --no-color --no-ext-diff --no-textconv --src-prefix=a/ --dst-prefix=b/"
)


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


# A git dir of patchwright's own, made afresh for each use in a new folder: no config but the
# object format ("$fmt", sha1 or sha256, written by patchwright), so no filter, textconv or
# fsmonitor program the repo or the model set in .git/config runs; no info/attributes, no hooks.
# The workspace's .git is only an object store to read (and, while recording, before the model's
# first command, to write). Made under /tmp, not the control dir, which the sandbox user could
# have turned into a link.
FRESH_GIT_DIR = (
    'g=$(mktemp -d "${TMPDIR:-/tmp}/pwgit.XXXXXX"); mkdir -p "$g/refs" "$g/objects" "$g/info"; '
    "echo 'ref: refs/heads/main' > \"$g/HEAD\"; "
    'if [ "$fmt" = sha256 ]; then printf \'[core]\\n\\trepositoryformatversion = 1\\n'
    '[extensions]\\n\\tobjectFormat = sha256\\n\' > "$g/config"; fi; '
)
_GIT_DIR = re.compile(r"/[\w./-]*/pwgit\.\w+")
_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


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
    object_format: str = "sha1"  # the repository's (git init --object-format=sha256); the fresh dirs use it
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
            listing = base64.b64encode(nul_listing(dirty)).decode()
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
            f"if [ ! -d .git ]; then {plain} init -q; fi; mkdir -p .git/objects; "
            f"fmt=$({plain} rev-parse --show-object-format 2>/dev/null || echo sha1); {FRESH_GIT_DIR}"
            f"if [ -f .git/index ]; then cp -p .git/index {index}; fi; {fill}; "
            f'tree=$({git} write-tree); {plain} update-ref {BASE_REF} "$tree"; rm -rf "$g"; {settle}'
            f'echo "$tree $(sha256sum < {index} | cut -c1-64) $fmt"'
        )
        result = box.execute(["bash", "-c", script], timeout=600)
        found = result.output.strip().splitlines()[-1:] if result.exit_code == 0 else []
        fields = found[0].split() if found else []
        if len(fields) != 3 or not _OBJECT_ID.fullmatch(fields[0]) or fields[2] not in OBJECT_FORMATS:
            raise SandboxError(
                f"cannot record the starting state in the sandbox: {result.output.strip()[-300:]}"
            )
        self.tree, self.index_sum, self.object_format = fields
        return self.tree

    def diff(self, box: Runs, dest: Path) -> PatchFile:
        """Write a binary-safe patch of every change since `record` to `dest`, as `git apply` takes it.

        Computed in a fresh git dir: new content is hashed into its own object store (a blob
        the model planted under a false name in .git/objects is never taken for it), the base
        index is used only if its checksum still matches, and no config or attributes file
        the model could have written is read. Past the limits, `dest` gets a partial patch.
        Call it when no process of the model runs.
        """
        if self.tree is None:
            raise SandboxError("the sandbox has no starting state")
        ws, ctl = self.workspace, self.control_dir
        git = isolated_git(ws, '"$g/index"', '"$g/objects"')
        reader = isolated_git(ws, '"$g/index"', '"$g/objects"', alternates=f"{ws}/.git/objects")
        patch, index = f"{ctl}/patch.diff", f"{ctl}/patch.index"
        # The index is compared with the base tree directly (`diff --cached`), not written as a
        # tree first: write-tree would write every directory's tree into the fresh object store
        # (2,000 of them in a 20,000-file repo: most of a second), since it finds none there.
        # Within the limits the -M patch is written (never more than max_bytes + 1 of it); past
        # them, an index of the rename-free patch's file sections, each `OFFSET:diff --git ...`,
        # ending in a line whose offset is the patch's size and which carries git's exit code.
        script = (
            f"set -e; cd {ws}; mkdir -p {ctl}; rm -f {patch} {index}; fmt={self.object_format}; "
            f"{FRESH_GIT_DIR}"
            f"if [ -f .git/info/exclude ] && [ ! -L .git/info/exclude ]; then "
            f'cp .git/info/exclude "$g/info/exclude"; fi; '
            f"if [ -f {ctl}/base.index ] && "
            f'[ "$(sha256sum < {ctl}/base.index | cut -c1-64)" = "{self.index_sum}" ]; then '
            f'cp -p {ctl}/base.index "$g/index"; fi; '
            f"{git} -c core.checkStat=minimal -c core.trustctime=false add -A >/dev/null; "
            f'files=$({reader} diff --cached --name-only -z --no-renames {self.tree} | tr -cd "\\0" | wc -c); '
            f'over=0; size=0; if [ "$files" -gt {self.max_files} ]; then over=1; else '
            f'{{ if {reader} {DIFF_OPTIONS} --cached -M {self.tree}; then echo 0 > "$g/rc"; else echo $? > "$g/rc"; fi; }} '
            f"| head -c {self.max_bytes + 1} > {patch}; size=$(wc -c < {patch}); "
            f'if [ "$size" -gt {self.max_bytes} ]; then over=1; '
            f'elif [ "$(cat "$g/rc")" != 0 ]; then echo "git diff failed"; exit 5; fi; fi; '
            f"if [ $over = 1 ]; then rm -f {patch}; "
            f"{{ if {reader} {DIFF_OPTIONS} --cached --no-renames {self.tree}; then rc=0; else rc=$?; fi; "
            f'echo "diff --git END $rc"; }} '
            f"| grep -a -b '^diff --git ' | head -c {INDEX_LIMIT} > {index}; "
            f'echo "over $files $g"; else rm -rf "$g"; echo "ok $size $files"; fi'
        )
        result = box.execute(["bash", "-c", script], timeout=600, output_limit=4096)
        fields = (result.output.strip().splitlines() or [""])[-1].split()
        if result.exit_code != 0 or not fields:
            raise SandboxError(
                f"cannot compute the patch (git exited with {result.exit_code}): {result.output.strip()[-200:]}"
            )
        if fields[0] == "ok" and len(fields) == 3 and all(n.isdigit() for n in fields[1:]):
            size, files = int(fields[1]), int(fields[2])
            self._copy_out(box, patch, size, dest)
            return PatchFile(dest, size, total_files=files, total_bytes=size)
        if fields[0] == "over" and len(fields) == 3 and fields[1].isdigit() and _GIT_DIR.fullmatch(fields[2]):
            gitdir = fields[2]
            try:
                return self._partial(box, int(fields[1]), gitdir, dest)
            finally:
                box.execute(["rm", "-rf", "--", gitdir], timeout=120)
        raise SandboxError(f"cannot compute the patch: {result.output.strip()[-200:]}")

    def _partial(self, box: Runs, files: int, gitdir: str, dest: Path) -> PatchFile:
        """The whole changes of the files that fit the limits, in path order, cut in the sandbox
        from the rename-free patch (git makes it again, the same bytes) and copied out."""
        ctl = self.control_dir
        try:
            raw = box.read_file(f"{ctl}/patch.index", max_bytes=INDEX_LIMIT)
        except OSError as err:
            raise PatchTooLarge(f"{self._over(files, None)}; no patch was written ({err})") from None
        sections, total = parse_index(raw)
        if total is None and len(raw) < INDEX_LIMIT:  # git failed, not a long index cut short
            raise PatchTooLarge(f"{self._over(files, None)}; no patch was written (git diff failed)")
        cut = choose(sections, self.max_bytes, self.max_files)
        patch = f"{ctl}/patch.diff"
        reader = isolated_git(
            self.workspace, '"$g/index"', '"$g/objects"', alternates=f"{self.workspace}/.git/objects"
        )
        ranges = "".join(f"{start} {length}\n" for start, length in cut.ranges())
        script = (
            f"set -e; g={gitdir}; cd {self.workspace}; cat > {ctl}/patch.ranges; "
            f"{reader} {DIFF_OPTIONS} --cached --no-renames {self.tree} "
            f"| env -i PATH=/usr/bin:/bin python3 -I -S -B -c {shlex.quote(CUT_FILTER)} {ctl}/patch.ranges "
            f"> {patch}; wc -c < {patch}"
        )
        size = 0
        if cut.taken:
            result = box.execute(
                ["bash", "-c", script], timeout=600, stdin=ranges.encode(), output_limit=4096
            )
            found = (result.output.strip().splitlines() or [""])[-1]
            if result.exit_code != 0 or found != str(cut.size):
                raise PatchTooLarge(
                    f"{self._over(files, total)}; no patch was written (the partial patch could not be cut: "
                    f"{result.output.strip()[-200:]})"
                )
            size = cut.size
            self._copy_out(box, patch, size, dest)
        else:
            _write_empty(dest)
        left = [s.path for s in cut.left[:LEFT_OUT_NAMED]]
        return PatchFile(
            dest, size, files, total, True, self._over(files, total), files - len(cut.taken), tuple(left)
        )

    def _over(self, files: int, size: int | None) -> str:
        measured = f"{_amount(size)} in " if size is not None else ""
        return (
            f"the changes make a patch of {measured}{files} files, over the limit of "
            f"{_amount(self.max_bytes)} and {self.max_files} files"
        )

    def _copy_out(self, box: Runs, path: str, size: int, dest: Path) -> None:
        """Copy `path` in the sandbox to `dest` PIECE bytes at a time, through a temporary file:
        the host holds one piece at a time, whatever the patch's size."""
        part = dest.with_name(f".{dest.name}.part")
        written = 0
        try:
            with part.open("wb") as out:
                for offset in range(0, size, PIECE):
                    data = self._piece(box, path, offset, size)
                    out.write(data)
                    written += len(data)
                    del data
            if written != size:
                raise SandboxError(f"cannot read the patch: {written} of {size} bytes came back")
            os.replace(part, dest)
        except OSError as err:
            raise OutputError(f"cannot write the patch to {dest}: {err.strerror or err}") from None
        finally:
            with contextlib.suppress(OSError):
                part.unlink(missing_ok=True)

    def _piece(self, box: Runs, path: str, offset: int, size: int) -> bytes:
        """PIECE bytes of `path` from `offset`: cut into a file of their own by dd, then read."""
        source = path
        if size > PIECE:
            source = f"{self.control_dir}/patch.piece"
            argv = ["dd", f"if={path}", f"of={source}", "bs=1M", f"skip={offset // 2**20}"]
            argv += [f"count={PIECE // 2**20}", "iflag=fullblock", "status=none"]
            cut = box.execute(argv, timeout=120, output_limit=4096)
            if cut.exit_code != 0:
                raise SandboxError(f"cannot read the patch: {cut.output.strip()[-200:]}")
        try:
            return box.read_file(source, max_bytes=PIECE)
        except FileNotFoundError:
            raise SandboxError("cannot compute the patch (no patch file was written)") from None
        except OSError as err:
            raise SandboxError(f"cannot read the patch: {err}") from None


def _amount(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size} bytes"


LEFT_OUT_NAMED = 20  # paths left out of a partial patch that the summary names


def _write_empty(dest: Path) -> None:
    try:
        dest.write_bytes(b"")
    except OSError as err:
        raise OutputError(f"cannot write the patch to {dest}: {err.strerror or err}") from None
