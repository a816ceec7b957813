"""Host memory of `agent fix` against the size of its patch: it should stay flat.

Each round is one real `agent fix` (real SDK against tests/fakes/fakeapi.py, real Docker) whose
scripted model writes new text files (base64 of random bytes, 8 files) adding up to SIZE MB,
then ends. The patch goes from the sandbox to the run folder in pieces, so the `agent fix`
process's peak RSS (os.wait4's ru_maxrss: that process and any it waited for) should not
grow with the patch. The largest size is past the 256 MiB limit: a partial patch is written.

    python benchmarks/patch_memory.py [--sizes 8,200,400]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
from _bench import sandbox_image, table

from fakeapi import FakeAnthropic, message, text, tool_use
from helpers import make_repo

FILES = 8


def one_run(size_mb: int, image: str, workdir: Path) -> dict[str, Any]:
    repo = make_repo(workdir / f"repo{size_mb}", {"app.py": "x = 1\n"})
    raw = size_mb * 1_000_000 * 3 // 4 // FILES  # base64 makes 4 bytes of 3
    make = f"mkdir big && for i in $(seq {FILES}); do head -c {raw} /dev/urandom | base64 -w 76 > big/f$i.txt; done"
    script = [message(tool_use("bash", {"command": make})), message(text("done"))]
    with FakeAnthropic(script) as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PATCHWRIGHT_"))}
        env.update(api.env(api_key="sk-ant-bench-0000000000"))
        env.update({"PATCHWRIGHT_IMAGE": image, "CI": "true", "PATCHWRIGHT_SNAPSHOTS": "false"})
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "patchwright", "fix", "make files", "--repo", str(repo), "--quiet"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        _, status, usage = os.wait4(proc.pid, 0)
        stderr = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - started
    run_dir = next((repo / ".patchwright" / "runs").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    written = run_dir / ("patch.partial.diff" if summary.get("partial_patch") else "patch.diff")
    return {
        "size_mb": size_mb,
        "exit": proc.returncode,
        "patch_mib": written.stat().st_size / 2**20 if written.exists() else 0.0,
        "partial": bool(summary.get("partial_patch")),
        "left_out": summary.get("files_left_out", 0),
        "peak_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
        "seconds": elapsed,
        "error": (summary.get("error") or stderr.strip()[-200:]) if proc.returncode not in (0, 3) else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,200,400", help="MB of new files a run writes, comma-separated")
    args = parser.parse_args()
    image = sandbox_image(docker.from_env())
    rows = []
    with tempfile.TemporaryDirectory(prefix="pw-patchmem-") as folder:
        for size in (int(s) for s in args.sizes.split(",")):
            row = one_run(size, image, Path(folder))
            rows.append(row)
            print(f"  {row}", file=sys.stderr)
    headers = ["changes MB", "exit", "patch MiB", "partial", "left out", "peak RSS MiB", "seconds"]
    print(
        table(
            headers,
            [
                (
                    r["size_mb"],
                    r["exit"],
                    r["patch_mib"],
                    r["partial"],
                    r["left_out"],
                    r["peak_rss_mib"],
                    r["seconds"],
                )
                for r in rows
            ],
        )
    )
    ratio = max(r["peak_rss_mib"] for r in rows) / min(r["peak_rss_mib"] for r in rows)
    print(f"RESULT patch-memory: ratio={ratio:.3f} target<=1.5 {'PASS' if ratio <= 1.5 else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
