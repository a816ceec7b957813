"""Data access for accounts and the journal."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


class LedgerError(Exception):
    """Base class for errors the API reports to clients."""


class AccountNotFound(LedgerError, LookupError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id!r} does not exist")
        self.account_id = account_id


class AccountExists(LedgerError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id!r} already exists")
        self.account_id = account_id


class InsufficientFunds(LedgerError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"insufficient funds in account {account_id!r}")
        self.account_id = account_id


@dataclass(frozen=True)
class Account:
    id: str
    owner: str
    balance_cents: int


@dataclass(frozen=True)
class JournalEntry:
    id: int
    source: str | None
    destination: str
    amount_cents: int


class AccountRepository:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def create(self, account_id: str, owner: str) -> Account:
        try:
            self._conn.execute("INSERT INTO accounts (id, owner) VALUES (?, ?)", (account_id, owner))
        except sqlite3.IntegrityError as exc:
            raise AccountExists(account_id) from exc
        return Account(account_id, owner, 0)

    def get(self, account_id: str) -> Account:
        row = self._conn.execute(
            "SELECT id, owner, balance_cents FROM accounts WHERE id = ?", (account_id,)
        ).fetchone()
        if row is None:
            raise AccountNotFound(account_id)
        return Account(row["id"], row["owner"], row["balance_cents"])

    def adjust_balance(self, account_id: str, delta_cents: int) -> None:
        """Add ``delta_cents`` (negative to withdraw) to an account's balance."""
        try:
            cur = self._conn.execute(
                "UPDATE accounts SET balance_cents = balance_cents + ? WHERE id = ?",
                (delta_cents, account_id),
            )
        except sqlite3.IntegrityError as exc:  # CHECK (balance_cents >= 0)
            raise InsufficientFunds(account_id) from exc
        if cur.rowcount == 0:
            raise AccountNotFound(account_id)

    def total_balance(self) -> int:
        return self._conn.execute("SELECT coalesce(sum(balance_cents), 0) FROM accounts").fetchone()[0]

    def record(self, source: str | None, destination: str, amount_cents: int) -> JournalEntry:
        cur = self._conn.execute(
            "INSERT INTO journal (source, destination, amount_cents) VALUES (?, ?, ?)",
            (source, destination, amount_cents),
        )
        return JournalEntry(cur.lastrowid, source, destination, amount_cents)

    def journal(self, account_id: str | None = None) -> list[JournalEntry]:
        sql = "SELECT id, source, destination, amount_cents FROM journal"
        params: tuple[str, ...] = ()
        if account_id is not None:
            sql += " WHERE source = ? OR destination = ?"
            params = (account_id, account_id)
        rows = self._conn.execute(sql + " ORDER BY id", params).fetchall()
        return [JournalEntry(r["id"], r["source"], r["destination"], r["amount_cents"]) for r in rows]
