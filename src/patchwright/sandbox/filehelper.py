"""The file helper: one long-lived Python process inside the sandbox that carries out file operations.

The host sends this file's text to `python3 -I -S -c` once per sandbox; after that, every
editor or search call is one request and one reply over the already open channel (no
process launch per call). Each operation resolves the path, checks it stays in the
workspace and reads or writes in the same step, here in the sandbox:

- The path is resolved (realpath) and refused unless it lies in the workspace.
- The file is then reached from the workspace's directory, one component at a time, each
  opened with O_NOFOLLOW relative to the one before; the leaf is opened (or created)
  relative to its parent's descriptor. A component swapped for a symlink between the check
  and the use makes the open fail: nothing is ever read or written outside the workspace.

Runs on the sandbox's python3 with the standard library only, isolated from the repository
(`-I`: no cwd or PYTHON* variables on the import path). Wire format, both ways: an ASCII
length, a newline, then that many bytes of JSON. Bytes travel as strings decoded with
surrogateescape (JSON keeps lone surrogates as escapes), so no byte is lost.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from typing import IO, Any

MAX_FILE_BYTES = 10 * 1024 * 1024
LISTING_LIMIT = 2000
MAX_SEARCH_OUTPUT = 256 * 1024


class Refused(Exception):
    """A request that cannot be carried out; its message goes back to the model."""


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def resolve(root: str, path: object) -> str:
    """The real path of `path` (relative to `root`, or absolute), or Refused saying why not."""
    if not isinstance(path, str) or not path.strip():
        raise Refused("`path` is required and must be a non-empty string")
    if "\0" in path:
        raise Refused("`path` must not contain NUL bytes")
    joined = os.path.normpath(os.path.join(root, path))
    if not _inside(joined, root):
        raise Refused(f"{path}: outside the workspace {root}; only files under {root} can be used")
    real = os.path.realpath(joined)
    if not _inside(real, root):
        raise Refused(f"{path}: resolves to {real}, outside the workspace {root} (a symlink leads out)")
    return real


def _open_dir(root: str, real_dir: str, create: bool) -> int:
    """A descriptor of `real_dir` reached from `root` without following any link; `create` makes
    missing folders on the way (as `mkdir -p`)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    rest = real_dir[len(root) :].strip("/")
    try:
        for name in rest.split("/") if rest else []:
            try:
                next_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(name, 0o777, dir_fd=fd)
                next_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as err:  # ENOTDIR, or ELOOP: a link where the check saw a folder
                raise Refused(
                    f"{real_dir}: a part of the path is not a folder, or changed while in use"
                ) from err
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _split(real: str) -> tuple[str, str]:
    parent, name = os.path.split(real)
    return parent, name


def kind_of(root: str, real: str) -> str:
    """ "missing", "directory", "file" or "other", seen without following a link at the leaf."""
    if real == root:
        return "directory"
    parent, name = _split(real)
    try:
        fd = _open_dir(root, parent, create=False)
    except (FileNotFoundError, Refused):
        return "missing"
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return "missing"
    finally:
        os.close(fd)
    if stat.S_ISDIR(info.st_mode):
        return "directory"
    if stat.S_ISREG(info.st_mode):
        return "file"
    return "other"


