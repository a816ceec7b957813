"""Project instruction files (CLAUDE.md, AGENTS.md): the repo's own rules, sent with the persona."""

from __future__ import annotations

from pathlib import Path

from patchwright.imports import expand_imports

project_instruction_files: tuple[str, ...] = ("CLAUDE.md", "AGENTS.md", ".claude/CLAUDE.md")

# Per file; instructions ride along in every request, so a runaway file must not swamp the prompt.
PROJECT_INSTRUCTIONS_MAX_BYTES = 40 * 1024


def _is_plain_file_in(repo: Path, relative: str) -> bool:
    """True if `relative` is a regular file reached without following any symlink.

    A repo could link CLAUDE.md to a secret outside it; that must never reach the model.
    """
    current = repo
    for part in Path(relative).parts:
        current = current / part
        if current.is_symlink():
            return False
    return current.is_file()


def _read_capped(path: Path, limit: int) -> str:
    """Read at most `limit` bytes of UTF-8 text, noting the cut if the file was longer."""
    with path.open("rb") as fh:
        raw = fh.read(limit + 1)
    if len(raw) <= limit:
        return raw.decode("utf-8", errors="replace")
    size = path.stat().st_size
    text = raw[:limit].decode("utf-8", errors="ignore")
    note = f"[truncated by patchwright: only the first {limit // 1024} KB of {size} bytes are included]"
    return f"{text.rstrip()}\n\n{note}"


def load_project_instructions(repo: Path) -> str | None:
    """Collect the repo's instruction files (CLAUDE.md, AGENTS.md, ...) for the prompt.

    Only regular files at the repo root count (no symlinks), each capped at 40 KB;
    unreadable or empty files are skipped. Returns None when there are none.
    """
    sections: list[str] = []
    for relative in project_instruction_files:
        if not _is_plain_file_in(repo, relative):
            continue
        try:
            text = _read_capped(repo / relative, PROJECT_INSTRUCTIONS_MAX_BYTES)
        except OSError:
            continue
        text = text.replace("\r\n", "\n").removeprefix("\ufeff").strip()
        text = expand_imports(text, repo, relative)  # CLAUDE.md `@path` imports (imports.py)
        if text:
            sections.append(f"# Project instructions from {relative}\n\n{text}")
    return "\n\n".join(sections) if sections else None
