"""Which files a partial patch holds, when the whole patch is past the limits.

The sandbox indexes the rename-free patch by its file sections (`grep -b '^diff --git '`:
each section's byte offset and header line, then an end line whose offset is the patch's
size). Here the sections are taken in patch order, which is git's path order, each whole
or not at all, as long as they fit the byte and file limits; a section that does not fit is
left out and the next one tried, so a single huge file does not cost all the rest. The
chosen byte ranges are then cut from the same patch, made again, by CUT_FILTER in the sandbox.

A `diff --git ` line only ever starts a section: content lines start with ` `, `+`, `-` or
`\\`, and a binary hunk's base85 alphabet has no space.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from patchwright.outputs import diff_header_paths

END = "diff --git END "  # the index's last line: the patch's size, and git's exit code after it


@dataclass(frozen=True)
class Section:
    """One file's part of the patch: bytes [start, end)."""

    start: int
    end: int
    path: str

    @property
    def size(self) -> int:
        return self.end - self.start


def parse_index(raw: bytes) -> tuple[list[Section], int | None]:
    """The sections of an index, and the patch's size (None when the index was cut short or git
    failed). A type change (file to symlink) is two sections of one path: they go together."""
    lines = raw.split(b"\n")
    if lines and lines[-1] != b"":
        lines.pop()  # cut short mid-line
    starts: list[tuple[int, str]] = []
    total: int | None = None
    for line in lines:
        offset, sep, header = line.partition(b":")
        if not sep or not offset.isdigit():
            continue
        text = header.decode("utf-8", "surrogateescape")
        if text.startswith(END):
            total = int(offset) if text[len(END) :].strip() == "0" else None
            break
        paths = diff_header_paths(text)
        starts.append((int(offset), paths[-1] if paths else text[len("diff --git ") :]))
    ends = [offset for offset, _ in starts[1:]] + ([total] if total is not None else [])
    sections: list[Section] = []
    for (start, path), end in zip(starts, ends, strict=False):
        if sections and sections[-1].path == path and sections[-1].end == start:
            sections[-1] = Section(sections[-1].start, end, path)
        else:
            sections.append(Section(start, end, path))
    return sections, total


@dataclass(frozen=True)
class Cut:
    taken: list[Section] = field(default_factory=list)
    left: list[Section] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(s.size for s in self.taken)

    def ranges(self) -> Iterator[tuple[int, int]]:
        """(start, length) of the taken bytes, neighbours merged."""
        start = end = -1
        for s in self.taken:
            if s.start != end:
                if end > start:
                    yield start, end - start
                start = s.start
            end = s.end
        if end > start:
            yield start, end - start


def choose(sections: list[Section], max_bytes: int, max_files: int) -> Cut:
    """Whole sections in order while they fit; one that does not is left out, the next tried."""
    cut = Cut()
    used = 0
    for section in sections:
        if len(cut.taken) < max_files and used + section.size <= max_bytes:
            cut.taken.append(section)
            used += section.size
        else:
            cut.left.append(section)
    return cut


# Copies the byte ranges named in argv[1] ("START LENGTH" lines, ascending) from stdin to stdout,
# checking each starts a section; exits 3 if the input ends early, 4 if a range is misplaced.
CUT_FILTER = """
import sys
src, out, pos = sys.stdin.buffer, sys.stdout.buffer, 0
def take(n, keep):
    global pos
    if n < 0:
        sys.exit(4)
    first = True
    while n:
        data = src.read(min(n, 1 << 20))
        if not data:
            sys.exit(3)
        if keep and first and not data.startswith(b"diff --git "):
            sys.exit(4)
        first = False
        if keep:
            out.write(data)
        n -= len(data)
        pos += len(data)
for line in open(sys.argv[1]):
    start, length = map(int, line.split())
    take(start - pos, False)
    take(length, True)
out.flush()
"""
