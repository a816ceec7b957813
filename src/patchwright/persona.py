"""Where agent (persona) files are found, and which one a run uses.

Lookup order: the repo's .patchwright/agents and .claude/agents, then ~/.claude/agents,
then the built-in ones. Parsing one file is agentfile.py's; Claude Code's tool names
are toolnames.py's; CLAUDE.md/AGENTS.md are instructions.py's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from patchwright.agentfile import AGENT_NAME_PATTERN, AgentDefinition, agent_file_error, load_agent_file
from patchwright.errors import AgentFileError
from patchwright.instructions import PROJECT_INSTRUCTIONS_MAX_BYTES, load_project_instructions
from patchwright.resources import data_dir

__all__ = [
    "DEFAULT_AGENT",
    "PROJECT_INSTRUCTIONS_MAX_BYTES",
    "AgentDefinition",
    "AgentListing",
    "find_agent",
    "list_agents",
    "load_agent_file",
    "load_project_instructions",
]

DEFAULT_AGENT = "backend-developer"

ORIGIN_REPO_PATCHWRIGHT = "repo:.patchwright/agents"
ORIGIN_REPO_CLAUDE = "repo:.claude/agents"
ORIGIN_USER = "user:~/.claude/agents"
ORIGIN_BUILTIN = "builtin"


@dataclass(frozen=True)
class AgentListing:
    """Result of `list_agents`: the winning agents, plus files that could not be loaded.

    Errors are returned rather than raised so one broken file does not hide the others.
    """

    agents: tuple[AgentDefinition, ...]
    errors: tuple[tuple[Path, str], ...]


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
        raise agent_file_error(path, "agent file is a symlink that points outside the repository")
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
