"""Claude Code subagent front matter (disallowedTools, model aliases, maxTurns,
effort) and CLAUDE.md `@path` imports, bounded to the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchwright.aliases import ALIASES, resolve_model
from patchwright.errors import AgentFileError
from patchwright.imports import MAX_DEPTH, expand_imports
from patchwright.model import DEFAULT_MODEL, model_info
from patchwright.persona import load_agent_file, load_project_instructions
from patchwright.tools import ALL_TOOLS


def agent(tmp_path: Path, front: str, body: str = "You fix bugs.") -> Path:
    path = tmp_path / "a.md"
    path.write_text(f"---\nname: fixer\ndescription: Fixes bugs.\n{front}---\n{body}\n")
    return path


# --------------------------------------------------------------------------- front matter


def test_disallowed_tools_are_taken_away(tmp_path: Path) -> None:
    loaded = load_agent_file(agent(tmp_path, "disallowedTools: Bash, WebFetch\n"))
    assert loaded.tools == tuple(t for t in ALL_TOOLS if t != "bash")  # Claude Code's WebFetch: none here
    both = load_agent_file(agent(tmp_path, "tools: Bash, Read, Grep\ndisallowedTools: [Grep]\n"))
    assert both.tools == ("bash", "str_replace_based_edit_tool")


def test_disallowing_write_takes_the_editor_that_also_writes(tmp_path: Path) -> None:
    loaded = load_agent_file(agent(tmp_path, "disallowedTools: Write\n"))
    assert loaded.tools is not None and "str_replace_based_edit_tool" not in loaded.tools
    assert "bash" in loaded.tools


def test_unknown_disallowed_tool_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(AgentFileError, match="field 'disallowedTools' names unknown tool 'Teleport'"):
        load_agent_file(agent(tmp_path, "disallowedTools: Teleport\n"))


def test_max_turns_and_effort_are_read(tmp_path: Path) -> None:
    loaded = load_agent_file(agent(tmp_path, "maxTurns: 12\neffort: High\n"))
    assert (loaded.max_turns, loaded.effort) == (12, "high")
    plain = load_agent_file(agent(tmp_path, ""))
    assert (plain.max_turns, plain.effort) == (None, None)


@pytest.mark.parametrize(
    ("front", "complaint"),
    [
        ("maxTurns: 0\n", "maxTurns"),
        ("maxTurns: many\n", "maxTurns"),
        ("maxTurns: true\n", "maxTurns"),
        ("effort: extreme\n", "effort"),
        ("effort: 3\n", "effort"),
    ],
)
def test_bad_max_turns_or_effort_is_a_clear_error(tmp_path: Path, front: str, complaint: str) -> None:
    with pytest.raises(AgentFileError, match=f"field '{complaint}'"):
        load_agent_file(agent(tmp_path, front))


# --------------------------------------------------------------------------- model aliases


@pytest.mark.parametrize(
    ("alias", "model"),
    [("opus", "claude-opus-5-5"), ("sonnet", "claude-sonnet-5-5"), ("haiku", "claude-haiku-5-5")],
)
def test_aliases_resolve_to_current_ids(alias: str, model: str) -> None:
    assert resolve_model(None, alias, {}) == model
    assert resolve_model(None, alias.upper(), {}) == model
    assert model_info(model).context == 1_000_000  # every alias target is in prices.toml


def test_inherit_and_precedence() -> None:
    assert resolve_model(None, "inherit", {}) == DEFAULT_MODEL
    assert resolve_model("claude-opus-5", "inherit", {}) == "claude-opus-5"
    assert resolve_model("claude-opus-5", "haiku", {}) == "claude-opus-5"  # --model wins
    assert resolve_model(None, "claude-sonnet-4-6", {}) == "claude-sonnet-4-6"  # a full ID as it is
    assert resolve_model(None, None, {}) == DEFAULT_MODEL


def test_claude_codes_alias_variables_override_the_table() -> None:
    env = {"ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-haiku-4-5", "ANTHROPIC_DEFAULT_SONNET_MODEL": " "}
    assert resolve_model(None, "haiku", env) == "claude-haiku-4-5"
    assert resolve_model(None, "sonnet", env) == ALIASES["sonnet"][0]  # blank: ignored


# --------------------------------------------------------------------------- CLAUDE.md imports


def repo_with(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    return repo


def test_imports_are_expanded_relative_to_the_importing_file(tmp_path: Path) -> None:
    repo = repo_with(
        tmp_path,
        {
            "CLAUDE.md": "Read @docs/style.md before editing.",
            "docs/style.md": "Use tabs. See @testing.md too.",
            "docs/testing.md": "Run make test.",
        },
    )
    text = load_project_instructions(repo)
    assert text is not None
    assert "Use tabs." in text and "Run make test." in text
    assert text.index("Read @docs/style.md") < text.index("Use tabs.") < text.index("Run make test.")


def test_imports_never_leave_the_repository(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    repo = repo_with(tmp_path, {"CLAUDE.md": "", "docs/x.md": "ok"})
    (repo / "link.md").symlink_to(secret)
    (repo / "docs" / "dirlink").symlink_to(tmp_path)
    lines = [
        f"@{secret}",
        "@../secret.txt",
        "@docs/../../secret.txt",
        "@~/secret.txt",
        "@link.md",
        "@docs/dirlink/secret.txt",
        "mail me at someone@example.com",
        "`@docs/x.md` in a code span",
    ]
    (repo / "CLAUDE.md").write_text("\n".join(lines))
    text = load_project_instructions(repo)
    assert text is not None
    assert "TOP SECRET" not in text
    assert "<!-- imported" not in text  # nothing qualified, not even the code span
    assert all(line in text for line in lines)  # the lines stay as written


def test_imports_in_code_blocks_are_left_alone(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, {"CLAUDE.md": "```\n@a.md\n```\n@b.md", "a.md": "AAA", "b.md": "BBB"})
    text = expand_imports((repo / "CLAUDE.md").read_text(), repo, "CLAUDE.md")
    assert "BBB" in text and "AAA" not in text


def test_import_depth_is_bounded_and_cycles_stop(tmp_path: Path) -> None:
    chain = {f"f{i}.md": f"level {i} @f{i + 1}.md" for i in range(MAX_DEPTH + 3)}
    chain["cycle.md"] = "cycle @cycle.md @f0.md"
    repo = repo_with(tmp_path, chain)
    text = expand_imports("top @f0.md", repo, "CLAUDE.md")
    assert f"level {MAX_DEPTH - 1}" in text and f"level {MAX_DEPTH}" not in text
    looped = expand_imports((repo / "cycle.md").read_text(), repo, "cycle.md")
    assert looped.count("cycle @cycle.md") == 1


def test_imports_are_capped(tmp_path: Path) -> None:
    big = "x" * 100_000
    repo = repo_with(
        tmp_path,
        {"CLAUDE.md": " ".join(f"@b{i}.md" for i in range(5)), **{f"b{i}.md": big for i in range(5)}},
    )
    text = expand_imports((repo / "CLAUDE.md").read_text(), repo, "CLAUDE.md")
    assert "truncated by patchwright" in text
    assert len(text) < 110_000
