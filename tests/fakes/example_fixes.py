"""The example projects under ``examples/`` and the known fix for each.

Pure data, shared by ``tests/test_examples.py`` (which checks that each suite
fails before and passes after the edits) and by end-to-end tests that script a
fake model to apply the same edits through the text editor tool::

    from example_fixes import EXAMPLES

Every ``Edit.old`` occurs exactly once in its file, so each edit is a valid
``str_replace`` call as written.
"""

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Edit:
    """One exact ``str_replace``: ``file`` is relative to the example's root."""

    file: str
    old: str
    new: str


@dataclass(frozen=True)
class ExampleFix:
    name: str
    path: str  # relative to the repository root, e.g. "examples/notes-api-sqlite"
    test_command: str  # run from the example's root
    task: str  # the bug as a user would report it, one line
    failing_test_hint: str  # appears in the failing test run's output
    edits: tuple[Edit, ...]

    @property
    def source_dir(self) -> Path:
        return REPO_ROOT / self.path


NOTES_API_SQLITE = ExampleFix(
    name="notes-api-sqlite",
    path="examples/notes-api-sqlite",
    test_command="python3 -m pytest -q",
    task=(
        "Notes created with POST /notes are gone on the next request: GET /notes/<id> returns 404 "
        "and they are not there after a restart either."
    ),
    failing_test_hint="test_created_note_is_visible_to_next_request",
    # NoteRepository.create never commits; the per-request connection closes
    # with the INSERT still in an open transaction, which rolls it back.
    edits=(
        Edit(
            file="notes/repository.py",
            old=(
                "        cur = self._conn.execute(\n"
                '            "INSERT INTO notes (title, body, created_at, updated_at) VALUES (?, ?, ?, ?)",\n'
                "            (title, body, now, now),\n"
                "        )\n"
            ),
            new=(
                "        with self._conn:\n"
                "            cur = self._conn.execute(\n"
                '                "INSERT INTO notes (title, body, created_at, updated_at) '
                'VALUES (?, ?, ?, ?)",\n'
                "                (title, body, now, now),\n"
                "            )\n"
            ),
        ),
    ),
)

ORDERS_SERVICE_NODE = ExampleFix(
    name="orders-service-node",
    path="examples/orders-service-node",
    test_command="npm test",
    task=(
        "After a few orders fail (e.g. for an unknown customer), every later request fails with "
        '503 "pool exhausted" until the service is restarted.'
    ),
    failing_test_hint="failed orders do not exhaust the connection pool",
    # Pool.withConnection only releases the connection when the callback
    # succeeds; a rejected query leaks it until the pool is empty.
    edits=(
        Edit(
            file="src/db/pool.js",
            old=(
                "    const conn = await this.acquire();\n"
                "    const result = await fn(conn);\n"
                "    this.release(conn);\n"
                "    return result;\n"
            ),
            new=(
                "    const conn = await this.acquire();\n"
                "    try {\n"
                "      return await fn(conn);\n"
                "    } finally {\n"
                "      this.release(conn);\n"
                "    }\n"
            ),
        ),
    ),
)

LEDGER_SQLITE = ExampleFix(
    name="ledger-sqlite",
    path="examples/ledger-sqlite",
    test_command="python3 -m pytest -q",
    task=(
        "A transfer to an account that does not exist fails, "
        "but the money is still taken out of the source account."
    ),
    failing_test_hint="test_failed_transfer_to_missing_account_conserves_money",
    # Connections are in autocommit mode (isolation_level=None), where
    # ``with conn:`` neither begins nor rolls back a transaction: the debit is
    # committed before the credit fails. db.transaction() is the real thing.
    edits=(
        Edit(
            file="ledger/service.py",
            old="        with self._conn:  # both legs and the journal entry, or nothing\n",
            new="        with transaction(self._conn):  # both legs and the journal entry, or nothing\n",
        ),
    ),
)

EXAMPLES: list[ExampleFix] = [NOTES_API_SQLITE, ORDERS_SERVICE_NODE, LEDGER_SQLITE]


# Needs a real PostgreSQL (the run's own service, see patchwright.services), so it is not in
# EXAMPLES, whose suites run on this host; tests/test_services_e2e.py runs it through `agent fix`.
INVENTORY_SERVICE_POSTGRES = ExampleFix(
    name="inventory-service-postgres",
    path="examples/inventory-service-postgres",
    test_command="python3 -m pytest -q",
    task=(
        "After the database restarts, every request fails with 'server closed the connection "
        "unexpectedly' until the service is restarted."
    ),
    failing_test_hint="test_service_survives_the_database_ending_its_session",
    # Database keeps its connection for ever: once the server has ended the session, every
    # execute() fails. The fix opens a new connection when the old one was closed under it.
    edits=(
        Edit(
            file="inventory/db.py",
            old=(
                "    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:\n"
                "        with self.connection().cursor() as cur:\n"
            ),
            new=(
                "    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:\n"
                "        try:\n"
                "            return self._run(sql, params)\n"
                "        except psycopg2.OperationalError:\n"
                "            if self._conn is None or not self._conn.closed:\n"
                "                raise\n"
                "            self._conn = None  # the server ended the session: open a new one\n"
                "            return self._run(sql, params)\n"
                "\n"
                "    def _run(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:\n"
                "        with self.connection().cursor() as cur:\n"
            ),
        ),
    ),
)
