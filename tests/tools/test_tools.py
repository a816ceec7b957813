"""The model's tools against a real sandbox, called the way the loop calls them.

Arrange and check through the sandbox's own file API (read_file/write_file/execute),
act only through `Toolset.call`. Behaviour runs on the local-folder sandbox (milliseconds
a test); what only a container can show (confinement against the host, the sandbox user)
runs on Docker.
"""

# The fixtures imported from helpers are redefined as test parameters, by design.

from __future__ import annotations

from patchwright.sandbox.base import Sandbox
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.local import LocalSandbox
from patchwright.tools import Toolset, build_toolset

from helpers import diff_text

EDITOR = "str_replace_based_edit_tool"
MODEL = "claude-sonnet-5-5"
TEST_COMMAND = "python3 -m pytest -q -p no:cacheprovider"


def toolset(box: Sandbox, test_command: str | None = TEST_COMMAND) -> Toolset:
    return build_toolset(box, MODEL, 30, test_command=test_command)


def put(box: Sandbox, name: str, data: bytes) -> None:
    box.write_file(f"{box.workdir}/{name}", data)


def get(box: Sandbox, name: str) -> bytes:
    return box.read_file(f"{box.workdir}/{name}")


def exists(box: Sandbox, path: str) -> bool:
    return box.execute(["test", "-e", path]).exit_code == 0


# -- view -------------------------------------------------------------------------------------


def test_view_file_shows_numbered_lines(box: LocalSandbox) -> None:
    result = toolset(box).call(EDITOR, {"command": "view", "path": "app.py"})
    assert not result.is_error, result.content
    assert f"{box.workdir}/app.py" in result.content
    assert "     1\tdef add(a, b):\n     2\t    return a - b" in result.content


def test_view_absolute_workspace_path(box: LocalSandbox) -> None:
    result = toolset(box).call(EDITOR, {"command": "view", "path": f"{box.workdir}/tests/test_app.py"})
    assert not result.is_error, result.content
    assert "     5\t    assert add(2, 3) == 5" in result.content


def test_view_range(box: LocalSandbox) -> None:
    put(box, "lines.txt", b"l1\nl2\nl3\nl4\nl5\n")
    tools = toolset(box)

    middle = tools.call(EDITOR, {"command": "view", "path": "lines.txt", "view_range": [2, 3]})
    assert not middle.is_error, middle.content
    assert "     2\tl2\n     3\tl3" in middle.content
    assert "l1" not in middle.content and "l4" not in middle.content

    to_end = tools.call(EDITOR, {"command": "view", "path": "lines.txt", "view_range": [2, -1]})
    assert not to_end.is_error, to_end.content
    assert "     2\tl2\n     3\tl3\n     4\tl4\n     5\tl5" in to_end.content
    assert "l1" not in to_end.content


def test_invalid_view_range_is_an_error(box: LocalSandbox) -> None:
    put(box, "lines.txt", b"l1\nl2\nl3\n")
    tools = toolset(box)
    for view_range in ([0, 2], [3, 2], [1, 2, 3], [2], "1-2", ["1", "2"], [50, 60]):
        result = tools.call(EDITOR, {"command": "view", "path": "lines.txt", "view_range": view_range})
        assert result.is_error, (view_range, result.content)
        assert "view_range" in result.content, (view_range, result.content)
    on_dir = tools.call(EDITOR, {"command": "view", "path": "tests", "view_range": [1, 2]})
    assert on_dir.is_error
    assert "view_range" in on_dir.content


