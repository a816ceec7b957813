"""What a user waits for in patchwright and in two peer agents, timed the same way: each agent
launched as a real process against the fake Messages API (tests/fakes/fakeapi.py), every
figure taken on the API's side. Our own targets (user_waits.py) say how fast we want to be;
this says where that puts us beside agents people already use, on the same machine, in the
same rounds.

  peers   mini-swe-agent (PyPI `mini-swe-agent`: its `mini` CLI, litellm's Anthropic provider,
          commands run locally) and Claude Code (npm `@anthropic-ai/claude-code`: `claude -p`,
          its Bash tool, commands run locally); patchwright runs `agent fix` as user_waits.py
          does (CI=true, commands in its Docker sandbox). Each works on a fresh copy of the
          small repo of user_waits.py's `turns` (app.py and 50 modules in pkg/), and the
          scripted model calls the agent's own shell tool 20 times: `ls`, `cat app.py`, a
          one-line `sed -i` edit of app.py, `grep -rn "def handler" .`, five times over; then
          its final word (mini-swe-agent's is its own protocol: the command
          `echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT`, which it runs before it exits).
  turn    From the end of one reply to the arrival of the next request: the agent's own time
          to run the command and send its result. Baseline, measured between the runs:
          `docker exec CONTAINER true` on an idle container of the sandbox image.
  first   From launch (just before Popen) to the arrival of the request carrying the first
          tool result. Reference: `python -c "import anthropic; anthropic.Anthropic()"`.
  finish  From the end of the final reply to the process's exit.

Every run is checked: exit code, 21 requests from the agent's main loop, and each `cat app.py`
result showing the edit before it (the commands really ran). Requests that are not the main
loop's (a side model call offering no shell tool, say) get a short text reply and are counted.
Claude Code sends a mid-conversation `system` message (beta mid-conversation-system-2026-04-07)
that FakeAnthropic refuses; PeerAPI below drops it before validation (the recorded body keeps it).

The peers are installed by hand, outside the project (their paths are options):

    npm install --prefix /tmp/peers/claude @anthropic-ai/claude-code
    python -m venv /tmp/peers/mini-venv && /tmp/peers/mini-venv/bin/pip install mini-swe-agent

Claude Code refuses --dangerously-skip-permissions as root unless IS_SANDBOX=1, which is set.
Each agent keeps one throwaway HOME for the whole run and makes one untimed warm-up run first,
so the timed rounds are a returning user's runs with the agent's files in the page cache.

    python benchmarks/peers.py [--rounds N] [--agents patchwright,claude-code,mini-swe-agent]
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _bench
import docker

from agentrun import AGENT, agent_env
from fakeapi import FakeAnthropic, RecordedRequest, Reply, last_tool_results, message, text, tool_use
from helpers import make_repo

PEERS_DIR = Path("/tmp/peers")
CLAUDE_BIN = PEERS_DIR / "claude" / "node_modules" / ".bin" / "claude"
MINI_BIN = PEERS_DIR / "mini-venv" / "bin" / "mini"
MINI_MODEL = "anthropic/claude-sonnet-4-5"
MINI_SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
TASK = "benchmark"
EDITS = 5
FILES: dict[str, str | bytes] = {"app.py": "N = 0\n\ndef handler(request):\n    return request\n"}
FILES.update({f"pkg/module_{i}.py": f"def handler_{i}(x):\n    return x + {i}\n" for i in range(50)})


def commands() -> list[str]:
    """The scripted commands: ls, cat, edit, grep, EDITS times; `cat` in round n sees N = n."""
    out: list[str] = []
    for n in range(EDITS):
        out += ["ls", "cat app.py", f"sed -i 's/^N = {n}$/N = {n + 1}/' app.py", 'grep -rn "def handler" .']
    return out


COMMANDS = commands()


def kind(command: str) -> str:
    return command.split()[0]


class PeerAPI(FakeAnthropic):
    """FakeAnthropic, taking what Claude Code sends that it refuses: `system` messages between
    the turns (beta mid-conversation-system-2026-04-07) are dropped before validation and
    accounting; the recorded request keeps them."""

    def _respond(
        self, out: Any, method: str, path: str, headers: dict[str, str], body: Any, slot: int
    ) -> int:
        if isinstance(body, dict) and isinstance(body.get("messages"), list):
            kept = [m for m in body["messages"] if not (isinstance(m, dict) and m.get("role") == "system")]
            body = {**body, "messages": kept}
        return super()._respond(out, method, path, headers, body, slot)


def offers(request: RecordedRequest, tool: str) -> bool:
    return any(t.get("name") == tool for t in request.body.get("tools") or [])


class Script:
    """The scripted model of one run. A request offering `tool` is the main loop's: it gets the
    next command, then `final`. Any other request gets a short text, and is counted."""

    def __init__(self, tool: str, final: Reply) -> None:
        self.tool = tool
        self.final = final
        self.turn = 0
        self.side_requests = 0
        self._lock = threading.Lock()

    def __call__(self, request: RecordedRequest, index: int) -> Reply:
        with self._lock:
            if not offers(request, self.tool):
                self.side_requests += 1
                return message(text("OK"))
            turn, self.turn = self.turn, self.turn + 1
        if turn < len(COMMANDS):
            return message(text("Next step."), tool_use(self.tool, {"command": COMMANDS[turn]}))
        if turn == len(COMMANDS):
            return self.final
        return message(text("Done."))


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    ok_exit: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class Agent:
    """One agent: its name, the shell tool its model calls, its final reply, and how to launch it
    against `api` on `repo` with `home` as its HOME."""

    name: str
    tool: str
    final: Callable[[], Reply]
    launch: Callable[[FakeAnthropic, Path, Path], Launch]


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PATCHWRIGHT_"))}
    env["HOME"] = str(home)
    return env


def claude_launch(binary: Path) -> Callable[[FakeAnthropic, Path, Path], Launch]:
    def launch(api: FakeAnthropic, repo: Path, home: Path) -> Launch:
        env = base_env(home) | {
            "ANTHROPIC_BASE_URL": api.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-fake",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "IS_SANDBOX": "1",  # else --dangerously-skip-permissions is refused to root
        }
        return Launch([str(binary), "-p", TASK, "--dangerously-skip-permissions"], env)

    return launch


def mini_launch(binary: Path) -> Callable[[FakeAnthropic, Path, Path], Launch]:
    def launch(api: FakeAnthropic, repo: Path, home: Path) -> Launch:
        env = base_env(home) | {
            "ANTHROPIC_BASE_URL": api.base_url,  # litellm's Anthropic provider reads it
            "ANTHROPIC_API_KEY": "sk-ant-fake",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the cost map at import
            "MSWEA_CONFIGURED": "true",  # no first-run setup prompt
            "MSWEA_GLOBAL_CONFIG_DIR": str(home / "mini-swe-agent"),
        }
        argv = [str(binary), "-t", TASK, "--yolo", "--exit-immediately", "-m", MINI_MODEL]
        return Launch(argv, env)

    return launch


def patchwright_launch(image: str, src: Path) -> Callable[[FakeAnthropic, Path, Path], Launch]:
    def launch(api: FakeAnthropic, repo: Path, home: Path) -> Launch:
        env = agent_env(api, image, CI="true", PYTHONPATH=str(src))
        argv = [*AGENT, "fix", TASK, "--repo", str(repo), "--quiet", "--max-steps", "500"]
        return Launch(argv, env, ok_exit=(0, 1))  # 1: finished without changes

    return launch


@dataclass
class Times:
    turns: dict[str, list[float]] = field(default_factory=dict)  # by command kind
    first: list[float] = field(default_factory=list)
    finish: list[float] = field(default_factory=list)
    side_requests: list[int] = field(default_factory=list)
    leftovers: int = 0  # runs whose process group outlived the agent

    def every_turn(self) -> list[float]:
        return [t for ts in self.turns.values() for t in ts]


def reap(pid: int) -> bool:
    """After the agent exited: end what is left of its process group (it was started in a new
    session); whether anything was."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


