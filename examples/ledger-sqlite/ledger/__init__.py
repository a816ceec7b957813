"""ledger: accounts, deposits and transfers on SQLite."""

__version__ = "1.2.0"
