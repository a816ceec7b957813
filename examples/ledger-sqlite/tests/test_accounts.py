from __future__ import annotations

import pytest

from ledger.accounts import AccountExists, AccountNotFound


def test_new_account_starts_empty(ledger):
    ledger.open_account("carol", "Carol")
    assert ledger.balance("carol") == 0


def test_duplicate_account_is_rejected(ledger):
    with pytest.raises(AccountExists):
        ledger.open_account("alice", "Someone Else")


def test_deposit_increases_balance_and_is_journaled(ledger):
    ledger.deposit("alice", 250)
    assert ledger.balance("alice") == 10_250
    assert ledger.accounts.journal("alice")[-1].amount_cents == 250


def test_deposit_to_missing_account(ledger):
    with pytest.raises(AccountNotFound):
        ledger.deposit("nobody", 100)
    assert ledger.accounts.total_balance() == 15_000


@pytest.mark.parametrize("amount", [0, -5, 1.5, "10", True])
def test_deposit_rejects_bad_amounts(ledger, amount):
    with pytest.raises(ValueError):
        ledger.deposit("alice", amount)