def test_view_directory_two_levels_without_hidden_entries(box: LocalSandbox) -> None:
    put(box, ".env.local", b"HIDDEN=1\n")
    box.execute(
        ["mkdir", "-p", f"{box.workdir}/a/b/c", f"{box.workdir}/.hidden_dir", f"{box.workdir}/a/.cache"]
    )
    put(box, "a/b/c/deep.txt", b"deep\n")
    put(box, "a/b/level2.txt", b"x\n")
    put(box, ".hidden_dir/inside.txt", b"x\n")
    put(box, "a/.cache/blob", b"x\n")

    result = toolset(box).call(EDITOR, {"command": "view", "path": "."})

    assert not result.is_error, result.content
    listed = set(result.content.splitlines()[1:])
    for expected in (
        f"{box.workdir}/app.py",
        f"{box.workdir}/README.md",
        f"{box.workdir}/untracked.txt",
        f"{box.workdir}/tests",
        f"{box.workdir}/tests/test_app.py",
        f"{box.workdir}/a",
        f"{box.workdir}/a/b",
    ):
        assert expected in listed, f"{expected} missing from:\n{result.content}"
    assert f"{box.workdir}/a/b/c" not in listed  # third level
    assert f"{box.workdir}/a/b/level2.txt" not in listed
    assert not any("/." in line for line in listed), result.content  # .git, .gitignore, .env.local...
    assert "secret.env" not in result.content  # ignored on the host: never copied
    assert "node_modules" not in result.content


def test_view_of_a_hidden_directory_lists_its_contents(box: LocalSandbox) -> None:
    box.execute(["mkdir", "-p", f"{box.workdir}/.github/workflows"])
    put(box, ".github/workflows/ci.yml", b"on: push\n")
    result = toolset(box).call(EDITOR, {"command": "view", "path": ".github"})
    assert f"{box.workdir}/.github/workflows/ci.yml" in result.content


def test_view_cuts_long_output_at_max_characters(box: LocalSandbox) -> None:
    line = "x" * 60
    put(box, "big.txt", ("\n".join(f"{i}:{line}" for i in range(2000)) + "\n").encode())

    result = toolset(box).call(EDITOR, {"command": "view", "path": "big.txt"})

    assert not result.is_error
    assert "cut at 30000 characters" in result.content
    assert "view_range" in result.content  # tells the model how to see the rest
    assert "     1\t0:" in result.content
    assert "1999:" not in result.content
    assert len(result.content) < 30_000 + 300


def test_view_missing_file_is_an_error(box: LocalSandbox) -> None:
    result = toolset(box).call(EDITOR, {"command": "view", "path": "nope.py"})
    assert result.is_error
    assert f"{box.workdir}/nope.py" in result.content


def test_view_binary_file_is_refused(box: LocalSandbox) -> None:
    put(box, "logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01")
    tools = toolset(box)
    result = tools.call(EDITOR, {"command": "view", "path": "logo.png"})
    assert result.is_error
    assert "binary" in result.content
    edit = tools.call(
        EDITOR, {"command": "str_replace", "path": "logo.png", "old_str": "PNG", "new_str": "X"}
    )
    assert edit.is_error
    assert get(box, "logo.png") == b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01"


# -- create -----------------------------------------------------------------------------------


def test_create_in_new_subdirectory_then_overwrite(box: LocalSandbox) -> None:
    tools = toolset(box)
    created = tools.call(
        EDITOR, {"command": "create", "path": "pkg/sub/new.py", "file_text": "VALUE = 1\n\tTAB = 2\n"}
    )
    assert not created.is_error, created.content
    assert "created" in created.content and "overwritten" not in created.content
    assert get(box, "pkg/sub/new.py") == b"VALUE = 1\n\tTAB = 2\n"

    again = tools.call(EDITOR, {"command": "create", "path": "pkg/sub/new.py", "file_text": "VALUE = 2\n"})
    assert not again.is_error, again.content
    assert "overwritten" in again.content
    assert get(box, "pkg/sub/new.py") == b"VALUE = 2\n"


def test_create_requires_file_text_and_refuses_directories(box: LocalSandbox) -> None:
    tools = toolset(box)
    assert tools.call(EDITOR, {"command": "create", "path": "x.py"}).is_error
    assert not exists(box, f"{box.workdir}/x.py")
    on_dir = tools.call(EDITOR, {"command": "create", "path": "tests", "file_text": "x"})
    assert on_dir.is_error
    assert get(box, "tests/test_app.py").startswith(b"from app import add")


# -- str_replace ------------------------------------------------------------------------------


