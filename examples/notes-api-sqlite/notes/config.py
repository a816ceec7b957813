"""Runtime settings, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    db_path: str = "notes.db"
    host: str = "127.0.0.1"
    port: int = 8080

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            db_path=env.get("NOTES_DB_PATH", cls.db_path),
            host=env.get("NOTES_HOST", cls.host),
            port=int(env.get("NOTES_PORT", cls.port)),
        )
