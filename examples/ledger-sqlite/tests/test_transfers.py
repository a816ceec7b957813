from __future__ import annotations

import pytest

from ledger import db
from ledger.accounts import AccountNotFound, InsufficientFunds
from ledger.service import LedgerService


def test_transfer_moves_money(ledger):
    entry = ledger.transfer("alice", "bob", 2_500)
    assert (entry.source, entry.destination, entry.amount_cents) == ("alice", "bob", 2_500)
    assert ledger.balance("alice") == 7_500
    assert ledger.balance("bob") == 7_500


def test_transfer_is_visible_to_other_connections(ledger, db_path):
    ledger.transfer("alice", "bob", 1_000)
    other = db.connect(db_path)
    try:
        assert LedgerService(other).balance("bob") == 6_000
    finally:
        other.close()


def test_overdraft_is_rejected_without_side_effects(ledger):
    with pytest.raises(InsufficientFunds):
        ledger.transfer("bob", "alice", 5_001)
    assert ledger.balance("bob") == 5_000
    assert ledger.balance("alice") == 10_000


def test_transfer_from_missing_account(ledger):
    with pytest.raises(AccountNotFound):
        ledger.transfer("nobody", "alice", 100)
    assert ledger.balance("alice") == 10_000


def test_failed_transfer_to_missing_account_conserves_money(ledger):
    total_before = ledger.accounts.total_balance()
    with pytest.raises(AccountNotFound):
        ledger.transfer("alice", "nobody", 2_500)

    assert ledger.balance("alice") == 10_000, "the debit must be rolled back"
    assert ledger.accounts.total_balance() == total_before
    assert [e.source for e in ledger.accounts.journal()] == [None, None], "only the two deposits"


def test_same_account_transfer_is_rejected(ledger):
    with pytest.raises(ValueError):
        ledger.transfer("alice", "alice", 1)