def test_str_replace_edits_and_shows_a_snippet(box: LocalSandbox) -> None:
    result = toolset(box).call(
        EDITOR, {"command": "str_replace", "path": "app.py", "old_str": "a - b", "new_str": "a + b"}
    )
    assert not result.is_error, result.content
    assert f"{box.workdir}/app.py" in result.content
    assert "     2\t    return a + b" in result.content
    assert get(box, "app.py") == b"def add(a, b):\n    return a + b\n"
    assert "+    return a + b" in diff_text(box)


def test_str_replace_without_match_names_the_file(box: LocalSandbox) -> None:
    result = toolset(box).call(
        EDITOR, {"command": "str_replace", "path": "app.py", "old_str": "a * b", "new_str": "a + b"}
    )
    assert result.is_error
    assert f"{box.workdir}/app.py" in result.content
    assert get(box, "app.py") == b"def add(a, b):\n    return a - b\n"


def test_str_replace_with_two_matches_gives_count_and_lines(box: LocalSandbox) -> None:
    original = b"def f():\n    x = 1\n    return x\n\ndef g():\n    x = 1\n    return x\n"
    put(box, "dup.py", original)
    result = toolset(box).call(
        EDITOR, {"command": "str_replace", "path": "dup.py", "old_str": "x = 1", "new_str": "x = 2"}
    )
    assert result.is_error
    assert "2 times" in result.content
    assert "[2, 6]" in result.content
    assert get(box, "dup.py") == original


def test_str_replace_keeps_tabs_byte_for_byte(box: LocalSandbox) -> None:
    put(box, "Makefile.inc", b"all:\n\tif x; then\n\t\techo 1 ;\\\n\tfi\n")
    tools = toolset(box)
    shown = tools.call(EDITOR, {"command": "view", "path": "Makefile.inc"})
    assert "     3\t\t\techo 1 ;\\" in shown.content  # tabs shown as tabs, not expanded

    result = tools.call(
        EDITOR,
        {
            "command": "str_replace",
            "path": "Makefile.inc",
            "old_str": "\t\techo 1",
            "new_str": "\t\techo 2\t#x",
        },
    )
    assert not result.is_error, result.content
    assert get(box, "Makefile.inc") == b"all:\n\tif x; then\n\t\techo 2\t#x ;\\\n\tfi\n"


def test_crlf_file_stays_crlf(box: LocalSandbox) -> None:
    put(box, "win.txt", b"alpha\r\nbeta\r\ngamma\r\n")
    tools = toolset(box)

    replaced = tools.call(
        EDITOR,
        {
            "command": "str_replace",
            "path": "win.txt",
            "old_str": "alpha\nbeta",
            "new_str": "ALPHA\nBETA\nextra",
        },
    )
    assert not replaced.is_error, replaced.content
    assert "\r" not in replaced.content  # the snippet shows clean lines
    assert get(box, "win.txt") == b"ALPHA\r\nBETA\r\nextra\r\ngamma\r\n"

    inserted = tools.call(
        EDITOR, {"command": "insert", "path": "win.txt", "insert_line": 1, "insert_text": "one\ntwo\n"}
    )
    assert not inserted.is_error, inserted.content
    data = get(box, "win.txt")
    assert data == b"ALPHA\r\none\r\ntwo\r\nBETA\r\nextra\r\ngamma\r\n"
    assert data.count(b"\n") == data.count(b"\r\n")


def test_non_utf8_bytes_survive_str_replace(box: LocalSandbox) -> None:
    put(box, "legacy.py", b"# caf\xe9 cr\xe8me\nvalue = 1\n# na\xefve \xff\n")
    result = toolset(box).call(
        EDITOR,
        {"command": "str_replace", "path": "legacy.py", "old_str": "value = 1", "new_str": "value = 2"},
    )
    assert not result.is_error, result.content
    assert get(box, "legacy.py") == b"# caf\xe9 cr\xe8me\nvalue = 2\n# na\xefve \xff\n"


