"""Shared test helpers: real git repos in temp folders, real sandboxes on the real engine."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from patchwright.sandbox import labels
from patchwright.sandbox.base import Sandbox, SandboxSpec
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.image import ensure_image
from patchwright.sandbox.local import LocalSandbox
from patchwright.services.image import ensure_services_image
from patchwright.workspace import open_workspace

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_LABEL = "io.patchwright.test-session"
SESSION_ID = uuid.uuid4().hex[:8]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=test", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def diff_text(box: Sandbox) -> str:
    """The sandbox's patch as text: `diff` writes it to a file on the host, read back here."""
    with tempfile.TemporaryDirectory(prefix="pw-diff-") as folder:
        result = box.diff(Path(folder) / "patch.diff")
        data = result.path.read_bytes()
        assert len(data) == result.size
        return data.decode("utf-8", "surrogateescape")


def make_repo(root: Path, files: dict[str, str | bytes], commit: bool = True) -> Path:
    """A git repo holding `files`, committed (the default) so later edits show as changes."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    if commit:
        git(root, "add", "-A")
        git(root, "commit", "-qm", "initial")
    return root


def repo_state(root: Path) -> str:
    """Everything git knows about a working tree, to prove a run left the host repo untouched."""
    status = git(root, "status", "--porcelain", "--untracked-files=all", "--ignored")
    status = "\n".join(line for line in status.splitlines() if ".patchwright/" not in line)  # the run dir
    diff = git(root, "diff", "HEAD") if git(root, "rev-parse", "--verify", "-q", "HEAD").strip() else ""
    return status + "\n" + diff + "\n" + git(root, "stash", "list")


def our_containers(client: docker.DockerClient) -> list[str]:
    # Filtered by the engine: another test run's containers, which may vanish mid-listing, never show.
    mine = {"label": [f"{labels.MANAGED}=true", f"{TEST_LABEL}={SESSION_ID}"]}
    return [
        str(c.attrs["Names"][0]).lstrip("/")
        for c in client.containers.list(all=True, filters=mine, sparse=True)
    ]


def settled(listing: Callable[[], list[str]], wait: float = 30.0) -> list[str]:
    """What `listing` still shows once it is empty or `wait` s have passed: the engine removes a
    stopped sandbox itself (AutoRemove), a moment after `stop()` or the run's exit returned."""
    deadline = time.monotonic() + wait
    while (left := listing()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def remove_image(client: docker.DockerClient, image_id: str) -> None:
    """Remove a test's image once no container runs from it: a stopped sandbox ends a moment
    after stop() returned (SIGTERM, which the engine does not wait for), and until then the
    engine refuses to remove its image even forced."""
    settled(lambda: [str(c.id) for c in client.containers.list(filters={"ancestor": image_id}, sparse=True)])
    client.images.remove(image_id, force=True)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return docker.from_env()


@pytest.fixture(scope="session")
def sandbox_image(docker_client: docker.DockerClient) -> str:
    """The default image, built once if missing (1-2 minutes, no registry needed).

    PATCHWRIGHT_TEST_IMAGE runs the suite against another image instead.
    """
    if os.environ.get("PATCHWRIGHT_TEST_IMAGE"):
        return os.environ["PATCHWRIGHT_TEST_IMAGE"]
    return ensure_image(docker_client, None, lambda line: print(line, file=sys.stderr))


@pytest.fixture(scope="session")
def services_image(docker_client: docker.DockerClient) -> str:
    """The registry-free service image, built once per machine (about a minute) and cached by hash."""
    return ensure_services_image(docker_client, lambda line: print(line, file=sys.stderr))


@pytest.fixture
def spec(sandbox_image: str) -> SandboxSpec:
    return SandboxSpec(
        image=sandbox_image,
        run_id=f"test-{uuid.uuid4().hex[:8]}",
        command_timeout=30,
        labels={TEST_LABEL: SESSION_ID},
    )


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            "app.py": "def add(a, b):\n    return a - b\n",
            "tests/test_app.py": "from app import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
            ".gitignore": "secret.env\nnode_modules/\n",
            "README.md": "demo\n",
        },
    )


@pytest.fixture
def sandbox(
    docker_client: docker.DockerClient, spec: SandboxSpec, small_repo: Path
) -> Iterator[DockerSandbox]:
    (small_repo / "secret.env").write_text("API_TOKEN=do-not-copy\n")
    (small_repo / "node_modules").mkdir()
    (small_repo / "node_modules" / "big.js").write_text("ignored\n")
    (small_repo / "untracked.txt").write_text("not ignored, not committed\n")
    box = DockerSandbox(docker_client, spec, open_workspace(small_repo))
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def box(small_repo: Path, tmp_path: Path) -> Iterator[LocalSandbox]:
    """The small repo in a local-folder sandbox: the same contract as Docker's, in milliseconds."""
    (small_repo / "secret.env").write_text("API_TOKEN=do-not-copy\n")
    (small_repo / "untracked.txt").write_text("not ignored, not committed\n")
    local = LocalSandbox(open_workspace(small_repo), tmp_path / "local-sandbox", command_timeout=30)
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(autouse=True)
def no_container_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test, failing ones included, no container of this session may remain."""
    yield
    if "docker_client" not in request.fixturenames and "sandbox" not in request.fixturenames:
        return
    client: docker.DockerClient = request.getfixturevalue("docker_client")
    left = settled(lambda: our_containers(client))
    for name in left:
        client.containers.get(name).remove(force=True, v=True)
    assert not left, f"containers left behind: {left}"


def env_without_secrets() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
