"""Drive the WSGI app in-process, without a socket."""

from __future__ import annotations

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest

from ledger.api import make_app
from ledger.config import Settings


@pytest.fixture
def call(db_path):
    app = make_app(Settings(db_path=db_path))

    def _call(method: str, path: str, payload=None):
        body = b"" if payload is None else json.dumps(payload).encode()
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        setup_testing_defaults(environ)
        captured = {}

        def start_response(status, headers):
            captured["status"] = int(status.split()[0])

        chunks = app(environ, start_response)
        return captured["status"], json.loads(b"".join(chunks))

    return _call


def transfer(source, destination, amount_cents):
    return {"source": source, "destination": destination, "amount_cents": amount_cents}


@pytest.fixture
def funded(call):
    assert call("POST", "/accounts", {"id": "alice", "owner": "Alice"})[0] == 201
    assert call("POST", "/accounts", {"id": "bob", "owner": "Bob"})[0] == 201
    assert call("POST", "/accounts/alice/deposits", {"amount_cents": 10_000})[0] == 201
    return call


def test_health(call):
    assert call("GET", "/health") == (200, {"status": "ok"})


def test_transfer_over_http(funded):
    status, entry = funded("POST", "/transfers", transfer("alice", "bob", 300))
    assert status == 201, entry
    assert funded("GET", "/accounts/bob")[1]["balance_cents"] == 300


def test_bad_amount_is_400(funded):
    status, body = funded("POST", "/transfers", transfer("alice", "bob", "1"))
    assert status == 400
    assert "amount_cents" in body["error"]


def test_transfer_to_unknown_account_is_404_and_keeps_balance(funded):
    status, body = funded("POST", "/transfers", transfer("alice", "bobby", 300))
    assert status == 404
    assert "bobby" in body["error"]
    assert funded("GET", "/accounts/alice")[1]["balance_cents"] == 10_000
