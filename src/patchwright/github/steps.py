"""The action's steps, one function each: `python -m patchwright.github.steps STEP`.

action.yml passes every input as an environment variable (INPUT_<NAME>), never as text
inside a script; the steps hand each other state through a folder under RUNNER_TEMP.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchwright.errors import ExitCode, PatchwrightError, UsageError
from patchwright.github.event import EventOptions, EventRefused, read_event, task_from_event
from patchwright.github.publish import Target, open_pull_request, post_comment, pr_title
from patchwright.github.report import RunResult, summary_markdown
from patchwright.github.rest import GitHubAPI
from patchwright.sanitize import clean_line

MODES = ("patch", "pr", "comment")
# Never handed to `agent fix`: the GitHub token and the runner's own credentials.
WITHHELD = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "INPUT_GITHUB_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_RUNTIME_URL",
    "ACTIONS_CACHE_URL",
    "ACTIONS_RESULTS_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
)


@dataclass
class Context:
    """The runner's variables and the action's inputs, read once."""

    env: dict[str, str]

    def input(self, name: str, default: str = "") -> str:
        return self.env.get(f"INPUT_{name.upper()}", default).strip() or default

    def flag(self, name: str) -> bool:
        return self.input(name).lower() in ("true", "1", "yes")

    @property
    def state_dir(self) -> Path:
        root = Path(self.env.get("RUNNER_TEMP") or "/tmp") / "patchwright-action"
        root.mkdir(parents=True, exist_ok=True)
        return root

    def load_state(self) -> dict[str, Any]:
        path = self.state_dir / "state.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def save_state(self, **values: Any) -> None:
        state = {**self.load_state(), **values}
        (self.state_dir / "state.json").write_text(json.dumps(state), encoding="utf-8")

    def api(self) -> GitHubAPI:
        return GitHubAPI(
            self.env.get("GITHUB_API_URL", "https://api.github.com"),
            self.env.get("INPUT_GITHUB_TOKEN", ""),
            self.env.get("GITHUB_REPOSITORY", ""),
        )

    def output(self, **values: object) -> None:
        """Append outputs to GITHUB_OUTPUT (multi-line values with a random delimiter)."""
        path = self.env.get("GITHUB_OUTPUT")
        if not path:
            return
        with open(path, "a", encoding="utf-8") as fh:
            for name, value in values.items():
                text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
                delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
                fh.write(f"{name}<<{delimiter}\n{text}\n{delimiter}\n")

    def summary(self, markdown: str) -> None:
        path = self.env.get("GITHUB_STEP_SUMMARY")
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(markdown)


def step_task(ctx: Context) -> int:
    """The task from the `task` input or the event; refuses fork code and untrusted authors."""
    mode = ctx.input("mode", "patch")
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, not {clean_line(mode, 40)}")
    event_name = ctx.env.get("GITHUB_EVENT_NAME", "")
    event = read_event(ctx.env.get("GITHUB_EVENT_PATH"))
    options = EventOptions(
        trigger_phrase=ctx.input("trigger_phrase", "/patchwright"),
        allow_fork_code=ctx.flag("allow_fork_code"),
        task=ctx.input("task"),
    )
    found = task_from_event(event_name, event, options, ctx.api() if event_name == "workflow_run" else None)
    base = ctx.input("base_branch") or str((event.get("repository") or {}).get("default_branch") or "")
    task_file = ctx.state_dir / "task.md"
    task_file.write_text(found.task, encoding="utf-8")
    ctx.save_state(
        skip=found.skip_reason,
        number=found.number,
        title=found.title,
        is_issue=found.is_issue,
        base_branch=base,
        task_file=str(task_file),
    )
    if found.skip_reason:
        print(f"nothing to do: {clean_line(found.skip_reason, 200)}")
        ctx.output(skip="true", status="skipped")
        return 0
    ctx.output(skip="false")
    print(f"task: {len(found.task)} characters from the {event_name} event")
    return 0


def image_tags(with_services: bool) -> list[str]:
    from patchwright.sandbox.image import default_image_tag
    from patchwright.services.image import services_image_tag

    return [default_image_tag(), *([services_image_tag()] if with_services else [])]


def _wants_services(ctx: Context) -> bool:
    """Whether the run will start services: named in the input, or (input empty) declared by
    the repository's compose files or workflows, as `agent fix` detects them."""
    services = ctx.input("services")
    if services:
        return services.lower() != "none"
    from patchwright.services.detect import detect

    try:
        return bool(detect(Path(ctx.env.get("GITHUB_WORKSPACE") or ".")).specs)
    except PatchwrightError:
        return False  # agent fix reports it


