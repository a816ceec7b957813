from __future__ import annotations


def test_health(api):
    assert api.request("GET", "/health") == (200, {"status": "ok"})


def test_post_rejects_missing_title(api):
    status, body = api.request("POST", "/notes", {"body": "no title"})
    assert status == 400
    assert "title" in body["error"]


def test_unknown_note_is_404(api):
    status, _ = api.request("GET", "/notes/999")
    assert status == 404


def test_created_note_is_visible_to_next_request(api):
    status, created = api.request("POST", "/notes", {"title": "call mom", "body": "sunday"})
    assert status == 201

    status, fetched = api.request("GET", f"/notes/{created['id']}")
    assert status == 200, fetched
    assert fetched == created


def test_list_returns_all_created_notes(api):
    for title in ("a", "b", "c"):
        assert api.request("POST", "/notes", {"title": title})[0] == 201

    status, notes = api.request("GET", "/notes")
    assert status == 200
    assert [note["title"] for note in notes] == ["a", "b", "c"]


def test_patch_and_delete_round_trip(api):
    _, created = api.request("POST", "/notes", {"title": "draft"})
    status, updated = api.request("PATCH", f"/notes/{created['id']}", {"body": "final"})
    assert status == 200, updated
    assert updated["body"] == "final"

    assert api.request("DELETE", f"/notes/{created['id']}") == (200, {"deleted": created["id"]})
    assert api.request("GET", f"/notes/{created['id']}")[0] == 404
