"""Build, find and name the sandbox image.

There are two roads to the same image. The Dockerfile needs `debian:bookworm-slim`
from a registry; `build-rootfs.sh` plus `docker import` needs root and debootstrap
but no registry at all. The tag carries a hash of the definition files, so editing
them yields a new tag (and `prune` can tell stale images from the current one).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import docker
from docker.errors import ImageNotFound

from patchwright.errors import ImageBuildError, SandboxError
from patchwright.resources import data_dir
from patchwright.sandbox import labels
from patchwright.sandbox.engine import docker_errors, error_reason, one_line

Progress = Callable[[str], None]
BuildMethod = Literal["auto", "dockerfile", "debootstrap"]

DEFINITION_FILES = ("Dockerfile", "packages.txt", "build-rootfs.sh")
# The build steps every registry-free image shares: in `sandbox/`, sourced by the scripts of
# `sandbox/` and of its image folders (`services/`, `egress/`), so it is part of each definition.
SHARED_LIBRARY = "rootfs-lib.sh"
DEFAULT_IMAGE_REPO = "patchwright-sandbox"
BASE_IMAGE = "debian:bookworm-slim"
# An unreachable registry must cost seconds, not the daemon's 30 s dial timeout per mirror.
PULL_ANSWER_TIMEOUT = 15.0  # until the daemon reports the first pull event
PULL_STALL_TIMEOUT = 120.0  # longest silence allowed once the pull is under way
# Dockerfile instructions that describe the image's configuration, not its files;
# the imported (registry-free) image gets them from the Dockerfile as `docker import --change`.
_CONFIG_INSTRUCTIONS = frozenset({"ENV", "USER", "WORKDIR", "CMD", "ENTRYPOINT", "LABEL", "STOPSIGNAL"})
_FAILURE_CONTEXT_LINES = 25
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class BuildResult:
    """What `build_image` did; `method` is "existing" when the tag was already there."""

    tag: str
    method: Literal["dockerfile", "debootstrap", "existing"]
    seconds: float
    skipped: bool


def _quiet(_line: str) -> None:
    """The default progress sink: callers that do not care see nothing."""


def _definition_dir(definition_dir: Path | None) -> Path:
    try:
        return definition_dir if definition_dir is not None else data_dir("sandbox")
    except FileNotFoundError as err:
        raise ImageBuildError(str(err)) from err


def definition_hash(definition_dir: Path | None = None) -> str:
    """First 12 hex digits of a sha256 over the image definition files (name, size, bytes),
    the shared build library included."""
    folder = _definition_dir(definition_dir)
    digest = hashlib.sha256()
    library = folder / SHARED_LIBRARY
    if not library.is_file():
        library = folder.parent / SHARED_LIBRARY
    files = [(name, folder / name) for name in DEFINITION_FILES] + [(SHARED_LIBRARY, library)]
    for name, path in files:
        try:
            content = path.read_bytes()
        except OSError as err:
            raise ImageBuildError(f"sandbox image definition {path} cannot be read: {err}") from err
        digest.update(name.encode() + b"\0" + len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()[:12]


def default_image_tag(definition_dir: Path | None = None) -> str:
    """The tag of the image built from the given (default: shipped) definition."""
    return f"{DEFAULT_IMAGE_REPO}:{definition_hash(definition_dir)}"


def _failure_line(lines: Iterable[str]) -> str | None:
    """The line that best says why a build failed: apt's/debootstrap's "E:" line, else our own."""
    kept = [line.strip() for line in lines if line.strip()]
    for marker in ("E: ", "[build-rootfs] error:"):
        hits = [line for line in kept if line.startswith(marker)]
        if hits:
            return hits[-1]
    return None


def _image_exists(client: docker.DockerClient, tag: str) -> bool:
    with docker_errors(f"cannot look up image {tag}"):
        try:
            client.images.get(tag)
        except ImageNotFound:
            return False
    return True


def _scratch_dir() -> Path:
    """Where the 1 GB root filesystem is built: TMPDIR if set, else /var/tmp (often /tmp is a
    small or nodev tmpfs, and apt inside the chroot must open /dev/null)."""
    return Path(os.environ.get("TMPDIR") or "/var/tmp")


@contextlib.contextmanager
def _build_lock(image_hash: str) -> Iterator[None]:
    """Serialise builds of one definition on this host, so parallel callers build it once."""
    path = Path(tempfile.gettempdir()) / f"patchwright-image-{image_hash}.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _try_pull(client: docker.DockerClient, image: str, progress: Progress) -> str | None:
    """Pull `image`; None on success, else why it failed. An unanswering registry costs
    PULL_ANSWER_TIMEOUT seconds: the SDK's pull has no timeout, so it runs in a daemon
    thread that is abandoned (the daemon gives up on its own) when it takes too long."""
    repository, _, tag = image.rpartition(":")
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def pull() -> None:
        try:
            for event in client.api.pull(repository, tag=tag, stream=True, decode=True):
                events.put(("event", event))
            events.put(("done", None))
        except Exception as err:  # reported to the waiting thread, which decides
            events.put(("error", err))

    threading.Thread(target=pull, name="patchwright-pull", daemon=True).start()
    timeout = PULL_ANSWER_TIMEOUT
    while True:
        try:
            kind, payload = events.get(timeout=timeout)
        except queue.Empty:
            return f"no answer within {timeout:.0f} s"
        if kind == "done":
            return None
        if kind == "error":
            return error_reason(payload)
        if isinstance(payload, dict):
            if payload.get("error"):
                return one_line(str(payload["error"]))
            status = str(payload.get("status", ""))
            if status and "progressDetail" not in payload:
                progress(f"pull: {status}")
            elif status in ("Pull complete", "Already exists"):
                progress(f"pull: {payload.get('id', '')} {status}")
        timeout = PULL_STALL_TIMEOUT


def _build_with_dockerfile(
    client: docker.DockerClient,
    tag: str,
    folder: Path,
    image_labels: dict[str, str],
    progress: Progress,
    buildargs: dict[str, str] | None = None,
) -> None:
    """`docker build` of the definition folder; shows the Step lines, and the last output on failure."""
    recent: deque[str] = deque(maxlen=_FAILURE_CONTEXT_LINES)
    with docker_errors("docker build of the sandbox image failed", ImageBuildError):
        stream = client.api.build(
            path=str(folder),
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            labels=image_labels,
            buildargs=buildargs,
            decode=True,
        )
        for chunk in stream:
            if not isinstance(chunk, dict):
                continue
            if chunk.get("error"):
                for line in recent:
                    progress(line)
                message = _failure_line(recent) or str(chunk["error"])
                raise ImageBuildError(f"docker build of the sandbox image failed: {one_line(message)}")
            for raw in str(chunk.get("stream", "")).splitlines():
                line = _ANSI_ESCAPE.sub("", raw).rstrip()
                if not line:
                    continue
                recent.append(line)
                if line.startswith(("Step ", "Successfully")):
                    progress(line)


def _debootstrap_blocker() -> str | None:
    """Why the registry-free build cannot run here, or None when it can."""
    if os.name != "posix" or os.geteuid() != 0:
        return "it must run as root"
    missing = [tool for tool in ("debootstrap", "chroot", "mount", "tar") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found (apt-get install debootstrap)"
    return None


def _config_changes(folder: Path, image_labels: dict[str, str]) -> list[str]:
    """The Dockerfile's configuration instructions (ENV, USER, WORKDIR, CMD...) plus our labels,
    so the imported image is configured exactly like the Dockerfile one."""
    text = (folder / "Dockerfile").read_text()
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending:
        logical.append(pending)
    changes = [line for line in logical if line.split(maxsplit=1)[0].upper() in _CONFIG_INSTRUCTIONS]
    changes += [f"LABEL {json.dumps(key)}={json.dumps(value)}" for key, value in image_labels.items()]
    return changes


def _stream_process(argv: list[str], progress: Progress, what: str) -> None:
    """Run argv, passing each output line to progress; ImageBuildError with its last error line."""
    recent: deque[str] = deque(maxlen=_FAILURE_CONTEXT_LINES)
    # Its own process group, so an interruption can stop apt/dpkg too, not just the shell.
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            recent.append(line)
            progress(line)
        code = process.wait()
    finally:
        if process.poll() is None:  # interrupted: stop the group; the script's trap unmounts
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
    if code != 0:
        message = _failure_line(recent) or (recent[-1] if recent else "no output")
        raise ImageBuildError(f"{what} failed (exit {code}): {one_line(message)}")


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first."""
    prefix = str(path.resolve())
    found: list[str] = []
    with contextlib.suppress(OSError), open("/proc/self/mounts") as mounts:
        for entry in mounts:
            fields = entry.split()
            if len(fields) < 2:
                continue
            point = fields[1].encode().decode("unicode_escape")  # \040 for spaces
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _remove_tree(path: Path, progress: Progress) -> None:
    """Delete the scratch tree, never while something (like /proc) is still mounted in it."""
    for point in _mounts_under(path):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    left = _mounts_under(path)
    if left:
        progress(f"warning: not removing {path}: still mounted: {', '.join(left)}")
        return
    shutil.rmtree(path, ignore_errors=True)


