"""A patch cut in two: the files that are tests and the files that are code.

The patch's own tests are the evidence that it fixes something: applied alone to the
original code they must fail, and with the whole patch they must pass. Which files are
tests is read from the path by the conventions test runners themselves use; the cut is
made at `diff --git` headers, a line at a time, so a large patch is never held whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from patchwright.outputs import HEADER_MAX, diff_header_paths

TEST_DIRS = frozenset({"tests", "test", "__tests__", "spec", "specs", "testing"})
_TEST_FILE = re.compile(
    r"""^(?:
        test_.+\.py | .+_test\.py | conftest\.py       # pytest
      | .+_test\.go                                    # go test
      | .+\.(?:test|spec)\.[cm]?[jt]sx?                # jest, vitest, mocha
      | .+_spec\.rb | .+Test\.java | .+Tests?\.cs | .+_test\.rs
    )$""",
    re.VERBOSE,
)


def is_test_path(path: str) -> bool:
    """Whether a repository path is a test by the usual conventions of its language."""
    parts = PurePosixPath(path).parts
    return bool(parts) and (bool(TEST_DIRS.intersection(parts[:-1])) or bool(_TEST_FILE.match(parts[-1])))


@dataclass
class SplitParts:
    """The two part files, and which paths went into each."""

    tests_file: Path
    code_file: Path
    tests: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)


def split_patch(patch: Path, tests_out: Path, code_out: Path) -> SplitParts:
    """Write the test files' diffs of the patch file `patch` to `tests_out`, the rest to `code_out`."""
    found = SplitParts(tests_out, code_out)
    with patch.open("rb") as src, tests_out.open("wb") as tests, code_out.open("wb") as code:
        target = code
        at_start = True
        while line := src.readline(HEADER_MAX):
            if at_start and line.startswith(b"diff --git "):
                paths = diff_header_paths(line.rstrip(b"\n").decode("utf-8", "surrogateescape"))
                # a rename into or out of a test folder is a test only if both sides are
                test = bool(paths) and all(is_test_path(p) for p in paths)
                (found.tests if test else found.code).append(paths[-1] if paths else "?")
                target = tests if test else code
            target.write(line)
            at_start = line.endswith(b"\n")
    return found
