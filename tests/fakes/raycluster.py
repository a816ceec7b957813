"""A real local Ray cluster for tests: nodes started with `ray start --block`, bound to 127.0.0.1.

Every node runs in a session of its own, so it can be stopped alone (killing its
process group: raylet, its workers and, for the head, the GCS) without touching
anyone else's Ray processes on the machine; ports are picked free, temp dirs are
the test's own, dashboards are off.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# `ray start` turns the address 127.0.0.1 (of --node-ip-address and --address) into the machine's
# outward address, which these machines may not use. The nodes run Ray's own CLI with that one
# lookup made to keep the address as given; drivers keep it with LOOPBACK_ENV (Ray's switch for
# single-machine platforms, which `ray start` refuses for a second node).
RAY = [
    sys.executable,
    "-c",
    "import ray._private.services as s; s.resolve_ip_for_localhost = lambda host: host; "
    "from ray.scripts.scripts import main; main()",
]
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid:  # field 6 of /proc/PID/stat: the session id
                    pids.append(int(entry.name))
    return pids


class RayNode:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc, self.log = proc, log

    def stop(self) -> None:
        """SIGKILL every process of the node's session: as a machine that dies."""
        for _ in range(3):
            pids = _session_pids(self.proc.pid)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if not pids:
                break
            time.sleep(0.5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


class RayCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[RayNode] = []

    def _ports(self) -> list[str]:
        low = 20000 + (os.getpid() % 200) * 100 + len(self.nodes) * 50  # worker ports, per node
        args = ["--min-worker-port", str(low), "--max-worker-port", str(low + 49)]
        for flag in (
            "--node-manager-port",
            "--object-manager-port",
            "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port",
            "--runtime-env-agent-port",
            "--metrics-export-port",
        ):
            args += [flag, str(free_port())]
        return args

    def _start(self, args: list[str], resources: dict[str, float], name: str) -> RayNode:
        log = self.root / f"{name}.log"
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_BACKEND_LOG_LEVEL": "warning"}
        argv = [
            *RAY,
            "start",
            *args,
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            "1",
            "--resources",
            json.dumps(resources),
            "--object-store-memory",
            str(100 * 2**20),
            "--disable-usage-stats",
            "--block",
            *self._ports(),
        ]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        node = RayNode(proc, log)
        self.nodes.append(node)
        return node

    def start_head(self, resources: dict[str, float]) -> RayNode:
        args = [
            "--head",
            "--port",
            str(self.port),
            "--include-dashboard=false",
            "--temp-dir",
            str(self.root / "tmp"),
        ]
        return self._start(args, resources, "head")

    def add_node(self, resources: dict[str, float]) -> RayNode:
        return self._start(["--address", self.address], resources, f"node{len(self.nodes)}")

    def wait_for(self, resource: str, amount: float, timeout: float = 180) -> None:
        """Until the cluster offers `amount` of `resource` (all nodes joined)."""
        script = (
            "import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
            "print(ray.cluster_resources().get(sys.argv[2], 0))"
        )
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            done = subprocess.run(
                [sys.executable, "-c", script, self.address, resource],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, **LOOPBACK_ENV},
            )
            seen = (done.stdout.strip().splitlines() or [done.stderr[-500:]])[-1]
            with contextlib.suppress(ValueError):
                if float(seen) >= amount:
                    return
            time.sleep(2)
        logs = "\n".join(n.log.read_text(errors="replace")[-1500:] for n in self.nodes)
        raise TimeoutError(f"cluster never offered {amount} {resource} (last: {seen})\n{logs}")

    def stop(self) -> None:
        for node in reversed(self.nodes):  # workers first, then the head
            node.stop()