def test_results_for_non_utf8_files_can_be_sent_to_the_api(box: LocalSandbox) -> None:
    put(box, "legacy.py", b"# caf\xe9\nvalue = 1\n")
    tools = toolset(box)
    view = tools.call(EDITOR, {"command": "view", "path": "legacy.py"})
    edit = tools.call(
        EDITOR,
        {"command": "str_replace", "path": "legacy.py", "old_str": "value = 1", "new_str": "value = 2"},
    )
    for result in (view, edit):
        result.content.encode("utf-8")  # what the SDK does when it sends the tool_result


# -- insert -----------------------------------------------------------------------------------


def test_insert_at_start_middle_and_end(box: LocalSandbox) -> None:
    put(box, "ins.txt", b"one\ntwo\nthree\n")
    tools = toolset(box)

    first = tools.call(
        EDITOR, {"command": "insert", "path": "ins.txt", "insert_line": 0, "insert_text": "zero\n"}
    )
    assert not first.is_error, first.content
    assert get(box, "ins.txt") == b"zero\none\ntwo\nthree\n"

    middle = tools.call(
        EDITOR, {"command": "insert", "path": "ins.txt", "insert_line": 2, "insert_text": "1.5a\n1.5b"}
    )
    assert not middle.is_error, middle.content
    assert "     3\t1.5a\n     4\t1.5b" in middle.content
    assert get(box, "ins.txt") == b"zero\none\n1.5a\n1.5b\ntwo\nthree\n"

    end = tools.call(
        EDITOR, {"command": "insert", "path": "ins.txt", "insert_line": 6, "insert_text": "last"}
    )
    assert not end.is_error, end.content
    assert get(box, "ins.txt") == b"zero\none\n1.5a\n1.5b\ntwo\nthree\nlast\n"


def test_insert_into_an_empty_file(box: LocalSandbox) -> None:
    put(box, "empty.txt", b"")
    result = toolset(box).call(
        EDITOR, {"command": "insert", "path": "empty.txt", "insert_line": 0, "insert_text": "first\n"}
    )
    assert not result.is_error, result.content
    assert get(box, "empty.txt") == b"first\n"


def test_insert_with_legacy_new_str(box: LocalSandbox) -> None:
    put(box, "ins.txt", b"a\nc\n")
    result = toolset(box).call(
        EDITOR, {"command": "insert", "path": "ins.txt", "insert_line": 1, "new_str": "b\n"}
    )
    assert not result.is_error, result.content
    assert get(box, "ins.txt") == b"a\nb\nc\n"


def test_insert_outside_the_file_is_an_error(box: LocalSandbox) -> None:
    put(box, "ins.txt", b"a\nb\n")
    tools = toolset(box)
    for line in (3, -1, "1", True):
        result = tools.call(
            EDITOR, {"command": "insert", "path": "ins.txt", "insert_line": line, "insert_text": "x"}
        )
        assert result.is_error, (line, result.content)
    assert tools.call(EDITOR, {"command": "insert", "path": "ins.txt", "insert_line": 1}).is_error
    assert get(box, "ins.txt") == b"a\nb\n"


# -- undo_edit --------------------------------------------------------------------------------


def test_undo_edit_restores_step_by_step(box: LocalSandbox) -> None:
    original = get(box, "app.py")
    tools = toolset(box)
    tools.call(EDITOR, {"command": "str_replace", "path": "app.py", "old_str": "a - b", "new_str": "a + b"})
    tools.call(
        EDITOR, {"command": "insert", "path": "app.py", "insert_line": 0, "insert_text": "import os\n"}
    )
    assert get(box, "app.py") == b"import os\n" + original.replace(b"a - b", b"a + b")

    first = tools.call(EDITOR, {"command": "undo_edit", "path": "app.py"})
    assert not first.is_error, first.content
    assert get(box, "app.py") == original.replace(b"a - b", b"a + b")
    second = tools.call(EDITOR, {"command": "undo_edit", "path": "app.py"})
    assert not second.is_error, second.content
    assert get(box, "app.py") == original
    assert tools.call(EDITOR, {"command": "undo_edit", "path": "app.py"}).is_error
    assert diff_text(box) == ""


