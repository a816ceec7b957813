"""One agent (persona) file: read, parse and validate it.

An agent file uses Claude Code's format: YAML front matter (`name`, `description`,
optional `tools` and `model`) between `---` lines, then a Markdown body that becomes
the system prompt. The loader accepts what Claude Code accepts (toolnames.py maps the
tool names); where to find agent files is persona.py's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from patchwright.errors import AgentFileError
from patchwright.params import EFFORTS
from patchwright.saferead import read_bytes, relative_in
from patchwright.toolnames import map_tool_names
from patchwright.tools import ALL_TOOLS

AGENT_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")

# An agent file becomes a system prompt; anything larger is a mistake, not a persona.
MAX_AGENT_FILE_BYTES = 256 * 1024


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
    # Claude Code subagent fields (agent_fields.py)
    max_turns: int | None = None  # maxTurns: a step limit
    effort: str | None = None  # effort: the run's effort unless --effort/config says otherwise


# --------------------------------------------------------------------------- loading


def agent_file_error(path: Path, message: str) -> AgentFileError:
    """Build the one-line error every agent-file problem is reported as."""
    return AgentFileError(f"{path}: {' '.join(message.split())}")


def _read_text(path: Path, repo: Path | None = None) -> str:
    """Read the file as UTF-8 (BOM tolerated) with line endings normalised to LF. A file of the
    repository (`repo` given) is read without following a symlink anywhere below `repo`."""
    if repo is not None:
        parts = relative_in(repo, path)
        try:
            found = None if parts is None else read_bytes(repo, parts, MAX_AGENT_FILE_BYTES)
        except OSError as exc:
            raise agent_file_error(path, f"cannot read agent file: {exc.strerror or exc}") from exc
        if found is None:
            raise agent_file_error(
                path,
                "a repository's agent file is read only as a regular file reached without a symlink "
                "(it, or a folder on its way, is a symlink, or it is no regular file)",
            )
        raw = found
    else:
        if not path.exists():
            raise agent_file_error(path, "agent file not found")
        if not path.is_file():
            raise agent_file_error(path, "agent file is not a regular file")
        try:
            with path.open("rb") as fh:
                raw = fh.read(MAX_AGENT_FILE_BYTES + 1)
        except OSError as exc:
            raise agent_file_error(path, f"cannot read agent file: {exc.strerror or exc}") from exc
    if len(raw) > MAX_AGENT_FILE_BYTES:
        raise agent_file_error(path, f"agent file is larger than {MAX_AGENT_FILE_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise agent_file_error(path, f"agent file is not UTF-8 text (byte {exc.start})") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _split_front_matter(path: Path, text: str) -> tuple[str, str]:
    """Return (front matter YAML, body); the file must open with a `---` line and close it."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        raise agent_file_error(path, "front matter missing: the file must start with a '---' line")
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :])
    raise agent_file_error(path, "front matter is not closed by a second '---' line")


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
        raise agent_file_error(path, f"front matter is not valid YAML{where}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise agent_file_error(path, f"front matter must be a mapping of fields, not a {type(data).__name__}")
    return data


def _type_name(value: object) -> str:
    """Name a YAML value's type the way a user would recognise it."""
    return {list: "list", dict: "mapping", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def _required_string(path: Path, data: dict[str, Any], field: str) -> str:
    """Fetch a mandatory, non-blank string field."""
    if field not in data or data[field] is None:
        raise agent_file_error(path, f"field '{field}' is missing from the front matter")
    value = data[field]
    if not isinstance(value, str):
        raise agent_file_error(path, f"field '{field}' must be a string, got a {_type_name(value)}")
    if not value.strip():
        raise agent_file_error(path, f"field '{field}' is empty")
    return value.strip()


def map_tools(
    path: Path, value: object, field: str = "tools"
) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """Translate a `tools` field into (our tool names, ignored Claude Code tools).

    Accepts Claude Code's comma-separated string or a YAML list; absent/null means all tools.
    """
    if value is None:
        return None, ()
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, list):
        names = []
        for item in value:
            if not isinstance(item, str):
                raise agent_file_error(
                    path, f"field '{field}' must list tool names as strings, got a {_type_name(item)}"
                )
            names.append(item.strip())
    else:
        raise agent_file_error(
            path, f"field '{field}' must be a comma-separated string or a list, got a {_type_name(value)}"
        )
    try:
        return map_tool_names(names)
    except ValueError as err:
        raise agent_file_error(path, str(err).replace("field 'tools'", f"field '{field}'")) from None


# Claude Code subagent fields beyond name/description/tools/model. disallowedTools takes tools
# away (the editor goes when any of Read, Edit or Write is disallowed: the safe reading);
# maxTurns caps the run's steps; effort is the run's unless --effort or config says otherwise.


def parse_max_turns(path: Path, data: dict[str, Any]) -> int | None:
    value = data.get("maxTurns")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise agent_file_error(path, f"field 'maxTurns' must be a whole number of at least 1, got {value!r}")
    return value


def parse_effort(path: Path, data: dict[str, Any]) -> str | None:
    value = data.get("effort")
    if value is None:
        return None
    if not isinstance(value, str) or value.strip().lower() not in EFFORTS:
        raise agent_file_error(path, f"field 'effort' must be one of {', '.join(EFFORTS)}, got {value!r}")
    return value.strip().lower()


def without_disallowed(
    path: Path, tools: tuple[str, ...] | None, disallowed: tuple[str, ...] | None, all_tools: tuple[str, ...]
) -> tuple[str, ...] | None:
    """The agent's tools (None = all) less the ones its `disallowedTools` maps to."""
    if not disallowed:
        return tools
    remaining = tuple(t for t in (all_tools if tools is None else tools) if t not in disallowed)
    return remaining


def load_agent_file(path: Path, origin: str = "file", repo: Path | None = None) -> AgentDefinition:
    """Load and validate one agent file; any problem is an AgentFileError naming file and field.
    With `repo`, the file is the repository's and no symlink below `repo` is followed."""
    text = _read_text(path, repo)
    source, body = _split_front_matter(path, text)
    data = _parse_front_matter(path, source)

    name = _required_string(path, data, "name")
    if not AGENT_NAME_PATTERN.match(name):
        raise agent_file_error(
            path, f"field 'name' is {name!r}; use lowercase letters, digits and hyphens (e.g. 'db-fixer')"
        )
    description = _required_string(path, data, "description")

    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise agent_file_error(path, f"field 'model' must be a string, got a {_type_name(model)}")
    if isinstance(model, str):
        model = model.strip() or None

    tools, ignored = map_tools(path, data.get("tools"))
    disallowed, _ = map_tools(path, data.get("disallowedTools"), "disallowedTools")
    tools = without_disallowed(path, tools, disallowed, ALL_TOOLS)

    prompt = body.strip()
    if not prompt:
        raise agent_file_error(path, "body is empty: the text after the front matter is the agent's prompt")

    return AgentDefinition(
        name=name,
        description=description,
        prompt=prompt,
        tools=tools,
        model=model,
        path=path,
        origin=origin,
        ignored_tools=ignored,
        max_turns=parse_max_turns(path, data),
        effort=parse_effort(path, data),
    )
