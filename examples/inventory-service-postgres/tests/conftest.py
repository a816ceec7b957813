import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inventory.db import Database
from inventory.store import InventoryStore


@pytest.fixture
def db() -> Iterator[Database]:
    database = Database()
    database.execute("DROP TABLE IF EXISTS stock")
    yield database
    database.close()


@pytest.fixture
def store(db: Database) -> InventoryStore:
    store = InventoryStore(db)
    store.migrate()
    return store