@dataclass(frozen=True)
class Run:
    launched: float  # time.monotonic() just before Popen
    exited: float
    main: list[RecordedRequest]  # the main loop's requests
    side_requests: int  # not the main loop's: answered with a short text, or Models API look-ups
    leftover: bool  # something of its process group outlived the agent


def run_agent(agent: Agent, repo: Path, home: Path, logs: Path) -> Run:
    """One scripted run, checked."""
    script = Script(agent.tool, agent.final())
    with PeerAPI(script) as api:
        launch = agent.launch(api, repo, home)
        with (logs / "stdout.txt").open("wb") as out, (logs / "stderr.txt").open("wb") as err:
            launched = time.monotonic()
            proc = subprocess.Popen(
                launch.argv,
                cwd=repo,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=600)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise SystemExit(f"{agent.name} did not finish in 600 s; see {logs}") from None
            exited = time.monotonic()
        left = reap(proc.pid)
        requests = api.requests
        model_lookups = len(api.model_requests)  # GET /v1/models, answered by the fake itself
    if left:
        print(f"  [{agent.name}] processes outlived the agent in its group; killed", file=sys.stderr)
    main = [r for r in requests if offers(r, agent.tool)]
    problems = check(agent, code, launch.ok_exit, requests, main)
    if problems:
        tail = (logs / "stderr.txt").read_text(errors="replace")[-1500:]
        tail = tail or (logs / "stdout.txt").read_text(errors="replace")[-1500:]
        raise SystemExit(f"{agent.name} run failed: {'; '.join(problems)}\n{tail}")
    return Run(launched, exited, main, script.side_requests + model_lookups, left)


