"""Repo snapshots: the quick check (pure), and starts from a snapshot on the real engine."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from patchwright.repocopy import copy_members, list_files
from patchwright.sandbox import labels, snapshot
from patchwright.sandbox.base import SandboxSpec
from patchwright.sandbox.baseline import trusted_git
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.prune import prune
from patchwright.sandbox.snapshot import (
    MAX_CHANGED_SHARE,
    STALE_MIN_PATHS,
    Entry,
    SyncPlan,
    drifted,
    entry,
    head_commit,
    host_entries,
    load_manifest,
    parse_find,
    plan_sync,
    remove_manifests,
    save_manifest,
    snapshot_tag,
    stale,
)
from patchwright.workspace import open_workspace

from helpers import SESSION_ID, TEST_LABEL, diff_text, git, make_repo, remove_image

HOUR_AGO = int(time.time()) - 3600
OLD = 1_000  # an mtime well before any snapshot's copy


def f(size: int = 1, mtime: int = OLD, executable: bool = False) -> Entry:
    return entry("f", size, mtime, 0o755 if executable else 0o644)


D = entry("d", 4096, OLD, 0o755)


# -- the quick check -------------------------------------------------------------------------


def test_parse_find_reads_every_field_and_any_path() -> None:
    raw = (
        b"f\x00120\x001700000000\x00755\x00bin/run me\x00\x00"
        b"l\x007\x001700000001\x00777\x00link\x00target\x00"
        b"d\x004096\x001700000002\x00755\x00odd\nname\xff\x00\x00"
        b"p\x000\x001700000003\x00644\x00fifo\x00\x00"
    )
    entries = parse_find(raw)
    assert entries["bin/run me"] == entry("f", 120, 1700000000, 0o755)
    assert entries["link"] == entry("l", 7, 1700000001, 0o777, "target")
    assert entries[os.fsdecode(b"odd\nname\xff")][0] == "d"
    assert entries["fifo"][0] == "p" and len(entries) == 4
    fifo = {"fifo": entries["fifo"]}  # a kind the quick check never compares: always sent
    assert plan_sync(fifo, dict(fifo), racy_from=OLD + 10).send == ["fifo"]
    assert parse_find(raw[:-3]).keys() == entries.keys() - {"fifo"}  # a record cut short is left out


def test_records_that_differ_only_as_text_are_the_same() -> None:
    """What a folder's size or time, a link's time or mode, a umask's bits, or a manifest saved
    with %T@ change in the text never sends a path again."""
    snapshot = {
        "dir": entry("d", 4096, OLD, 0o755),
        "link": entry("l", 1, OLD, 0o777, "x"),
        "umask": entry("f", 5, OLD, 0o644),
        "saved before": ("f", "5", f"{OLD}.0000000000", "755", ""),
    }
    host = {
        "dir": entry("d", 120, OLD + 5, 0o775),
        "link": entry("l", 1, OLD + 5, 0o755, "x"),
        "umask": entry("f", 5, OLD, 0o664),
        "saved before": entry("f", 5, OLD, 0o775),
    }
    assert plan_sync(host, snapshot, racy_from=OLD + 10) == SyncPlan(delete=[], send=[], send_bytes=0)
    host["umask"] = entry("f", 5, OLD, 0o744)  # now its owner may run it
    host["saved before"] = entry("f", 5, OLD + 1, 0o775)
    assert plan_sync(host, snapshot, racy_from=OLD + 10).send == ["umask", "saved before"]


def test_a_record_that_is_not_numbers_is_always_sent() -> None:
    odd = ("f", "5", "%Ts", "644", "")  # a find that printed the directive as it is
    assert plan_sync({"a": odd}, {"a": odd}, racy_from=OLD + 10).send == ["a"]
    assert plan_sync({"a": odd}, {"a": f(5)}, racy_from=OLD + 10).send == ["a"]


def test_unchanged_files_stay_and_any_difference_is_sent() -> None:
    snapshot = {"a": f(1), "b": f(2), "c": f(3), "d": f(4), "e": f(5, executable=False)}
    host = {
        "a": f(1),  # the same
        "b": f(20),  # size
        "c": f(3, mtime=OLD + 1),  # mtime
        "d": f(4),
        "e": f(5, executable=True),  # mode
    }
    plan = plan_sync(host, snapshot, racy_from=OLD + 10)
    assert plan.send == ["b", "c", "e"] and plan.delete == []
    assert plan.send_bytes == 20 + 3 + 5


def test_a_file_from_the_copys_own_second_is_always_sent() -> None:
    snapshot = {"racy": f(1, mtime=OLD + 10), "old": f(1, mtime=OLD)}
    host = {"racy": f(1, mtime=OLD + 10), "old": f(1, mtime=OLD)}
    assert plan_sync(host, snapshot, racy_from=OLD + 10).send == ["racy"]
    assert plan_sync(host, snapshot, racy_from=OLD + 11).send == []


def test_links_compare_by_target() -> None:
    snapshot = {"same": entry("l", target="x"), "moved": entry("l", target="x")}
    host = {"same": entry("l", target="x"), "moved": entry("l", target="y")}
    assert plan_sync(host, snapshot, racy_from=OLD + 10).send == ["moved"]


def test_removed_paths_are_deleted_once_and_replaced_types_are_sent() -> None:
    snapshot = {
        "gone.txt": f(),
        "olddir": D,
        "olddir/x": f(),
        "olddir/deep": D,
        "olddir/deep/y": f(),
        "was_dir": D,
        "was_dir/z": f(),
        "was_file": f(),
        "kept": f(),
    }
    host = {"was_dir": f(), "was_file": D, "was_file/new": f(), "kept": f()}
    plan = plan_sync(host, snapshot, racy_from=OLD + 10)
    assert plan.delete == ["gone.txt", "olddir", "was_dir", "was_file"]  # not olddir/x: rm -rf covers it
    assert plan.send == ["was_dir", "was_file", "was_file/new"]


def test_only_git_configs_are_kept_and_git_is_mirrored() -> None:
    snapshot = {
        ".git": D,
        ".git/config": f(),
        ".git/modules/sub/config": f(),
        ".git/objects": D,
        ".git/objects/ab": D,
        ".git/objects/ab/cdef": f(),  # the host has gc'd it: it must not linger
        ".git/refs": D,
        ".git/refs/heads": D,
        ".git/refs/heads/config": f(),  # a branch called config is a ref, not a config
        ".git/hooks": D,
        ".git/hooks/planted": f(),
        ".git/index": f(),
    }
    host = {
        ".git": D,
        ".git/objects": D,
        ".git/refs": D,
        ".git/refs/heads": D,
        ".git/hooks": D,
        ".git/index": f(2),
    }
    plan = plan_sync(host, snapshot, racy_from=OLD + 10)
    assert plan.delete == [".git/hooks/planted", ".git/objects/ab", ".git/refs/heads/config"]
    assert plan.send == [".git/index"]


def test_host_entries_sees_kinds_sizes_modes_and_targets(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "hello", "bin/tool": "#!/bin/sh\n"})
    (repo / "bin" / "tool").chmod(0o755)
    (repo / "link").symlink_to("a.txt")
    os.utime(repo / "a.txt", (HOUR_AGO, HOUR_AGO))
    ws = open_workspace(repo)
    entries = host_entries(ws, copy_members(ws, list_files(ws)))
    kind, size, mtime, mode, _ = entries["a.txt"]
    assert (kind, size, mtime) == ("f", "5", str(HOUR_AGO)) and not int(mode, 8) & 0o100
    assert int(entries["bin/tool"][3], 8) & 0o100 and entries["bin"][0] == "d"
    assert entries["link"][0] == "l" and entries["link"][4] == "a.txt"
    assert entries[".git"][0] == "d" and ".git/config" not in entries  # configs travel sanitized, apart


def test_host_entries_are_the_same_without_gnu_find(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "hello", "bin/tool": "#!/bin/sh\n", "-n": "", "sp ace": "x"})
    (repo / "bin" / "tool").chmod(0o755)
    (repo / "link").symlink_to("a.txt")
    ws = open_workspace(repo)
    members = copy_members(ws, list_files(ws))
    by_find = host_entries(ws, [*members, "gone.txt"])  # listed, then removed: skipped by both
    assert by_find["-n"][0] == "f" and by_find["sp ace"][1] == "1" and "gone.txt" not in by_find
    monkeypatch.setattr(snapshot, "HOST_FIND_ARGV", ["sh", "-c", "echo 'find: unknown option' >&2; exit 1"])
    assert host_entries(ws, [*members, "gone.txt"]) == by_find


def test_drift_is_measured_in_files_changed_since_the_snapshots_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {f"f{i}.txt": f"{i}\n" for i in range(8)})
    ws = open_workspace(repo)
    start = head_commit(ws)
    assert not drifted(ws, start, 8)
    (repo / "f0.txt").write_text("changed\n")
    git(repo, "commit", "-qam", "one of eight")
    assert not drifted(ws, start, 8)  # 1/8 is under a quarter
    for i in range(1, 4):
        (repo / f"f{i}.txt").write_text("changed\n")
    git(repo, "commit", "-qam", "three more")
    assert drifted(ws, start, 8)  # 4/8
    assert drifted(ws, "0" * 40, 8)  # the old commit is unknown here
    assert drifted(ws, "", 8)


def test_manifests_are_saved_whole_loaded_and_removed_when_their_image_is_gone(tmp_path: Path) -> None:
    where = str(tmp_path / "manifests")
    save_manifest(where, "sha256:aaa", b"one")
    save_manifest(where, "sha256:bbb", b"two")
    assert load_manifest(where, "sha256:aaa") == b"one"
    assert load_manifest(where, "sha256:ccc") is None
    assert remove_manifests(where, keep={"sha256:bbb"}) == ["aaa.find"]
    assert load_manifest(where, "sha256:aaa") is None and load_manifest(where, "sha256:bbb") == b"two"
    assert not [n for n in os.listdir(where) if n.endswith(".tmp")]


# -- on the real engine ----------------------------------------------------------------------


@pytest.fixture
def snap_spec(spec: SandboxSpec, tmp_path: Path) -> SandboxSpec:
    """Snapshots for any repo size, manifests kept in the test's own folder."""
    return dataclasses.replace(spec, snapshot_min_files=1, manifest_dir=str(tmp_path / "manifests"))


