"""Tests for agent (persona) files: parsing, validation, tool mapping, lookup, listing,
and project instruction files."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchwright.errors import AgentFileError, UsageError
from patchwright.persona import (
    DEFAULT_AGENT,
    ORIGIN_BUILTIN,
    ORIGIN_REPO_CLAUDE,
    ORIGIN_REPO_PATCHWRIGHT,
    ORIGIN_USER,
    PROJECT_INSTRUCTIONS_MAX_BYTES,
    AgentDefinition,
    find_agent,
    list_agents,
    load_agent_file,
    load_project_instructions,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
OUR_AGENT = REPO_ROOT / "agents" / "backend-developer.md"
SEED_AGENT = REPO_ROOT.parent / "shared" / "seeds" / "backend-developer.md"

VALID = "---\nname: db-fixer\ndescription: Fixes database problems.\n---\nYou fix databases.\n"


def write(path: Path, text: str) -> Path:
    """Write `text` to `path`, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    return path


def agent_text(name: str, body: str = "Prompt body.", extra: str = "") -> str:
    """A minimal valid agent file."""
    return f"---\nname: {name}\ndescription: Agent {name}.\n{extra}---\n{body}\n"


def load_error(tmp_path: Path, text: str) -> str:
    """Load `text` as an agent file and return the AgentFileError message."""
    path = write(tmp_path / "agent.md", text)
    with pytest.raises(AgentFileError) as info:
        load_agent_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- our persona and the seed


def test_our_persona_loads() -> None:
    agent = load_agent_file(OUR_AGENT, origin=ORIGIN_BUILTIN)
    assert agent.name == "backend-developer" == DEFAULT_AGENT
    assert agent.description
    assert agent.prompt
    assert "/workspace" in agent.prompt
    assert agent.tools is None  # omitted = all tools
    assert agent.model is None
    assert agent.origin == ORIGIN_BUILTIN


def test_original_seed_loads_with_our_loader() -> None:
    if not SEED_AGENT.is_file():
        pytest.skip(f"seed persona not present at {SEED_AGENT} (CI always provides shared/seeds)")
    # Its description is not strict YAML ("Examples: <example>Context: ..."), as with
    # many published Claude Code agents; the loader must accept it like Claude Code does.
    agent = load_agent_file(SEED_AGENT)
    assert agent.name == "backend-developer"
    assert agent.description.startswith("Use this agent when")
    assert "<example>" in agent.description
    assert agent.prompt.startswith("You are an expert Backend Developer")


def test_builtin_default_agent_is_found(tmp_path: Path) -> None:
    agent = find_agent(DEFAULT_AGENT, repo=None, home=tmp_path / "home")
    assert agent.origin == ORIGIN_BUILTIN


# --------------------------------------------------------------------------- parsing


def test_valid_file_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "a.md", VALID.replace("---\nYou", "model: sonnet\n---\nYou"))
    agent = load_agent_file(path, origin="repo:.claude/agents")
    assert agent == AgentDefinition(
        name="db-fixer",
        description="Fixes database problems.",
        prompt="You fix databases.",
        tools=None,
        model="sonnet",
        path=path,
        origin="repo:.claude/agents",
        ignored_tools=(),
    )


def test_crlf_and_bom_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.replace("\n", "\r\n").encode())
    agent = load_agent_file(path)
    assert agent.name == "db-fixer"
    assert agent.prompt == "You fix databases."


def test_lenient_fallback_still_types_scalars(tmp_path: Path) -> None:
    text = "---\nname: x\ndescription: Use it: when\nmodel: 3\n---\nbody\n"
    assert "field 'model'" in load_error(tmp_path, text)


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.md"
    with pytest.raises(AgentFileError, match="not found") as info:
        load_agent_file(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, UsageError)


def test_no_front_matter(tmp_path: Path) -> None:
    assert "front matter" in load_error(tmp_path, "You are a helpful agent.\n")


def test_unclosed_front_matter(tmp_path: Path) -> None:
    assert "front matter" in load_error(tmp_path, "---\nname: x\ndescription: y\nbody\n")


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    text = "---\nname: x\ndescription: [unclosed\n---\nbody\n"
    message = load_error(tmp_path, text)
    assert "not valid YAML at line 3" in message  # the file's line number, not YAML's


def test_invalid_yaml_exact_line(tmp_path: Path) -> None:
    text = "---\nname: x\ndescription: ok\ntools:\n  - Bash\n bad: [\n---\nbody\n"
    message = load_error(tmp_path, text)
    assert "not valid YAML at line 6" in message


def test_front_matter_not_a_mapping(tmp_path: Path) -> None:
    message = load_error(tmp_path, "---\n- a\n- b\n---\nbody\n")
    assert "front matter" in message
    assert "mapping" in message


