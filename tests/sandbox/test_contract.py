"""The contract every sandbox backend keeps (docs/architecture.md), run against each one.

A new backend joins the `backend` fixture's list and must pass all of this unchanged.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from patchwright.errors import SandboxError
from patchwright.sandbox.base import Sandbox, SandboxSpec, SetupFailed
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.local import LocalSandbox
from patchwright.workspace import open_workspace

from helpers import diff_text, git, make_repo

Make = Callable[..., Sandbox]  # (repo, setup command, repairable=False) -> a sandbox not yet started


@pytest.fixture(params=["local", "docker"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    """A function making a not-yet-started sandbox of one backend for a repo (and setup command)."""
    if request.param == "local":
        return lambda repo, setup, repairable=False: LocalSandbox(
            open_workspace(repo),
            tmp_path / "local-root",
            setup_command=setup,
            command_timeout=20,
            setup_repairable=repairable,
        )
    client: docker.DockerClient = request.getfixturevalue("docker_client")
    spec: SandboxSpec = request.getfixturevalue("spec")
    return lambda repo, setup, repairable=False: DockerSandbox(
        client,
        dataclasses.replace(spec, setup_command=setup, command_timeout=20, setup_repairable=repairable),
        open_workspace(repo),
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {"app.py": "print('hi')\n", "data.bin": bytes(range(256)), "docs/old.txt": "old\n"},
    )


@pytest.fixture
def started(backend: Make, repo: Path) -> Iterator[Sandbox]:
    box = backend(repo, None)
    result = box.start()
    assert result.setup is None
    try:
        yield box
    finally:
        box.stop()


def test_the_shell_keeps_cwd_and_exports_and_reports_exit_codes(started: Sandbox) -> None:
    assert started.run("cd docs && export CONTRACT=kept").exit_code == 0
    here = started.run('pwd; echo "$CONTRACT"; exit 7')
    assert here.output.split() == [f"{started.workdir}/docs", "kept"] and here.exit_code == 7
    ended = started.run("cd /; export SIGNALLED=yes; kill -TERM $$")  # ended by a signal: kept too
    assert ended.exit_code == 128 + 15 and ended.output == ""
    assert started.run('pwd; echo "$SIGNALLED"').output.split() == ["/", "yes"]
    started.restart_shell()
    assert started.run('pwd; echo "[$CONTRACT]"').output.split() == [started.workdir, "[]"]


def test_a_command_past_its_timeout_is_killed_and_the_shell_goes_on(started: Sandbox) -> None:
    slow = started.run("echo before; sleep 30", timeout=1)
    assert slow.timed_out and slow.exit_code is None and "before" in slow.output
    assert started.run("echo after").output.strip() == "after"


def test_execute_runs_in_the_workdir_without_the_shells_state(started: Sandbox) -> None:
    started.run("export ONLY_IN_SHELL=1; cd docs")
    result = started.execute(["bash", "-c", 'pwd; echo "[${ONLY_IN_SHELL:-}]"; cat'], stdin=b"from stdin")
    assert result.output.split() == [started.workdir, "[]", "from", "stdin"] and result.exit_code == 0
    capped = started.execute(["bash", "-c", "head -c 100000 /dev/zero | tr '\\0' x"], output_limit=1000)
    assert capped.truncated and capped.output_bytes == 100000 and len(capped.output) < 1200


def test_files_round_trip_as_bytes(started: Sandbox) -> None:
    path = f"{started.workdir}/new/deep/file.bin"
    data = b"\xff\xfe not utf-8 \r\n\0 end"
    started.write_file(path, data)
    assert started.read_file(path) == data
    assert started.read_file(f"{started.workdir}/data.bin") == bytes(range(256))
    with pytest.raises(FileNotFoundError):
        started.read_file(f"{started.workdir}/missing.txt")
    with pytest.raises(OSError):
        started.read_file(path, max_bytes=4)


def test_the_diff_is_every_change_and_applies_to_a_clean_clone(
    started: Sandbox, repo: Path, tmp_path: Path
) -> None:
    started.run("echo \"print('fixed')\" > app.py && rm docs/old.txt && printf '\\x00\\x01' > new.bin")
    started.write_file(f"{started.workdir}/added.txt", "caf\u00e9\n".encode())
    patch = diff_text(started)
    assert "app.py" in patch and "docs/old.txt" in patch and "GIT binary patch" in patch
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    subprocess.run(["git", "apply", "--binary", "-"], cwd=clone, input=patch.encode(), check=True)
    assert (clone / "app.py").read_text() == "print('fixed')\n"
    assert not (clone / "docs" / "old.txt").exists()
    assert (clone / "new.bin").read_bytes() == b"\x00\x01"
    assert (clone / "added.txt").read_text() == "caf\u00e9\n"
    assert git(repo, "status", "--porcelain") == ""  # the host repo was never touched


def test_an_unchanged_workspace_has_an_empty_diff(started: Sandbox) -> None:
    started.run("cat app.py > /dev/null")
    assert diff_text(started) == ""


def test_setup_output_comes_back_and_a_failed_setup_leaves_nothing(backend: Make, repo: Path) -> None:
    box = backend(repo, "echo preparing; ls app.py; echo made > by_setup.txt")
    result = box.start()
    try:
        assert result.setup is not None and result.setup.exit_code == 0
        assert result.setup.output == "preparing\napp.py\n"
        assert diff_text(box) == ""  # what setup leaves is the starting state
    finally:
        box.stop()
    failing = backend(repo, "echo half way; exit 3")
    with pytest.raises(SetupFailed) as caught:
        failing.start()
    assert caught.value.result.exit_code == 3 and caught.value.result.output == "half way\n"
    failing.stop()  # safe after a failed start, and again
    failing.stop()


def test_a_repairable_setup_stays_open_until_finished(backend: Make, repo: Path) -> None:
    box = backend(repo, "echo half way; exit 3", repairable=True)
    try:
        result = box.start()  # the failure comes back instead of ending the start
        assert result.setup is not None and result.setup.exit_code == 3
        repaired = box.setup_run("echo repaired > by_repair.txt; echo $((6 * 7))")
        assert repaired.exit_code == 0 and repaired.output == "42\n"
        assert box.setup_run("cat by_repair.txt").output == "repaired\n"  # each sees what the last left
        box.finish_setup()
        box.finish_setup()  # safe twice
        with pytest.raises(SandboxError):
            box.setup_run("true")
        assert box.run("cat by_repair.txt").output.strip() == "repaired"
        assert diff_text(box) == ""  # what the repair left is the starting state
        box.run("echo changed >> app.py")
        assert "+changed" in diff_text(box)
    finally:
        box.stop()


def test_finish_setup_after_a_closed_start_does_nothing(started: Sandbox) -> None:
    started.run("echo x > new.txt")
    started.finish_setup()
    assert "new.txt" in diff_text(started)  # the starting state was not taken again
