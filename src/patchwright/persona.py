"""Agent (persona) files: load, validate, look up, and list them.

An agent file uses Claude Code's format: YAML front matter (`name`, `description`,
optional `tools` and `model`) between `---` lines, then a Markdown body that becomes
the system prompt. Users can drop files they already wrote for Claude Code into
`.claude/agents/`, so the loader accepts what Claude Code accepts, and maps Claude
Code's tool names onto the tools patchwright actually offers in its sandbox.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from patchwright.errors import AgentFileError
from patchwright.resources import data_dir

DEFAULT_AGENT = "backend-developer"

AGENT_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")

# An agent file becomes a system prompt; anything larger is a mistake, not a persona.
MAX_AGENT_FILE_BYTES = 256 * 1024

OUR_TOOLS: tuple[str, ...] = ("bash", "str_replace_based_edit_tool", "search_code", "run_tests", "service")

# Tool name as written in an agent file -> our tool, or None for a Claude Code tool
# that patchwright does not offer (recorded in `ignored_tools`, not an error).
TOOL_NAME_MAP: dict[str, str | None] = {
    # our own names
    "bash": "bash",
    "str_replace_based_edit_tool": "str_replace_based_edit_tool",
    "search_code": "search_code",
    "run_tests": "run_tests",
    "service": "service",  # the run's databases (issue 11)
    # Claude Code tools we can serve
    "Bash": "bash",
    "Read": "str_replace_based_edit_tool",
    "Edit": "str_replace_based_edit_tool",
    "MultiEdit": "str_replace_based_edit_tool",
    "Write": "str_replace_based_edit_tool",
    "NotebookEdit": "str_replace_based_edit_tool",
    "Grep": "search_code",
    "Glob": "search_code",
    "LS": "search_code",
    # Claude Code tools without a counterpart here (no network, no sub-agents, no user)
    "WebFetch": None,
    "WebSearch": None,
    "Task": None,
    "Agent": None,
    "TodoWrite": None,
    "TodoRead": None,
    "NotebookRead": None,
    "BashOutput": None,
    "KillBash": None,
    "KillShell": None,
    "ExitPlanMode": None,
    "SlashCommand": None,
    "Skill": None,
    "AskUserQuestion": None,
    "ListMcpResourcesTool": None,
    "ReadMcpResourceTool": None,
}

# Claude Code names MCP tools `mcp__<server>__<tool>`; there are no MCP servers in the sandbox.
MCP_TOOL_PREFIX = "mcp__"

# `Bash(git diff:*)` style permission specs: the base name decides the tool.
_TOOL_SPEC = re.compile(r"^(?P<base>[A-Za-z_][A-Za-z0-9_]*)\((?P<spec>.*)\)$")

ORIGIN_REPO_PATCHWRIGHT = "repo:.patchwright/agents"
ORIGIN_REPO_CLAUDE = "repo:.claude/agents"
ORIGIN_USER = "user:~/.claude/agents"
ORIGIN_BUILTIN = "builtin"

project_instruction_files: tuple[str, ...] = ("CLAUDE.md", "AGENTS.md", ".claude/CLAUDE.md")

# Per file; instructions ride along in every request, so a runaway file must not swamp the prompt.
PROJECT_INSTRUCTIONS_MAX_BYTES = 40 * 1024


@dataclass(frozen=True)
class AgentDefinition:
    """A validated agent file, ready to become the run's system prompt."""

    name: str
    description: str
    prompt: str
    tools: tuple[str, ...] | None  # our tool names after mapping; None = all
    model: str | None
    path: Path
    origin: str  # ORIGIN_* constant, or "file" for an explicit path
    ignored_tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentListing:
    """Result of `list_agents`: the winning agents, plus files that could not be loaded.

    Errors are returned rather than raised so one broken file does not hide the others.
    """

    agents: tuple[AgentDefinition, ...]
    errors: tuple[tuple[Path, str], ...]


# --------------------------------------------------------------------------- loading


def _fail(path: Path, message: str) -> AgentFileError:
    """Build the one-line error every agent-file problem is reported as."""
    return AgentFileError(f"{path}: {' '.join(message.split())}")


