"""`@path` imports in CLAUDE.md (and AGENTS.md), expanded the way Claude Code does, within bounds.

Claude Code's memory docs: a CLAUDE.md can pull in other files with `@path/to/file`;
relative paths resolve from the importing file; imported files may import others, up to
five hops deep; `@` inside a code span or code block is not an import. (The Claude Code
memory page was not among the stored docs excerpts; the five-hop limit is as reproduced by
third-party loaders that follow it, e.g. the claude-agent crate's MAX_IMPORT_DEPTH = 5.)

The repository under review is untrusted, so patchwright is stricter than Claude Code:
only files inside the repository are read (no absolute or `~` paths, no `..` out of it,
no symlink anywhere on the way), each at most 40 KB and all imports together at most
100 KB; an import that does not qualify stays as plain text.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from patchwright.saferead import is_plain_file, read_bytes

MAX_DEPTH = 5
MAX_FILE_BYTES = 40 * 1024
MAX_TOTAL_BYTES = 100 * 1024
_IMPORT = re.compile(r"(?<![\w@`/])@([A-Za-z0-9_.][^\s`<>()\[\]{}\"']*)")
_TRAILING = ".,;:!?"


def expand_imports(text: str, repo: Path, relative: str, seen: set[str] | None = None) -> str:
    """`text` (the file at `relative` in `repo`) with each qualifying import's content
    inserted after the line that names it; the paths it read are added to `seen`."""
    budget = [MAX_TOTAL_BYTES]
    return _expand(text, repo, relative, [relative], budget, set() if seen is None else seen)


def imported_paths(text: str, repo: Path, relative: str) -> set[str]:
    """The repo-relative paths `text` (the file at `relative`) imports, directly or not: what the
    next run would put in its prompt, so what `--apply` must not let a patch change."""
    seen: set[str] = set()
    expand_imports(text, repo, relative, seen)
    return seen


def _expand(text: str, repo: Path, relative: str, stack: list[str], budget: list[int], seen: set[str]) -> str:
    out: list[str] = []
    in_fence = False
    for line in text.split("\n"):
        out.append(line)
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence or len(stack) > MAX_DEPTH:
            continue
        for target in _imports_in(line):
            path = _inside(repo, relative, target)
            if path is None or path in stack:
                continue
            content = _read(repo, path, budget)
            if content is None:
                continue
            seen.add(path)
            nested = _expand(content, repo, path, [*stack, path], budget, seen)
            out.append(f"<!-- imported from {path} -->\n{nested}\n<!-- end of {path} -->")
    return "\n".join(out)


def _imports_in(line: str) -> list[str]:
    """Import targets on a line, code spans left out."""
    outside_code = re.sub(r"`[^`]*`", " ", line)
    return [m.group(1).rstrip(_TRAILING) for m in _IMPORT.finditer(outside_code)]


def _inside(repo: Path, importer: str, target: str) -> str | None:
    """The repo-relative path `target` names from `importer`, or None when it leaves the repo."""
    if not target or target.startswith(("/", "~")) or "\\" in target or "\0" in target:
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(importer), target))
    if joined.startswith("../") or joined in ("..", ".") or posixpath.isabs(joined):
        return None
    try:
        return joined if is_plain_file(repo, joined) else None
    except OSError:
        return None


def _read(repo: Path, relative: str, budget: list[int]) -> str | None:
    allowed = min(MAX_FILE_BYTES, budget[0])
    if allowed <= 0:
        return None
    try:
        raw = read_bytes(repo, relative, allowed)
    except OSError:
        return None
    if raw is None:
        return None
    budget[0] -= min(len(raw), allowed)
    text = raw[:allowed].decode("utf-8", errors="replace").replace("\r\n", "\n")
    if len(raw) > allowed:
        text += f"\n[truncated by patchwright: {relative} is longer than {allowed // 1024} KB]"
    return text.strip()
