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

from patchwright.agentfile import AGENT_NAME_PATTERN, AgentDefinition, load_agent_file
from patchwright.errors import AgentFileError
from patchwright.instructions import PROJECT_INSTRUCTIONS_MAX_BYTES, load_project_instructions
from patchwright.resources import data_dir
from patchwright.saferead import plain_files_in, relative_in

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


def _of_repo(repo: Path | None, origin: str) -> Path | None:
    """The repository root when `origin` is one of its folders: then no symlink is followed."""
    return repo if repo is not None and origin.startswith("repo:") else None


def _load_from(path: Path, origin: str, repo: Path | None) -> AgentDefinition:
    """Load an agent file found during lookup. The repo may be untrusted and an agent file is
    sent to the model verbatim, so a repo file is read without following any symlink (a linked
    `.claude`, agents folder or file is refused), as saferead.py does."""
    return load_agent_file(path, origin, _of_repo(repo, origin))


def _files_of(folder: Path, origin: str, repo: Path | None) -> list[Path]:
    """The `*.md` files of a place on the search path; a repo folder reached through a link has none."""
    own = _of_repo(repo, origin)
    if own is None:
        return list(_agent_files(folder)) if folder.is_dir() else []
    parts = relative_in(own, folder)
    return [folder / name for name in plain_files_in(own, parts, ".md")] if parts else []


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
        if candidate.exists() or candidate.is_symlink():  # a linked one is an error when read
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
        files = _files_of(folder, origin, repo)
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
        try:
            files = _files_of(folder, origin, repo)
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
