"""saferead.py: files of the repository read on the host without following any symlink."""

from __future__ import annotations

import os
from pathlib import Path

from patchwright.saferead import entries_in, is_plain_file, parts_of, plain_files_in, read_bytes, relative_in


def tree(root: Path) -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.md").write_text("plain\n")
    (root / "outside.md").write_text("secret\n")
    (root / "docs" / "leaf.md").symlink_to("../outside.md")
    (root / "linked").symlink_to("docs")
    os.mkfifo(root / "docs" / "pipe.md")
    return root


def test_a_plain_file_is_read_up_to_its_limit(tmp_path: Path) -> None:
    root = tree(tmp_path)
    assert read_bytes(root, "docs/a.md", 100) == b"plain\n"
    assert read_bytes(root, "docs/a.md", 2) == b"pla"  # limit + 1: the caller sees it is longer
    assert is_plain_file(root, ("docs", "a.md"))


def test_no_link_anywhere_on_the_path_is_followed(tmp_path: Path) -> None:
    root = tree(tmp_path)
    assert read_bytes(root, "docs/leaf.md", 100) is None  # the file is a link
    assert read_bytes(root, "linked/a.md", 100) is None  # a folder on the way is a link
    assert not is_plain_file(root, "docs/leaf.md") and not is_plain_file(root, "linked/a.md")


def test_fifos_are_never_opened_for_reading_and_missing_files_are_none(tmp_path: Path) -> None:
    root = tree(tmp_path)
    assert read_bytes(root, "docs/pipe.md", 100) is None  # no hang: O_NONBLOCK, then not regular
    assert read_bytes(root, "docs/none.md", 100) is None
    assert read_bytes(root, "docs/a.md/x", 100) is None


def test_listing_keeps_only_plain_files_and_refuses_a_linked_folder(tmp_path: Path) -> None:
    root = tree(tmp_path)
    assert plain_files_in(root, "docs", ".md") == ["a.md"]
    assert plain_files_in(root, "linked", ".md") == []


def test_paths_that_leave_the_root_are_refused() -> None:
    assert parts_of("../x") is None and parts_of("/etc/passwd") is None
    assert parts_of("a/b") == ("a", "b")
    assert relative_in(Path("/r"), Path("/r/.claude/agents/x.md")) == (".claude", "agents", "x.md")
    assert relative_in(Path("/r"), Path("/elsewhere/x.md")) is None


def test_entries_leave_out_links_and_special_files_and_never_enter_a_linked_folder(tmp_path: Path) -> None:
    root = tree(tmp_path)
    assert entries_in(root, "") == [("docs", True), ("outside.md", False)]  # `linked` is a link
    assert entries_in(root, "docs") == [("a.md", False)]  # not the link, not the FIFO
    assert entries_in(root, "linked") == []  # a folder reached through a link is as good as absent
    assert entries_in(root, "../x") == []  # nothing outside the repository