def step_image_key(ctx: Context) -> int:
    """The cache key: the images' content-hash tags (a changed definition is a new key)."""
    tags = image_tags(_wants_services(ctx))
    key = "patchwright-images-" + "-".join(tag.replace(":", "-") for tag in tags)
    folder = Path(ctx.env.get("RUNNER_TEMP") or "/tmp") / "patchwright-images"
    ctx.output(key=key, path=str(folder))
    return 0


def step_images(ctx: Context) -> int:
    """Load the cached images, build what is missing, and save them when the cache missed."""
    folder = Path(ctx.env.get("RUNNER_TEMP") or "/tmp") / "patchwright-images"
    folder.mkdir(parents=True, exist_ok=True)
    for archive in sorted(folder.glob("*.tar")):
        subprocess.run(["docker", "load", "-q", "-i", str(archive)], check=True)
    build = [sys.executable, "-m", "patchwright", "sandbox", "build"]
    subprocess.run([*build, *(["--services"] if _wants_services(ctx) else [])], check=True)
    if ctx.env.get("CACHE_HIT", "").lower() != "true":
        for tag in image_tags(_wants_services(ctx)):
            target = folder / (tag.replace(":", "-").replace("/", "-") + ".tar")
            subprocess.run(["docker", "save", "-o", str(target), tag], check=True)
        ctx.output(saved="true")
    return 0


def fix_argv(ctx: Context, task_file: str) -> list[str]:
    """`agent fix` with the inputs as flags; extra_args split as a shell would, never run by one."""
    argv = [sys.executable, "-m", "patchwright", "fix", "--repo", ctx.env.get("GITHUB_WORKSPACE") or "."]
    argv += ["--task-file", task_file, "--format", "json"]
    for name, flag in (
        ("model", "--model"),
        ("agent", "--agent"),
        ("max_cost", "--max-cost"),
        ("max_steps", "--max-steps"),
        ("timeout", "--timeout"),
        ("setup", "--setup"),
        ("test_cmd", "--test-cmd"),
        ("effort", "--effort"),
    ):
        if value := ctx.input(name):
            argv += [flag, value]
    services = ctx.input("services")
    if services.lower() == "none":
        argv.append("--no-services")
    else:
        for service in services.replace(",", " ").split():
            argv += ["--service", service]
    if ctx.flag("trust_repo_config"):
        argv.append("--trust-repo-config")
    return argv + shlex.split(ctx.input("extra_args"))


def step_fix(ctx: Context) -> int:
    """Run `agent fix`; outputs and the job summary from its summary.json. Ends green whenever
    a run folder exists, so the artifact and publish steps still run; `conclude` judges."""
    state = ctx.load_state()
    env = {k: v for k, v in ctx.env.items() if k not in WITHHELD}
    env["ANTHROPIC_API_KEY"] = ctx.env.get("INPUT_ANTHROPIC_API_KEY", "")
    if not env["ANTHROPIC_API_KEY"]:
        del env["ANTHROPIC_API_KEY"]  # another provider (Bedrock, Vertex) may be configured
    for name in [n for n in env if n.startswith("INPUT_")]:
        del env[name]
    done = subprocess.run(fix_argv(ctx, state["task_file"]), env=env, stdout=subprocess.PIPE, check=False)
    try:
        printed = json.loads(done.stdout.decode("utf-8", "replace"))
    except ValueError:
        printed = {}
    return record_result(ctx, done.returncode, printed if isinstance(printed, dict) else {})