def _build_with_debootstrap(
    client: docker.DockerClient,
    tag: str,
    folder: Path,
    image_labels: dict[str, str],
    progress: Progress,
    mirror: str | None,
) -> None:
    """build-rootfs.sh into a scratch dir, tar it, `docker import` it; the scratch dir always goes."""
    scratch = _scratch_dir()
    scratch.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="patchwright-image-", dir=scratch))
    try:
        rootfs = workdir / "rootfs"
        argv = ["bash", str(folder / "build-rootfs.sh"), str(rootfs)]
        if mirror:
            argv.append(mirror)
        _stream_process(argv, progress, "build-rootfs.sh")

        tarball = workdir / "rootfs.tar"
        progress("packing the root filesystem")
        packed = subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."],
            capture_output=True,
            text=True,
            check=False,
        )
        if packed.returncode != 0:
            detail = (packed.stderr.strip().splitlines() or ["no output"])[-1]
            raise ImageBuildError(f"packing the root filesystem failed: {detail}")
        _remove_tree(rootfs, progress)  # halves the peak disk use during the import

        repository, _, version = tag.rpartition(":")
        progress(f"importing {tarball.stat().st_size // 2**20} MB into Docker as {tag}")
        with docker_errors("docker import of the sandbox image failed", ImageBuildError):
            answer = client.api.import_image(
                src=str(tarball),
                repository=repository,
                tag=version,
                changes=_config_changes(folder, image_labels),
            )
        for line in str(answer or "").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("error"):
                    message = one_line(str(event["error"]))
                    raise ImageBuildError(f"docker import of the sandbox image failed: {message}")
    finally:
        _remove_tree(workdir, progress)


