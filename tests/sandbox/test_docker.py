"""The Docker sandbox against the real engine and the real image: no mocks."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from pathlib import Path

import docker
import pytest

from patchwright.errors import SandboxError
from patchwright.repocopy import begin_scan
from patchwright.sandbox.background import BackgroundStart
from patchwright.sandbox.base import SandboxSpec
from patchwright.sandbox.copypipe import IN_CONTAINER
from patchwright.sandbox.docker import DockerSandbox
from patchwright.workspace import open_workspace

from helpers import SESSION_ID, TEST_LABEL, diff_text, git, make_repo, our_containers, remove_image, settled


def started(client: docker.DockerClient, spec: SandboxSpec, repo: Path) -> DockerSandbox:
    box = DockerSandbox(client, spec, open_workspace(repo))
    box.start()
    return box


def test_state_persists_between_calls(sandbox: DockerSandbox) -> None:
    assert sandbox.run("pwd").output.strip() == "/workspace"
    assert sandbox.run("mkdir -p /tmp/work && cd /tmp/work && export GREETING='hi there'").exit_code == 0
    assert sandbox.run('pwd; echo "$GREETING"').output.splitlines() == ["/tmp/work", "hi there"]
    assert sandbox.run("unset GREETING").exit_code == 0
    assert sandbox.run('echo "[${GREETING-unset}]"').output.strip() == "[unset]"


def test_exit_codes_and_exit_does_not_kill_the_session(sandbox: DockerSandbox) -> None:
    assert sandbox.run("true").exit_code == 0
    assert sandbox.run("false").exit_code == 1
    result = sandbox.run("echo out; echo err >&2; exit 7")
    assert result.exit_code == 7
    assert result.output.splitlines() == ["out", "err"]
    assert sandbox.run("echo still here").output == "still here\n"


def test_command_reading_stdin_gets_eof(sandbox: DockerSandbox) -> None:
    result = sandbox.run('cat; read -r line; echo "[${line}]"', timeout=10)
    assert result.exit_code == 0 and not result.timed_out
    assert result.output.strip() == "[]"


def test_timeout_kills_the_tree_and_the_shell_recovers(sandbox: DockerSandbox) -> None:
    result = sandbox.run("sleep 300 & sleep 301", timeout=2)
    assert result.timed_out and result.exit_code is None
    assert result.duration < 15
    after = sandbox.run("pgrep -f 'sleep 30[01]' || echo none")
    assert after.output.strip() == "none"
    assert sandbox.run("echo ok").output == "ok\n"


def test_background_processes_outlive_their_command_and_their_output_is_not_lost(
    sandbox: DockerSandbox,
) -> None:
    started = sandbox.run("(sleep 1; echo late) & sleep 300 >/dev/null 2>&1 & echo started")
    assert started.output == "started\n" and started.exit_code == 0 and started.duration < 1
    time.sleep(1.5)
    later = sandbox.run("echo now")
    assert later.output.splitlines() == ["late", "now"]  # shown with the next command
    assert sandbox.run("pgrep -x sleep").exit_code == 0  # still running between commands


def test_busy_loop_in_the_shell_itself_is_killed(sandbox: DockerSandbox) -> None:
    sandbox.run("cd /tmp && export KEEP=1")
    result = sandbox.run("while :; do :; done", timeout=2)
    assert result.timed_out
    assert sandbox.run('pwd; echo "$KEEP"').output.splitlines() == ["/tmp", "1"]


def test_output_is_capped_head_and_tail(sandbox: DockerSandbox) -> None:
    size = 50 * 1024 * 1024
    result = sandbox.run(f"echo START; head -c {size} /dev/zero | tr '\\0' x; echo; echo END")
    assert result.exit_code == 0
    assert result.truncated
    assert result.output_bytes > size
    assert len(result.output) < sandbox.spec.output_limit + 200
    assert result.output.startswith("START\n")
    assert result.output.rstrip().endswith("END")
    assert "bytes of output cut" in result.output


def test_restart_gives_a_fresh_session(sandbox: DockerSandbox) -> None:
    sandbox.run("cd /tmp && export X=1 && (sleep 300 &)")
    sandbox.restart_shell()
    assert sandbox.run('pwd; echo "[${X-}]"').output.splitlines() == ["/workspace", "[]"]
    assert sandbox.run("pgrep -f 'sleep 30[01]' || echo none").output.strip() == "none"


def test_killed_driver_is_replaced(sandbox: DockerSandbox) -> None:
    assert sandbox._shell is not None
    sandbox.execute(["kill", "-KILL", str(sandbox._shell.driver_pid)])
    broken = sandbox.run("echo lost")
    assert broken.exit_code is None and "fresh shell" in broken.output
    assert sandbox.run("echo back").output == "back\n"


def test_runs_as_non_root_without_capabilities(sandbox: DockerSandbox) -> None:
    assert sandbox.run("id -u; id -g").output.split() == ["1000", "1000"]
    status = sandbox.run("grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status").output
    assert "CapEff:\t0000000000000000" in status
    assert "CapPrm:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status
    assert sandbox.run("touch /usr/local/bin/x").exit_code != 0  # read-only root filesystem
    assert sandbox.run("touch /tmp/x ~/x /workspace/x && echo writable").output.strip() == "writable"


def test_no_network(sandbox: DockerSandbox) -> None:
    assert sandbox.run("ls /sys/class/net").output.split() == ["lo"]
    probe = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=3)"
    result = sandbox.run(f'python3 -c "{probe}"')
    assert result.exit_code != 0
    assert "unreachable" in result.output.lower()


def test_limits_are_in_force(docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path) -> None:
    tight = dataclasses.replace(spec, pids_limit=64, memory="256m")
    box = started(docker_client, tight, small_repo)
    try:
        assert box.container is not None
        host = docker_client.api.inspect_container(box.container.id)["HostConfig"]
        assert host["PidsLimit"] == 64
        assert host["Memory"] == 256 * 1024 * 1024
        assert host["CapDrop"] == ["ALL"]
        assert host["ReadonlyRootfs"] is True
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["NetworkMode"] == "none"
        assert not any("docker.sock" in bind for bind in host.get("Binds") or [])
        spawn = (
            "import subprocess\nprocs = []\ntry:\n    for _ in range(200):\n"
            "        procs.append(subprocess.Popen(['sleep', '30']))\nexcept OSError as err:\n"
            "    print('stopped at', len(procs), err.strerror)\n"
        )
        box.write_file("/tmp/flood.py", spawn.encode())
        flood = box.run("python3 /tmp/flood.py; ps -e --no-headers | wc -l", timeout=20)
        assert "stopped at" in flood.output and "Resource temporarily unavailable" in flood.output
        assert int(flood.output.split()[-1]) <= 64
        box.restart_shell()
        hog = box.run("python3 -c 'x = bytearray(600 * 1024 * 1024); print(len(x))'", timeout=30)
        assert hog.exit_code != 0 and "629145600" not in hog.output
        assert box.run("echo alive").output == "alive\n"
    finally:
        box.stop()


def test_copies_what_git_sees_and_nothing_ignored(sandbox: DockerSandbox) -> None:
    listing = sandbox.run("ls -A /workspace").output.split()
    assert {"app.py", "tests", ".gitignore", "README.md", "untracked.txt", ".git"} <= set(listing)
    assert "secret.env" not in listing and "node_modules" not in listing
    assert sandbox.run("git status --porcelain").exit_code == 0


def test_the_listing_begun_at_launch_is_the_one_the_copy_uses(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    ws = open_workspace(small_repo)
    pending = begin_scan(ws)
    pending.running.process.wait()  # listed; a file made after that is not in this listing
    (small_repo / "made_later.txt").write_text("after the listing\n")
    box = DockerSandbox(docker_client, spec, ws, scan=pending)
    try:
        box.start()
        listing = box.run("ls -A /workspace").output.split()
        assert "app.py" in listing and "made_later.txt" not in listing
    finally:
        box.stop()
    assert pending.running.out.closed  # read, and its files dropped
    later = started(docker_client, spec, small_repo)  # no listing handed over: one made at start
    try:
        assert "made_later.txt" in later.run("ls -A /workspace").output.split()
    finally:
        later.stop()


def test_a_listing_no_start_took_is_stopped_with_the_sandbox(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    pending = begin_scan(open_workspace(small_repo))
    box = DockerSandbox(
        docker_client,
        dataclasses.replace(spec, image="patchwright-no-such-image:0"),
        open_workspace(small_repo),
        scan=pending,
    )
    with pytest.raises(SandboxError, match="not found"):
        box.start()
    assert pending.running.process.returncode is not None and pending.running.out.closed


def test_host_environment_and_credentials_stay_out(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-host-secret-value")
    monkeypatch.setenv("MY_HOST_TOKEN", "host-token-value-123")
    git(small_repo, "remote", "add", "origin", "https://user:ghp_secrettoken123@github.com/acme/app.git")
    git(small_repo, "config", "http.https://github.com/.extraheader", "AUTHORIZATION: basic c2VjcmV0")
    box = started(docker_client, spec, small_repo)
    try:
        seen = box.run("env; cat .git/config").output
        assert "sk-ant-api03" not in seen and "host-token-value" not in seen
        assert "ghp_secrettoken123" not in seen and "c2VjcmV0" not in seen
        assert "https://github.com/acme/app.git" in seen
        assert box.run("ls -la /var/run/docker.sock 2>&1").exit_code != 0
    finally:
        box.stop()


def test_diff_applies_to_a_clean_clone(sandbox: DockerSandbox, small_repo: Path, tmp_path: Path) -> None:
    script = (
        "sed -i 's/a - b/a + b/' app.py && printf 'new\\n' > added.txt && rm README.md && "
        "git mv -f tests/test_app.py tests/test_sum.py >/dev/null && printf '\\x00\\x01\\x02' > blob.bin && "
        "mkdir -p pkg && printf 'x = 1\\n' > pkg/mod.py"
    )
    assert sandbox.run(script).exit_code == 0
    patch = diff_text(sandbox)
    assert "GIT binary patch" in patch and "rename from tests/test_app.py" in patch
    assert "untracked.txt" not in patch and "secret.env" not in patch

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(small_repo), str(clone)], check=True)
    (tmp_path / "p.diff").write_text(patch)
    subprocess.run(["git", "apply", "--binary", str(tmp_path / "p.diff")], cwd=clone, check=True)
    assert (clone / "app.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert (clone / "blob.bin").read_bytes() == b"\x00\x01\x02"
    assert not (clone / "README.md").exists()
    assert (clone / "tests" / "test_sum.py").exists() and not (clone / "tests" / "test_app.py").exists()
    assert (clone / "pkg" / "mod.py").read_text() == "x = 1\n"


def test_diff_is_against_the_starting_state_with_uncommitted_edits(
    docker_client: docker.DockerClient, spec: SandboxSpec, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "one\n"})
    (repo / "a.txt").write_text("one\ntwo\n")  # uncommitted edit: part of the starting state
    box = started(docker_client, spec, repo)
    try:
        assert diff_text(box) == ""
        box.run("echo three >> a.txt")
        patch = diff_text(box)
        assert "+three" in patch and "+two" not in patch
        box.run("git add -A && git -c user.email=a@b -c user.name=n commit -qm x && git gc -q --prune=now")
        assert "+three" in diff_text(box)  # the model's own git use does not move the base
    finally:
        box.stop()
    subprocess.run(["git", "apply", "--check", "-"], input=patch.encode(), cwd=repo, check=True)


def test_setup_runs_with_network_then_it_is_cut(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    setup = 'ls /sys/class/net > /tmp/net-during; echo "$SSL_CERT_FILE" > /tmp/ca-during'
    ca = "/etc/ssl/certs/ca-certificates.crt"
    box = started(
        docker_client,
        dataclasses.replace(spec, setup_command=setup, host_ca_bundle=ca if os.path.exists(ca) else None),
        small_repo,
    )
    try:
        during = box.run("cat /tmp/net-during").output.split()
        assert "lo" in during and len(during) > 1
        assert box.run("ls /sys/class/net").output.split() == ["lo"]
        if os.path.exists(ca):
            ca_path = box.run("cat /tmp/ca-during").output.strip()
            assert ca_path and box.run(f"test -s {ca_path} && echo present").output.strip() == "present"
        assert "SSL_CERT_FILE" not in box.run("env").output
    finally:
        box.stop()


def test_setup_can_install_from_the_package_registry(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    """Through this machine's TLS-intercepting proxy, which works only with the host CA trusted."""
    ca = "/etc/ssl/certs/ca-certificates.crt"
    setup = "pip download --no-deps --quiet -d /tmp/wheels six"
    box = started(
        docker_client, dataclasses.replace(spec, setup_command=setup, host_ca_bundle=ca), small_repo
    )
    try:
        assert "six" in box.run("ls /tmp/wheels").output
    finally:
        box.stop()


