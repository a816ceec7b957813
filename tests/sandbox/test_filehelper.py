"""The file helper: confinement as the sandbox resolves paths, in one step with the read or write,
and one round trip per tool call over a channel opened once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from patchwright.sandbox import filehelper
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.engine import ContainerExec
from patchwright.sandbox.files import helper_argv
from patchwright.sandbox.local import LocalSandbox
from patchwright.tools import build_toolset

EDITOR = "str_replace_based_edit_tool"


@pytest.fixture
def root(tmp_path: Path) -> str:
    workspace = tmp_path / "workspace"
    (workspace / "pkg").mkdir(parents=True)
    (workspace / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "outside").mkdir()
    return str(workspace)


def test_a_folder_swapped_for_a_link_after_the_check_is_never_written_through(
    root: str, tmp_path: Path
) -> None:
    real = filehelper.resolve(root, "pkg/new.py")  # checked while pkg is a folder in the workspace
    os.rename(f"{root}/pkg", f"{root}/pkg-moved")
    os.symlink(tmp_path / "outside", f"{root}/pkg")  # then swapped, as a racing process would
    with pytest.raises(filehelper.Refused):
        filehelper.write_bytes(root, real, b"escaped")
    with pytest.raises(filehelper.Refused):
        filehelper.read_bytes(root, filehelper.resolve(root, "pkg-moved/a.py").replace("pkg-moved", "pkg"))
    assert list((tmp_path / "outside").iterdir()) == []


def test_a_file_swapped_for_a_link_is_not_followed(root: str, tmp_path: Path) -> None:
    real = filehelper.resolve(root, "pkg/a.py")
    secret = tmp_path / "outside" / "secret.txt"
    secret.write_text("secret\n")
    os.unlink(real)
    os.symlink(secret, real)
    with pytest.raises(filehelper.Refused):
        filehelper.read_bytes(root, real)
    with pytest.raises(filehelper.Refused):
        filehelper.write_bytes(root, real, b"overwritten")
    assert secret.read_text() == "secret\n"


def test_links_that_lead_out_are_refused_and_links_inside_are_followed(root: str, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside", f"{root}/out")
    os.symlink(f"{root}/pkg/a.py", f"{root}/alias.py")
    with pytest.raises(filehelper.Refused, match="a symlink leads out"):
        filehelper.resolve(root, "out/x")
    with pytest.raises(filehelper.Refused, match="outside the workspace"):
        filehelper.resolve(root, "../outside/x")
    assert filehelper.resolve(root, "alias.py") == f"{root}/pkg/a.py"


def test_a_fifo_is_refused_without_hanging(root: str) -> None:
    os.mkfifo(f"{root}/pipe")
    with pytest.raises(filehelper.Refused, match="not a regular file"):  # a plain open() would block
        filehelper.handle(root, {"op": "view", "path": "pipe"})


def test_the_helper_ignores_modules_planted_in_the_repository(root: str) -> None:
    Path(root, "json.py").write_text("raise SystemExit('hijacked')\n")
    request = b'{"op": "read", "path": "pkg/a.py"}'
    done = subprocess.run(
        [sys.executable, *helper_argv(root)[1:]],
        cwd=root,
        input=b"%d\n" % len(request) + request,
        capture_output=True,
        timeout=30,
    )
    assert b'"ok": true' in done.stdout and b"hijacked" not in done.stdout + done.stderr


def test_docker_editor_calls_launch_no_exec_in_the_steady_state(
    sandbox: DockerSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[list[str]] = []
    real_open = ContainerExec.open

    def counting_open(self: ContainerExec, argv: list[str], *args: object, **kwargs: object) -> object:
        launched.append(argv)
        return real_open(self, argv, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ContainerExec, "open", counting_open)
    tools = build_toolset(sandbox, "claude-sonnet-5-5", 30)
    tools.call(EDITOR, {"command": "view", "path": "app.py"})  # opens the helper once
    launched.clear()
    calls = [
        (EDITOR, {"command": "view", "path": "app.py"}),
        (EDITOR, {"command": "str_replace", "path": "app.py", "old_str": "a - b", "new_str": "a + b"}),
        (EDITOR, {"command": "create", "path": "notes/new.txt", "file_text": "hello\n"}),
        (EDITOR, {"command": "insert", "path": "notes/new.txt", "insert_line": 1, "insert_text": "more"}),
        (EDITOR, {"command": "view", "path": "."}),
        ("search_code", {"pattern": "def add"}),
        ("bash", {"command": "cat notes/new.txt"}),
    ]
    results = [tools.call(name, args) for name, args in calls]
    assert not [r.content for r in results if r.is_error]
    assert results[-1].content == "hello\nmore\n"
    assert launched == [], f"processes launched per call: {launched}"


def test_a_helper_killed_by_the_model_is_opened_again(box: LocalSandbox) -> None:
    tools = build_toolset(box, "claude-sonnet-5-5", 30)
    assert not tools.call(EDITOR, {"command": "view", "path": "app.py"}).is_error
    first = box._helper
    assert first is not None
    box.run(f"kill -KILL {first.pid}")
    first.wait(timeout=10)
    again = tools.call(EDITOR, {"command": "view", "path": "app.py"})
    assert not again.is_error and "def add" in again.content
    assert box._helper is not None and box._helper.pid != first.pid
