"""How a repository installs itself and runs its tests, found from its own files (CI, manifests,
lockfiles) without running anything on the host; `detect.detect` is the entry point."""
