"""A FastAPI app through the raw-socket suite, in every pass (deploykit, its workers, Gunicorn with
deploykit's worker class, and uvicorn as the baseline): what a FastAPI user does most, and what
Starlette decides from the scope's ASGI ``spec_version``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.polling import wait_for
from tests.server.harness import Serve, Server, request

pytest.importorskip("fastapi")


@pytest.fixture
def api(serve: Serve) -> Server:
    return serve(app="fastapi_app").wait_ready()


def _lines(record: Path) -> list[str]:
    return record.read_text().split("\n") if record.exists() else []


def test_json_route(api: Server) -> None:
    response = api.exchange(request("/"))
    assert response.status == 200 and json.loads(response.body) == {"hello": "world"}


def test_pydantic_body_and_its_422(api: Server) -> None:
    body = json.dumps({"name": "a", "count": 21}).encode()
    headers = ("Host: test", "Content-Type: application/json", f"Content-Length: {len(body)}")
    response = api.exchange(request("/items", "POST", headers, body))
    assert response.status == 200 and json.loads(response.body) == {"name": "a", "count": 42}
    bad = b'{"name": "a", "count": "many"}'
    response = api.exchange(request("/items", "POST", (*headers[:2], f"Content-Length: {len(bad)}"), bad))
    assert response.status == 422


def test_an_endless_stream_ends_when_the_client_leaves(api: Server, tmp_path: Path) -> None:
    """Starlette's StreamingResponse stops on a disconnect only if the server keeps its word on
    spec_version: with 2.4 it waits for send() to raise, with 2.3 it listens for http.disconnect.
    deploykit said 2.4 and did not raise, so this stream ran for ever for a client that had gone."""
    record = tmp_path / "record"
    with api.connect() as conn:
        conn.send(request(f"/stream?record={quote(str(record))}"))
        wait_for(lambda: len(_lines(record)) > 3, 10, "the stream to start")
    wait_for(lambda: "closed" in _lines(record), 10, "the generator to be closed after the client left")
    produced = len(_lines(record))
    time.sleep(0.3)  # nothing more is produced after the close
    assert len(_lines(record)) == produced


def test_a_background_task_runs_after_the_response(api: Server, tmp_path: Path) -> None:
    record = tmp_path / "record"
    response = api.exchange(request(f"/background?record={quote(str(record))}"))
    assert response.status == 200 and json.loads(response.body) == {"queued": True}
    wait_for(lambda: "background ran" in _lines(record), 10, "the background task")
