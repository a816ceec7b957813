"""Settings to sandboxes (the one place naming Docker), and the run statuses' exit codes."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from patchwright.ci import is_ci
from patchwright.config import Settings
from patchwright.errors import ExitCode
from patchwright.sandbox.base import SandboxSpec
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.engine import container_options, setup_runs
from patchwright.sandbox.factory import DockerFactory, open_factory, sandbox_spec
from patchwright.services.spec import ServiceSpec
from patchwright.status import RunStatus, exit_code_for
from patchwright.workspace import open_workspace

from helpers import make_repo


@pytest.mark.parametrize(
    ("value", "ci"),
    [("true", True), ("1", True), ("on", True), ("yes", True), ("false", False), ("", False), ("off", False)],
)
def test_ci_is_told_by_the_ci_variable(value: str, ci: bool) -> None:
    assert is_ci({"CI": value}) is ci
    assert is_ci({}) is False


def test_ci_on_turns_snapshots_off_and_the_screen_plain_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """One rule for both: CI=on once left snapshots off while the display still acted interactive."""
    from patchwright.display import PlainDisplay, make_display

    monkeypatch.setenv("CI", "on")
    assert sandbox_spec(Settings(), "img").snapshots is False
    assert isinstance(make_display("text", False, True, is_ci({"CI": "on"})), PlainDisplay)


def test_snapshots_default_off_under_ci_and_a_choice_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert sandbox_spec(Settings(), "img").snapshots is False
    assert sandbox_spec(Settings(snapshots=True), "img").snapshots is True
    monkeypatch.delenv("CI")
    assert sandbox_spec(Settings(), "img").snapshots is True
    assert sandbox_spec(Settings(snapshots=False), "img").snapshots is False


def test_the_spec_carries_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("UNRELATED", "x")
    spec = sandbox_spec(Settings(network=True, memory="2g", pids_limit=64, setup="make deps"), "img")
    assert (spec.image, spec.network, spec.memory, spec.pids_limit, spec.setup_command) == (
        "img",
        True,
        "2g",
        64,
        "make deps",
    )
    assert spec.proxy_env == {"HTTPS_PROXY": "http://proxy.example:3128"}


def test_the_factory_makes_docker_sandboxes_per_run(sandbox_image: str, tmp_path: Path) -> None:
    factory = open_factory(Settings(image=sandbox_image), lambda line: None)
    ws = open_workspace(make_repo(tmp_path / "r", {"a.txt": "a\n"}))
    first, second = factory.create("run-1", ws, print), factory.create("run-1-verify", ws, print)
    assert isinstance(first, DockerSandbox) and isinstance(second, DockerSandbox)
    assert (first.spec.run_id, second.spec.run_id, first.spec.image) == (
        "run-1",
        "run-1-verify",
        sandbox_image,
    )
    # a run's recipe replayed instead of the settings' setup; the setup window left open on request
    replayed = factory.create("run-1-verify2", ws, print, setup_command="make deps", setup_repairable=True)
    assert isinstance(replayed, DockerSandbox) and factory.image == sandbox_image
    assert (replayed.spec.setup_command, replayed.spec.setup_repairable, first.spec.setup_repairable) == (
        "make deps",
        True,
        False,
    )


def test_exit_codes_of_the_statuses() -> None:
    assert exit_code_for(RunStatus.COMPLETED, True) == ExitCode.PATCHED
    assert exit_code_for(RunStatus.COMPLETED, False) == ExitCode.NO_CHANGES
    assert exit_code_for(RunStatus.REFUSED, False) == ExitCode.NO_CHANGES
    for limit in (RunStatus.MAX_STEPS, RunStatus.MAX_COST, RunStatus.TIMEOUT):
        assert limit.is_limit and exit_code_for(limit, True) == ExitCode.LIMIT
    assert not RunStatus.ERROR.is_limit
    # tests that could not run: exit 5 whether or not the model left a (then unproven) patch
    assert exit_code_for(RunStatus.ENVIRONMENT, True) == exit_code_for(RunStatus.ENVIRONMENT, False) == 5


def test_the_verification_line_says_before_and_after() -> None:
    from patchwright.fixer import verification_line
    from patchwright.verify import SuiteOutcome, Verification

    failing, passing = SuiteOutcome(1, False, "1 failed"), SuiteOutcome(0, False, "1 passed")
    assert verification_line(Verification("pytest", True, failing, passing)) == (
        "verification: tests failed (exit 1) before -> passed after: fixed, patch verified "
        "(the tests fail before and pass with the patch)"
    )
    assert "before -> the patch did not apply after: not_fixed, patch NOT verified" in verification_line(
        Verification("pytest", False, failing, None)
    )
    hung = SuiteOutcome(None, True, "")
    assert "timed out after: not_fixed, patch NOT verified" in verification_line(
        Verification("pytest", True, failing, hung)
    )
    # passing before and after proves nothing, and the line says so
    line = verification_line(Verification("pytest", True, passing, passing))
    assert "passed before -> passed after: not_reproduced, patch NOT verified" in line
    assert "no test shows the bug" in line
    own = verification_line(Verification("pytest", True, passing, passing, failing, ("test_x.py",)))
    assert "-> the patch's tests alone failed (exit 1) -> passed after: fixed" in own


def test_a_start_from_a_saved_state_replays_setup_only_with_services(tmp_path: Path) -> None:
    """The services' databases start empty in every sandbox, so what setup put there is put there
    again; without services a saved state is all setup left, and setup never runs twice."""
    client = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41")  # never called
    spec = SandboxSpec(image="img", run_id="r", setup_command="pip install -r requirements.txt")
    ws = open_workspace(make_repo(tmp_path / "r", {"a.txt": "a\n"}))
    plain = DockerFactory(client, spec)
    with_db = DockerFactory(client, spec, services=(ServiceSpec("redis", ("redis",), "redis"),))
    runs = {
        (name, restored): setup_runs(
            factory.create("r", ws, print, restore_from="/saved" if restored else None).spec  # type: ignore[attr-defined]
        )
        for name, factory in (("plain", plain), ("services", with_db))
        for restored in (False, True)
    }
    assert runs == {
        ("plain", False): True,
        ("plain", True): False,
        ("services", False): True,
        ("services", True): True,
    }
    replayed = with_db.create("r", ws, print, restore_from="/saved").spec  # type: ignore[attr-defined]
    # the replay has setup's network; a plain restore stays offline
    assert container_options(replayed, False, 1.0)["network_mode"] == "bridge"
    offline = plain.create("r", ws, print, restore_from="/saved").spec  # type: ignore[attr-defined]
    assert container_options(offline, False, 1.0)["network_mode"] == "none"
