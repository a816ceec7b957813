"""Tool round trip of `true`: the persistent shell vs a `docker exec` per command.

One sandbox (DockerSandbox on a small repo), then N interleaved rounds; in each round
every method runs `true` once, in a shuffled order, on the same container:

  shell    sandbox.run("true")                      the persistent shell (what tools use)
  cli      subprocess `docker exec CONTAINER true`  the docker CLI, one process per command
  sdk      container.exec_run("true")               docker SDK, for reference
  execute  sandbox.execute(["true"])                patchwright's own one-off exec, for reference

Target: median(shell) / median(cli) <= 0.25.

    python benchmarks/shell_roundtrip.py [--rounds N]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _bench
import docker

from patchwright.sandbox.base import SandboxSpec
from patchwright.sandbox.docker import DockerSandbox
from patchwright.workspace import open_workspace

from helpers import make_repo

TARGET = 0.25
WARMUP = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()

    client = docker.from_env()
    image = _bench.sandbox_image(client)
    with tempfile.TemporaryDirectory(prefix="pw-bench-rt-") as tmp:
        repo = make_repo(Path(tmp) / "repo", {"app.py": "print('hi')\n", "README.md": "demo\n"})
        spec = SandboxSpec(image=image, run_id=f"bench-rt-{_bench.SESSION}", labels=_bench.labels())
        box = DockerSandbox(client, spec, open_workspace(repo))
        try:
            box.start()
            assert box.container is not None
            container = box.container
            cid = container.id

            def shell() -> None:
                result = box.run("true")
                assert result.exit_code == 0, result

            def cli() -> None:
                subprocess.run(["docker", "exec", cid, "true"], check=True, stdout=subprocess.DEVNULL)

            def sdk() -> None:
                code, _ = container.exec_run("true")
                assert code == 0

            def execute() -> None:
                result = box.execute(["true"])
                assert result.exit_code == 0, result

            methods: dict[str, Callable[[], None]] = {
                "shell": shell,
                "cli": cli,
                "sdk": sdk,
                "execute": execute,
            }
            for fn in methods.values():  # warm up connections, page cache, the shell's first command
                for _ in range(WARMUP):
                    fn()
            times: dict[str, list[float]] = {name: [] for name in methods}
            order = list(methods)
            rng = random.Random(1)
            for _ in range(args.rounds):
                rng.shuffle(order)
                for name in order:
                    started = time.perf_counter()
                    methods[name]()
                    times[name].append(time.perf_counter() - started)
        finally:
            box.stop()
            _bench.cleanup(client)

    ms = {name: [t * 1000 for t in ts] for name, ts in times.items()}
    rows = _bench.stats_rows(ms, "cli")
    print(f"round trip of `true`, {args.rounds} interleaved rounds, image {image}")
    print(_bench.table(["method", "n", "median ms", "p90 ms", "min ms", "vs cli"], rows))
    ratio = _bench.median(ms["shell"]) / _bench.median(ms["cli"])
    print(_bench.result_line("shell_roundtrip", ratio, TARGET))
    return 0


if __name__ == "__main__":
    sys.exit(main())