@dataclass(frozen=True)
class ImageDefinition:
    """One image patchwright builds from a folder of `sandbox/` (the sandbox's own, the services',
    setup's proxy): tagged by a hash of that folder, labelled as ours, built once per machine."""

    what: str  # how progress and errors name it: "sandbox image"
    repo: str  # the tag's repository: patchwright-sandbox
    kind: str  # its labels.KIND value
    subfolder: str = ""  # below sandbox/; "" for the sandbox image itself
    contents: str = ""  # said while building: ": tinyproxy"

    def folder(self) -> Path:
        """The definition folder of the checkout or the wheel."""
        try:
            root = data_dir("sandbox")
        except FileNotFoundError as err:
            raise ImageBuildError(str(err)) from err
        return root / self.subfolder if self.subfolder else root

    def hash(self) -> str:
        return definition_hash(self.folder())

    def tag(self) -> str:
        return f"{self.repo}:{self.hash()}"

    def build(
        self,
        client: docker.DockerClient,
        method: BuildMethod = "auto",
        force: bool = False,
        progress: Progress | None = None,
        *,
        mirror: str | None = None,
    ) -> BuildResult:
        return build_defined(client, self, method, force, progress, mirror=mirror)

    def ensure(self, client: docker.DockerClient, progress: Progress | None = None) -> str:
        return ensure_defined(client, self, progress)


SANDBOX_IMAGE = ImageDefinition("sandbox image", DEFAULT_IMAGE_REPO, labels.KIND_IMAGE)


