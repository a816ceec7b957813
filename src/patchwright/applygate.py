"""The `--apply` gate: what a model-made patch may never change on the host, and applying
one only when it is safe, within limits, and `git apply --check` accepts it whole.

Every refusal is one line; docs/security.md lists them.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from patchwright.hostgit import configless_env, run_git
from patchwright.outputs import diff_header_paths, files_in_patch
from patchwright.workspace import Workspace


@dataclass(frozen=True)
class ApplyResult:
    applied: bool
    message: str


# Paths a model-made patch must never change on the host: each would let the model instruct,
# configure or re-point the next run (agent and instruction files, patchwright's config) or
# change what git itself does with the tree. Compared case-insensitively (macOS, Windows).
PROTECTED_DIRS = frozenset({".git", ".patchwright", ".claude", ".cursor", ".windsurf"})
PROTECTED_FILES = frozenset(
    {
        "claude.md",
        "claude.local.md",
        "agents.md",
        "gemini.md",
        ".cursorrules",
        ".windsurfrules",
        ".clinerules",
        "copilot-instructions.md",
        ".gitattributes",
        ".gitmodules",
    }
)
MAX_APPLY_BYTES = 50 * 1024 * 1024  # a patch for a human to review, not a data dump
MAX_APPLY_FILES = 2000


def _path_problem(name: str) -> str | None:
    parts = name.split("/")
    lowered = [p.lower() for p in parts]
    if name.startswith("/") or ".." in parts:
        return f"{name}: path leaves the repository"
    if ".git" in lowered or lowered[0] == ".patchwright":
        return f"{name}: touches git internals or patchwright's own files"
    if PROTECTED_DIRS & set(lowered[:-1]) or lowered[-1] in PROTECTED_FILES:
        return f"{name}: touches agent, instruction or git attribute files, which steer later runs"
    return None


def patch_problems(patch: str) -> list[str]:
    """Why a model-made patch must not touch the host repo: .git or .patchwright paths,
    absolute or `..` paths, agent/instruction files, gitlinks, and symlinks (new or retargeted)
    that point outside the repository."""
    problems: list[str] = []
    path = ""
    symlink = False

    def check(name: str) -> None:
        problem = _path_problem(name)
        if problem:
            problems.append(problem)

    for line in patch.splitlines():
        if line.startswith("diff --git "):
            symlink = False
            targets = diff_header_paths(line)
            path = targets[-1] if targets else ""
            if not targets:
                problems.append(f"{line[:120]!r}: a diff header patchwright cannot read")
            for name in dict.fromkeys(targets):
                check(name)
        elif line.startswith(("rename to ", "copy to ", "rename from ", "copy from ")):
            check(line.split(" ", 2)[2])
        elif line.startswith(("new file mode ", "new mode ")):
            mode = line.rsplit(" ", 1)[-1]
            symlink = mode == "120000"
            if mode == "160000":
                problems.append(f"{path}: adds a submodule link")
        elif line.startswith("index ") and line.endswith(" 120000"):
            symlink = True  # an existing symlink whose target changes
        elif line.startswith("index ") and line.endswith(" 160000"):
            problems.append(f"{path}: changes a submodule link")
        elif symlink and line.startswith("GIT binary patch"):
            problems.append(f"{path}: a symlink target in binary form")
        elif symlink and line.startswith("+") and not line.startswith("+++"):
            target = line[1:]
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                problems.append(f"{path}: symlink to {target} points outside the repository")
    return problems


def _file_section(patch: str, name: str) -> str:
    """The part of `patch` that changes `name` (from its `diff --git` line to the next)."""
    out: list[str] = []
    inside = False
    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git "):
            inside = name in diff_header_paths(line.rstrip("\n"))
        if inside:
            out.append(line)
    return "".join(out)


def _patchwright_table(text: str | None) -> object:
    if text is None:
        return None
    import tomllib

    return tomllib.loads(text).get("tool", {}).get("patchwright")


def config_problems(ws: Workspace, patch: str) -> list[str]:
    """A patch that changes `[tool.patchwright]` in the root pyproject.toml (the repo's
    patchwright settings) is refused, like one touching .patchwright/config.toml."""
    section = _file_section(patch, "pyproject.toml")
    if not section:
        return []
    current = ws.root / "pyproject.toml"
    with tempfile.TemporaryDirectory() as scratch:
        before: str | None = None
        if current.is_file() and not current.is_symlink():
            before = current.read_text(errors="replace")
            Path(scratch, "pyproject.toml").write_text(before)
        Path(scratch, "p.diff").write_text(section)
        applied = subprocess.run(
            ["git", "-c", "core.hooksPath=/dev/null", "apply", "p.diff"],
            cwd=scratch,
            capture_output=True,
            env={
                **configless_env(),
                "GIT_CEILING_DIRECTORIES": os.path.dirname(scratch),
            },  # no repo: plain patch
        )
        if applied.returncode != 0:
            return []  # git apply --check on the repo reports it
        after_path = Path(scratch, "pyproject.toml")
        after = after_path.read_text(errors="replace") if after_path.exists() else None
    try:
        changed = _patchwright_table(before) != _patchwright_table(after)
    except ValueError:
        changed = True
    return ["pyproject.toml: changes [tool.patchwright], patchwright's own settings"] if changed else []


def apply_patch(ws: Workspace, patch_file: Path) -> ApplyResult:
    """Apply a patch to the host working tree, only if it is safe, within the size and file
    limits, and `git apply --check` accepts it whole. git runs no program the repo names."""
    size = patch_file.stat().st_size
    if size > MAX_APPLY_BYTES:
        return ApplyResult(
            False,
            f"patch not applied: it is {size / 2**20:.1f} MiB, over the --apply limit of "
            f"{MAX_APPLY_BYTES // 2**20} MiB",
        )
    text = patch_file.read_text(errors="surrogateescape")
    count = len(files_in_patch(text))
    if count > MAX_APPLY_FILES:
        return ApplyResult(
            False, f"patch not applied: it changes {count} files, over the --apply limit of {MAX_APPLY_FILES}"
        )
    problems = patch_problems(text) or config_problems(ws, text)
    if problems:
        return ApplyResult(
            False,
            f"patch not applied: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
        )
    check = run_git(ws.root, "apply", "--check", "--binary", "--", str(patch_file))
    if check.returncode != 0:
        first = (check.stderr.decode(errors="replace").strip().splitlines() or [""])[0]
        return ApplyResult(False, f"patch does not apply cleanly: {first}")
    done = run_git(ws.root, "apply", "--binary", "--", str(patch_file))
    if done.returncode != 0:
        return ApplyResult(False, f"git apply failed: {done.stderr.decode(errors='replace').strip()}")
    stat = run_git(ws.root, "apply", "--stat", "--", str(patch_file)).stdout.decode(errors="replace").strip()
    return ApplyResult(True, f"applied to {ws.root}:\n{stat}")
