"""patchwright: an unattended coding agent that fixes a git repository inside a Docker sandbox."""

__version__ = "0.1.0"
