"""WSGI apps under `deploykit serve` (issue 17 item 2): a Flask app and a Django WSGI app
through the raw-socket suite's cases, on both parsers (and under SERVE_TEST_TARGET=gunicorn
in deploykit's worker class, which detects the interface the same way). No --interface flag
is given: auto must detect both apps; uvicorn (SERVE_TEST_TARGET=uvicorn) is told."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.polling import wait_for
from tests.server.harness import TARGET, OwnServer, Serve, Server, request

pytest.importorskip("flask")
pytest.importorskip("django")

APPS = ["flask_app", "django_app"]
FLAGS = ("--interface", "wsgi") if TARGET == "uvicorn" else ()
MIB = 1024 * 1024


@pytest.fixture(params=APPS)
def wsgi(request: pytest.FixtureRequest, serve: Serve) -> Server:
    return serve(*FLAGS, app=request.param).wait_ready()


def test_get(wsgi: Server) -> None:
    response = wsgi.exchange(request("/"))
    assert (response.status, response.body) == (200, b"hello")
    assert response.header("content-length") == "5"


def test_head_has_no_body(wsgi: Server) -> None:
    with wsgi.connect() as conn:
        conn.send(request("/", "HEAD"))
        response = conn.read_response(head_request=True)
        assert response.status == 200 and response.body == b""
        assert response.header("content-length") == "5"
        conn.send(request("/"))  # nothing stray after the HEAD answer: the next response parses
        assert conn.read_response().body == b"hello"


def test_post_with_a_streamed_body(wsgi: Server) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB, sent in pieces while the app already reads
    with wsgi.connect(timeout=10) as conn:
        conn.send(request("/echo", "POST", ("Host: test", f"Content-Length: {len(body)}")))
        for start in range(0, len(body), 128 * 1024):
            conn.send(body[start : start + 128 * 1024])
            time.sleep(0.01)
        response = conn.read_response(timeout=10)
    assert response.status == 200
    assert response.body == body


def test_chunked_request(wsgi: Server, request_app: str) -> None:
    if request_app == "django_app":
        pytest.skip("Django reads CONTENT_LENGTH bytes only: a chunked body reaches it empty, under any server")
    pieces = [b"x" * 1000, b"hello", b"y" * 70000]
    chunked = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    response = wsgi.exchange(request("/echo", "POST", ("Host: test", "Transfer-Encoding: chunked"), chunked))
    assert response.status == 200 and response.body == b"".join(pieces)


def test_large_response(wsgi: Server) -> None:
    response = wsgi.exchange(request(f"/large?n={8 * MIB}"), timeout=20)
    assert response.status == 200 and len(response.body) == 8 * MIB
    assert response.body[:65536] == b"B" * 65536 and response.body[-1:] == bytes([65 + 128 % 26])


def _produced(record: Path) -> int:
    lines = record.read_text().split() if record.exists() else []
    return sum(1 for line in lines if line.isdigit())


def test_large_iterable_waits_for_the_client_and_close_runs_on_disconnect(wsgi: Server, tmp_path: Path) -> None:
    record = tmp_path / "record"
    total = 4096  # 256 MiB in 64 KiB blocks, never read by the client
    with wsgi.connect() as conn:
        conn.send(request(f"/large?n={total * 65536}&record={quote(str(record))}"))
        wait_for(lambda: _produced(record) > 0, 10, "the app to produce its first block")
        # The thread waits for the loop to send each block: production stalls at what the socket buffers hold.
        seen = [-1]

        def stalled() -> bool:
            before, seen[0] = seen[0], _produced(record)
            time.sleep(0.3)
            return before == seen[0] == _produced(record)

        wait_for(stalled, 20, "the app's production to stall while the client does not read")
        assert seen[0] < total // 4, f"{seen[0]} of {total} blocks produced for a client that read nothing"
    # The client left: the thread stops at its next block and close() runs.
    wait_for(lambda: "closed" in record.read_text(), 10, "close() after the client disconnected")
    assert _produced(record) < total


def test_exception_answers_500_and_close_runs(wsgi: Server, tmp_path: Path) -> None:
    record = tmp_path / "record"
    response = wsgi.exchange(request(f"/boom?record={quote(str(record))}"))
    assert response.status == 500
    wait_for(lambda: record.exists() and "closed" in record.read_text(), 5, "close() after the exception")


def test_keep_alive(wsgi: Server) -> None:
    with wsgi.connect() as conn:
        conn.send(request("/"))
        assert conn.read_response().body == b"hello"
        conn.send(request("/echo", "POST", body=b"second"))
        assert conn.read_response().body == b"second"
        conn.send(request("/"))
        assert conn.read_response().body == b"hello"
        assert not conn.closed_within(0.2)


def test_environ(wsgi: Server) -> None:
    headers = ("Host: example.test:8443", "X-Forwarded-For: 203.0.113.7", "X-Multi: a", "X-Multi: b", "X_Sneaky: 1")
    response = wsgi.exchange(request("/environ?q=1", headers=headers))
    environ = json.loads(response.body)
    assert environ["REMOTE_ADDR"] == "203.0.113.7"  # through the trusted proxy headers (127.0.0.1 is trusted)
    assert environ["HTTP_X_MULTI"] == "a,b"
    assert "HTTP_X_SNEAKY" not in environ
    assert (environ["PATH_INFO"], environ["QUERY_STRING"], environ["SCRIPT_NAME"]) == ("/environ", "q=1", "")
    assert environ["HTTP_HOST"] == "example.test:8443"
    assert environ["wsgi.multithread"] is True and environ["wsgi.url_scheme"] == "http"


@pytest.mark.skipif(TARGET == "gunicorn", reason="Gunicorn's root_path is its own setting, not a serve flag")
def test_root_path_is_script_name(serve: Serve, request_app: str) -> None:
    server = serve(*FLAGS, "--root-path", "/mount", app=request_app).wait_ready()
    environ = json.loads(server.exchange(request("/environ")).body)
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/mount", "/environ")


@pytest.fixture
def request_app(wsgi: Server) -> str:
    return next(app for app in APPS if f"apps:{app}" in " ".join(wsgi.argv))


@pytest.mark.skipif(TARGET != "deploykit", reason="deploykit's own shutdown bound (--timeout-graceful-shutdown)")
def test_a_stuck_request_does_not_hold_the_process_past_the_graceful_timeout(own_server: OwnServer) -> None:
    # The app sleeps 60 s in its thread; SIGTERM with a 1 s grace: the process exits in bounded
    # time (a ThreadPoolExecutor's thread would be joined at exit: 60 s).
    with own_server("--interface", "wsgi", "--timeout-graceful-shutdown", "1", app="ambiguous") as server:
        with server.connect() as conn:
            conn.send(request("/?sleep=60"))
            time.sleep(0.5)  # the request is in the app's thread
            started = time.monotonic()
            server.signal(signal.SIGTERM)
            server.proc.wait(30)
            assert time.monotonic() - started < 15
        assert server.proc.returncode == 0
