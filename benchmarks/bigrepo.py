"""A large, realistic git repository for the startup benchmark, generated once and cached.

20,000 files, about 120 MB in the working tree: ~19,950 small source-like text files
in nested directories (a few hundred bytes to ~40 KB each) and 50 binary blobs
(200 KB - 2 MB each, incompressible). All committed and packed (`git gc`) as a cloned
repo would be, then some work in progress: modified and deleted tracked files,
untracked files, and ignored files (a build/ folder, a .env) that must not be copied.

    python benchmarks/bigrepo.py         # generate (or reuse) and print its path and size
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _bench

VERSION = "v2"  # bump to regenerate when the recipe changes
N_FILES = 20_000
N_BLOBS = 50
TEXT_BYTES = 72 * 1024 * 1024
BLOB_BYTES = 48 * 1024 * 1024
REPO = _bench.CACHE_DIR / f"bigrepo-{VERSION}"
READY = _bench.CACHE_DIR / f"bigrepo-{VERSION}.ready"

_WORDS = [
    "self",
    "data",
    "value",
    "result",
    "config",
    "request",
    "response",
    "client",
    "server",
    "handler",
    "user",
    "item",
    "index",
    "count",
    "error",
    "name",
    "path",
    "buffer",
    "stream",
    "token",
    "session",
    "cache",
    "query",
    "record",
    "field",
    "entry",
    "node",
    "parent",
    "child",
    "state",
    "event",
    "message",
    "payload",
    "context",
    "options",
    "params",
    "args",
    "kwargs",
    "return",
    "import",
    "from",
    "def",
    "class",
    "if",
    "else",
    "for",
    "while",
    "try",
    "except",
    "with",
    "yield",
    "async",
    "await",
    "lambda",
    "None",
    "True",
    "False",
]
_EXTS = [".py"] * 6 + [".ts"] * 3 + [".go"] * 2 + [".md", ".json", ".yaml", ".sql", ".html"]
_BLOB_EXTS = [".png", ".jar", ".bin", ".sqlite", ".woff2", ".pdf"]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench", "-c", "gc.auto=0", *args],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _corpus(rng: random.Random, size: int) -> str:
    """Source-looking lines: indentation, identifiers, calls, string literals."""
    lines, total = [], 0
    while total < size:
        indent = "    " * rng.randint(0, 3)
        a, b, c = (rng.choice(_WORDS) + str(rng.randint(0, 999)) for _ in range(3))
        kind = rng.random()
        if kind < 0.3:
            line = f"{indent}{a} = {b}.{c}({rng.choice(_WORDS)}, {rng.randint(0, 99999)})"
        elif kind < 0.5:
            line = f'{indent}if {a} is not None and {b}["{c}"]:'
        elif kind < 0.65:
            line = f"{indent}def {a}_{c}({b}, {rng.choice(_WORDS)}={rng.randint(0, 9)}):"
        elif kind < 0.8:
            line = f'{indent}log.debug("{a} {b} {c} %s", {rng.choice(_WORDS)})'
        else:
            line = f"{indent}return {a} + {b} * {rng.randint(1, 50)}  # {c} {rng.choice(_WORDS)}"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def _text_sizes(rng: random.Random, n: int, total: int) -> list[int]:
    raw = [min(40_000, max(200, int(rng.lognormvariate(7.6, 0.9)))) for _ in range(n)]
    scale = total / sum(raw)
    return [max(120, min(48_000, int(s * scale))) for s in raw]


def _paths(rng: random.Random, n: int) -> list[str]:
    """~2,000 directories up to 5 deep (about 10 files each), as real source trees have."""
    tops = ["src", "lib", "services", "web", "docs", "tests", "tools", "pkg"]
    dirs = list(tops)
    while len(dirs) < 2_000:
        parent = rng.choice(dirs)
        if parent.count("/") < 4:
            dirs.append(f"{parent}/{rng.choice(_WORDS)}{rng.randint(0, 9)}")
    dirs = sorted(set(dirs))
    out: set[str] = set()
    while len(out) < n:
        out.add(f"{rng.choice(dirs)}/{rng.choice(_WORDS)}_{rng.randint(0, 99999)}{rng.choice(_EXTS)}")
    return sorted(out)


def generate(log=print) -> Path:  # type: ignore[no-untyped-def]
    if READY.exists() and (REPO / ".git").is_dir():
        return REPO
    started = time.monotonic()
    log(f"generating {REPO} (once; ~1-2 minutes)")
    shutil.rmtree(REPO, ignore_errors=True)
    READY.unlink(missing_ok=True)
    REPO.mkdir(parents=True)
    rng = random.Random(20_000)
    corpus = _corpus(rng, 24 * 1024 * 1024)
    n_text = N_FILES - N_BLOBS
    paths = _paths(rng, n_text)
    for path, size in zip(paths, _text_sizes(rng, n_text, TEXT_BYTES), strict=True):
        target = REPO / path
        target.parent.mkdir(parents=True, exist_ok=True)
        start = rng.randrange(0, len(corpus) - size)
        target.write_text(f"# {path}\n" + corpus[start : start + size])
    blob_sizes = [rng.randint(200_000, 2_000_000) for _ in range(N_BLOBS)]
    blob_sizes = [int(s * BLOB_BYTES / sum(blob_sizes)) for s in blob_sizes]
    for i, size in enumerate(blob_sizes):
        target = REPO / "assets" / f"group{i % 5}" / f"blob{i:03}{_BLOB_EXTS[i % len(_BLOB_EXTS)]}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rng.randbytes(size))
    (REPO / ".gitignore").write_text("build/\n*.log\n.env\nnode_modules/\n")
    _git(REPO, "init", "-q", "-b", "main")
    _git(REPO, "add", "-A")
    _git(REPO, "commit", "-qm", "initial import")
    _git(REPO, "gc", "-q")
    log(f"  committed and packed in {time.monotonic() - started:.0f} s")

    # Work in progress: what a user's repo looks like when they start a run.
    for path in rng.sample(paths, 12):
        with open(REPO / path, "a") as fh:
            fh.write("\n# work in progress\nx = compute(y)  # TODO\n")
    for path in rng.sample(paths, 3):
        (REPO / path).unlink()
    for i in range(20):
        target = REPO / "src" / "newfeature" / f"draft_{i}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(corpus[i * 3000 : i * 3000 + 2500])
    (REPO / ".env").write_text("API_TOKEN=must-not-enter-the-sandbox\n")
    (REPO / "debug.log").write_text("ignored\n" * 1000)
    for i in range(300):  # ignored build output: ~12 MB the copy must skip
        target = REPO / "build" / f"out{i % 10}" / f"chunk{i}.o"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rng.randbytes(40_000))
    READY.write_text(f"{VERSION}\n")
    log(f"  done in {time.monotonic() - started:.0f} s")
    return REPO


def describe(repo: Path) -> str:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    names = [n.decode() for n in listed if n and os.path.lexists(repo / n.decode())]
    tree = sum((repo / n).stat().st_size for n in set(names))
    git_bytes = sum(p.stat().st_size for p in (repo / ".git").rglob("*") if p.is_file())
    return (
        f"{len(set(names))} files to copy, {tree / 1e6:.0f} MB working tree + {git_bytes / 1e6:.0f} MB .git"
    )


if __name__ == "__main__":
    path = generate()
    print(path)
    print(describe(path))
    sys.exit(0)
