"""A client that goes away while the app waits on receive() produces http.disconnect."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

from tests.server.harness import Server, request


def test_client_close_delivers_http_disconnect_to_waiting_app(server: Server, tmp_path: Path) -> None:
    record = tmp_path / "disconnect.txt"
    with server.connect() as conn:
        conn.send(request(f"/disconnect?file={quote(str(record))}"))
        time.sleep(0.3)
        assert not record.exists(), "http.disconnect delivered while the client was still connected"
    deadline = time.monotonic() + 3.0
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert record.exists(), "the app never received http.disconnect"
    assert record.read_text() == "http.disconnect"