def check(
    agent: Agent,
    code: int,
    ok_exit: tuple[int, ...],
    requests: list[RecordedRequest],
    main: list[RecordedRequest],
) -> list[str]:
    """What is wrong with a run: exit code, statuses, the main loop's length, the tool results."""
    problems = []
    if code not in ok_exit:
        problems.append(f"exit code {code}")
    bad = [(r.path, r.status) for r in requests if r.status != 200]
    if bad:
        problems.append(f"non-200 answers {bad}")
    if len(main) != len(COMMANDS) + 1:
        problems.append(f"{len(main)} main-loop requests, expected {len(COMMANDS) + 1}")
    for n, (command, request) in enumerate(zip(COMMANDS, main[1:], strict=False)):
        results = last_tool_results(request)
        if len(results) != 1:
            problems.append(f"request {n + 2} carries {len(results)} tool results")
            continue
        expected = f"N = {n // 4}" if kind(command) == "cat" else ""
        if expected not in results[0]["text"]:
            problems.append(f"`{command}` gave {results[0]['text'][:200]!r}, without {expected!r}")
    return problems


def record(times: Times, run: Run) -> None:
    for command, (before, after) in zip(COMMANDS, itertools.pairwise(run.main), strict=True):
        times.turns.setdefault(kind(command), []).append(after.received - before.answered)
    times.first.append(run.main[1].received - run.launched)
    times.finish.append(run.exited - run.main[-1].answered)
    times.side_requests.append(run.side_requests)
    times.leftovers += int(run.leftover)


def versions(agents: list[Agent], claude: Path, mini: Path) -> str:
    parts = [f"python {sys.version.split()[0]}"]
    names = {a.name for a in agents}
    if "claude-code" in names:
        out = subprocess.run(
            [str(claude), "--version"], capture_output=True, text=True, env=base_env(PEERS_DIR)
        )
        parts.append(f"claude-code {out.stdout.strip()}")
    if "mini-swe-agent" in names:
        code = "import importlib.metadata as m; print(m.version('mini-swe-agent'), m.version('litellm'))"
        out = subprocess.run([str(mini.parent / "python"), "-c", code], capture_output=True, text=True)
        mini_version, litellm_version = [*out.stdout.split(), "?", "?"][:2]
        parts.append(f"mini-swe-agent {mini_version} (litellm {litellm_version})")
    return "; ".join(parts)


def make_agents(names: list[str], image: str, claude: Path, mini: Path) -> list[Agent]:
    known = {
        "patchwright": Agent(
            "patchwright",
            "bash",
            lambda: message(text("Done.")),
            patchwright_launch(image, _bench.REPO_ROOT / "src"),
        ),
        "claude-code": Agent("claude-code", "Bash", lambda: message(text("Done.")), claude_launch(claude)),
        "mini-swe-agent": Agent(
            "mini-swe-agent",
            "bash",
            lambda: message(text("Submitting."), tool_use("bash", {"command": MINI_SUBMIT})),
            mini_launch(mini),
        ),
    }
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown agents {unknown}; known: {', '.join(known)}")
    for name, binary in (("claude-code", claude), ("mini-swe-agent", mini)):
        if name in names and not binary.exists():
            raise SystemExit(f"{name} is not installed at {binary}; see this script's docstring")
    return [known[n] for n in names]


