"""Time from launching `agent setup` (no flags) to a runnable test suite, first and second run,
on the real-world-shaped projects in tests/environment/projects.

For each project: a fresh git repo (a copy of the fixture), then `agent setup --format json`
twice in a row on it; each run is timed from launch to exit, which includes detecting the
recipe, starting the sandbox (and the project's database), running its setup with the network on
(installs from PyPI / the npm registry through the host's proxy) and running the tests once.
The second run shows what is reused between runs today (nothing of the setup itself: every run
installs again; only the image and the package managers' view of the registries are warm).
Printed side by side with the machine's load, since this 2-core machine is shared.

    python benchmarks/environment_ready.py [--projects django_postgres,monorepo] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import REPO_ROOT, sandbox_image, table

PROJECTS = REPO_ROOT / "tests" / "environment" / "projects"
DEFAULT = ("django_postgres", "express_postgres", "monorepo", "python314")


def fresh_repo(name: str, parent: Path) -> Path:
    root = parent / name
    shutil.copytree(PROJECTS / name, root)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "initial"]):
        subprocess.run(
            ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench", *args], cwd=root, check=True
        )
    return root


def timed_setup(repo: Path, image: str) -> tuple[float, int, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHWRIGHT_")}
    env.update({"PATCHWRIGHT_IMAGE": image, "CI": "true", "PYTHONPATH": str(REPO_ROOT / "src")})
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "patchwright", "setup", "--repo", str(repo), "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seconds = time.monotonic() - started
    try:
        found = json.loads(done.stdout)
    except ValueError:
        found = {"reason": done.stderr.strip().splitlines()[-1:] or ["?"]}
    return seconds, done.returncode, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", default=",".join(DEFAULT))
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    import docker

    image = sandbox_image(docker.from_env())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.projects.split(","):
            for round_ in range(args.rounds):
                repo = fresh_repo(name, Path(tmp) / f"r{round_}")
                load = os.getloadavg()[0]
                first, code1, found = timed_setup(repo, image)
                second, code2, _ = timed_setup(repo, image)
                tests = found.get("tests") or {}
                ran = f"{tests.get('passed', 0)} passed, {tests.get('failed', 0)} failed" if tests else "-"
                ratio = f"{second / first:.2f}"
                rows.append(
                    (name, f"{load:.1f}", f"{first:.1f}", f"{second:.1f}", ratio, f"{code1}/{code2}", ran)
                )
    print(table(("project", "load", "first s", "second s", "second/first", "exit", "tests"), rows))


if __name__ == "__main__":
    main()