@pytest.mark.parametrize(
    ("front", "needle"),
    [
        ("description: d\n", "field 'name' is missing"),
        ("name: 42\ndescription: d\n", "field 'name' must be a string"),
        ("name: [a]\ndescription: d\n", "field 'name' must be a string"),
        ("name: Bad_Name\ndescription: d\n", "field 'name'"),
        ("name: -x\ndescription: d\n", "field 'name'"),
        ("name: x\n", "field 'description' is missing"),
        ("name: x\ndescription: 5\n", "field 'description' must be a string"),
        ("name: x\ndescription: ''\n", "field 'description' is empty"),
        ("name: x\ndescription: d\ntools: 7\n", "field 'tools'"),
        ("name: x\ndescription: d\ntools: {a: b}\n", "field 'tools'"),
        ("name: x\ndescription: d\ntools: [Bash, 3]\n", "field 'tools'"),
        ("name: x\ndescription: d\nmodel: [sonnet]\n", "field 'model' must be a string"),
    ],
)
def test_field_errors(tmp_path: Path, front: str, needle: str) -> None:
    assert needle in load_error(tmp_path, f"---\n{front}---\nbody\n")


def test_empty_body(tmp_path: Path) -> None:
    assert "body" in load_error(tmp_path, "---\nname: x\ndescription: d\n---\n \n\n")


def test_empty_front_matter(tmp_path: Path) -> None:
    assert "field 'name' is missing" in load_error(tmp_path, "---\n---\nbody\n")


# --------------------------------------------------------------------------- tools


def test_tools_string_form(tmp_path: Path) -> None:
    path = write(tmp_path / "a.md", agent_text("x", extra="tools: Bash, Read, Edit, Grep, Glob\n"))
    agent = load_agent_file(path)
    assert agent.tools == ("bash", "str_replace_based_edit_tool", "search_code")
    assert agent.ignored_tools == ()


def test_tools_list_form_and_our_names(tmp_path: Path) -> None:
    extra = "tools:\n  - Write\n  - LS\n  - run_tests\n  - bash\n"
    agent = load_agent_file(write(tmp_path / "a.md", agent_text("x", extra=extra)))
    assert agent.tools == ("str_replace_based_edit_tool", "search_code", "run_tests", "bash")


def test_unsupported_claude_code_tools_are_ignored(tmp_path: Path) -> None:
    extra = "tools: Read, WebFetch, WebSearch, Task, TodoWrite, mcp__github__create_issue\n"
    agent = load_agent_file(write(tmp_path / "a.md", agent_text("x", extra=extra)))
    assert agent.tools == ("str_replace_based_edit_tool",)
    assert agent.ignored_tools == ("WebFetch", "WebSearch", "Task", "TodoWrite", "mcp__github__create_issue")


def test_bash_permission_spec_maps_to_bash(tmp_path: Path) -> None:
    path = write(tmp_path / "a.md", agent_text("x", extra='tools: "Bash(git diff:*), Read"\n'))
    agent = load_agent_file(path)
    assert agent.tools == ("bash", "str_replace_based_edit_tool")


def test_nonsense_tool_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, agent_text("x", extra="tools: Bash, Teleport\n"))
    assert "field 'tools'" in message
    assert "Teleport" in message


def test_null_tools_means_all(tmp_path: Path) -> None:
    agent = load_agent_file(write(tmp_path / "a.md", agent_text("x", extra="tools:\n")))
    assert agent.tools is None


# --------------------------------------------------------------------------- lookup


def test_lookup_order(tmp_path: Path) -> None:
    repo, home = tmp_path / "repo", tmp_path / "home"
    name = DEFAULT_AGENT  # the builtin is the last fallback
    places = [
        (repo / ".patchwright" / "agents" / f"{name}.md", ORIGIN_REPO_PATCHWRIGHT),
        (repo / ".claude" / "agents" / f"{name}.md", ORIGIN_REPO_CLAUDE),
        (home / ".claude" / "agents" / f"{name}.md", ORIGIN_USER),
    ]
    for path, origin in places:
        write(path, agent_text(name, body=f"from {origin}"))

    for path, origin in places:
        agent = find_agent(name, repo, home)
        assert agent.origin == origin
        assert agent.prompt == f"from {origin}"
        assert agent.path == path
        path.unlink()
    assert find_agent(name, repo, home).origin == ORIGIN_BUILTIN


def test_lookup_by_the_name_field_when_the_file_is_named_otherwise(tmp_path: Path) -> None:
    repo, home = tmp_path / "repo", tmp_path / "home"
    path = write(repo / ".claude" / "agents" / "Database Fixer.md", agent_text("db-fixer", body="by name"))
    write(repo / ".claude" / "agents" / "broken.md", "no front matter\n")  # passed over in the scan
    agent = find_agent("db-fixer", repo, home)
    assert agent.path == path and agent.prompt == "by name"
    assert find_agent(DEFAULT_AGENT, repo, home).origin == ORIGIN_BUILTIN