def report(
    rounds: int, agents: list[Agent], times: dict[str, Times], exec_times: list[float], sdk: list[float]
) -> None:
    base = _bench.median(exec_times)
    print(f"\ntool turn: end of a reply to the next request ({rounds} rounds, {len(COMMANDS)} turns a run)")
    rows: dict[str, list[float]] = {"docker exec true": exec_times}
    for agent in agents:
        mine = times[agent.name]
        rows[f"{agent.name}: tool turn (all)"] = mine.every_turn()
        rows.update({f"{agent.name}:   {k}": ts for k, ts in mine.turns.items()})
    print(
        _bench.table(
            ["", "n", "median s", "p90 s", "min s", "x exec"], _bench.stats_rows(rows, "docker exec true")
        )
    )
    for agent in agents:
        ratio = _bench.median(times[agent.name].every_turn()) / base
        print(f"RATIO {agent.name}: median tool turn / median docker exec true = {ratio:.3f}")

    print("\nlaunch to the first tool result's arrival")
    rows = {"SDK import + client (python -c)": sdk}
    rows.update({agent.name: times[agent.name].first for agent in agents})
    print(
        _bench.table(
            ["", "n", "median s", "p90 s", "min s", "x SDK ref"],
            _bench.stats_rows(rows, "SDK import + client (python -c)"),
        )
    )

    print("\nfinal reply to the process's exit")
    finish_rows = []
    for agent in agents:
        ts = times[agent.name].finish
        finish_rows.append((agent.name, len(ts), _bench.median(ts), _bench.p90(ts), min(ts), max(ts)))
    print(_bench.table(["", "n", "median s", "p90 s", "min s", "max s"], finish_rows))

    print("\nrequests outside the main loop (a run each), runs that left processes behind")
    for agent in agents:
        mine = times[agent.name]
        print(f"  {agent.name}: side requests {mine.side_requests}; left processes in {mine.leftovers} runs")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--agents", default="patchwright,claude-code,mini-swe-agent")
    parser.add_argument("--claude", type=Path, default=CLAUDE_BIN, help="the `claude` executable")
    parser.add_argument("--mini", type=Path, default=MINI_BIN, help="the `mini` executable, in its venv")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each agent first")
    args = parser.parse_args()
    compileall.compile_dir(_bench.REPO_ROOT / "src", quiet=1)  # as `pip install .` leaves it
    client = docker.from_env()
    image = _bench.sandbox_image(client)
    agents = make_agents(
        [n.strip() for n in args.agents.split(",") if n.strip()], image, args.claude, args.mini
    )
    work = Path(tempfile.mkdtemp(prefix="pw-peers-"))
    homes = {a.name: work / f"home-{a.name}" for a in agents}
    for home in homes.values():
        home.mkdir()
    times = {a.name: Times() for a in agents}
    exec_times: list[float] = []
    sdk: list[float] = []
    print(f"{_bench.load()} at the start; {versions(agents, args.claude, args.mini)}; image {image}")
    runs = itertools.count()

    def one(agent: Agent) -> Run:
        folder = work / f"{agent.name}-{next(runs)}"
        logs = folder / "logs"
        repo = make_repo(folder / "repo", FILES)
        logs.mkdir()
        return run_agent(agent, repo, homes[agent.name], logs)

    try:
        for agent in agents:
            for _ in range(args.warmup):
                one(agent)
        print(f"  warm-up done, {_bench.load()}", file=sys.stderr)
        with _bench.idle_container(client, image) as container:
            for r in range(args.rounds):
                for agent in agents if r % 2 == 0 else agents[::-1]:
                    exec_times += _bench.docker_exec_true(container, 10)
                    sdk.append(_bench.sdk_reference())
                    record(times[agent.name], one(agent))
                exec_times += _bench.docker_exec_true(container, 10)
                print(f"  round {r + 1} done, {_bench.load()}", file=sys.stderr)
    finally:
        _bench.cleanup(client)
        shutil.rmtree(work, ignore_errors=True)
    report(args.rounds, agents, times, exec_times, sdk)
    print(f"\n{_bench.load()} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