def _read_text(path: Path) -> str:
    """Read the file as UTF-8 (BOM tolerated) with line endings normalised to LF."""
    if not path.exists():
        raise _fail(path, "agent file not found")
    if not path.is_file():
        raise _fail(path, "agent file is not a regular file")
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_AGENT_FILE_BYTES + 1)
    except OSError as exc:
        raise _fail(path, f"cannot read agent file: {exc.strerror or exc}") from exc
    if len(raw) > MAX_AGENT_FILE_BYTES:
        raise _fail(path, f"agent file is larger than {MAX_AGENT_FILE_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(path, f"agent file is not UTF-8 text (byte {exc.start})") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _split_front_matter(path: Path, text: str) -> tuple[str, str]:
    """Return (front matter YAML, body); the file must open with a `---` line and close it."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        raise _fail(path, "front matter missing: the file must start with a '---' line")
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :])
    raise _fail(path, "front matter is not closed by a second '---' line")


# A value starting with one of these was meant as structured YAML; the lenient
# fallback must not quietly turn it into a string.
_YAML_INDICATORS = tuple("[]{}\"'|>&*!%@`-?,#")
_LENIENT_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_-]*):(?:[ \t]+(?P<value>.*))?$")


def _lenient_front_matter(source: str) -> dict[str, Any] | None:
    """Parse `key: value` lines the way Claude Code tolerates them, or return None.

    Claude Code accepts descriptions such as `description: Use it when... Examples:
    <example>Context: ...` that strict YAML rejects ("mapping values are not allowed
    here"); many published agents rely on that. Only flat one-line `key: value`
    entries qualify, so genuinely broken YAML is still reported as such.
    """
    result: dict[str, Any] = {}
    for line in source.split("\n"):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LENIENT_LINE.match(line)
        if match is None:
            return None
        key = match.group("key")
        value = (match.group("value") or "").strip()
        if key in result or value.startswith(_YAML_INDICATORS):
            return None
        result[key] = _lenient_scalar(value)
    return result


def _lenient_scalar(value: str) -> object:
    """Keep YAML's typing for plain scalars (`model: 3` is still an int), else the raw text."""
    if not value:
        return None
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    if parsed is None or isinstance(parsed, str | int | float | bool):
        return parsed
    return value


def _parse_front_matter(path: Path, source: str) -> dict[str, Any]:
    """Parse the front matter into a mapping, with file line numbers in YAML errors."""
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        lenient = _lenient_front_matter(source)
        if lenient is not None:
            return lenient
        where = ""
        if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
            # +2: YAML line 0 is file line 2 (line 1 is the opening '---').
            where = f" at line {exc.problem_mark.line + 2}"
        problem = exc.problem if isinstance(exc, yaml.MarkedYAMLError) and exc.problem else str(exc)
        raise _fail(path, f"front matter is not valid YAML{where}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _fail(path, f"front matter must be a mapping of fields, not a {type(data).__name__}")
    return data


def _type_name(value: object) -> str:
    """Name a YAML value's type the way a user would recognise it."""
    return {list: "list", dict: "mapping", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def _required_string(path: Path, data: dict[str, Any], field: str) -> str:
    """Fetch a mandatory, non-blank string field."""
    if field not in data or data[field] is None:
        raise _fail(path, f"field '{field}' is missing from the front matter")
    value = data[field]
    if not isinstance(value, str):
        raise _fail(path, f"field '{field}' must be a string, got a {_type_name(value)}")
    if not value.strip():
        raise _fail(path, f"field '{field}' is empty")
    return value.strip()


def map_tools(path: Path, value: object) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """Translate a `tools` field into (our tool names, ignored Claude Code tools).

    Accepts Claude Code's comma-separated string or a YAML list. Absent/null means all
    tools. A `Bash(git diff:*)` permission spec maps by its base name: the sandbox,
    not the spec, is the security boundary, so the restriction is not enforced.
    """
    if value is None:
        return None, ()
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, list):
        names = []
        for item in value:
            if not isinstance(item, str):
                raise _fail(path, f"field 'tools' must list tool names as strings, got a {_type_name(item)}")
            names.append(item.strip())
    else:
        raise _fail(
            path, f"field 'tools' must be a comma-separated string or a list, got a {_type_name(value)}"
        )

    ours: list[str] = []
    ignored: list[str] = []
    for name in names:
        if not name:
            continue
        spec = _TOOL_SPEC.match(name)
        base = spec.group("base") if spec else name
        if base.startswith(MCP_TOOL_PREFIX):
            mapped: str | None = None
        elif base in TOOL_NAME_MAP:
            mapped = TOOL_NAME_MAP[base]
        else:
            known = ", ".join(sorted(TOOL_NAME_MAP))
            raise _fail(path, f"field 'tools' names unknown tool {name!r} (known: {known}, mcp__*)")
        if mapped is None:
            if name not in ignored:
                ignored.append(name)
        elif mapped not in ours:
            ours.append(mapped)
    return tuple(ours), tuple(ignored)


def load_agent_file(path: Path, origin: str = "file") -> AgentDefinition:
    """Load and validate one agent file; any problem is an AgentFileError naming file and field."""
    text = _read_text(path)
    source, body = _split_front_matter(path, text)
    data = _parse_front_matter(path, source)

    name = _required_string(path, data, "name")
    if not AGENT_NAME_PATTERN.match(name):
        raise _fail(
            path, f"field 'name' is {name!r}; use lowercase letters, digits and hyphens (e.g. 'db-fixer')"
        )
    description = _required_string(path, data, "description")

    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise _fail(path, f"field 'model' must be a string, got a {_type_name(model)}")
    if isinstance(model, str):
        model = model.strip() or None

    tools, ignored = map_tools(path, data.get("tools"))

    prompt = body.strip()
    if not prompt:
        raise _fail(path, "body is empty: the text after the front matter is the agent's prompt")

    return AgentDefinition(
        name=name,
        description=description,
        prompt=prompt,
        tools=tools,
        model=model,
        path=path,
        origin=origin,
        ignored_tools=ignored,
    )


# --------------------------------------------------------------------------- lookup


def agent_search_path(repo: Path | None, home: Path) -> list[tuple[Path, str]]:
    """Folders searched for agents, highest priority first, with their origin labels.

    The repo's own choice beats the user's, which beats patchwright's built-ins.
    """
    places: list[tuple[Path, str]] = []
    if repo is not None:
        places.append((repo / ".patchwright" / "agents", ORIGIN_REPO_PATCHWRIGHT))
        places.append((repo / ".claude" / "agents", ORIGIN_REPO_CLAUDE))
    places.append((home / ".claude" / "agents", ORIGIN_USER))
    # A broken installation just has no built-ins; lookup then reports where it looked.
    with contextlib.suppress(FileNotFoundError):
        places.append((data_dir("agents"), ORIGIN_BUILTIN))
    return places


def _escapes_repo(path: Path, repo: Path | None, origin: str) -> bool:
    """True if a repo agent file resolves outside the repo (e.g. a symlink to ~/.ssh).

    The repo may be untrusted, and an agent file is sent to the model verbatim.
    """
    if repo is None or not origin.startswith("repo:"):
        return False
    try:
        path.resolve().relative_to(repo.resolve())
    except (ValueError, OSError):
        return True
    return False


def _load_from(path: Path, origin: str, repo: Path | None) -> AgentDefinition:
    """Load an agent file found during lookup, refusing repo files that point outside the repo."""
    if _escapes_repo(path, repo, origin):
        raise _fail(path, "agent file is a symlink that points outside the repository")
    return load_agent_file(path, origin)


def find_agent(name: str, repo: Path | None, home: Path) -> AgentDefinition:
    """Return the agent `<name>.md`, or the one whose `name:` is `name`, from the first place on
    the search path that has either.

    A broken file in an earlier place is an error, not skipped: the user meant it to win.
    """
    if not AGENT_NAME_PATTERN.match(name):
        raise AgentFileError(f"agent name {name!r} is not valid: use lowercase letters, digits and hyphens")
    places = agent_search_path(repo, home)
    for folder, origin in places:
        candidate = folder / f"{name}.md"
        if candidate.exists() or candidate.is_symlink():
            return _load_from(candidate, origin, repo)
        named = _named_in(folder, name, origin, repo)  # Claude Code goes by the `name` field
        if named is not None:
            return named
    looked = ", ".join(str(folder / f"{name}.md") for folder, _ in places)
    raise AgentFileError(f"agent {name!r} not found; looked in: {looked}")


def _named_in(folder: Path, name: str, origin: str, repo: Path | None) -> AgentDefinition | None:
    """The agent in `folder` whose front matter says `name: <name>`, whatever its file is called
    (files that do not load are passed over here; asked for by file name, they are errors)."""
    try:
        files = list(_agent_files(folder)) if folder.is_dir() else []
    except OSError:
        return None
    for path in files:
        try:
            agent = _load_from(path, origin, repo)
        except AgentFileError:
            continue
        if agent.name == name:
            return agent
    return None


def _agent_files(folder: Path) -> Iterator[Path]:
    """Yield the `*.md` entries of a folder in a stable order."""
    yield from sorted(entry for entry in folder.iterdir() if entry.name.endswith(".md"))


def list_agents(repo: Path | None, home: Path) -> AgentListing:
    """Every agent on the search path, earlier places shadowing later ones by name.

    Broken files are collected in `errors` instead of aborting the listing.
    """
    winners: dict[str, AgentDefinition] = {}
    errors: list[tuple[Path, str]] = []
    for folder, origin in agent_search_path(repo, home):
        if not folder.is_dir():
            continue
        try:
            files = list(_agent_files(folder))
        except OSError as exc:
            errors.append((folder, f"{folder}: cannot list folder: {exc.strerror or exc}"))
            continue
        seen_here: dict[str, Path] = {}
        for path in files:
            try:
                agent = _load_from(path, origin, repo)
            except AgentFileError as exc:
                errors.append((path, str(exc)))
                continue
            if agent.name in seen_here:
                errors.append(
                    (path, f"{path}: field 'name' {agent.name!r} is also used by {seen_here[agent.name]}")
                )
                continue
            seen_here[agent.name] = path
            winners.setdefault(agent.name, agent)
    return AgentListing(
        agents=tuple(winners[name] for name in sorted(winners)),
        errors=tuple(errors),
    )


# --------------------------------------------------------------------------- project instructions


def _is_plain_file_in(repo: Path, relative: str) -> bool:
    """True if `relative` is a regular file reached without following any symlink.

    A repo could link CLAUDE.md to a secret outside it; that must never reach the model.
    """
    current = repo
    for part in Path(relative).parts:
        current = current / part
        if current.is_symlink():
            return False
    return current.is_file()


def _read_capped(path: Path, limit: int) -> str:
    """Read at most `limit` bytes of UTF-8 text, noting the cut if the file was longer."""
    with path.open("rb") as fh:
        raw = fh.read(limit + 1)
    if len(raw) <= limit:
        return raw.decode("utf-8", errors="replace")
    size = path.stat().st_size
    text = raw[:limit].decode("utf-8", errors="ignore")
    note = f"[truncated by patchwright: only the first {limit // 1024} KB of {size} bytes are included]"
    return f"{text.rstrip()}\n\n{note}"


def load_project_instructions(repo: Path) -> str | None:
    """Collect the repo's instruction files (CLAUDE.md, AGENTS.md, ...) for the prompt.

    Only regular files at the repo root count (no symlinks), each capped at 40 KB;
    unreadable or empty files are skipped. Returns None when there are none.
    """
    sections: list[str] = []
    for relative in project_instruction_files:
        if not _is_plain_file_in(repo, relative):
            continue
        try:
            text = _read_capped(repo / relative, PROJECT_INSTRUCTIONS_MAX_BYTES)
        except OSError:
            continue
        text = text.replace("\r\n", "\n").removeprefix("\ufeff").strip()
        if text:
            sections.append(f"# Project instructions from {relative}\n\n{text}")
    return "\n\n".join(sections) if sections else None
