"""Time from launching `agent fix` with no flags to a runnable test suite, first run and second
run on the same tree, on the real-world-shaped projects in tests/environment/projects.

For each project: a fresh git repo (a copy of the fixture), then `agent fix "db connection
errors"` twice in a row on it, against the fake Messages API (tests/fakes/fakeapi.py). Each run is
timed from the API's side: launch to the first model request. With a test command, the first
request waits until the tests are known to run, so this is detecting the recipe, starting the
sandbox and the project's database, setup with the network on (installs from PyPI / the npm
registry through the host's proxy, or the kept state of the earlier run: reuse.py) and running
the tests once. `agent setup` (which keeps nothing) is timed once beside them. Snapshots are on,
as for a user outside CI. Printed with the machine's load, since this 2-core machine is shared.

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
from typing import Any

from _bench import REPO_ROOT, sandbox_image, table

PROJECTS = REPO_ROOT / "tests" / "environment" / "projects"
DEFAULT = ("django_postgres", "express_postgres", "monorepo", "python314")
FIX = [sys.executable, "-m", "patchwright", "fix", "db connection errors"]
sys.path.insert(0, str(REPO_ROOT / "tests" / "fakes"))

from fakeapi import FakeAnthropic, message, text  # noqa: E402


def fresh_repo(name: str, parent: Path) -> Path:
    root = parent / name
    shutil.copytree(PROJECTS / name, root)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "initial"]):
        subprocess.run(
            ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench", *args], cwd=root, check=True
        )
    return root


def base_env(image: str, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PATCHWRIGHT_", "ANTHROPIC_", "CI"))}
    env.update(
        {"PATCHWRIGHT_IMAGE": image, "PYTHONPATH": str(REPO_ROOT / "src"), "XDG_CACHE_HOME": str(cache)}
    )
    return env


def timed_fix(repo: Path, env: dict[str, str]) -> tuple[float | None, int, dict[str, Any]]:
    """Launch to the first model request (None: the run never asked the model), exit, summary."""
    with FakeAnthropic([message(text("Nothing to change."))]) as api:
        started = time.monotonic()
        done = subprocess.run(
            [*FIX, "--repo", str(repo), "--format", "json", "--max-continues", "0", "--quiet"],
            env={**env, **api.env(api_key="sk-ant-api03-bench-0000")},
            capture_output=True,
            text=True,
            timeout=1800,
        )
        first = api.requests[0].received - started if api.requests else None
    try:
        summary = json.loads(done.stdout)
    except ValueError:
        summary = {}
    return first, done.returncode, summary


def timed_setup(repo: Path, env: dict[str, str]) -> tuple[float, int]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "patchwright", "setup", "--repo", str(repo), "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return time.monotonic() - started, done.returncode


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


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
                env = base_env(image, Path(tmp) / f"cache-{name}-{round_}")
                load = os.getloadavg()[0]
                setup_s, setup_code = timed_setup(repo, env)
                first, code1, summary = timed_fix(repo, env)
                second, code2, again = timed_fix(repo, env)
                environment = again.get("environment") or summary.get("environment") or {}
                ratio = f"{second / first:.2f}" if first and second else "-"
                rows.append(
                    (
                        name,
                        f"{load:.1f}",
                        f"{setup_s:.1f} (exit {setup_code})",
                        seconds(first),
                        seconds(second),
                        ratio,
                        "yes" if (again.get("environment") or {}).get("reused") else "no",
                        f"{code1}/{code2}",
                        "yes" if environment.get("tests_runnable") else f"no: {environment.get('reason')}",
                    )
                )
    headers = ("project", "load", "agent setup s", "fix: first s", "second s", "second/first")
    print(table((*headers, "reused", "exit", "tests ran"), rows))


if __name__ == "__main__":
    main()
