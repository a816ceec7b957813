"""Business rules: deposits and transfers."""

from __future__ import annotations

import sqlite3

from .accounts import Account, AccountRepository, JournalEntry
from .db import transaction


def _check_amount(amount_cents: int) -> None:
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise ValueError("amount_cents must be a positive integer")


class LedgerService:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.accounts = AccountRepository(conn)

    def open_account(self, account_id: str, owner: str) -> Account:
        if not account_id or not owner:
            raise ValueError("account id and owner are required")
        return self.accounts.create(account_id, owner)

    def balance(self, account_id: str) -> int:
        return self.accounts.get(account_id).balance_cents

    def deposit(self, account_id: str, amount_cents: int) -> JournalEntry:
        """Put new money into an account."""
        _check_amount(amount_cents)
        with transaction(self._conn):
            self.accounts.adjust_balance(account_id, amount_cents)
            return self.accounts.record(None, account_id, amount_cents)

    def transfer(self, source: str, destination: str, amount_cents: int) -> JournalEntry:
        """Move money from ``source`` to ``destination``.

        Raises AccountNotFound or InsufficientFunds; in that case no balance
        changes and nothing is written to the journal.
        """
        _check_amount(amount_cents)
        if source == destination:
            raise ValueError("source and destination must differ")
        with self._conn:  # both legs and the journal entry, or nothing
            self.accounts.adjust_balance(source, -amount_cents)
            self.accounts.adjust_balance(destination, amount_cents)
            return self.accounts.record(source, destination, amount_cents)