def test_undo_of_a_create_restores_the_overwritten_file(box: LocalSandbox) -> None:
    tools = toolset(box)
    tools.call(EDITOR, {"command": "create", "path": "README.md", "file_text": "replaced\n"})
    assert get(box, "README.md") == b"replaced\n"
    result = tools.call(EDITOR, {"command": "undo_edit", "path": "README.md"})
    assert not result.is_error, result.content
    assert get(box, "README.md") == b"demo\n"


def test_undo_of_creating_a_new_file_removes_it(box: LocalSandbox) -> None:
    tools = toolset(box)
    tools.call(EDITOR, {"command": "create", "path": "scratch.py", "file_text": "print(1)\n"})
    result = tools.call(EDITOR, {"command": "undo_edit", "path": "scratch.py"})
    assert not result.is_error, result.content
    assert not exists(box, f"{box.workdir}/scratch.py")
    assert diff_text(box) == ""


def test_undo_keeps_non_utf8_bytes(box: LocalSandbox) -> None:
    original = b"x = '\xe9'\ny = 1\n"
    put(box, "l1.py", original)
    tools = toolset(box)
    tools.call(EDITOR, {"command": "str_replace", "path": "l1.py", "old_str": "y = 1", "new_str": "y = 2"})
    tools.call(EDITOR, {"command": "undo_edit", "path": "l1.py"})
    assert get(box, "l1.py") == original


# -- path safety ------------------------------------------------------------------------------


def test_paths_outside_the_workspace_are_refused(sandbox: DockerSandbox) -> None:
    tools = toolset(sandbox)
    for path in ("/etc/passwd", "/workspace/../etc/passwd", "../../etc/shadow", "/", "/workspace-evil/x"):
        view = tools.call(EDITOR, {"command": "view", "path": path})
        assert view.is_error, (path, view.content)
        assert "outside the workspace" in view.content
        assert "root:" not in view.content
        edit = tools.call(
            EDITOR, {"command": "str_replace", "path": path, "old_str": "root", "new_str": "toor"}
        )
        assert edit.is_error, path
        search = tools.call("search_code", {"pattern": "root", "path": path})
        assert search.is_error, path
        assert "root:" not in search.content


def test_create_outside_the_workspace_writes_nothing(sandbox: DockerSandbox) -> None:
    tools = toolset(sandbox)
    for path in ("/tmp/evil.txt", "../tmp/evil.txt", "/workspace/../tmp/evil.txt"):
        result = tools.call(EDITOR, {"command": "create", "path": path, "file_text": "pwned\n"})
        assert result.is_error, (path, result.content)
    assert not exists(sandbox, "/tmp/evil.txt")


def test_symlinks_leading_out_are_refused(sandbox: DockerSandbox) -> None:
    tools = toolset(sandbox)
    made = tools.call(
        "bash",
        {
            "command": "ln -s /etc etc_link && ln -s /tmp tmp_dir_link && ln -s /tmp/x tmp_file_link "
            "&& echo original > /tmp/target.txt && ln -s /tmp/target.txt target_link && ls -l"
        },
    )
    assert not made.is_error and "etc_link -> /etc" in made.content, made.content

    for call in (
        {"command": "view", "path": "etc_link/passwd"},
        {"command": "view", "path": "etc_link"},
        {"command": "view", "path": "/workspace/etc_link/shadow"},
        {"command": "create", "path": "tmp_file_link", "file_text": "pwned\n"},
        {"command": "create", "path": "tmp_dir_link/new.txt", "file_text": "pwned\n"},
        {"command": "create", "path": "target_link", "file_text": "pwned\n"},
        {"command": "str_replace", "path": "target_link", "old_str": "original", "new_str": "pwned"},
        {"command": "insert", "path": "target_link", "insert_line": 0, "insert_text": "pwned\n"},
        {"command": "view", "path": "target_link"},
    ):
        result = tools.call(EDITOR, call)
        assert result.is_error, (call, result.content)
        assert "symlink leads out" in result.content or "outside the workspace" in result.content
        assert "root:" not in result.content
        assert "original" not in result.content

    assert not exists(sandbox, "/tmp/x")
    assert not exists(sandbox, "/tmp/new.txt")
    assert sandbox.read_file("/tmp/target.txt") == b"original\n"
    assert tools.call("search_code", {"pattern": "root", "path": "etc_link"}).is_error


