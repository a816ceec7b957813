"""Project instruction files (CLAUDE.md, AGENTS.md): the repo's own rules, sent with the persona."""

from __future__ import annotations

from pathlib import Path

from patchwright.imports import expand_imports, imported_paths
from patchwright.saferead import plain_files_in, read_bytes

project_instruction_files: tuple[str, ...] = ("CLAUDE.md", "AGENTS.md", ".claude/CLAUDE.md")

# Per file; instructions ride along in every request, so a runaway file must not swamp the prompt.
PROJECT_INSTRUCTIONS_MAX_BYTES = 40 * 1024


def _read_capped(repo: Path, relative: str, limit: int) -> str | None:
    """At most `limit` bytes of the file as UTF-8 text, noting the cut if it was longer; None
    when it is not a regular file reached without following a symlink (saferead.py): a repo
    could link CLAUDE.md to a secret outside it, or `.claude` to a folder the model wrote."""
    raw = read_bytes(repo, relative, limit)
    if raw is None:
        return None
    if len(raw) <= limit:
        return raw.decode("utf-8", errors="replace")
    text = raw[:limit].decode("utf-8", errors="ignore")
    note = f"[truncated by patchwright: only the first {limit // 1024} KB are included]"
    return f"{text.rstrip()}\n\n{note}"


def load_project_instructions(repo: Path) -> str | None:
    """Collect the repo's instruction files (CLAUDE.md, AGENTS.md, ...) for the prompt.

    Only regular files at the repo root count (no symlinks), each capped at 40 KB;
    unreadable or empty files are skipped. Returns None when there are none.
    """
    sections: list[str] = []
    for relative in project_instruction_files:
        try:
            text = _read_capped(repo, relative, PROJECT_INSTRUCTIONS_MAX_BYTES)
        except OSError:
            continue
        if text is None:
            continue
        text = text.replace("\r\n", "\n").removeprefix("\ufeff").strip()
        text = expand_imports(text, repo, relative)  # CLAUDE.md `@path` imports (imports.py)
        if text:
            sections.append(f"# Project instructions from {relative}\n\n{text}")
    return "\n\n".join(sections) if sections else None


REPO_AGENT_FOLDERS = (".patchwright/agents", ".claude/agents")


def instruction_imports(repo: Path) -> set[str]:
    """Every repo-relative path that the current instruction files (CLAUDE.md, AGENTS.md, ...) and
    the repo's agent files import with `@path`, directly or not. A patch that changes one would
    steer the next run as surely as one that changes CLAUDE.md, so `--apply` refuses it."""
    found: set[str] = set()
    sources = list(project_instruction_files)
    for folder in REPO_AGENT_FOLDERS:
        try:
            sources += [f"{folder}/{name}" for name in plain_files_in(repo, folder, ".md")]
        except OSError:
            continue
    for relative in sources:
        try:
            text = _read_capped(repo, relative, PROJECT_INSTRUCTIONS_MAX_BYTES)
        except OSError:
            continue
        if text:
            found |= imported_paths(text.replace("\r\n", "\n"), repo, relative)
    return found
