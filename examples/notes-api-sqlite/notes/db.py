"""SQLite connections and schema.

The server opens one connection per request (see ``notes.server``), so
anything a request writes must be committed before its connection closes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    title      TEXT    NOT NULL CHECK (length(title) > 0),
    body       TEXT    NOT NULL DEFAULT '',
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
);
"""


def open_connection(path: str) -> sqlite3.Connection:
    """Open a connection with the settings every caller expects."""
    conn = sqlite3.connect(path, timeout=5.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def connection(path: str) -> Iterator[sqlite3.Connection]:
    """Yield a connection and always close it afterwards.

    Note that ``sqlite3.Connection``'s own context manager only ends the
    transaction; it does not close the connection, hence this helper.
    """
    conn = open_connection(path)
    try:
        yield conn
    finally:
        conn.close()


def init_db(path: str) -> None:
    """Create the tables if they do not exist yet."""
    with connection(path) as conn:
        conn.executescript(SCHEMA)