def test_symlink_inside_the_workspace_is_followed(box: LocalSandbox) -> None:
    tools = toolset(box)
    tools.call("bash", {"command": "ln -s app.py inner_link.py && ln -s tests tests_link"})
    view = tools.call(EDITOR, {"command": "view", "path": "inner_link.py"})
    assert not view.is_error, view.content
    assert f"{box.workdir}/app.py" in view.content  # judged, and used, by its real path
    assert "     1\tdef add(a, b):" in view.content
    listing = tools.call(EDITOR, {"command": "view", "path": "tests_link"})
    assert not listing.is_error
    assert f"{box.workdir}/tests/test_app.py" in listing.content


def test_editor_rejects_bad_input(box: LocalSandbox) -> None:
    tools = toolset(box)
    for call in (
        {"command": "view"},
        {"command": "view", "path": ""},
        {"command": "view", "path": "a\0b"},
        {"command": "delete", "path": "app.py"},
        {"path": "app.py"},
        {"command": "str_replace", "path": "app.py", "old_str": "", "new_str": "x"},
        {"command": "str_replace", "path": "app.py", "new_str": "x"},
    ):
        result = tools.call(EDITOR, call)
        assert result.is_error, (call, result.content)
    assert get(box, "app.py") == b"def add(a, b):\n    return a - b\n"


# -- bash -------------------------------------------------------------------------------------


def test_bash_output_exit_code_and_restart(box: LocalSandbox) -> None:
    tools = toolset(box)

    hello = tools.call("bash", {"command": "echo hello; echo err >&2"})
    assert not hello.is_error
    assert "hello" in hello.content and "err" in hello.content
    assert "[exit code" not in hello.content

    failing = tools.call("bash", {"command": "echo partial; exit 3"})
    assert failing.content.endswith("[exit code: 3]"), failing.content
    assert "partial" in failing.content
    assert tools.call("bash", {"command": "false"}).content == "[exit code: 1]"
    assert tools.call("bash", {"command": "true"}).content == "(no output)"

    tools.call("bash", {"command": "cd tests && export PW_TEST_VAR=kept"})
    state = tools.call("bash", {"command": 'pwd; echo "var=$PW_TEST_VAR"'})
    assert state.content.split() == [f"{box.workdir}/tests", "var=kept"]

    restarted = tools.call("bash", {"restart": True})
    assert not restarted.is_error
    assert "restarted" in restarted.content
    fresh = tools.call("bash", {"command": 'pwd; echo "var=$PW_TEST_VAR"'})
    assert fresh.content.split() == [f"{box.workdir}", "var="]

    assert tools.call("bash", {}).is_error
    assert tools.call("bash", {"command": "   "}).is_error


def test_bash_runs_as_the_sandbox_user_without_network(sandbox: DockerSandbox) -> None:
    tools = toolset(sandbox)
    who = tools.call("bash", {"command": "id -u; id -g"})
    assert who.content.split() == ["1000", "1000"]
    root_write = tools.call("bash", {"command": "touch /usr/pwned"})
    assert "[exit code:" in root_write.content
    assert not exists(sandbox, "/usr/pwned")


# -- search_code ------------------------------------------------------------------------------


def test_search_code_finds_matches_with_path_and_line(box: LocalSandbox) -> None:
    tools = toolset(box)
    found = tools.call("search_code", {"pattern": r"def add\("})
    assert not found.is_error, found.content
    assert f"{box.workdir}/app.py:1:def add(a, b):" in found.content

    in_tests = tools.call("search_code", {"pattern": "add", "path": "tests"})
    assert f"{box.workdir}/tests/test_app.py:1:from app import add" in in_tests.content
    assert "app.py:1:def" not in in_tests.content

    globbed = tools.call("search_code", {"pattern": "add", "glob": "*.md"})
    assert globbed.content == "No matches."
    assert tools.call("search_code", {"pattern": "DEF ADD", "ignore_case": True}).content.startswith(
        f"{box.workdir}/app.py:1:"
    )


