from __future__ import annotations

import pytest

from ledger import db
from ledger.service import LedgerService


@pytest.fixture
def db_path(tmp_path) -> str:
    path = str(tmp_path / "ledger.db")
    db.init_db(path)
    return path


@pytest.fixture
def ledger(db_path):
    """A service with two funded accounts: alice (100.00) and bob (50.00)."""
    conn = db.connect(db_path)
    service = LedgerService(conn)
    service.open_account("alice", "Alice Example")
    service.open_account("bob", "Bob Example")
    service.deposit("alice", 10_000)
    service.deposit("bob", 5_000)
    yield service
    conn.close()
