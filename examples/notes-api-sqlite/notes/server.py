"""JSON HTTP API for notes.

Each request opens its own SQLite connection and closes it when the response
has been written, so requests never share transaction state.

Run with ``python3 -m notes.server``.
"""

from __future__ import annotations

import json
import logging
import re
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import db
from .config import Settings
from .repository import NoteNotFound, NoteRepository

log = logging.getLogger("notes.server")

_NOTE_PATH = re.compile(r"^/notes/(\d+)$")
MAX_BODY_BYTES = 64 * 1024


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NotesHandler(BaseHTTPRequestHandler):
    """Routes requests to the repository. ``db_path`` is set by :func:`make_server`."""

    db_path: str = "notes.db"
    server_version = "notes-api/0.3"

    # -- routing -----------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            if path == "/health":
                self._send_json(HTTPStatus.OK, {"status": "ok"})
                return
            with db.connection(self.db_path) as conn:
                repo = NoteRepository(conn)
                status, payload = self._route(repo, method, path)
            self._send_json(status, payload)
        except ApiError as exc:
            self._send_json(exc.status, {"error": exc.message})
        except NoteNotFound as exc:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"note {exc.args[0]} not found"})
        except Exception:
            log.exception("unhandled error for %s %s", method, self.path)
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})

    def _route(self, repo: NoteRepository, method: str, path: str) -> tuple[HTTPStatus, Any]:
        if path == "/notes":
            if method == "GET":
                return HTTPStatus.OK, [note.to_dict() for note in repo.list_all()]
            if method == "POST":
                data = self._read_json()
                title = data.get("title")
                if not isinstance(title, str) or not title.strip():
                    raise ApiError(HTTPStatus.BAD_REQUEST, "title is required")
                body = data.get("body", "")
                if not isinstance(body, str):
                    raise ApiError(HTTPStatus.BAD_REQUEST, "body must be a string")
                return HTTPStatus.CREATED, repo.create(title.strip(), body).to_dict()
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} not allowed on /notes")

        match = _NOTE_PATH.match(path)
        if match is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no route for {path}")
        note_id = int(match.group(1))
        if method == "GET":
            return HTTPStatus.OK, repo.get(note_id).to_dict()
        if method == "PATCH":
            data = self._read_json()
            fields = {key: data[key] for key in ("title", "body") if key in data}
            if not all(isinstance(value, str) for value in fields.values()):
                raise ApiError(HTTPStatus.BAD_REQUEST, "title and body must be strings")
            return HTTPStatus.OK, repo.update(note_id, **fields).to_dict()
        if method == "DELETE":
            repo.delete(note_id)
            return HTTPStatus.OK, {"deleted": note_id}
        raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} not allowed on {path}")

    # -- I/O helpers -------------------------------------------------------

    def _read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"invalid JSON: {exc.msg}") from exc
        if not isinstance(data, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "expected a JSON object")
        return data

    def _send_json(self, status: HTTPStatus, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s - %s", self.address_string(), format % args)


def make_server(settings: Settings) -> ThreadingHTTPServer:
    """Create the schema if needed and bind a server (port 0 picks a free port)."""
    db.init_db(settings.db_path)
    handler = type("BoundNotesHandler", (NotesHandler,), {"db_path": settings.db_path})
    return ThreadingHTTPServer((settings.host, settings.port), handler)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    server = make_server(settings)
    host, port = server.server_address[:2]
    log.info("listening on http://%s:%s (db: %s)", host, port, settings.db_path)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