def build_defined(
    client: docker.DockerClient,
    definition: ImageDefinition,
    method: BuildMethod = "auto",
    force: bool = False,
    progress: Progress | None = None,
    *,
    mirror: str | None = None,
) -> BuildResult:
    """Build `definition` unless its tag already exists (or `force`); parallel callers build it once.

    `auto` uses the Dockerfile when debian:bookworm-slim is local or can be pulled
    quickly, else debootstrap. `mirror` is the Debian mirror for the debootstrap path.
    """
    say = progress or _quiet
    started = time.monotonic()
    folder = definition.folder()
    image_hash = definition_hash(folder)
    tag = f"{definition.repo}:{image_hash}"
    if not force and _image_exists(client, tag):
        say(f"{definition.what} {tag} already exists")
        return BuildResult(tag, "existing", time.monotonic() - started, skipped=True)
    image_labels = {
        labels.MANAGED: labels.MANAGED_VALUE,
        labels.KIND: definition.kind,
        labels.IMAGE_HASH: image_hash,
    }
    try:
        with _build_lock(f"{definition.subfolder}-{image_hash}" if definition.subfolder else image_hash):
            if not force and _image_exists(client, tag):  # a parallel caller built it meanwhile
                say(f"{definition.what} {tag} was built meanwhile")
                return BuildResult(tag, "existing", time.monotonic() - started, skipped=True)
            chosen = _choose_method(client, method, say)
            say(f"building {definition.what} {tag} ({chosen}{definition.contents})")
            if chosen == "dockerfile":
                _build_with_dockerfile(client, tag, folder, image_labels, say)
            else:
                _build_with_debootstrap(client, tag, folder, image_labels, say, mirror)
    except OSError as err:  # scratch space, lock file, a missing tool: still one line, not a traceback
        raise ImageBuildError(f"building the {definition.what} failed: {err}") from err
    seconds = time.monotonic() - started
    say(f"built {definition.what} {tag} in {seconds:.0f} s")
    return BuildResult(tag, chosen, seconds, skipped=False)


def ensure_defined(
    client: docker.DockerClient, definition: ImageDefinition, progress: Progress | None = None
) -> str:
    """The image's tag, built first if missing (once per machine)."""
    tag = definition.tag()
    if not _image_exists(client, tag):
        (progress or _quiet)(f"{definition.what} {tag} is missing; building it now (once, 1-2 minutes)")
        build_defined(client, definition, progress=progress)
    return tag


build_image = SANDBOX_IMAGE.build  # the default sandbox image, built unless its tag exists


def _choose_method(
    client: docker.DockerClient, method: BuildMethod, say: Progress
) -> Literal["dockerfile", "debootstrap"]:
    """Resolve `auto`, and check up front that the chosen road can be travelled here."""
    if method == "debootstrap":
        blocker = _debootstrap_blocker()
        if blocker:
            raise ImageBuildError(
                f"cannot build the sandbox image with debootstrap: {blocker}; "
                "run `agent sandbox build` as root after `apt-get install debootstrap`"
            )
        return "debootstrap"
    if _image_exists(client, BASE_IMAGE):
        return "dockerfile"
    say(f"{BASE_IMAGE} is not present locally; trying to pull it")
    pull_failure = _try_pull(client, BASE_IMAGE, say)
    if pull_failure is None:
        return "dockerfile"
    say(f"cannot pull {BASE_IMAGE}: {pull_failure}")
    if method == "dockerfile":
        raise ImageBuildError(
            f"cannot pull {BASE_IMAGE} ({pull_failure}); build without a registry instead "
            "(`agent sandbox build --method debootstrap`, as root with debootstrap installed)"
        )
    blocker = _debootstrap_blocker()
    if blocker:
        raise ImageBuildError(
            f"cannot build the sandbox image: {BASE_IMAGE} cannot be pulled ({pull_failure}) and the "
            f"registry-free build cannot run ({blocker}); run `agent sandbox build` as root after "
            f"`apt-get install debootstrap`, or `docker pull {BASE_IMAGE}` first"
        )
    say("building without a registry (debootstrap)")
    return "debootstrap"


def ensure_image(client: docker.DockerClient, tag: str | None, progress: Progress | None = None) -> str:
    """The image tag a run should use: the user's if it exists, else the default one, built if missing."""
    say = progress or _quiet
    default = default_image_tag()
    if tag is None or tag == default:
        if not _image_exists(client, default):
            say(f"sandbox image {default} is missing; building it now (once, 1-2 minutes)")
            build_image(client, progress=say)
        return default
    if not _image_exists(client, tag):
        raise SandboxError(f"image {tag} not found; run `agent sandbox build` or pass --image")
    return tag
