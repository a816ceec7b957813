"""WSGI application for the ledger.

Each request gets its own connection. For local use run
``python3 -m ledger.api``; in production mount :func:`make_app` in any WSGI
server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict
from http import HTTPStatus
from typing import Any

from . import db
from .accounts import AccountExists, AccountNotFound, InsufficientFunds
from .config import Settings
from .service import LedgerService

log = logging.getLogger("ledger.api")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_ACCOUNT = re.compile(r"^/accounts/([\w.-]+)$")
_DEPOSITS = re.compile(r"^/accounts/([\w.-]+)/deposits$")

_ERROR_STATUS: list[tuple[type[Exception], HTTPStatus]] = [
    (AccountNotFound, HTTPStatus.NOT_FOUND),
    (AccountExists, HTTPStatus.CONFLICT),
    (InsufficientFunds, HTTPStatus.CONFLICT),
    (ValueError, HTTPStatus.BAD_REQUEST),
]


class HttpError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _read_json(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = json.loads(environ["wsgi.input"].read(length) or b"{}")
    except (ValueError, json.JSONDecodeError) as exc:
        raise HttpError(HTTPStatus.BAD_REQUEST, "invalid JSON body") from exc
    if not isinstance(data, dict):
        raise HttpError(HTTPStatus.BAD_REQUEST, "expected a JSON object")
    return data


def _route(service: LedgerService, method: str, path: str, environ: dict[str, Any]) -> tuple[HTTPStatus, Any]:
    if path == "/accounts" and method == "POST":
        body = _read_json(environ)
        account = service.open_account(str(body.get("id", "")), str(body.get("owner", "")))
        return HTTPStatus.CREATED, asdict(account)
    if path == "/transfers" and method == "POST":
        body = _read_json(environ)
        entry = service.transfer(body.get("source"), body.get("destination"), body.get("amount_cents"))
        return HTTPStatus.CREATED, asdict(entry)
    if (match := _DEPOSITS.match(path)) and method == "POST":
        entry = service.deposit(match.group(1), _read_json(environ).get("amount_cents"))
        return HTTPStatus.CREATED, asdict(entry)
    if (match := _ACCOUNT.match(path)) and method == "GET":
        return HTTPStatus.OK, asdict(service.accounts.get(match.group(1)))
    raise HttpError(HTTPStatus.NOT_FOUND, f"no route for {method} {path}")


def make_app(settings: Settings) -> WsgiApp:
    """Create the schema if needed and return the WSGI callable."""
    db.init_db(settings.db_path)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        if path == "/health":
            status, payload = HTTPStatus.OK, {"status": "ok"}
        else:
            conn = db.connect(settings.db_path)
            try:
                status, payload = _route(LedgerService(conn), method, path, environ)
            except HttpError as exc:
                status, payload = exc.status, {"error": str(exc)}
            except Exception as exc:
                status = next((code for kind, code in _ERROR_STATUS if isinstance(exc, kind)), None)
                if status is None:
                    log.exception("unhandled error for %s %s", method, path)
                    status, payload = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}
                else:
                    payload = {"error": str(exc)}
            finally:
                conn.close()
        body = json.dumps(payload).encode()
        start_response(
            f"{status.value} {status.phrase}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app


def main() -> None:
    from wsgiref.simple_server import make_server

    logging.basicConfig(level=logging.INFO)
    settings = Settings.from_env()
    with make_server(settings.host, settings.port, make_app(settings)) as server:
        log.info("listening on http://%s:%s (db: %s)", settings.host, settings.port, settings.db_path)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


if __name__ == "__main__":
    main()