def test_search_code_no_matches_and_bad_input(box: LocalSandbox) -> None:
    tools = toolset(box)
    none = tools.call("search_code", {"pattern": "zzz_never_present_zzz"})
    assert not none.is_error
    assert none.content == "No matches."
    # ignored host files never reached the box
    assert tools.call("search_code", {"pattern": "do-not-copy"}).content == "No matches."
    assert tools.call("search_code", {"pattern": "("}).is_error
    assert tools.call("search_code", {}).is_error


# -- run_tests --------------------------------------------------------------------------------


def test_run_tests_runs_the_command_and_reports_exit_code(box: LocalSandbox) -> None:
    tools = toolset(box)
    tools.call("bash", {"command": "cd /tmp"})  # run_tests always starts at the repo root

    failing = tools.call("run_tests", {})
    assert "1 failed" in failing.content, failing.content
    assert failing.content.endswith("[exit code: 1]")

    tools.call(EDITOR, {"command": "str_replace", "path": "app.py", "old_str": "a - b", "new_str": "a + b"})
    passing = tools.call("run_tests", {"args": "tests/test_app.py"})
    assert not passing.is_error
    assert "1 passed" in passing.content, passing.content
    assert "[exit code" not in passing.content


def test_run_tests_uses_the_given_command(box: LocalSandbox) -> None:
    tools = toolset(box, test_command="echo custom-runner in $PWD; exit 4")
    result = tools.call("run_tests", {})
    assert f"custom-runner in {box.workdir}" in result.content
    assert result.content.endswith("[exit code: 4]")
    assert "run_tests" not in toolset(box, test_command=None).tools


# -- Toolset.call -----------------------------------------------------------------------------


def test_unknown_tool_and_non_dict_input_are_errors(box: LocalSandbox) -> None:
    tools = toolset(box)
    unknown = tools.call("computer", {"action": "screenshot"})
    assert unknown.is_error
    assert "computer" in unknown.content and "bash" in unknown.content
    for bad in (["ls"], "ls", None, 3):
        result = tools.call("bash", bad)
        assert result.is_error, bad
        assert "JSON object" in result.content
    assert tools.call(EDITOR, "view app.py").is_error


def test_tool_definitions_match_the_model(box: LocalSandbox) -> None:
    definitions = {d["name"]: d for d in toolset(box).definitions()}
    assert set(definitions) == {"bash", EDITOR, "search_code", "run_tests"}
    assert definitions["bash"]["type"] == "bash_20250124"
    assert definitions[EDITOR]["type"] == "text_editor_20250728"
    assert definitions[EDITOR]["max_characters"] == 30_000


# -- time ---------------------------------------------------------------------------------------


def test_a_command_never_runs_past_the_runs_deadline(box: LocalSandbox) -> None:
    import time

    tools = toolset(box)
    tools.command_time.deadline = time.monotonic() + 3
    started = time.monotonic()
    result = tools.call("bash", {"command": "sleep 25; echo finished"})
    assert time.monotonic() - started < 12  # not the 30 s command timeout
    assert result.is_error and "the run's time limit" in result.content and "finished" not in result.content
    tools.command_time.deadline = None
    assert tools.call("bash", {"command": "echo still usable"}).content == "still usable\n"


def test_files_the_editor_creates_belong_to_the_sandbox_user(sandbox: DockerSandbox) -> None:
    created = toolset(sandbox).call(
        EDITOR, {"command": "create", "path": "pkg/new.py", "file_text": "x = 1\n"}
    )
    assert not created.is_error, created.content
    owner = sandbox.execute(["stat", "-c", "%u:%g", "/workspace/pkg/new.py"]).output.strip()
    assert owner == "1000:1000"
