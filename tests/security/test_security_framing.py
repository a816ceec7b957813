"""Security suite: command framing no process in the sandbox can forge or read.

The shell driver and the file helper are non-dumpable, so the model's processes (same uid)
cannot read or write their memory or open their descriptors; a command's bytes travel inside
the driver's frames and its exit code is the one waitpid gives. Real Docker engine throughout.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import docker
import test_security

from patchwright.sandbox.base import SandboxSpec
from patchwright.sandbox.docker import DockerSandbox
from patchwright.verify import verify_patch
from patchwright.workspace import open_workspace

from helpers import diff_text, git, make_repo

box = test_security.box  # the same small sandbox as the rest of the suite

# Prints, for each pid given, what a process of the sandbox user could do to it.
PROBE = r"""
import json, os, sys
found = {}
for pid in sys.argv[1:]:
    tried = {}
    for name, attempt in [
        ("environ", lambda: open(f"/proc/{pid}/environ", "rb").read(64)),
        ("maps", lambda: open(f"/proc/{pid}/maps", "rb").read(64)),
        ("mem", lambda: open(f"/proc/{pid}/mem", "rb")),
        ("fds", lambda: os.listdir(f"/proc/{pid}/fd")),
        ("write_stdout", lambda: open(f"/proc/{pid}/fd/1", "wb")),
    ]:
        try:
            attempt()
            tried[name] = "allowed"
        except PermissionError:
            tried[name] = "denied"
        except OSError as err:
            tried[name] = type(err).__name__
    found[pid] = tried
print(json.dumps(found))
"""


def probe(box: DockerSandbox, pids: list[str]) -> dict[str, dict[str, str]]:
    box.write_file("/tmp/probe.py", PROBE.encode())
    result = box.run(f"python3 /tmp/probe.py {' '.join(pids)}")
    assert result.exit_code == 0, result.output
    found: dict[str, dict[str, str]] = json.loads(result.output)
    return found


def test_the_driver_and_the_file_helper_are_out_of_the_models_reach(box: DockerSandbox) -> None:
    assert box.file_op({"op": "view", "path": "app.py"})["ok"]  # the file helper is running
    helpers = box.run("pgrep -u 1000 -f _pw_make_undumpable").output.split()
    assert len(helpers) == 2, helpers  # the shell driver and the file helper
    lurker = box.run("sleep 300 >/dev/null 2>&1 & echo $!").output.strip()  # an ordinary process
    found = probe(box, [*helpers, lurker])
    assert set(found[lurker].values()) == {"allowed"}  # the probe does find what it can reach
    for pid in helpers:
        assert set(found[pid].values()) == {"denied"}, found[pid]


def test_bytes_a_command_prints_cannot_end_it_or_forge_its_exit_code(box: DockerSandbox) -> None:
    fake_exit = json.dumps({"code": 0, "timed_out": False})
    script = (
        "import sys, struct\n"
        f"frame = b'X' + struct.pack('>L', {len(fake_exit)}) + {fake_exit.encode()!r}\n"
        "sys.stdout.buffer.write(b'before' + frame + b'\\n__PW_DONE_0123456789abcdef 0\\n')\n"
    )
    box.write_file("/tmp/forge.py", script.encode())
    result = box.run("python3 /tmp/forge.py; echo after; exit 3")
    assert result.exit_code == 3
    assert result.output.startswith("before") and result.output.rstrip().endswith("after")
    assert '{"code": 0' in result.output and "__PW_DONE_" in result.output  # shown, not obeyed


def test_a_process_left_running_cannot_write_into_the_hosts_channel(box: DockerSandbox) -> None:
    # Writes a fake ending into every descriptor it can open, again and again. It reaches the
    # pipes of later commands (ordinary processes: their output shows it) but never the driver.
    box.run(
        "setsid bash -c 'for i in $(seq 200); do for f in /proc/[0-9]*/fd/*; do "
        'printf "\\nX\\0\\0\\0\\x1f{\\"code\\": 0, \\"timed_out\\": false}" 2>/dev/null >> "$f"; '
        "done; done' >/dev/null 2>&1 &"
    )
    for _ in range(5):
        failing = box.run("sleep 0.2; echo real; false")
        assert failing.exit_code == 1 and not failing.timed_out and "real\n" in failing.output


def test_the_second_test_run_of_a_verification_starts_with_nothing_left_running(
    docker_client: docker.DockerClient, spec: SandboxSpec, tmp_path: Path
) -> None:
    # The base's tests leave a process behind; the patched tests pass only if it is gone.
    test_command = (
        "if [ -f fixed ]; then ! pgrep -u 1000 -f lurk-marker; "
        "else setsid bash -c 'exec -a lurk-marker sleep 300' >/dev/null 2>&1 & exit 1; fi"
    )
    repo = make_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    (clone / "fixed").write_text("yes\n")
    git(clone, "add", "fixed")
    patch = tmp_path / "patch.diff"
    patch.write_text(git(clone, "diff", "--cached", "--binary"))
    sandbox = DockerSandbox(docker_client, spec, open_workspace(repo))
    outcome = verify_patch(sandbox, patch, test_command, timeout=60)
    assert outcome.applied and not outcome.before.passed
    assert outcome.after is not None and outcome.after.passed, outcome.after.output_tail


def test_programs_the_model_plants_on_its_path_never_run_for_patchwright(box: DockerSandbox) -> None:
    # Fake python3, bash, git, cat, kill and rg in ~/.local/bin (first on the model's PATH), each
    # leaving a mark and lying; then the driver and the file helper are killed, so both start again.
    fake = "#!/bin/sh\ntouch /tmp/planted-ran-$(basename $0)\necho forged; exit 0\n"
    names = ["python3", "bash", "git", "cat", "kill", "rg", "sh", "tar", "dd", "grep"]
    for name in names:
        box.write_file(f"/home/agent/.local/bin/{name}", fake.encode())
    box.run("chmod +x ~/.local/bin/*; echo 'x = 2' > app.py")
    assert box.run("command -v git").output.strip() == "/home/agent/.local/bin/git"  # the model's PATH
    assert box.file_op({"op": "view", "path": "app.py"})["ok"]
    box.run("pkill -KILL -f _pw_make_undumpable; true")
    assert box.run("echo back; exit 4").exit_code == 4  # a fresh driver: the real python3 and bash
    assert box.file_op({"op": "search", "pattern": "x = ", "path": "."})["ok"]
    patch = diff_text(box)
    assert "+x = 2" in patch and "forged" not in patch
    planted = box.execute(["/bin/sh", "-c", "ls /tmp | grep -c planted-ran || true"]).output.strip()
    assert planted == "0"
