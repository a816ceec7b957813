"""The attempts settings: checked before anything starts, and not the repository's to raise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from patchwright.config import load_settings_checked
from patchwright.errors import ConfigError

from helpers import make_repo


def test_attempts_and_parallel_are_checked() -> None:
    with pytest.raises(ConfigError, match="attempts must be from 1 to 20"):
        load_settings_checked(None, Path("/nonexistent"), {}, {"attempts": 0})
    with pytest.raises(ConfigError, match="parallel must be at least 1"):
        load_settings_checked(None, Path("/nonexistent"), {}, {"parallel": 0})
    env = {"PATCHWRIGHT_ATTEMPTS": "3", "PATCHWRIGHT_UNTIL_FIXED": "1"}
    settings = load_settings_checked(None, Path("/nonexistent"), env, {}).settings
    assert settings.attempts == 3 and settings.until_fixed is True


def test_the_repository_may_not_raise_attempts_untrusted(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "r", {".patchwright/config.toml": "attempts = 5\nparallel = 4\nuntil_fixed = true\n"}
    )
    loaded = load_settings_checked(repo, tmp_path / "home", {}, {})
    assert loaded.settings.attempts == 1 and loaded.settings.parallel is None
    assert loaded.settings.until_fixed is True and loaded.ignored == ["attempts", "parallel"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--attempts", "0"], "attempts must be from 1 to 20"),
        (["--attempts", "2", "--resume", "20260101-000000-abcdef"], "cannot be combined with --attempts"),
        (["--attempt-of", "nonsense"], "expected RUN_ID:K"),
    ],
)
def test_bad_attempt_flags_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    repo = make_repo(tmp_path / "r", {"app.py": "x = 1\n"})
    env = {**os.environ, "ANTHROPIC_API_KEY": "sk-ant-test-0000000000"}
    result = subprocess.run(
        [sys.executable, "-m", "patchwright", "fix", "x", "--repo", str(repo), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agent: error:") and message in lines[0]


def test_default_parallel_is_a_core_and_a_sandbox_of_memory_each_and_one_until_fixed() -> None:
    from patchwright.attempts import default_parallel
    from patchwright.config import Settings

    cores = os.cpu_count() or 1
    assert default_parallel(Settings(memory="64m"), 50) == min(50, cores)
    assert default_parallel(Settings(memory="64m"), 1) == 1
    assert default_parallel(Settings(memory="64m", until_fixed=True), 5) == 1
    assert default_parallel(Settings(memory="100000g"), 5) == 1  # no room for two sandboxes


def test_an_attempts_settings_file_is_read_back_whole_and_checked(tmp_path: Path) -> None:
    import dataclasses
    import json

    from patchwright.attempts import load_attempt_settings
    from patchwright.config import Settings
    from patchwright.errors import UsageError

    folder = tmp_path / "attempt-1"
    folder.mkdir()
    wanted = Settings(max_cost=0.5, services=("postgres:15",), test_cmd="pytest -q", attempts=1)
    (folder / "settings.json").write_text(json.dumps(dataclasses.asdict(wanted)))
    assert load_attempt_settings(tmp_path, 1) == wanted
    (folder / "settings.json").write_text(json.dumps({"max_steps": 0}))
    with pytest.raises(ConfigError, match="max_steps"):
        load_attempt_settings(tmp_path, 1)
    (folder / "settings.json").write_text(json.dumps({"no_such": 1}))
    with pytest.raises(UsageError, match="not the settings of an attempt"):
        load_attempt_settings(tmp_path, 1)
