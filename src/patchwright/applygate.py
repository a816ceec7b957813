"""The `--apply` gate: what a model-made patch may never change on the host, and applying
one only when it is safe, within limits, and `git apply --check` accepts it whole.

Every refusal is one line; docs/security.md lists them.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from patchwright.hostgit import configless_env, run_git
from patchwright.instructions import instruction_imports
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


# A symlink with one of these names would let a later read of it be steered elsewhere.
NEVER_LINKS = frozenset({"pyproject.toml"})
STEERING = PROTECTED_DIRS | PROTECTED_FILES


@dataclass(frozen=True)
class GateRules:
    """What the user and the repository's current state add to the fixed rules: whether symlink
    changes may land (`--apply-symlinks`), the files the instruction files import (lowercased),
    and paths changed after the model's last command (lowercased; folders end in "/" and cover
    the files directly in them, "./" the top), which no tool result showed."""

    symlinks: bool = False
    imported: frozenset[str] = frozenset()
    unseen: frozenset[str] = frozenset()


def _path_problem(name: str, rules: GateRules) -> str | None:
    parts = name.split("/")
    lowered = [p.lower() for p in parts]
    if name.startswith("/") or ".." in parts:
        return f"{name}: path leaves the repository"
    if ".git" in lowered or ".patchwright" in lowered:
        return f"{name}: touches git internals or patchwright's own files"
    if STEERING & set(lowered):  # any part, the last included: `.claude` itself may not become a link
        return f"{name}: touches agent, instruction or git attribute files, which steer later runs"
    if name.lower() in rules.imported:
        return f"{name}: is imported by the repository's instruction or agent files, which steer later runs"
    folder = name.lower().rsplit("/", 1)[0] + "/" if "/" in name else "./"
    if name.lower() in rules.unseen or folder in rules.unseen:
        return f"{name}: changed after the model's last command, so no tool result showed the change"
    return None


def _link_problem(path: str, target: str, rules: GateRules) -> str | None:
    """Why a new or retargeted symlink `path -> target` may not land (None: it may)."""
    if not rules.symlinks:
        return f"{path}: creates or retargets a symlink (--apply-symlinks applies symlink changes)"
    if path.rsplit("/", 1)[-1].lower() in NEVER_LINKS:
        return f"{path}: would make {path} a symlink"
    parts = target.split("/")
    if target.startswith("/") or ".." in parts:
        # `..` is refused outright: the kernel follows each link before the `..` that comes after
        # it, so `l/..` is not `.` when `l` is itself a link (chains reach any folder).
        return f"{path}: symlink to {target} may point outside the repository (absolute or with `..`)"
    if STEERING & {p.lower() for p in parts} or parts[0].lower() in NEVER_LINKS:
        return f"{path}: symlink to {target} reaches agent, instruction or git files"
    return None


def patch_problems(patch: str, rules: GateRules | None = None) -> list[str]:
    """Why a model-made patch must not touch the host repo: .git or .patchwright paths,
    absolute or `..` paths, agent/instruction files and what they import, files changed unseen,
    gitlinks, and symlinks (new or retargeted) unless the user allows them, and then any whose
    target is absolute, has `..` or names a protected file."""
    rules = rules or GateRules()
    problems: list[str] = []
    path = ""
    symlink = False

    def check(name: str) -> None:
        problem = _path_problem(name, rules)
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
        elif (
            symlink
            and line.startswith("+")
            and not line.startswith("+++")
            and (problem := _link_problem(path, line[1:], rules)) is not None
        ):
            problems.append(problem)
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


def gate_rules(ws: Workspace, symlinks: bool = False, unseen: tuple[str, ...] = ()) -> GateRules:
    """The rules for this repository now: what its instruction and agent files import."""
    return GateRules(
        symlinks=symlinks,
        imported=frozenset(p.lower() for p in instruction_imports(ws.root)),
        unseen=frozenset(p.lower() for p in unseen),
    )


def apply_patch(ws: Workspace, patch_file: Path, rules: GateRules | None = None) -> ApplyResult:
    """Apply a patch to the host working tree, only if it is safe, within the size and file
    limits, and `git apply --check` accepts it whole. git runs no program the repo names."""
    rules = rules or gate_rules(ws)
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
    problems = patch_problems(text, rules) or config_problems(ws, text)
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