def test_failing_setup_is_a_clear_error_and_leaves_nothing(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    box = DockerSandbox(
        docker_client,
        dataclasses.replace(spec, setup_command="echo broken >&2; exit 3"),
        open_workspace(small_repo),
    )
    with pytest.raises(SandboxError, match="setup command exited with 3: broken"):
        box.start()
    assert box.container is None
    assert not settled(lambda: our_containers(docker_client))


def test_stop_removes_the_container_and_nothing_stays_on_disk(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    box = started(docker_client, spec, small_repo)
    assert box.container is not None
    name = box.container.name
    inspected = docker_client.api.inspect_container(box.container.id)
    # No volume and no host folder: the workspace is a tmpfs. A local engine's only bind mount
    # is the copy's pipe (copypipe.py), read-only, and gone from the host once the copy is in.
    mounts = [(m["Type"], m["Destination"], m["RW"]) for m in inspected["Mounts"]]
    assert mounts in ([], [("bind", IN_CONTAINER, False)])
    assert all(not os.path.exists(m["Source"]) for m in inspected["Mounts"])
    assert "/workspace" in inspected["HostConfig"]["Tmpfs"]
    assert inspected["HostConfig"]["AutoRemove"] is True  # stopped by anyone, the engine removes it
    box.stop()
    box.stop()  # twice is fine
    assert not settled(
        lambda: [c.id for c in docker_client.containers.list(all=True, filters={"name": name}, sparse=True)]
    )


def test_stop_ends_a_sandbox_whose_image_has_an_entrypoint_that_ignores_term(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    """Our `sleep` under docker-init ends on SIGTERM, which the engine does not wait for; with an
    entrypoint of the image's own in between (here one that ignores TERM), stop() kills."""
    maker = docker_client.containers.create(spec.image, ["true"], labels={TEST_LABEL: SESSION_ID})
    entrypoint = 'ENTRYPOINT ["/bin/sh", "-c", "trap \'\' TERM; exec \\"$@\\"", "--"]'
    image = maker.commit("patchwright-test-entrypoint", SESSION_ID, changes=[entrypoint])
    maker.remove(force=True)
    try:
        box = started(docker_client, dataclasses.replace(spec, image=str(image.id)), small_repo)
        assert box.container is not None
        name = box.container.name
        box.stop()
        assert not settled(
            lambda: [
                c.id for c in docker_client.containers.list(all=True, filters={"name": name}, sparse=True)
            ],
            wait=15,
        )
    finally:
        remove_image(docker_client, str(image.id))


def test_a_full_workspace_stops_the_write_not_the_run(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    box = started(docker_client, dataclasses.replace(spec, workspace_size="8m"), small_repo)
    try:
        box.run("echo 'def add(a, b):\n    return a + b' > app.py")
        fill = box.run("head -c 20000000 /dev/zero > big.bin")
        assert fill.exit_code != 0 and "No space left on device" in fill.output
        box.run("rm -f big.bin")
        assert "+    return a + b" in diff_text(box)  # the work so far is still there to collect
    finally:
        box.stop()


def test_missing_image_is_a_sandbox_error(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    box = DockerSandbox(
        docker_client,
        dataclasses.replace(spec, image="patchwright-no-such-image:0"),
        open_workspace(small_repo),
    )
    with pytest.raises(SandboxError, match="not found"):
        box.start()
    assert not settled(lambda: our_containers(docker_client))


def test_same_size_edit_made_just_after_commit_is_in_the_base(
    docker_client: docker.DockerClient, spec: SandboxSpec, tmp_path: Path
) -> None:
    """The base reuses the host index's hashes; git's racy-entry check must still catch this."""
    repo = make_repo(tmp_path / "r", {"a.txt": "one\n"})
    (repo / "a.txt").write_text("two\n")  # same size, same second as the index entry
    box = started(docker_client, spec, repo)
    try:
        assert diff_text(box) == ""
        box.run("printf 'six\\n' > a.txt")
        patch = diff_text(box)
        assert "-two" in patch and "+six" in patch
    finally:
        box.stop()


def test_with_network_on_the_shell_trusts_the_host_ca(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    ca = "/etc/ssl/certs/ca-certificates.crt"
    if not os.path.exists(ca):
        pytest.skip("no system CA bundle on this host")
    box = started(docker_client, dataclasses.replace(spec, network=True, host_ca_bundle=ca), small_repo)
    try:
        assert (
            "lo" in box.run("ls /sys/class/net").output.split()
            and len(box.run("ls /sys/class/net").output.split()) > 1
        )
        path = box.run('echo "$SSL_CERT_FILE"').output.strip()
        assert path and box.run(f"test -s {path} && echo ok").output.strip() == "ok"
        assert box.run("pip download --no-deps --quiet -d /tmp/w six && ls /tmp/w").exit_code == 0
    finally:
        box.stop()


def test_proxy_variables_reach_setup_only(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    proxied = dataclasses.replace(
        spec,
        setup_command='echo "$HTTPS_PROXY" > /tmp/proxy-during',
        proxy_env={"HTTPS_PROXY": "http://proxy.invalid:3128"},
    )
    box = started(docker_client, proxied, small_repo)
    try:
        assert box.run("cat /tmp/proxy-during").output.strip() == "http://proxy.invalid:3128"
        assert "proxy.invalid" not in box.run("env").output  # the network is off for the model
    finally:
        box.stop()


def test_read_only_folders_arrive_whole(
    docker_client: docker.DockerClient, spec: SandboxSpec, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"vendor/lib/a.py": "A = 1\n", "vendor-b.txt": "b\n", "z.txt": "z\n"})
    for folder in (repo / "vendor" / "lib", repo / "vendor"):
        folder.chmod(0o555)  # as vendored trees copied from read-only media are
    try:
        box = started(docker_client, spec, repo)
        try:
            assert box.run("cat vendor/lib/a.py; stat -c %a vendor vendor/lib").output == "A = 1\n555\n555\n"
            assert diff_text(box) == ""
        finally:
            box.stop()
    finally:
        for folder in (repo / "vendor", repo / "vendor" / "lib"):
            folder.chmod(0o755)


def test_the_base_is_the_working_tree_as_git_sees_it(
    docker_client: docker.DockerClient, spec: SandboxSpec, tmp_path: Path
) -> None:
    """The base comes from the host's own list of what differs from its index; it must equal a
    fresh `git add -A` of the copied tree, whatever state the repo is in."""
    from patchwright.sandbox.baseline import trusted_git

    repo = make_repo(
        tmp_path / "repo",
        {
            "keep.txt": "same\n",
            "edit.txt": "old\n",
            "gone.txt": "bye\n",
            "mode.sh": "echo\n",
            "c.txt": "base\n",
        },
    )
    git(repo, "checkout", "-qb", "other")
    (repo / "c.txt").write_text("theirs\n")
    git(repo, "commit", "-qam", "theirs")
    git(repo, "checkout", "-q", "main")
    (repo / "c.txt").write_text("ours\n")
    git(repo, "commit", "-qam", "ours")
    subprocess.run(["git", "merge", "-q", "other"], cwd=repo, capture_output=True)  # a conflict in c.txt
    (repo / "edit.txt").write_text("new, longer\n")
    (repo / "gone.txt").unlink()
    (repo / "mode.sh").chmod(0o755)
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    (repo / "untracked.txt").write_text("untracked\n")
    box = started(docker_client, spec, repo)
    try:
        fresh = trusted_git("/tmp/fresh.index")
        full = box.run(f"rm -f /tmp/fresh.index; {fresh} add -A; {fresh} write-tree").output.split()[-1]
        assert box._baseline.tree == full
        assert diff_text(box) == ""
    finally:
        box.stop()


def test_a_repairable_setup_keeps_the_network_until_it_is_finished(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path, tmp_path: Path
) -> None:
    interfaces = 'python3 -c "import socket; print(sorted(n for _, n in socket.if_nameindex()))"'
    saved = tmp_path / "saved"
    repairable = dataclasses.replace(spec, setup_repairable=True, checkpoint_to=str(saved))
    box = DockerSandbox(docker_client, repairable, open_workspace(small_repo))
    try:
        assert box.start().setup is None  # no setup command: the window opens all the same
        assert box.run(interfaces).output.strip() == "['lo']"  # but offline until setup_run needs it
        during = box.setup_run(interfaces).output
        assert "'eth" in during, during  # a network interface beside lo (eth1: the bridge joined again)
        box.setup_run("echo kept > ~/from-repair")
        box.finish_setup(save=True)
        assert box.run(interfaces).output.strip() == "['lo']"  # the model's phase has no network
        assert box.execute(["bash", "-c", interfaces]).output.strip() == "['lo']"
    finally:
        box.stop()
    assert (saved / "home.tar").is_file() and (saved / "workspace.tar").is_file()


def test_stopping_a_start_under_way_cuts_its_setup_and_leaves_nothing(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> None:
    """A Ctrl-C during a long install: the run's stop must not wait for the install to end."""
    slow = dataclasses.replace(spec, setup_command="sleep 120", setup_timeout=300)
    box = BackgroundStart(DockerSandbox(docker_client, slow, open_workspace(small_repo)))
    box.begin()
    assert settled(lambda: [] if our_containers(docker_client) else ["no container yet"], wait=60) == []
    time.sleep(2)  # setup is under way
    began = time.monotonic()
    box.stop()
    assert time.monotonic() - began < 30
    assert not box.started
    assert not settled(lambda: our_containers(docker_client))
