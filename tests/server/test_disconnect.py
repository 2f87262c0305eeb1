"""A client that goes away while the app waits on receive() produces http.disconnect."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

from tests.polling import wait_for, wait_for_text
from tests.server.harness import Server, request


def test_client_close_delivers_http_disconnect_to_waiting_app(server: Server, tmp_path: Path) -> None:
    record, entered = tmp_path / "disconnect.txt", tmp_path / "entered"
    with server.connect() as conn:
        conn.send(request(f"/disconnect?file={quote(str(record))}&entered={quote(str(entered))}"))
        wait_for(entered.exists, 5.0, "the request to reach the app")
        time.sleep(0.3)  # the app waits on receive() with the client still connected
        assert not record.exists(), "http.disconnect delivered while the client was still connected"
    # Wait for the content, not the file: the app writes it atomically, and an empty file still fails here.
    assert wait_for_text(record, 5.0, "the app to receive http.disconnect") == "http.disconnect"
