"""The project's environment: how it is set up, and whether its test suite can run."""
