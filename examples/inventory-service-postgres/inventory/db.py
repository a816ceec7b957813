"""One long-lived PostgreSQL connection per process, opened on first use."""

from __future__ import annotations

import os
from typing import Any

import psycopg2


def default_dsn() -> str:
    return os.environ.get("DATABASE_URL", "postgresql://postgres:postgres@localhost:5432/postgres")


class Database:
    """Opens its connection lazily and keeps it for the life of the process."""

    def __init__(self, dsn: str | None = None) -> None:
        self.dsn = dsn or default_dsn()
        self._conn: Any = None

    def connection(self) -> Any:
        if self._conn is None:
            self._conn = psycopg2.connect(self.dsn, connect_timeout=5)
            self._conn.autocommit = True
        return self._conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.connection().cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
