"""Stock levels by SKU."""

from __future__ import annotations

from inventory.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (
    sku TEXT PRIMARY KEY,
    quantity INTEGER NOT NULL CHECK (quantity >= 0)
)
"""


class InventoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def migrate(self) -> None:
        self.db.execute(SCHEMA)

    def add(self, sku: str, quantity: int) -> int:
        rows = self.db.execute(
            "INSERT INTO stock (sku, quantity) VALUES (%s, %s) "
            "ON CONFLICT (sku) DO UPDATE SET quantity = stock.quantity + EXCLUDED.quantity "
            "RETURNING quantity",
            (sku, quantity),
        )
        return int(rows[0][0])

    def count(self, sku: str) -> int:
        rows = self.db.execute("SELECT quantity FROM stock WHERE sku = %s", (sku,))
        return int(rows[0][0]) if rows else 0
