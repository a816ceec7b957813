"""The folders here are projects for the environment tests to copy, not tests of patchwright."""

collect_ignore_glob = ["*/*"]