@pytest.fixture
def snap_repo(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[Path]:
    repo = make_repo(
        tmp_path / "repo",
        {
            "app.py": "def add(a, b):\n    return a - b\n",
            "same_size.txt": "aaaa\n",
            "racy.txt": "bbbb\n",
            "to_delete.txt": "bye\n",
            "pkg/__init__.py": "",
            "pkg/mod.py": "X = 1\n",
            "dir_to_file/inner.txt": "inner\n",
            "script.sh": "echo hi\n",
            ".gitignore": "*.log\n",
        },
    )
    (repo / "link").symlink_to("app.py")
    for path in repo.rglob("*"):  # all old, but racy.txt: that one is "just written" when copied
        if ".git" not in path.parts and path.name != "racy.txt":
            os.utime(path, (HOUR_AGO, HOUR_AGO), follow_symlinks=False)
    # racy.txt is "just written" when the snapshot's copy reads it: its mtime second is not yet
    # over then (a clock a little ahead here), so a same-size edit in that second must be resent.
    os.utime(repo / "racy.txt", (time.time() + 3600, time.time() + 3600))
    yield repo
    for image in docker_client.images.list(filters={"label": f"{TEST_LABEL}={SESSION_ID}"}):
        if image.labels.get(labels.REPO_PATH) == str(repo):
            remove_image(docker_client, str(image.id))


def build_snapshot(client: docker.DockerClient, spec: SandboxSpec, repo: Path, model_edits: str = "") -> None:
    box = DockerSandbox(client, spec, open_workspace(repo))
    try:
        box.start()
        assert box._snapshot is None  # the first start copies everything
        if model_edits:  # made while the snapshot is built beside the sandbox: not in it
            assert box.run(model_edits).exit_code == 0
        box._await_snapshot()
        assert box.snapshot_error is None
    finally:
        box.stop()


def host_files(repo: Path) -> dict[str, str]:
    """path -> sha256 (files) or "-> target" (links), for what git sees in the working tree."""
    ws = open_workspace(repo)
    out = {}
    for name in list_files(ws):
        path = repo / name
        out[name] = (
            f"-> {os.readlink(path)}" if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest()
        )
    return out


def sandbox_files(box: DockerSandbox) -> dict[str, str]:
    script = (
        "find . -path ./.git -prune -o -type f -print0 | xargs -0 -r sha256sum | sed 's|  \\./|\\t|'; "
        "find . -path ./.git -prune -o -type l -printf '%P\\t-> %l\\n'"
    )
    lines = box.run(script).output.splitlines()
    out = {}
    for line in lines:
        if line.startswith("-> ") or "\t-> " in line:
            name, target = line.split("\t", 1)
            out[name] = target
        else:
            digest, name = line.split("\t", 1)
            out[name] = digest
    return out


def files_digest(box: DockerSandbox) -> str:
    """One digest of every regular file's name and content (for trees too large to list in full)."""
    script = (
        "find . -path ./.git -prune -o -type f -print0 | xargs -0 -r sha256sum | sed 's|  \\./|\t|' "
        "| LC_ALL=C sort | sha256sum"
    )
    return box.run(script).output.split()[0]


def host_files_digest(repo: Path) -> str:
    lines = sorted(
        f"{digest}\t{name}" for name, digest in host_files(repo).items() if not digest.startswith("->")
    )
    return hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()


def test_second_start_comes_from_the_snapshot_and_matches_the_host(
    docker_client: docker.DockerClient, snap_spec: SandboxSpec, snap_repo: Path
) -> None:
    repo = snap_repo
    build_snapshot(
        docker_client, snap_spec, repo, model_edits="echo model >> app.py; echo x > model_made.txt"
    )
    snapshot = docker_client.images.get(snapshot_tag(open_workspace(repo)))
    assert snapshot.labels[labels.KIND] == labels.KIND_SNAPSHOT and snapshot.labels[labels.RUN_ID] == ""
    assert load_manifest(str(snap_spec.manifest_dir), str(snapshot.id))

    # Work on the host since the snapshot: every kind of change the quick check must see.
    (repo / "app.py").write_text("def add(a, b):\n    return a + b  # fixed on the host\n")
    racy_mtime = (repo / "racy.txt").stat().st_mtime
    (repo / "racy.txt").write_text("BBBB\n")  # same size, and the same second as before: racy
    os.utime(repo / "racy.txt", (racy_mtime, racy_mtime))
    git(repo, "add", "racy.txt")  # staged: the host index, which the base trusts, knows the new blob
    (repo / "to_delete.txt").unlink()
    (repo / "dir_to_file" / "inner.txt").unlink()
    (repo / "dir_to_file").rmdir()
    (repo / "dir_to_file").write_text("now a file\n")
    (repo / "script.sh").chmod(0o755)
    (repo / "link").unlink()
    (repo / "link").symlink_to("pkg/mod.py")
    (repo / "new_dir" / "deeper").mkdir(parents=True)
    (repo / "new_dir" / "deeper" / "new.py").write_text("NEW = True\n")
    (repo / "debug.log").write_text("ignored: never copied\n")
    git(repo, "add", "new_dir")

    box = DockerSandbox(docker_client, snap_spec, open_workspace(repo))
    try:
        box.start()
        assert box._snapshot is not None and box._snapshot.id == snapshot.id
        assert (
            box.sync_plan is not None and "same_size.txt" not in box.sync_plan.send
        )  # unchanged and old: not sent again
        assert "racy.txt" in box.sync_plan.send
        assert sandbox_files(box) == host_files(repo)  # nothing the model did, nothing ignored
        assert box.run("test -x script.sh && echo x").output == "x\n"
        # The base, recorded at the start, equals a fresh `git add -A` of this tree.
        git_ = trusted_git("/tmp/full.index")
        full = box.run(f"rm -f /tmp/full.index; {git_} add -A; {git_} write-tree").output.split()[-1]
        assert box._baseline.tree == full
        assert box.run("git status --porcelain").output == git(repo, "status", "--porcelain")
        box.run("echo '# sandbox edit' >> pkg/mod.py")
        patch = diff_text(box)
    finally:
        box.stop()
    assert "+# sandbox edit" in patch and "fixed on the host" not in patch
    check = subprocess.run(
        ["git", "apply", "--check", "-"], cwd=repo, input=patch, text=True, capture_output=True
    )
    assert check.returncode == 0, check.stderr


def test_without_a_manifest_the_snapshot_is_listed_in_the_container(
    docker_client: docker.DockerClient, snap_spec: SandboxSpec, snap_repo: Path
) -> None:
    build_snapshot(docker_client, snap_spec, snap_repo)
    remove_manifests(str(snap_spec.manifest_dir), keep=set())
    (snap_repo / "app.py").write_text("changed\n")
    box = DockerSandbox(docker_client, snap_spec, open_workspace(snap_repo))
    try:
        box.start()
        assert box._snapshot is not None and box.sync_plan is not None
        working_tree = [p for p in box.sync_plan.send if not p.startswith(".git")]
        assert working_tree == ["app.py", "racy.txt"]  # racy.txt: written in the copy's second
        assert sandbox_files(box) == host_files(snap_repo)
    finally:
        box.stop()


def test_odd_names_are_removed_and_an_unsyncable_snapshot_gives_way_to_a_fresh_copy(
    docker_client: docker.DockerClient, snap_spec: SandboxSpec, snap_repo: Path
) -> None:
    odd = os.fsdecode(b"caf\xe9 -n.txt")  # not UTF-8, and a dash after a space
    (snap_repo / odd).write_text("odd\n")
    locked = snap_repo / "locked"
    locked.mkdir()
    (locked / "inside.txt").write_text("one\n")
    git(snap_repo, "add", "-A")
    git(snap_repo, "commit", "-qm", "odd name, locked dir")
    os.utime(locked / "inside.txt", (HOUR_AGO, HOUR_AGO))  # old: the first sync leaves it alone
    locked.chmod(0o555)
    try:
        build_snapshot(docker_client, snap_spec, snap_repo)
        (snap_repo / odd).unlink()
        box = DockerSandbox(docker_client, snap_spec, open_workspace(snap_repo))
        try:
            box.start()
            assert box._snapshot is not None and box.sync_plan is not None
            assert box.sync_plan.delete == [odd]
            assert sandbox_files(box) == host_files(snap_repo)
        finally:
            box.stop()

        locked.chmod(0o755)
        (locked / "inside.txt").write_text("two, longer\n")  # its folder is read-only in the snapshot
        locked.chmod(0o555)
        said: list[str] = []
        box = DockerSandbox(docker_client, snap_spec, open_workspace(snap_repo), progress=said.append)
        try:
            box.start()
            assert box._snapshot is None  # the sync failed; the start went on with a full copy
            assert any("copying the whole repo" in line for line in said), said
            assert sandbox_files(box) == host_files(snap_repo)
            assert diff_text(box) == ""
        finally:
            box.stop()
    finally:
        locked.chmod(0o755)


def test_a_snapshot_gone_before_its_container_was_made_means_a_fresh_copy(
    docker_client: docker.DockerClient,
    snap_spec: SandboxSpec,
    snap_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build_snapshot(docker_client, snap_spec, snap_repo)
    ws = open_workspace(snap_repo)
    stale = docker_client.images.get(snapshot_tag(ws))
    docker_client.images.remove(str(stale.id), force=True)  # as a concurrent prune would
    box = DockerSandbox(docker_client, snap_spec, ws)
    monkeypatch.setattr("patchwright.sandbox.docker.current_snapshot", lambda *_: stale)  # chosen just before
    try:
        box.start()
        assert box._snapshot is None and box._build is not None  # a full copy; a snapshot built anew
        assert sandbox_files(box) == host_files(snap_repo)
    finally:
        box.stop()


def test_a_sync_sending_most_of_a_large_repo_is_stale() -> None:
    def plan(sending: int) -> SyncPlan:
        return SyncPlan(delete=[], send=[f"f{i}" for i in range(sending)], send_bytes=0)

    assert not stale(plan(STALE_MIN_PATHS), paths=STALE_MIN_PATHS)  # small repos: never
    assert stale(plan(STALE_MIN_PATHS + 1), paths=STALE_MIN_PATHS + 1)
    large = 40 * STALE_MIN_PATHS
    assert not stale(plan(int(MAX_CHANGED_SHARE * large)), paths=large)
    assert stale(plan(int(MAX_CHANGED_SHARE * large) + 1), paths=large)


def test_a_fresh_clone_of_the_same_commit_starts_fresh_and_rebuilds_the_snapshot(
    docker_client: docker.DockerClient, snap_spec: SandboxSpec, snap_repo: Path
) -> None:
    """Every file's time differs from the snapshot's: rather than send them all into its layer
    at every start, the run copies the repo whole and the snapshot is made again."""
    files = {f"many/file_{i}.txt": f"{i}\n" for i in range(STALE_MIN_PATHS + 100)}
    for name, text in files.items():
        (snap_repo / name).parent.mkdir(exist_ok=True)
        (snap_repo / name).write_text(text)
    git(snap_repo, "add", "-A")
    git(snap_repo, "commit", "-qm", "many")
    build_snapshot(docker_client, snap_spec, snap_repo)
    ws = open_workspace(snap_repo)
    old = docker_client.images.get(snapshot_tag(ws))
    other = HOUR_AGO + 600  # as a new clone's checkout wrote them (in the past: not racy)
    for name in [*files, "app.py", "pkg/mod.py"]:
        os.utime(snap_repo / name, (other, other))
    said: list[str] = []
    box = DockerSandbox(docker_client, snap_spec, ws, progress=said.append)
    try:
        box.start()
        assert box._snapshot is None and box.sync_plan is None  # the whole repo was copied
        assert [line for line in said if "it is out of date" in line], said
        assert files_digest(box) == host_files_digest(snap_repo)
        box._await_snapshot()
        assert box.snapshot_error is None
    finally:
        box.stop()
    new = docker_client.images.get(snapshot_tag(ws))
    assert new.id != old.id  # made again from this tree: the next start syncs next to nothing
    box = DockerSandbox(docker_client, snap_spec, ws)
    try:
        box.start()
        assert box._snapshot is not None and box._snapshot.id == new.id and box.sync_plan is not None
        assert len([p for p in box.sync_plan.send if not p.startswith(".git")]) <= 2  # racy ones at most
    finally:
        box.stop()


def test_a_snapshot_holds_no_setup_output_and_the_base_follows_setup(
    docker_client: docker.DockerClient, snap_spec: SandboxSpec, snap_repo: Path
) -> None:
    with_setup = dataclasses.replace(snap_spec, setup_command="echo made > setup_made.txt")
    build_snapshot(docker_client, with_setup, snap_repo)
    box = DockerSandbox(docker_client, snap_spec, open_workspace(snap_repo))
    try:
        box.start()
        assert box._snapshot is not None
        assert box.run("ls setup_made.txt 2>&1; git status --porcelain").output.startswith(
            "ls: cannot access"
        )
        assert diff_text(box) == ""
    finally:
        box.stop()


def test_the_sandbox_user_can_write_the_same_places_with_a_snapshot(
    docker_client: docker.DockerClient, spec: SandboxSpec, snap_spec: SandboxSpec, snap_repo: Path
) -> None:
    script = (
        "find / \\( -path /proc -o -path /sys -o -path /workspace -o -path /tmp -o -path /home/agent \\) "
        "-prune -o -writable -print 2>/dev/null | sort"
    )
    build_snapshot(docker_client, snap_spec, snap_repo)
    writable = {}
    for name, box_spec in (
        ("read-only root", dataclasses.replace(spec, snapshots=False)),
        ("snapshot", snap_spec),
    ):
        box = DockerSandbox(docker_client, box_spec, open_workspace(snap_repo))
        try:
            box.start()
            assert box._in_layer == (name == "snapshot")
            writable[name] = box.run(script).output
            refused = box.run("touch /usr/local/bin/x /etc/x /var/lib/x 2>&1; echo rc=$?").output
            assert refused.count("Permission denied") + refused.count("Read-only") == 3, refused
        finally:
            box.stop()
    assert writable["snapshot"] == writable["read-only root"]
    assert "/var/tmp" not in writable["snapshot"] and "/run/lock" not in writable["snapshot"]


def test_stopping_while_the_snapshot_is_built_leaves_no_container(
    docker_client: docker.DockerClient, snap_spec: SandboxSpec, snap_repo: Path
) -> None:
    box = DockerSandbox(docker_client, snap_spec, open_workspace(snap_repo))
    box.start()
    assert box._build is not None
    box.stop()  # the no_container_left fixture checks the engine
    box.stop()


def test_no_snapshot_when_turned_off_or_the_repo_is_small(
    docker_client: docker.DockerClient, spec: SandboxSpec, snap_spec: SandboxSpec, snap_repo: Path
) -> None:
    tag = snapshot_tag(open_workspace(snap_repo))
    for box_spec in (
        dataclasses.replace(snap_spec, snapshots=False),
        dataclasses.replace(snap_spec, snapshot_min_files=50),
    ):
        box = DockerSandbox(docker_client, box_spec, open_workspace(snap_repo))
        try:
            box.start()
            assert box._build is None and not box._in_layer
        finally:
            box.stop()
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(tag)


def test_a_far_moved_head_gets_a_fresh_snapshot_and_prune_removes_them(
    docker_client: docker.DockerClient, snap_spec: SandboxSpec, snap_repo: Path
) -> None:
    build_snapshot(docker_client, snap_spec, snap_repo)
    ws = open_workspace(snap_repo)
    first = docker_client.images.get(snapshot_tag(ws))
    for name in ("app.py", "same_size.txt", "pkg/mod.py", "script.sh"):
        (snap_repo / name).write_text("moved on\n")
    git(snap_repo, "commit", "-qam", "a big change")
    box = DockerSandbox(docker_client, snap_spec, ws)
    try:
        box.start()
        assert box._snapshot is None  # drifted: a full copy, committed anew
        box._await_snapshot()
    finally:
        box.stop()
    second = docker_client.images.get(snapshot_tag(ws))
    assert second.id != first.id and second.labels[labels.SNAPSHOT_HEAD] == head_commit(ws)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(str(first.id))  # the superseded one went with the commit
    assert load_manifest(str(snap_spec.manifest_dir), str(first.id)) is None  # and its manifest
    assert load_manifest(str(snap_spec.manifest_dir), str(second.id))

    report = prune(docker_client, extra_labels={TEST_LABEL: SESSION_ID}, manifest_dir=snap_spec.manifest_dir)
    assert snapshot_tag(ws) in report.images_removed
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(snapshot_tag(ws))
    assert load_manifest(str(snap_spec.manifest_dir), str(second.id)) is None
