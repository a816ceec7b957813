"""The project's environment: how it installs itself and runs its tests, found from its own
files (CI, manifests, lockfiles; `detect.detect`), and whether that suite can run in the sandbox,
repaired by the model when it cannot (`phase.prepare_environment`)."""
