"""Kept states after setup: the key follows the whole tree, a state is kept whole or not at all."""

from __future__ import annotations

import json
import os
from pathlib import Path

from patchwright.environment.reuse import SetupStates, state_key
from patchwright.sandbox.checkpoint import Checkpoint
from patchwright.workspace import open_workspace

from helpers import make_repo


def test_the_key_changes_with_any_file_and_with_the_setup(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"requirements.txt": "six\n", "app.py": "x = 1\n"})
    ws = open_workspace(repo)
    first = state_key(ws, "img:1", "pip install -r requirements.txt", "pytest")
    assert first == state_key(ws, "img:1", "pip install -r requirements.txt", "pytest")
    assert first != state_key(ws, "img:2", "pip install -r requirements.txt", "pytest")
    assert first != state_key(ws, "img:1", None, "pytest")
    (repo / "app.py").write_text("x = 22\n")
    assert state_key(ws, "img:1", "pip install -r requirements.txt", "pytest") != first
    (repo / "new.txt").write_text("untracked\n")
    second = state_key(ws, "img:1", "pip install -r requirements.txt", "pytest")
    (repo / "new.txt").unlink()
    assert second != state_key(ws, "img:1", "pip install -r requirements.txt", "pytest")


def test_a_fresh_checkout_of_the_same_commit_has_the_same_key(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"uv.lock": "version = 1\n", "app.py": "x = 1\n"})
    key = state_key(open_workspace(repo), "img", None, "pytest")
    os.utime(repo / "uv.lock", (1, 1))  # as a CI checkout stamps files anew
    assert state_key(open_workspace(repo), "img", None, "pytest") == key


def saved_state(folder: Path) -> Checkpoint:
    folder.mkdir()
    for name in ("workspace", "home"):
        (folder / f"{name}.tar").write_bytes(name.encode())
    return Checkpoint(folder)


def test_a_kept_state_is_found_and_taken_into_a_new_checkpoint(tmp_path: Path) -> None:
    states = SetupStates(tmp_path / "cache")
    assert states.find("k1") is None
    assert states.keep(
        "k1", saved_state(tmp_path / "run1"), {"tests_runnable": True, "recipe": ["make deps"]}
    )
    assert states.find("k1") == {"tests_runnable": True, "recipe": ["make deps"]}
    assert oct(os.stat(tmp_path / "cache").st_mode & 0o777) == "0o700"
    target = Checkpoint(tmp_path / "run2")
    assert states.take("k1", target) and target.complete
    assert (target.folder / "home.tar").read_bytes() == b"home"
    target.remove()  # the run's own copy goes; the kept one stays
    assert states.find("k1") is not None


def test_only_whole_states_of_runnable_tests_are_found(tmp_path: Path) -> None:
    states = SetupStates(tmp_path / "cache")
    assert not states.keep("k", Checkpoint(tmp_path / "missing"), {"tests_runnable": True})
    states.keep("bad", saved_state(tmp_path / "a"), {"tests_runnable": False})
    assert states.find("bad") is None
    states.keep("half", saved_state(tmp_path / "b"), {"tests_runnable": True})
    (tmp_path / "cache" / "half" / "home.tar").unlink()
    assert states.find("half") is None
    (tmp_path / "cache" / "odd").mkdir()
    (tmp_path / "cache" / "odd" / "environment.json").write_text(json.dumps([1]))
    assert states.find("odd") is None


def test_the_oldest_states_go_first(tmp_path: Path) -> None:
    states = SetupStates(tmp_path / "cache")
    for number in range(4):
        states.keep(f"k{number}", saved_state(tmp_path / f"s{number}"), {"tests_runnable": True})
        os.utime(tmp_path / "cache" / f"k{number}", (number, number))
    states.prune(keep=2)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["k2", "k3"]
