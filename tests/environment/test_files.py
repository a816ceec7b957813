"""environment/files.py: the repository's files read as hostile input."""

from __future__ import annotations

from pathlib import Path

from patchwright.environment.files import MAX_FILE_BYTES, RepoFiles, join


def test_reads_regular_files_and_parses_them(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.yml").write_text("k: [1, 2]\n")
    (tmp_path / "p.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "d.json").write_text('{\n  // a comment\n  "url": "http://x//y"\n}\n')
    files = RepoFiles(tmp_path)
    assert files.yaml("a/x.yml") == {"k": [1, 2]}
    assert files.toml("p.toml") == {"project": {"name": "x"}}
    assert files.json("d.json") == {"url": "http://x//y"}
    assert files.exists("a/x.yml") and not files.exists("a")
    assert files.listdir("") == [("a", True), ("d.json", False), ("p.toml", False)]


def test_never_follows_a_symlink_anywhere_on_the_path(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host secret\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "dir").symlink_to(outside)
    (repo / "file.txt").symlink_to(outside / "secret.txt")
    files = RepoFiles(repo)
    assert files.text("dir/secret.txt") is None
    assert files.text("file.txt") is None
    assert files.head("file.txt") == ""
    assert not files.exists("file.txt")
    assert files.listdir("dir") == []
    assert files.listdir("") == []  # symlinks are neither files nor folders here
    assert files.text("../outside/secret.txt") is None
    assert files.text("/etc/passwd") is None


def test_oversized_and_malformed_files_become_notes(tmp_path: Path) -> None:
    (tmp_path / "big.yml").write_text("x" * (MAX_FILE_BYTES + 1))
    (tmp_path / "bad.yml").write_text("a: [\n")
    (tmp_path / "bombs.yml").write_text("a: &a [x]\n" + "".join(f"b{i}: *a\n" for i in range(300)))
    files = RepoFiles(tmp_path)
    assert files.yaml("big.yml") is None
    assert files.yaml("bad.yml") is None
    assert files.yaml("bombs.yml") is None
    assert len(files.notes) == 3
    assert files.head("big.yml", 10) == "x" * 10


def test_join_keeps_the_root_plain() -> None:
    assert join("", "a") == "a" and join(".", "a") == "a" and join("b", "a") == "b/a"
