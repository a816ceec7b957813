"""Run outputs: redaction, the trajectory, atomic files, the summary, paths in a patch.
No network, no Docker: plain files in tmp_path and real git."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchwright.errors import ExitCode, OutputError
from patchwright.outputs import (
    REDACTED,
    Redactor,
    RunSummary,
    TrajectoryWriter,
    files_in_patch,
    read_trajectory,
    write_summary,
    write_text_file,
)

from helpers import git

# --------------------------------------------------------------------------- Redactor


SECRETS = {
    "anthropic key": "sk-ant-api03-AbCdEf_gh-1234567890xyz",
    "github classic": "ghp_" + "A1b2C3d4E5" * 4,
    "github fine-grained": "github_pat_" + "11ABCDEFG0" * 3,
    "aws key id": "AKIAIOSFODNN7EXAMPLE",
    "aws secret, any case": "AWS_Secret_Access_Key = wJalrXUtnFEMI/K7MDENG",
    "stripe": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "slack": "xoxb-" + "1234567890-abcdefghij",
    "slack hook": "https://hooks.slack.com/services/T000/B000/XXXX",
    "bearer, any case": "BEARER abcdefghijklmnopqrstuvwx",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY.SflKxwRJSMeKKF2QT4fw",
    "sendgrid": "SG." + "a" * 22 + "." + "b" * 43,
    "private key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\nQyNTUxOQAAACB\n"
    "-----END OPENSSH PRIVATE KEY-----",
}


@pytest.mark.parametrize("name", list(SECRETS))
def test_redactor_replaces_known_secret_shapes(name: str) -> None:
    secret = SECRETS[name]
    out = Redactor().text(f"before {secret} after")
    assert out == f"before {REDACTED} after"


def test_every_secret_shape_has_a_hint_that_each_sample_holds() -> None:
    """A shape is searched for only where one of its literal hints is in the text: each sample
    must hold its shape's hint, or the shortcut would let it through."""
    from patchwright.outputs import _SECRET_HINTS, _SECRET_PATTERNS

    for secret in SECRETS.values():
        matching = [i for i, pattern in enumerate(_SECRET_PATTERNS) if pattern.search(secret)]
        assert matching, secret
        for i in matching:
            hints, folded = _SECRET_HINTS[i]
            assert any(hint in (secret.lower() if folded else secret) for hint in hints), (secret, hints)


def test_redactor_replaces_bearer_tokens() -> None:
    out = Redactor().text("curl -H 'Authorization: Bearer abcDEF123456789.xyz_-~+/=' https://x")
    assert out == f"curl -H 'Authorization: {REDACTED}' https://x"
    assert "abcDEF" not in Redactor().text("authorization: bearer abcDEF1234567890abcd")


def test_redactor_leaves_ordinary_text_alone() -> None:
    ordinary = (
        "def add(a, b):\n    return a - b  # the key is to return a + b\n"
        "The bearer of bad news asked for a token. sk-ant-short AKIA123 ghp_short "
        "-----BEGIN CERTIFICATE----- stays."
    )
    assert Redactor().text(ordinary) == ordinary


def test_redactor_replaces_exact_values_of_secret_env_vars() -> None:
    env = {
        "MY_SERVICE_TOKEN": "plain-looking-value-1",
        "DB_KEY": "correcthorsebattery",
        "DB_KEY_OLD": "correcthorsebattery99",  # longer, containing the other: replaced whole
        "SHORT_TOKEN": "abc",  # too short to redact safely
        "HOME": "/home/someone/projects",
        "EDITOR": "vim-editor-long",
    }
    redactor = Redactor.from_environment(env)
    assert set(redactor.values) == {"correcthorsebattery99", "plain-looking-value-1", "correcthorsebattery"}
    assert redactor.values[-1] == "correcthorsebattery"  # longest first, so no value is half-replaced
    text = (
        "a plain-looking-value-1 b correcthorsebattery99 c correcthorsebattery d abc /home/someone/projects"
    )
    assert redactor.text(text) == f"a {REDACTED} b {REDACTED} c {REDACTED} d abc /home/someone/projects"
    assert redactor.text("vim-editor-long") == "vim-editor-long"


def test_redactor_from_the_real_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHWRIGHT_TEST_SECRET_TOKEN", "value-only-in-the-env-42")
    assert Redactor.from_environment().text("x value-only-in-the-env-42 y") == f"x {REDACTED} y"


def test_redactor_redacts_nested_data() -> None:
    key = SECRETS["anthropic key"]
    data = {
        "command": f"export KEY={key}",
        "nested": [{"deep": ("ok", key)}, 3, None, True, 2.5],
        key: "keys are left as they are",
    }
    out = Redactor().data(data)
    assert out == {
        "command": f"export KEY={REDACTED}",
        "nested": [{"deep": ["ok", REDACTED]}, 3, None, True, 2.5],
        key: "keys are left as they are",
    }
    assert data["command"] == f"export KEY={key}"  # the input is not modified


# --------------------------------------------------------------------------- trajectory


