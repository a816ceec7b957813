"""Data access for notes. All SQL of the service lives in this module."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any


class NoteNotFound(LookupError):
    """Raised when a note id does not exist."""


@dataclass(frozen=True)
class Note:
    id: int
    title: str
    body: str
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Note:
        return cls(**dict(row))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class NoteRepository:
    """CRUD operations on the ``notes`` table over one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def create(self, title: str, body: str = "") -> Note:
        """Insert a note and return it with its new id."""
        now = _now()
        cur = self._conn.execute(
            "INSERT INTO notes (title, body, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (title, body, now, now),
        )
        return Note(id=cur.lastrowid, title=title, body=body, created_at=now, updated_at=now)

    def get(self, note_id: int) -> Note:
        row = self._conn.execute(
            "SELECT id, title, body, created_at, updated_at FROM notes WHERE id = ?", (note_id,)
        ).fetchone()
        if row is None:
            raise NoteNotFound(note_id)
        return Note.from_row(row)

    def list_all(self, limit: int = 100, offset: int = 0) -> list[Note]:
        rows = self._conn.execute(
            "SELECT id, title, body, created_at, updated_at FROM notes ORDER BY id LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        return [Note.from_row(row) for row in rows]

    def update(self, note_id: int, *, title: str | None = None, body: str | None = None) -> Note:
        """Change the title and/or body of a note; omitted fields keep their value."""
        current = self.get(note_id)
        with self._conn:
            self._conn.execute(
                "UPDATE notes SET title = ?, body = ?, updated_at = ? WHERE id = ?",
                (
                    current.title if title is None else title,
                    current.body if body is None else body,
                    _now(),
                    note_id,
                ),
            )
        return self.get(note_id)

    def delete(self, note_id: int) -> None:
        with self._conn:
            cur = self._conn.execute("DELETE FROM notes WHERE id = ?", (note_id,))
        if cur.rowcount == 0:
            raise NoteNotFound(note_id)

    def count(self) -> int:
        return self._conn.execute("SELECT count(*) FROM notes").fetchone()[0]
