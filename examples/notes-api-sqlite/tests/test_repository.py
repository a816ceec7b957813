from __future__ import annotations

import pytest

from notes import db
from notes.repository import NoteNotFound, NoteRepository


@pytest.fixture
def repo(db_path):
    with db.connection(db_path) as conn:
        yield NoteRepository(conn)


def test_create_assigns_id_and_timestamps(repo):
    note = repo.create("groceries", "milk, eggs")
    assert note.id > 0
    assert note.title == "groceries"
    assert note.created_at == note.updated_at


def test_get_returns_created_note(repo):
    created = repo.create("todo", "write tests")
    assert repo.get(created.id) == created


def test_get_missing_note_raises(repo):
    with pytest.raises(NoteNotFound):
        repo.get(12345)


def test_update_changes_only_given_fields(repo):
    note = repo.create("draft", "first version")
    updated = repo.update(note.id, body="second version")
    assert updated.title == "draft"
    assert updated.body == "second version"


def test_delete_removes_note(repo):
    note = repo.create("temporary")
    repo.delete(note.id)
    with pytest.raises(NoteNotFound):
        repo.get(note.id)


def test_list_is_ordered_by_id(repo):
    ids = [repo.create(f"note {i}").id for i in range(3)]
    assert [note.id for note in repo.list_all()] == ids


def test_created_note_survives_reopening_the_database(db_path):
    with db.connection(db_path) as conn:
        created = NoteRepository(conn).create("persistent", "should still be here")

    with db.connection(db_path) as conn:
        repo = NoteRepository(conn)
        assert repo.count() == 1
        assert repo.get(created.id) == created