def test_trajectory_writer_writes_redacted_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "r1" / "trajectory.jsonl"  # parents created on first write
    writer = TrajectoryWriter(path, Redactor(["my-own-secret-value"]))
    writer.write("tool_call", id="toolu_1", input={"command": f"echo {SECRETS['github classic']}"})
    writer.write("tool_result", content="printed my-own-secret-value\nand ünïcödé", is_error=False)
    # Flushed as it goes: readable before close.
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    writer.close()
    writer.close()  # twice is fine

    records = [json.loads(line) for line in lines]
    assert records[0]["event"] == "tool_call"
    assert records[0]["input"] == {"command": f"echo {REDACTED}"}
    assert records[1] == {
        "ts": records[1]["ts"],
        "event": "tool_result",
        "content": f"printed {REDACTED}\nand ünïcödé",
        "is_error": False,
    }
    assert isinstance(records[1]["ts"], float)
    assert read_trajectory(path) == records


def test_trajectory_writer_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    for n in range(2):
        writer = TrajectoryWriter(path, Redactor())
        writer.write("run_start", n=n)
        writer.close()
    assert [r["n"] for r in read_trajectory(path)] == [0, 1]


def test_trajectory_writer_unwritable_path_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    writer = TrajectoryWriter(blocker / "trajectory.jsonl", Redactor())
    with pytest.raises(OutputError, match="cannot write the trajectory") as caught:
        writer.write("run_start")
    assert caught.value.exit_code == ExitCode.INFRA


def test_read_trajectory_skips_a_half_written_last_line(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    writer = TrajectoryWriter(path, Redactor())
    writer.write("message", role="user", content=[{"type": "text", "text": "task"}])
    writer.write("request", step=1)
    writer.close()
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"ts": 1.0, "event": "response", "content": [{"type": "te')
    records = read_trajectory(path)
    assert [r["event"] for r in records] == ["message", "request"]


# --------------------------------------------------------------------------- write_text_file


def test_write_text_file_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "out" / "patch.diff"
    write_text_file(path, "first version\n")
    assert path.read_text() == "first version\n"
    with path.open() as old:
        write_text_file(path, "second version\n")
        # A rename, not an overwrite in place: a reader of the old file sees it whole.
        assert old.read() == "first version\n"
    assert path.read_text() == "second version\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["patch.diff"]  # no temp file left


def test_write_text_file_keeps_undecodable_bytes(tmp_path: Path) -> None:
    raw = b"binary \xff\xfe in a patch\n"
    path = tmp_path / "patch.diff"
    write_text_file(path, raw.decode("utf-8", "surrogateescape"))
    assert path.read_bytes() == raw


def test_write_text_file_unwritable_dir_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        write_text_file(blocker / "sub" / "summary.json", "{}")
    assert blocker.read_text() == "x"


def test_write_text_file_failed_replace_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OutputError, match=str(target)):
        write_text_file(target, "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    assert (target / "keep").read_text() == "x"


def test_write_summary_is_redacted_json(tmp_path: Path) -> None:
    summary = RunSummary(
        run_id="r1",
        status="completed",
        exit_code=0,
        repo="/repo",
        run_dir="/repo/.patchwright/runs/r1",
        model="claude-sonnet-5-5",
        agent="backend-developer",
        task=f"use key {SECRETS['aws key id']}",
        files_changed=["app.py"],
        cost_usd=0.5,
    )
    path = tmp_path / "summary.json"
    write_summary(path, summary, Redactor())
    data = json.loads(path.read_text())
    assert data["task"] == f"use key {REDACTED}"
    assert data["files_changed"] == ["app.py"]
    assert data["cost_usd"] == 0.5
    assert set(data) == set(summary.as_dict())


# --------------------------------------------------------------------------- files_in_patch


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "keep.py").write_text("x = 1\n")
    (root / "gone.py").write_text("y = 2\n")
    (root / "old_name.py").write_text("".join(f"line {n}\n" for n in range(30)))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


def test_files_in_patch_new_deleted_renamed_and_modified(repo: Path) -> None:
    (repo / "keep.py").write_text("x = 2\n")
    (repo / "gone.py").unlink()
    (repo / "old_name.py").rename(repo / "new_name.py")
    (repo / "pkg").mkdir()
    (repo / "pkg" / "new file.py").write_text("z = 3\n")
    git(repo, "add", "-A")
    patch = git(repo, "diff", "--cached", "-M", "--binary")

    assert sorted(files_in_patch(patch)) == ["gone.py", "keep.py", "new_name.py", "pkg/new file.py"]


def test_files_in_patch_ignores_text_that_is_not_a_header() -> None:
    patch = (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n"
        "-diff --git a/fake b/fake\n+ diff --git a/also b/also\n"
    )
    assert files_in_patch(patch) == ["a.py"]
    assert files_in_patch("") == []


def test_files_in_patch_decodes_quoted_paths(repo: Path) -> None:
    (repo / "café.py").write_text("x\n")
    git(repo, "add", "-A")
    patch = git(repo, "diff", "--cached")
    assert '"b/caf\\303\\251.py"' in patch  # git quotes non-ASCII paths by default
    assert files_in_patch(patch) == ["café.py"]