def record_result(ctx: Context, returncode: int, printed: dict[str, Any]) -> int:
    """Outputs, state and the job summary from `agent fix`'s exit code and its JSON summary."""
    run_dir = Path(str(printed.get("run_dir") or ""))
    if not printed.get("run_dir") or not (run_dir / "summary.json").is_file():
        ctx.save_state(exit_code=returncode, run_dir="")
        ctx.output(status="error", exit_code=returncode, verified="false")
        print(f"::error::patchwright exited with {returncode} before it wrote a run record")
        return returncode or int(ExitCode.INFRA)
    result = RunResult.load(run_dir, exit_code=returncode)
    ctx.save_state(exit_code=returncode, run_dir=str(run_dir))
    ctx.output(
        status=result.status,
        exit_code=result.exit_code,
        verified=result.verified is True,
        patch=str(result.patch_path or ""),
        run_dir=str(run_dir),
        cost_usd="" if result.cost_usd is None else f"{result.cost_usd:.6f}",
    )
    ctx.summary(summary_markdown(result))
    return 0


def step_publish(ctx: Context) -> int:
    """mode pr: a branch and a pull request, for a proven patch (or any, with pr_on_unverified);
    mode comment: the summary and patch on the issue or pull request."""
    state = ctx.load_state()
    mode = ctx.input("mode", "patch")
    if mode == "patch" or not state.get("run_dir"):
        return 0
    result = RunResult.load(Path(state["run_dir"]), exit_code=int(state["exit_code"]))
    api = ctx.api()
    if mode == "comment":
        if state.get("number") is None:
            print("::warning::no issue or pull request to comment on; the summary is in the job summary")
            return 0
        url = post_comment(api, int(state["number"]), result)
        ctx.output(comment_url=url)
        ctx.summary(f"\nComment: {url}\n")
        return 0
    eligible = result.exit_code == 0 and (result.proven or ctx.flag("pr_on_unverified"))
    if not eligible:
        why = f"exit code {result.exit_code}" if result.exit_code else "the patch is NOT verified"
        print(f"::notice::no pull request opened: {why} (pr_on_unverified: false)")
        ctx.summary(f"\nNo pull request opened: {why}.\n")
        return 0
    if not state.get("base_branch"):
        raise UsageError("no base branch: set the base_branch input")
    target = Target(
        ctx.env.get("GITHUB_SERVER_URL", "https://github.com"),
        ctx.env.get("GITHUB_REPOSITORY", ""),
        str(state["base_branch"]),
        ctx.env.get("INPUT_GITHUB_TOKEN", ""),
    )
    task = (
        (ctx.state_dir / "task.md").read_text(encoding="utf-8")
        if (ctx.state_dir / "task.md").is_file()
        else ""
    )
    number = state.get("number")
    url, branch = open_pull_request(
        api,
        Path(ctx.env.get("GITHUB_WORKSPACE") or "."),
        result,
        target,
        pr_title(str(state.get("title") or ""), task),
        int(number) if number is not None else None,
        bool(state.get("is_issue")),
    )
    ctx.output(pr_url=url)
    ctx.summary(f"\nPull request: {url} (branch `{branch}`)\n")
    return 0


def step_conclude(ctx: Context) -> int:
    """The action's verdict: red unless patchwright exited 0 with a verified patch."""
    state = ctx.load_state()
    if state.get("skip"):
        return 0
    code = int(state.get("exit_code", ExitCode.INFRA))
    if not state.get("run_dir"):
        return code or int(ExitCode.INFRA)
    result = RunResult.load(Path(state["run_dir"]), exit_code=code)
    if code != 0:
        print(f"::error::patchwright exited with {code} (status {clean_line(result.status, 40)})")
        return code
    if not result.proven:
        print("::error::the patch is NOT verified: no test failed before it and passed after")
        return 1
    print("patch verified: a test failed before it and passes with it")
    return 0


STEPS: dict[str, Callable[[Context], int]] = {
    "task": step_task,
    "image-key": step_image_key,
    "images": step_images,
    "fix": step_fix,
    "publish": step_publish,
    "conclude": step_conclude,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in STEPS:
        print(f"usage: python -m patchwright.github.steps {{{','.join(STEPS)}}}", file=sys.stderr)
        return int(ExitCode.USAGE)
    try:
        return STEPS[args[0]](Context(dict(os.environ)))
    except EventRefused as err:
        print(f"::error::refused: {clean_line(str(err), 400)}")
        return int(err.exit_code)
    except PatchwrightError as err:
        print(f"::error::{clean_line(str(err), 400)}")
        return int(err.exit_code)


if __name__ == "__main__":
    sys.exit(main())