def read_bytes(root: str, real: str) -> bytes:
    """A regular file's bytes, opened in one step from its checked parent; Refused otherwise."""
    parent, name = _split(real)
    try:
        dir_fd = _open_dir(root, parent, create=False)
    except FileNotFoundError:
        raise Refused(f"{real} does not exist") from None
    try:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except FileNotFoundError:
            raise Refused(f"{real} does not exist") from None
        except IsADirectoryError:
            raise Refused(f"{real} is a directory; only `view` works on directories") from None
        except PermissionError:
            raise Refused(f"{real}: permission denied") from None
        except OSError as err:
            raise Refused(f"{real}: cannot open ({err.strerror}); it may be a link that changed") from None
    finally:
        os.close(dir_fd)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise Refused(f"{real} is a directory; only `view` works on directories")
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{real} is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise Refused(
                f"{real} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; use bash (head, sed -n) to read parts of it"
            )
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_bytes(root: str, real: str, data: bytes) -> None:
    """Create or replace a file's content in place (its mode kept), parents made as needed."""
    parent, name = _split(real)
    try:
        dir_fd = _open_dir(root, parent, create=True)
    except PermissionError:
        raise Refused(f"cannot write {real}: permission denied") from None
    try:
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666, dir_fd=dir_fd
        )
    except IsADirectoryError:
        raise Refused(f"{real} is a directory") from None
    except OSError as err:
        raise Refused(f"cannot write {real}: {err.strerror}") from None
    finally:
        os.close(dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused(f"{real} is not a regular file")
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as err:
        raise Refused(f"cannot write {real}: {err.strerror}") from None
    finally:
        os.close(fd)


def remove_file(root: str, real: str) -> None:
    parent, name = _split(real)
    dir_fd = _open_dir(root, parent, create=False)
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    finally:
        os.close(dir_fd)


def listing(root: str, real: str) -> list[str]:
    """Paths up to two levels below the folder `real`, hidden entries (and what is in them) left out."""
    found: list[str] = []

    def walk(fd: int, prefix: str, depth: int) -> None:
        with os.scandir(fd) as entries:
            names = sorted(entry.name for entry in entries)
        for name in names:
            if name.startswith("."):
                continue
            path = prefix + "/" + name
            found.append(path)
            if depth < 2:
                try:
                    child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except OSError:
                    continue
                try:
                    walk(child, path, depth + 1)
                finally:
                    os.close(child)

    fd = _open_dir(root, real, create=False)
    try:
        walk(fd, real.rstrip("/") or "/", 1)
    finally:
        os.close(fd)
    found.sort(key=lambda p: p.encode("utf-8", "surrogateescape"))
    return found[:LISTING_LIMIT]


# -- edits: the text transforms of the editor's commands, applied where the file is -----------


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def match_line_endings(text: str, fragment: str) -> str:
    """The model writes `\\n`; in a CRLF file that means `\\r\\n`."""
    if "\r\n" in text and "\r\n" not in fragment:
        return fragment.replace("\n", "\r\n")
    return fragment


def replace_once(text: str, old: str, new: str, path: str) -> tuple[str, int, str]:
    """`text` with `old` replaced by `new`; Refused unless `old` occurs exactly once.
    Returns (updated text, 0-based line of the change, the inserted text)."""
    old_m, new_m = match_line_endings(text, old), match_line_endings(text, new)
    count = text.count(old_m)
    if count == 0:
        raise Refused(
            f"No replacement was performed: old_str did not appear verbatim in {path}. "
            "View the file and copy the exact text, whitespace included."
        )
    if count > 1:
        starts: list[int] = []
        at = text.find(old_m)
        while at >= 0:
            starts.append(text.count("\n", 0, at) + 1)
            at = text.find(old_m, at + 1)
        raise Refused(
            f"No replacement was performed: old_str occurs {count} times in {path} (lines {starts}). "
            "Include more surrounding lines to make it unique."
        )
    at = text.find(old_m)
    return text[:at] + new_m + text[at + len(old_m) :], text.count("\n", 0, at), new_m


def insert_at(text: str, line: int, new: str) -> tuple[str, int]:
    """`text` with `new` inserted after line `line` (0: at the top). Returns (updated, lines inserted)."""
    lines = text.split("\n") if text else []
    if text.endswith("\n"):
        lines = lines[:-1]
    if not 0 <= line <= len(lines):
        raise Refused(f"insert_line {line} is outside 0..{len(lines)} (the file has {len(lines)} lines)")
    eol = "\r\n" if "\r\n" in text else "\n"
    fragment = match_line_endings(text, new).rstrip("\r\n").split(eol) if new else [""]
    body = [ln.rstrip("\r") if eol == "\r\n" else ln for ln in lines]
    merged = body[:line] + fragment + body[line:]
    return eol.join(merged) + (eol if text.endswith("\n") or not text else ""), len(fragment)


def read_text(root: str, real: str) -> str:
    data = read_bytes(root, real)
    if b"\0" in data[:8192]:
        raise Refused(f"{real} looks binary; the editor works on text files")
    return decode(data)


# -- requests ---------------------------------------------------------------------------------


def handle(root: str, request: dict[str, Any]) -> dict[str, Any]:
    """One request (a dict with "op" and its arguments) to one reply."""
    op = request.get("op")
    if op == "resolve":
        real = resolve(root, request.get("path"))
        return {"path": real, "kind": kind_of(root, real)}
    real = resolve(root, request.get("path"))
    if op == "view":
        kind = kind_of(root, real)
        if kind == "directory":
            return {"path": real, "kind": kind, "listing": listing(root, real)}
        return {"path": real, "kind": "file", "text": read_text(root, real)}
    if op == "read":
        return {"path": real, "data": decode(read_bytes(root, real))}
    if op == "write":  # create, or undo: the previous content comes back for the undo history
        kind = kind_of(root, real)
        if kind == "directory":
            raise Refused(f"{real} is a directory")
        previous = decode(read_bytes(root, real)) if kind == "file" else None
        write_bytes(root, real, encode(request.get("text", "")))
        return {"path": real, "previous": previous}
    if op == "remove":
        remove_file(root, real)
        return {"path": real}
    if op == "str_replace":
        text = read_text(root, real)
        updated, line, inserted = replace_once(text, request["old"], request["new"], real)
        write_bytes(root, real, encode(updated))
        return {
            "path": real,
            "previous": text,
            "text": updated,
            "line": line,
            "changed": inserted.count("\n"),
        }
    if op == "insert":
        text = read_text(root, real)
        updated, count = insert_at(text, request["line"], request["text"])
        write_bytes(root, real, encode(updated))
        return {"path": real, "previous": text, "text": updated, "line": request["line"], "changed": count}
    if op == "search":
        return search(real, request)
    raise Refused(f"unknown file operation {op!r}")


def search(real: str, request: dict[str, Any]) -> dict[str, Any]:
    """ripgrep over `real`, its output capped."""
    argv = ["rg", "--line-number", "--no-heading", "--color=never", "--max-columns=300"]
    argv += [f"--max-count={int(request.get('max_count', 200))}"]
    if request.get("ignore_case"):
        argv.append("--ignore-case")
    if isinstance(request.get("glob"), str):
        argv += ["--glob", request["glob"]]
    argv += ["--regexp", request["pattern"], "--", real]
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60
        )
    except FileNotFoundError:
        raise Refused("search failed: ripgrep (rg) is not installed in the sandbox") from None
    except subprocess.TimeoutExpired:
        raise Refused("search timed out after 60 s; narrow it with `path` or `glob`") from None
    return {"exit_code": done.returncode, "output": decode(done.stdout[:MAX_SEARCH_OUTPUT])}


def file_clock() -> float:
    """The sandbox's wall clock, which the kernel stamps files from: a file changed before this
    instant never gets a later ctime. (The kernel's stamp may be coarse, lagging by up to a
    scheduler tick, so a change within a few milliseconds after it may look earlier.)"""
    return time.time()


def serve(root: str, stdin: IO[bytes], stdout: IO[bytes]) -> None:
    while True:
        header = stdin.readline()
        if not header:
            return
        body = stdin.read(int(header))
        nonce = None
        try:
            request = json.loads(body)
            nonce = request.get("nonce")
            reply = {"ok": True, **handle(root, request)}
        except Refused as err:
            reply = {"ok": False, "error": str(err)}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            reply = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        reply["nonce"] = nonce  # the host takes only a reply that echoes its request's nonce
        reply["now"] = file_clock()  # the sandbox's file clock when the operation ended (late changes)
        data = json.dumps(reply).encode("ascii")
        stdout.write(b"%d\n" % len(data) + data)
        stdout.flush()


if __name__ == "__main__":
    serve(os.path.realpath(sys.argv[1]), sys.stdin.buffer, sys.stdout.buffer)
