"""git on the host, pinned so the repository under review can never make it run a program.

A repo's own `.git/config` (a tarball's, a repro's) can name programs git runs on its
own: `core.fsmonitor`, hooks, clean/smudge/process filters, textconv and external diff
drivers. Every git command patchwright runs on the host goes through `host_git` and `git_env(root)`,
which turn each of those off in the command-line config layer (the highest-precedence one):
fsmonitor off, hooks from /dev/null, every filter and diff driver any config layer
defines emptied (their names come from `git config --list`, which runs nothing), no
pager, no trace2 targets (they write to paths the config names).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from patchwright.filerun import run_through_files

# Always-on pins; driver pins are added per repo (their names are the repo's to choose).
FIXED_PINS = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.pager=cat",
    "core.untrackedCache=false",
    "diff.external=",  # empty: git refuses to run it rather than running something
    "gc.auto=0",
    "maintenance.auto=false",
)
# Program-naming keys of named drivers, as `<section>.<name>.<key>`.
DRIVER_KEYS = {
    "filter": ("clean", "smudge", "process"),
    "diff": ("textconv", "command"),
    "merge": ("driver",),
}


def git_env(root: Path | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for host git: no system attributes, no trace2 output, no pager or prompt;
    with `root`, every driver program of that repo emptied (as GIT_CONFIG_KEY_n/VALUE_n, which
    rank with `-c` and take any subsection name, `=` and spaces included)."""
    env = dict(os.environ if base is None else base)
    ours = ("GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_", "GIT_CONFIG_PARAMETERS")
    for name in [n for n in env if n.startswith(("GIT_TRACE", "GIT_EXTERNAL_DIFF", *ours))]:
        del env[name]
    env.update(
        {
            "GIT_ATTR_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_PAGER": "cat",
            "GIT_TRACE2": "0",
            "GIT_TRACE2_EVENT": "0",
            "GIT_TRACE2_PERF": "0",
            "GIT_NO_REPLACE_OBJECTS": "1",
        }
    )
    if root is not None:
        pins = driver_pins(root)
        env["GIT_CONFIG_COUNT"] = str(len(pins))
        for i, (key, value) in enumerate(pins):
            env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


def configless_env() -> dict[str, str]:
    """git with no system or global config: for files git reads outside any repository
    (a config file to clean, a patch applied in a scratch folder)."""
    return {**git_env(), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}


def driver_pins(root: Path) -> list[tuple[str, str]]:
    """(key, value) pairs that empty every driver program any config layer of the repo defines."""
    listed = subprocess.run(
        ["git", "-C", str(root), "config", "--list", "-z"],
        capture_output=True,
        env=git_env(),
        check=False,
    )
    pins: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for entry in listed.stdout.decode("utf-8", "surrogateescape").split("\0"):
        key = entry.partition("\n")[0]
        section, _, rest = key.partition(".")
        name, _, _ = rest.rpartition(".")
        section = section.lower()
        if section not in DRIVER_KEYS or not name or (section, name) in seen:
            continue
        seen.add((section, name))
        pins.extend((f"{section}.{name}.{sub}", "") for sub in DRIVER_KEYS[section])
        if section == "filter":
            pins.append((f"filter.{name}.required", "false"))
    return pins


def host_git(root: Path, *args: str) -> list[str]:
    """The argv of `git ARGS` in the repo at `root`, fixed pins on; run it with `git_env(root)`."""
    argv = ["git", "-C", str(root), "--no-pager"]
    for pin in FIXED_PINS:
        argv += ["-c", pin]
    return [*argv, *args]


def run_git(
    root: Path, *args: str, check: bool = False, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run `host_git(root, *args)` with `git_env(root)`, output captured as bytes (through files:
    filerun.py)."""
    done = run_through_files(host_git(root, *args), input=input or b"", env=git_env(root))
    if check:
        done.check_returncode()
    return done