def test_lookup_not_found_lists_places(tmp_path: Path) -> None:
    repo, home = tmp_path / "repo", tmp_path / "home"
    with pytest.raises(AgentFileError) as info:
        find_agent("no-such-agent", repo, home)
    message = str(info.value)
    assert "no-such-agent" in message
    assert str(repo / ".patchwright" / "agents") in message
    assert str(repo / ".claude" / "agents") in message
    assert str(home / ".claude" / "agents") in message


def test_lookup_rejects_path_like_names(tmp_path: Path) -> None:
    with pytest.raises(AgentFileError, match="not valid"):
        find_agent("../secrets", tmp_path, tmp_path)


def test_lookup_broken_override_is_an_error(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo / ".claude" / "agents" / f"{DEFAULT_AGENT}.md", "no front matter\n")
    with pytest.raises(AgentFileError, match="front matter"):
        find_agent(DEFAULT_AGENT, repo, tmp_path / "home")


def test_lookup_refuses_repo_symlink_outside_repo(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    outside = write(tmp_path / "outside.md", agent_text("evil"))
    link = repo / ".claude" / "agents" / "evil.md"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    with pytest.raises(AgentFileError, match="without a symlink"):
        find_agent("evil", repo, tmp_path / "home")


def test_list_agents_shadows_and_reports_broken(tmp_path: Path) -> None:
    repo, home = tmp_path / "repo", tmp_path / "home"
    write(repo / ".patchwright" / "agents" / "alpha.md", agent_text("alpha", body="repo alpha"))
    write(repo / ".claude" / "agents" / "alpha.md", agent_text("alpha", body="claude alpha"))
    broken = write(repo / ".claude" / "agents" / "broken.md", "---\nname: broken\n---\nbody\n")
    write(repo / ".claude" / "agents" / "notes.txt", "not an agent")
    write(home / ".claude" / "agents" / "zeta.md", agent_text("zeta"))
    write(home / ".claude" / "agents" / f"{DEFAULT_AGENT}.md", agent_text(DEFAULT_AGENT, body="mine"))

    listing = list_agents(repo, home)
    names = [agent.name for agent in listing.agents]
    assert names == sorted(names)
    assert {"alpha", "zeta", DEFAULT_AGENT} <= set(names)
    assert "broken" not in names
    by_name = {agent.name: agent for agent in listing.agents}
    assert by_name["alpha"].prompt == "repo alpha"
    assert by_name["alpha"].origin == ORIGIN_REPO_PATCHWRIGHT
    assert by_name[DEFAULT_AGENT].origin == ORIGIN_USER
    assert len(listing.errors) == 1
    path, message = listing.errors[0]
    assert path == broken
    assert "field 'description'" in message


def test_list_agents_without_repo(tmp_path: Path) -> None:
    listing = list_agents(None, tmp_path / "home")
    assert {agent.origin for agent in listing.agents} == {ORIGIN_BUILTIN}
    assert DEFAULT_AGENT in {agent.name for agent in listing.agents}
    assert listing.errors == ()


# --------------------------------------------------------------------------- project instructions


def test_project_instructions_read_claude_and_agents_md(tmp_path: Path) -> None:
    write(tmp_path / "CLAUDE.md", "Use pytest.\n")
    write(tmp_path / "AGENTS.md", "Run make lint.\r\n")
    text = load_project_instructions(tmp_path)
    assert text is not None
    assert "CLAUDE.md" in text and "Use pytest." in text
    assert "AGENTS.md" in text and "Run make lint." in text
    assert text.index("Use pytest.") < text.index("Run make lint.")
    assert "\r" not in text


def test_project_instructions_nested_claude_dir(tmp_path: Path) -> None:
    write(tmp_path / ".claude" / "CLAUDE.md", "Nested rules.")
    text = load_project_instructions(tmp_path)
    assert text is not None
    assert ".claude/CLAUDE.md" in text and "Nested rules." in text


def test_project_instructions_skip_symlinks(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    secret = write(tmp_path / "secret.txt", "TOP SECRET")
    (repo / "CLAUDE.md").symlink_to(secret)
    assert load_project_instructions(repo) is None
    write(repo / "AGENTS.md", "Real instructions.")
    text = load_project_instructions(repo)
    assert text is not None
    assert "TOP SECRET" not in text
    assert "Real instructions." in text


def test_project_instructions_skip_symlinked_claude_dir(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write(tmp_path / "elsewhere" / "CLAUDE.md", "TOP SECRET")
    (repo / ".claude").symlink_to(tmp_path / "elsewhere")
    assert load_project_instructions(repo) is None


def test_project_instructions_capped(tmp_path: Path) -> None:
    write(tmp_path / "CLAUDE.md", "x" * (PROJECT_INSTRUCTIONS_MAX_BYTES + 5000))
    text = load_project_instructions(tmp_path)
    assert text is not None
    assert text.count("x") == PROJECT_INSTRUCTIONS_MAX_BYTES
    assert "truncated" in text


def test_project_instructions_none(tmp_path: Path) -> None:
    (tmp_path / "CLAUDE.md").mkdir()  # a folder, not a file
    assert load_project_instructions(tmp_path) is None
