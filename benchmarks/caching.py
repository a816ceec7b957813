"""Prompt caching: billed input of a 30-turn run with cache breakpoints vs without.

The real AgentLoop, the real anthropic SDK (streaming), the real system prompt (the
backend-developer persona plus the run notes of prompt.py) and the real tool definitions, against
tests/fakeapi.FakeAnthropic, whose usage accounting models the API's prompt cache
(breakpoints, 20-block lookback, 1,024-token minimum, 1.25x writes, 0.1x reads).
The tools are in-process fakes returning realistic outputs of 200-3,000 characters
(file views, test runs, searches, shell commands, edits); the model's side is a script:
30 turns of one tool call each (most with a sentence of reasoning), then end_turn.

The same script runs twice, each on a fresh FakeAnthropic: AgentLoop(cache=True) and
AgentLoop(cache=False). Billed input = sum over turns of Usage.billed_input_equivalent().
Target: billed(cached) / billed(uncached) <= 0.2.

    python benchmarks/caching.py [--turns 30] [--context-trigger 100000] [--context-strategy clear]

Both runs send what a real run sends: adaptive thinking (the fake returns a
signed thinking block each turn, which must go back unchanged) and server-side context
management at the given trigger; the fake clears old tool results past it, which costs a
cache write of the rest of the prompt. A run long enough to cross the trigger shows what
that does to the ratio; the output says how many requests had context edits applied.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _bench
import anthropic

from patchwright.context import DEFAULT_TRIGGER, STRATEGIES, ContextPolicy
from patchwright.loop import AgentLoop, Limits, LoopState, first_message
from patchwright.model import ModelClient, Usage, model_info
from patchwright.outputs import Redactor, TrajectoryWriter
from patchwright.params import request_params
from patchwright.persona import find_agent
from patchwright.prompt import RunFacts, system_blocks
from patchwright.sandbox.base import WORKSPACE
from patchwright.tools import CommandTime, ToolResult, Toolset
from patchwright.tools.bash import BashTool
from patchwright.tools.editor import EditorTool
from patchwright.tools.run_tests import RunTestsTool
from patchwright.tools.search import SearchTool

from fakeapi import FakeAnthropic, RecordedRequest, message, text, tool_use

MODEL = "claude-sonnet-5-5"
TARGET = 0.2
TEST_COMMAND = "python3 -m pytest -q"
MIN_OUTPUT, MAX_OUTPUT = 200, 3000

TASK = """\
Orders placed through the REST API sometimes get charged twice. It started after we added
retries to the payment client (services/payments/client.py). Logs show two `charge` calls
with the same idempotency key about 30 s apart when the provider is slow: the first call
times out on our side, the retry goes through, and then the first one also completes.
Expected: a retried charge must never create a second charge; if the provider reports a
duplicate idempotency key we should treat it as success and return the original charge.
Add a regression test. Don't change the public API of PaymentClient.
"""

# --------------------------------------------------------------------------- realistic tool outputs

_IDENT = [
    "order",
    "charge",
    "amount",
    "currency",
    "customer",
    "provider",
    "response",
    "request",
    "retry",
    "attempt",
    "timeout",
    "idempotency_key",
    "payment",
    "status",
    "result",
    "session",
    "client",
    "config",
    "logger",
    "error",
    "backoff",
]


def _code(rng: random.Random, chars: int) -> str:
    lines: list[str] = []
    total = 0
    while total < chars:
        indent = "    " * rng.randint(0, 3)
        a, b, c = rng.sample(_IDENT, 3)
        line = rng.choice(
            [
                f"{indent}{a} = self.{b}.get({c!r})",
                f"{indent}if {a} is None or {b}.{c} != {rng.randint(0, 500)}:",
                f"{indent}def {a}_{b}(self, {c}: str, *, timeout: float = {rng.randint(1, 30)}.0) -> dict:",
                f'{indent}logger.info("{a} %s for {b} %s", {c}, {a})',
                f'{indent}raise {a.title()}Error(f"{b} failed: {{{c}}}")',
                f"{indent}return {{{a!r}: {b}, {c!r}: {rng.randint(0, 9999)}}}",
                "",
            ]
        )
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


def view_output(rng: random.Random, path: str, chars: int) -> str:
    start = rng.randint(1, 200)
    body = _code(rng, chars - 200).split("\n")
    numbered = "\n".join(f"{n:6}\t{line}" for n, line in enumerate(body, start))
    return f"Here's the result of running `cat -n` on {path}:\n{numbered}\n"


def test_output(rng: random.Random, chars: int, failing: int) -> str:
    parts = [f"{'.' * rng.randint(20, 60)}{'F' * failing}{'.' * rng.randint(5, 40)}"]
    if failing:
        parts.append("=" * 30 + " FAILURES " + "=" * 30)
    while sum(len(p) for p in parts) < chars - 200 and failing:
        name = f"test_{rng.choice(_IDENT)}_{rng.choice(_IDENT)}"
        parts.append(f"_____ {name} _____\n\n{_code(rng, 400)}\nE       AssertionError: assert 2 == 1")
        parts.append(f"tests/test_payments.py:{rng.randint(20, 400)}: AssertionError")
    parts.append(f"{failing} failed, {rng.randint(80, 400)} passed in {rng.uniform(2, 30):.2f}s")
    return "\n".join(parts)[: chars + 400]


def grep_output(rng: random.Random, chars: int) -> str:
    lines: list[str] = []
    while sum(len(x) + 1 for x in lines) < chars:
        path = f"{rng.choice(['services/payments', 'services/orders', 'lib/http', 'tests'])}/{rng.choice(_IDENT)}.py"
        lines.append(f"{path}:{rng.randint(1, 600)}:{_code(rng, 60).splitlines()[0].strip()}")
    return "\n".join(lines)


def shell_output(rng: random.Random, chars: int) -> str:
    lines = [f" M services/payments/{rng.choice(_IDENT)}.py" for _ in range(3)]
    while sum(len(x) + 1 for x in lines) < chars:
        lines.append(
            f"-rw-r--r-- 1 agent agent {rng.randint(200, 90000):6} Jan {rng.randint(1, 28):2} "
            f"{rng.randint(0, 23):02}:{rng.randint(0, 59):02} {rng.choice(_IDENT)}_{rng.choice(_IDENT)}.py"
        )
    return "\n".join(lines)


def edit_output(rng: random.Random, path: str, chars: int) -> str:
    snippet = view_output(rng, path, chars - 150).split("\n", 1)[1]
    return (
        f"The file {path} has been edited. Here's the result of running `cat -n` on a snippet of "
        f"the edited file:\n{snippet}Review the changes and make sure they are as expected."
    )


# --------------------------------------------------------------------------- the scripted session


@dataclass(frozen=True)
class Turn:
    say: str  # the model's sentence before the call ("" for none)
    tool: str
    input: dict[str, Any]
    output: str


def scripted_turns(n: int) -> list[Turn]:
    """A plausible debugging session: explore, reproduce, edit, test, repeat. Same every run."""
    rng = random.Random(30)
    files = [
        "services/payments/client.py",
        "services/payments/retry.py",
        "services/orders/checkout.py",
        "tests/test_payments.py",
        "lib/http/session.py",
    ]
    plan: list[Callable[[], Turn]] = [
        lambda: Turn(
            "Let me look at the repository layout first.",
            "bash",
            {"command": "git status --short && ls -la services/payments"},
            shell_output(rng, rng.randint(400, 1200)),
        ),
        lambda: Turn(
            "",
            "search_code",
            {"pattern": "idempotency_key", "glob": "*.py"},
            grep_output(rng, rng.randint(600, 1800)),
        ),
        lambda: (
            lambda path: Turn(
                f"I'll read {path} to see how the retry is wired.",
                "str_replace_based_edit_tool",
                {"command": "view", "path": f"{WORKSPACE}/{path}"},
                view_output(rng, f"{WORKSPACE}/{path}", rng.randint(1500, 3000)),
            )
        )(rng.choice(files)),
        lambda: Turn(
            "Running the payment tests to see the current state.",
            "run_tests",
            {"args": "tests/test_payments.py -x -q"},
            test_output(rng, rng.randint(800, 2600), failing=rng.randint(0, 2)),
        ),
        lambda: (
            lambda path: Turn(
                "Now the fix: treat a duplicate-key reply as the original charge.",
                "str_replace_based_edit_tool",
                {
                    "command": "str_replace",
                    "path": f"{WORKSPACE}/{path}",
                    "old_str": _code(rng, 160),
                    "new_str": _code(rng, 260),
                },
                edit_output(rng, f"{WORKSPACE}/{path}", rng.randint(500, 1200)),
            )
        )(rng.choice(files)),
        lambda: Turn(
            "",
            "bash",
            {"command": "git diff --stat && python3 -c 'import services.payments.client'"},
            shell_output(rng, rng.randint(200, 600)),
        ),
    ]
    weights = [2, 2, 4, 3, 2, 1]
    turns = [plan[0](), plan[1](), plan[2](), plan[3]()]
    while len(turns) < n:
        turns.append(rng.choices(plan, weights)[0]())
    return [_bounded(turn) for turn in turns[:n]]


def _bounded(turn: Turn) -> Turn:
    """Outputs of 200-3,000 characters: cut at a line end, or padded with more of the same kind."""
    output = turn.output
    if len(output) > MAX_OUTPUT:
        output = output[: output.rfind("\n", 0, MAX_OUTPUT)]
    while len(output) < MIN_OUTPUT:
        output += "\n" + "\n".join(f"tests/test_payments.py::test_case_{i} PASSED" for i in range(5))
    return Turn(turn.say, turn.tool, turn.input, output)


SUMMARY = (
    "Fixed the double charge. PaymentClient.charge now sends the same idempotency key on every "
    "retry of one logical charge and, when the provider answers 409 duplicate_idempotency_key, "
    "fetches and returns the original charge instead of raising. The retry wrapper no longer "
    "retries after a read timeout once the request body was sent without first checking the "
    "charge status. Added tests/test_payments.py::test_retry_after_timeout_returns_original_charge "
    "and ::test_duplicate_key_is_success; the full payment suite passes."
)


class FakeTool:
    """A tool with a real definition whose run() returns the scripted output of its turn."""

    def __init__(self, definition: dict[str, Any], outputs: dict[str, list[str]]) -> None:
        self._definition = definition
        self._outputs = outputs

    @property
    def name(self) -> str:
        return str(self._definition["name"])

    def definition(self) -> dict[str, Any]:
        return self._definition

    def run(self, tool_input: dict[str, Any]) -> ToolResult:
        return ToolResult(self._outputs[self.name].pop(0))


def build_toolset(turns: list[Turn]) -> Toolset:
    outputs: dict[str, list[str]] = {}
    for turn in turns:
        outputs.setdefault(turn.tool, []).append(turn.output)
    definitions = [
        BashTool(None, CommandTime(120)).definition(),  # type: ignore[arg-type]
        EditorTool(None, MODEL).definition(),  # type: ignore[arg-type]
        SearchTool(None).definition(),  # type: ignore[arg-type]
        RunTestsTool(None, TEST_COMMAND, CommandTime(120)).definition(),  # type: ignore[arg-type]
    ]
    return Toolset({d["name"]: FakeTool(d, outputs) for d in definitions})


def system_prompt() -> list[dict[str, Any]]:
    persona = find_agent("backend-developer", None, Path.home()).prompt
    tools = ("bash", "str_replace_based_edit_tool", "search_code", "run_tests")
    return system_blocks(persona, RunFacts(WORKSPACE, False, tools, TEST_COMMAND), None)


@dataclass
class RunResult:
    usage: Usage
    requests: int
    status: str
    api_totals: dict[str, int]
    first_prompt: int
    last_prompt: int
    edited: int  # requests on which the server applied a context edit
    server_cost: float  # what the fake charged at its rate card, compaction iterations included


def run_once(cache: bool, turns: list[Turn], workdir: Path, policy: ContextPolicy) -> RunResult:
    def script(request: RecordedRequest, index: int) -> Any:
        if index < len(turns):
            turn = turns[index]
            call = tool_use(turn.tool, turn.input)
            return message(text(turn.say), call) if turn.say else message(call)
        return message(text(SUMMARY))

    info = model_info(MODEL)
    with FakeAnthropic(script, think=True) as api:
        client = anthropic.Anthropic(base_url=api.base_url, api_key="sk-ant-bench-key", max_retries=0)
        loop = AgentLoop(
            model=ModelClient(client, MODEL, params=request_params(info, None, policy)),
            info=info,
            tools=build_toolset(turns),
            system=system_prompt(),
            limits=Limits(max_steps=len(turns) + 5),
            trajectory=TrajectoryWriter(workdir / f"trajectory-{cache}.jsonl", Redactor()),
            cache=cache,
        )
        state = LoopState(messages=[first_message(TASK)])
        status = loop.run(state)
        loop.trajectory.close()
        prompts = [
            sum(
                (r.usage or {}).get(k, 0)
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            )
            for r in api.requests
        ]
        edited = sum(1 for r in api.requests if r.applied_edits)
        return RunResult(
            state.usage,
            len(api.requests),
            status,
            api.total_usage(),
            prompts[0],
            prompts[-1],
            edited,
            api.total_cost(),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--context-trigger", type=int, default=DEFAULT_TRIGGER)
    parser.add_argument("--context-strategy", choices=STRATEGIES, default="clear")
    args = parser.parse_args()
    policy = ContextPolicy(args.context_strategy, args.context_trigger)

    turns = scripted_turns(args.turns)
    info = model_info(MODEL)
    assert info.input is not None
    sizes = sorted(len(t.output) for t in turns)
    with tempfile.TemporaryDirectory(prefix="pw-bench-cache-") as tmp:
        cached = run_once(True, turns, Path(tmp), policy)
        uncached = run_once(False, turns, Path(tmp), policy)

    rows = []
    for name, r in (("cache=True", cached), ("cache=False", uncached)):
        u = r.usage
        api_billed = (
            r.api_totals["input_tokens"]
            + 1.25 * r.api_totals["cache_creation_input_tokens"]
            + 0.1 * r.api_totals["cache_read_input_tokens"]
        )
        compacted = u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens != sum(
            r.api_totals[k]
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        if not compacted:  # compaction iterations are billed outside the top-level usage the totals sum
            assert abs(api_billed - u.billed_input_equivalent(info)) < 1, (
                "loop usage and server usage disagree"
            )
        assert abs((u.cost(info) or 0) - r.server_cost) < 1e-6, "loop cost and server charge disagree"
        rows.append(
            (
                name,
                r.status,
                r.requests,
                u.input_tokens,
                u.cache_creation_input_tokens,
                u.cache_read_input_tokens,
                u.output_tokens,
                round(u.billed_input_equivalent()),
                f"${u.billed_input_equivalent() * info.input / 1e6:.4f}",
                f"${u.cost(info):.4f}",
            )
        )
    print(
        f"{args.turns} tool turns + end_turn, model {MODEL} (${info.input}/${info.output} per Mtok in/out); "
        f"tool outputs {sizes[0]}-{sizes[-1]} chars; prompt {cached.first_prompt} -> {cached.last_prompt} tokens"
    )
    print(
        f"context management: {policy.strategy} at {policy.trigger} input tokens; "
        f"requests with edits applied: {cached.edited} (cache=True), {uncached.edited} (cache=False)"
    )
    print(
        _bench.table(
            [
                "run",
                "status",
                "requests",
                "input",
                "cache write",
                "cache read",
                "output",
                "billed input",
                "input $",
                "total $",
            ],
            rows,
        )
    )
    ratio = cached.usage.billed_input_equivalent() / uncached.usage.billed_input_equivalent()
    total_ratio = cached.usage.cost(info) / uncached.usage.cost(info)  # type: ignore[operator]
    print(f"billed input cached/uncached = {ratio:.3f}; total cost (output included) = {total_ratio:.3f}")
    print(_bench.result_line("caching", ratio, TARGET))
    return 0


if __name__ == "__main__":
    sys.exit(main())
