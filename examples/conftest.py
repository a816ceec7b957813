"""Keep the patchwright test suite from collecting the example projects.

Each directory here is a standalone project with a deliberate bug, so its own
tests fail until the bug is fixed. ``tests/test_examples.py`` runs them in
copies; a bare ``pytest examples`` from the repository root collects nothing.
Inside an example (``cd examples/notes-api-sqlite && python3 -m pytest``) this
file is not loaded, because the example's own pyproject.toml is the rootdir.
"""

collect_ignore_glob = ["*"]
