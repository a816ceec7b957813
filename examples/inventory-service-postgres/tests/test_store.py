import psycopg2
from inventory.db import Database
from inventory.store import InventoryStore


def test_add_and_count(store: InventoryStore) -> None:
    assert store.add("widget", 3) == 3
    assert store.add("widget", 2) == 5
    assert store.count("widget") == 5
    assert store.count("gadget") == 0


def test_service_survives_the_database_ending_its_session(store: InventoryStore, db: Database) -> None:
    """A failover, a restart or an idle timeout ends the server side of our connection; the
    next request must still be served (with a new connection), not fail for ever."""
    store.add("widget", 3)
    admin = psycopg2.connect(db.dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    admin.close()
    assert store.count("widget") == 3
    assert store.add("widget", 1) == 4
