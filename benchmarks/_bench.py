"""Shared bits of the benchmark scripts: paths, the sandbox image, statistics, tables, cleanup.

Not a benchmark itself. Every script measures the things it compares side by side in
one run (interleaved rounds), because this machine is noisy and numbers from
different runs do not compare.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"
for extra in (REPO_ROOT / "src", REPO_ROOT / "tests", REPO_ROOT / "tests" / "fakes"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

BENCH_LABEL = "io.patchwright.benchmark"
SDK_REFERENCE = "import anthropic; anthropic.Anthropic()"
SESSION = uuid.uuid4().hex[:8]


def sandbox_image(client: object) -> str:
    """PATCHWRIGHT_TEST_IMAGE if set, else the default tag (built if missing)."""
    if os.environ.get("PATCHWRIGHT_TEST_IMAGE"):
        return os.environ["PATCHWRIGHT_TEST_IMAGE"]
    from patchwright.sandbox.image import ensure_image

    return ensure_image(client, None, lambda line: print(f"  [image] {line}", file=sys.stderr))  # type: ignore[arg-type]


def labels() -> dict[str, str]:
    """Labels on everything a benchmark creates, so `cleanup` removes exactly that."""
    return {BENCH_LABEL: SESSION}


def cleanup(client: object) -> None:
    """Remove the containers and volumes this process created (by its session label), if any."""
    import docker.errors

    selector = {"label": f"{BENCH_LABEL}={SESSION}"}
    for container in client.containers.list(all=True, filters=selector):  # type: ignore[attr-defined]
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True, v=True)
    for volume in client.volumes.list(filters=selector):  # type: ignore[attr-defined]
        with contextlib.suppress(docker.errors.APIError):
            volume.remove(force=True)
    for image in client.images.list(filters=selector):  # type: ignore[attr-defined]  # repo snapshots
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(image.id, force=True)  # type: ignore[attr-defined]


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def stats_rows(times: dict[str, list[float]], base: str) -> list[tuple[object, ...]]:
    """name, n, median, p90, min and the median's ratio to `base`'s, a row a method."""
    ref = median(times[base])
    return [(name, len(ts), median(ts), p90(ts), min(ts), median(ts) / ref) for name, ts in times.items()]


def p90(xs: Sequence[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(xs)
    rank = max(1, -(-9 * len(ordered) // 10))  # ceil(0.9 n)
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def result_line(name: str, ratio: float, target: float) -> str:
    verdict = "PASS" if ratio <= target else "MISS"
    return f"RESULT {name}: ratio={ratio:.3f} target<={target:g} {verdict}"


def sdk_reference(code: str = SDK_REFERENCE) -> float:
    """The SDK's import and client, alone, with this interpreter: what no agent on it goes below."""
    env = {**os.environ, "ANTHROPIC_API_KEY": "sk-ant-reference"}
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.monotonic() - started


def docker_exec_true(container: str, n: int) -> list[float]:
    """`n` timings of `docker exec CONTAINER true`: the tool turn's yardstick."""
    times = []
    for _ in range(n):
        started = time.monotonic()
        subprocess.run(["docker", "exec", container, "true"], check=True, capture_output=True)
        times.append(time.monotonic() - started)
    return times


@contextlib.contextmanager
def idle_container(client: object, image: str) -> Iterator[str]:
    """A container that only sleeps, for docker_exec_true; removed at the end."""
    container = client.containers.run(  # type: ignore[attr-defined]
        image, ["sleep", "infinity"], detach=True, labels=labels(), network_mode="none"
    )
    try:
        yield str(container.id)
    finally:
        container.remove(force=True)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
