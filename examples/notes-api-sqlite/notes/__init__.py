"""notes-api: a tiny JSON notes service on SQLite."""

__version__ = "0.3.0"
