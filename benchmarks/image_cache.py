"""The images' cache in CI: a first job (no cache: the image is built, then saved for the
cache) against a second job (cache hit: the saved image is loaded), each to the model's
first request.

What the action does on a fresh runner, simulated on this machine: the sandbox image is
built from the shipped definition under a benchmark tag (so the image other work uses is
never touched), `docker save`d as `actions/cache` would store it, removed, and
`docker load`ed as the next job would. After each, `agent fix` is launched against the fake
API and timed to its first request. Not measured: the cache's upload and download (the
archive's size is printed; GitHub's cache moves it at network speed).

    python benchmarks/image_cache.py
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _bench
import docker
import docker.errors

from patchwright.resources import data_dir
from patchwright.sandbox.image import _build_with_debootstrap

from fakeapi import FakeAnthropic, RecordedRequest, message, text
from helpers import make_repo


def to_first_request(repo: Path, image: str) -> float:
    seen: list[float] = []

    def script(_request: RecordedRequest, index: int) -> Any:
        seen.append(time.monotonic())
        return message(text("done"))

    with FakeAnthropic(script) as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PATCHWRIGHT_"))}
        env.update(api.env(api_key="sk-ant-api03-bench-0000"), PATCHWRIGHT_IMAGE=image, CI="true")
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "patchwright", "fix", "nothing", "--repo", str(repo), "--no-services",
             "--max-continues", "0", "--format", "json"],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    if not seen:
        raise SystemExit(f"agent fix made no request ({done.returncode}): {done.stderr[-800:]}")
    return seen[0] - started


def main() -> None:
    client = docker.from_env()
    tag = f"patchwright-bench-sandbox:{_bench.SESSION}"
    say = lambda line: print(f"  [build] {line}", file=sys.stderr)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="pw-bench-cache-") as tmp:
        archive = Path(tmp) / "sandbox.tar"
        repo = make_repo(Path(tmp) / "repo", {"app.py": "x = 1\n"})
        try:
            started = time.monotonic()
            _build_with_debootstrap(client, tag, data_dir("sandbox"), _bench.labels(), say, None)
            build = time.monotonic() - started
            print(f"build {build:.1f} s", flush=True)
            started = time.monotonic()
            subprocess.run(["docker", "save", "-o", str(archive), tag], check=True)
            save = time.monotonic() - started
            size = archive.stat().st_size
            print(f"save {save:.1f} s ({size / 1e6:.0f} MB)", flush=True)
            first_run = to_first_request(repo, tag)
            print(f"first job: agent fix to the first request {first_run:.2f} s", flush=True)
            client.images.remove(tag, force=True)
            started = time.monotonic()
            subprocess.run(["docker", "load", "-q", "-i", str(archive)], check=True, capture_output=True)
            load = time.monotonic() - started
            print(f"load {load:.1f} s", flush=True)
            second_run = to_first_request(repo, tag)
            print(f"second job: agent fix to the first request {second_run:.2f} s", flush=True)
        finally:
            with contextlib.suppress(docker.errors.APIError):  # a container of others may vanish mid-list
                _bench.cleanup(client)
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag, force=True)
    first = build + save + first_run
    second = load + second_run
    print(
        _bench.table(
            ["job", "image", "seconds", "agent fix to 1st request", "total"],
            [
                ("first (cache miss)", "build + save", build + save, first_run, first),
                ("second (cache hit)", "load", load, second_run, second),
            ],
        )
    )
    print(f"build {build:.1f} s, save {save:.1f} s, load {load:.1f} s; archive {size / 1e6:.0f} MB (1 round)")
    print(f"RESULT image cache: second job / first job to the first model request = {second / first:.3f}")


if __name__ == "__main__":
    main()
