"""The steps' plumbing: inputs to `agent fix` flags, outputs in GITHUB_OUTPUT's format, the
images' cache key, and the verdict the last step gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from patchwright.github.steps import Context, fix_argv, main, step_conclude, step_image_key
from patchwright.sandbox.image import default_image_tag
from patchwright.services.image import services_image_tag

from actionrunner import parse_outputs


def context(tmp_path: Path, **inputs: str) -> Context:
    env = {f"INPUT_{k.upper()}": v for k, v in inputs.items()}
    env.update(
        {"RUNNER_TEMP": str(tmp_path), "GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_WORKSPACE": "/ws"}
    )
    return Context(env)


def test_inputs_become_flags_and_extra_args_are_split_not_run(tmp_path: Path) -> None:
    ctx = context(
        tmp_path,
        model="opus",
        max_cost="2",
        test_cmd="python3 -m pytest -q",
        services="postgres:15, redis",
        trust_repo_config="true",
        extra_args="--max-continues 0 --setup 'pip install -e .; echo $(id)'",
    )
    argv = fix_argv(ctx, "/tmp/task.md")
    assert argv[:4] == [sys.executable, "-m", "patchwright", "fix"]
    assert argv[4:] == [
        "--repo", "/ws", "--task-file", "/tmp/task.md", "--format", "json",
        "--model", "opus", "--max-cost", "2", "--test-cmd", "python3 -m pytest -q",
        "--service", "postgres:15", "--service", "redis", "--trust-repo-config",
        "--max-continues", "0", "--setup", "pip install -e .; echo $(id)",
    ]  # fmt: skip
    assert "--no-services" in fix_argv(context(tmp_path, services="none"), "t")
    assert "--trust-repo-config" not in fix_argv(context(tmp_path, trust_repo_config="false"), "t")


def test_outputs_survive_newlines_and_lookalike_delimiters(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.output(status="completed", verified=True, patch="a\nEOF\nb=c", empty=None)
    assert parse_outputs(tmp_path / "out") == {
        "status": "completed",
        "verified": "true",
        "patch": "a\nEOF\nb=c",
        "empty": "",
    }


def test_the_cache_key_is_the_images_content_hashes(tmp_path: Path) -> None:
    step_image_key(context(tmp_path))
    step_image_key(context(tmp_path, services="postgres"))
    step_image_key(context(tmp_path, services="none"))
    workspace = tmp_path / "ws"
    (workspace / ".github" / "workflows").mkdir(parents=True)
    (workspace / ".github" / "workflows" / "ci.yml").write_text(
        "on: push\njobs:\n  t:\n    runs-on: x\n    services:\n      db:\n        image: postgres:15\n"
        "    steps:\n      - run: true\n"
    )
    step_image_key(Context({**context(tmp_path).env, "GITHUB_WORKSPACE": str(workspace)}))
    keys = [
        v
        for line in (tmp_path / "out").read_text().splitlines()
        if (v := line) and line.startswith("patchwright-images-")
    ]
    sandbox = default_image_tag().replace(":", "-")
    services = services_image_tag().replace(":", "-")
    assert keys == [
        f"patchwright-images-{sandbox}",
        f"patchwright-images-{sandbox}-{services}",
        f"patchwright-images-{sandbox}",
        f"patchwright-images-{sandbox}-{services}",  # the workflow's services, detected
    ]


def test_agent_sandbox_image_tag_prints_the_tags() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "patchwright", "sandbox", "image-tag", "--services"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [default_image_tag(), services_image_tag()]


@pytest.mark.parametrize(
    ("exit_code", "verified", "expected"),
    [(0, True, 0), (0, False, 1), (0, None, 1), (3, False, 3), (4, None, 4)],
)
def test_conclude_follows_the_exit_code_and_verified(
    tmp_path: Path, exit_code: int, verified: bool | None, expected: int
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text(
        json.dumps({"run_id": "r", "status": "completed", "exit_code": exit_code, "verified": verified})
    )
    ctx = context(tmp_path)
    ctx.save_state(exit_code=exit_code, run_dir=str(run_dir))
    assert step_conclude(ctx) == expected


def test_an_unknown_step_or_mode_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["nope"]) == 2
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path))
    monkeypatch.setenv("INPUT_MODE", "merge")
    assert main(["task"]) == 2
    assert "::error::mode must be one of patch, pr, comment, not merge" in capsys.readouterr().out
