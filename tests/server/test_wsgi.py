"""WSGI apps under `deploykit serve` (issue 17 item 2): a Flask app and a Django WSGI app
through the raw-socket suite's cases, on both parsers (and under SERVE_TEST_TARGET=gunicorn
in deploykit's worker class, which detects the interface the same way). No --interface flag
is given: auto must detect both apps; uvicorn (SERVE_TEST_TARGET=uvicorn) is told."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.polling import wait_for
from tests.server.harness import TARGET, OwnServer, RawConn, Serve, Server, request

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


# -- a client that leaves while the app streams without end -------------------------------------------
# uvicorn's WSGI (a2wsgi, or its own middleware) never learns that the client left: the endless iterable
# is iterated for ever (and --wsgi-threads is deploykit's flag).
ONE_THREAD = ("--wsgi-threads", "1")
BODY = 16 * MIB  # declared; far more than the adapter's queue and the server's buffer hold unread


@pytest.fixture(params=APPS)
def one_thread(request: pytest.FixtureRequest, serve: Serve) -> Server:
    if TARGET == "uvicorn":
        pytest.skip("uvicorn's WSGI iterates an endless response for a client that left, for ever")
    return serve(*ONE_THREAD, app=request.param).wait_ready()


def _send_until_stalled(conn: RawConn, size: int, record: Path) -> int:
    """Send up to SIZE body bytes; stop early once the app streams and the server has stopped reading
    (a send that waits 0.3 s: the socket buffers are full). Returns the bytes sent."""
    block = b"u" * 65536
    conn.sock.settimeout(0.3)
    sent = 0
    deadline = time.monotonic() + 20
    while sent < size:
        try:
            sent += conn.sock.send(block[: size - sent])
        except TimeoutError:
            if _produced(record) > 0:
                break
            assert time.monotonic() < deadline, f"the app neither read on nor streamed after {sent} bytes"
    return sent


@pytest.mark.parametrize(
    ("declared", "read"),
    [(BODY, 0), (BODY, BODY // 2), (1000, 0)],
    ids=["large body unread", "large body half read", "small body unread"],
)
def test_a_client_that_leaves_an_endless_response_is_noticed(
    one_thread: Server, tmp_path: Path, declared: int, read: int
) -> None:
    record = tmp_path / "record"
    conn = one_thread.connect()
    with conn:
        target = f"/endless?read={read}&record={quote(str(record))}"
        conn.send(request(target, "POST", ("Host: test", f"Content-Length: {declared}")))
        sent = _send_until_stalled(conn, declared, record)
        assert sent >= read
        wait_for(lambda: _produced(record) > 0, 10, "the app to stream")
    # The client has gone, having read nothing: the iterable stops and is closed, the one thread is free.
    wait_for(lambda: "closed" in record.read_text(), 10, lambda: f"close() after the client left: {record.read_text()}")
    produced = _produced(record)
    response = one_thread.exchange(request("/"), timeout=10)
    assert (response.status, response.body) == (200, b"hello")
    assert _produced(record) == produced  # not a block more once closed


# -- wsgi.file_wrapper: Flask's send_file, Django's FileResponse --------------------------------------
@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "five.bin"
    path.write_bytes(os.urandom(5 * MIB))
    return path


def _file_target(path: Path, record: Path, *extra: str) -> str:
    return "&".join([f"/file?path={quote(str(path))}&record={quote(str(record))}", *extra])


def _reads(record: Path) -> list[int]:
    return [int(line.split()[1]) for line in record.read_text().splitlines() if line.startswith("read ")]


def _used_our_wrapper(record: Path) -> bool:
    return "wrapper deploykit.server.wsgi" in record.read_text()


def test_file_wrapper_sends_the_file(wsgi: Server, big_file: Path, tmp_path: Path) -> None:
    record = tmp_path / "record"
    response = wsgi.exchange(request(_file_target(big_file, record)), timeout=20)
    assert response.status == 200 and response.header("content-length") == str(5 * MIB)
    assert response.body == big_file.read_bytes()
    wait_for(lambda: "closed" in record.read_text(), 5, "the file's close()")
    if TARGET != "uvicorn":  # uvicorn has no wsgi.file_wrapper: the frameworks iterate their own
        assert _used_our_wrapper(record)
        # Read in the adapter's blocks (256 KiB), not the frameworks' 4-8 KiB ones.
        assert max(_reads(record)) == 256 * 1024 and sum(_reads(record)) == 5 * MIB


def test_file_wrapper_head_sends_no_body_and_closes_the_file(wsgi: Server, big_file: Path, tmp_path: Path) -> None:
    record = tmp_path / "record"
    with wsgi.connect() as conn:
        conn.send(request(_file_target(big_file, record), "HEAD"))
        response = conn.read_response(head_request=True)
        assert response.status == 200 and response.body == b""
        assert response.header("content-length") == str(5 * MIB)
        conn.send(request("/"))  # not a byte of the file after the head: the next response parses
        assert conn.read_response().body == b"hello"
    wait_for(lambda: "closed" in record.read_text(), 5, "the file's close()")
    if TARGET != "uvicorn":
        assert _used_our_wrapper(record) and _reads(record) == []  # the file was not even read


@pytest.mark.skipif(
    TARGET == "uvicorn", reason="uvicorn's WSGI sends the longer body, fails it in the server and drops the connection"
)
def test_file_wrapper_sends_no_more_than_the_declared_length(wsgi: Server, big_file: Path, tmp_path: Path) -> None:
    record = tmp_path / "record"
    length = 300_000  # inside the second 256 KiB block
    with wsgi.connect() as conn:
        conn.send(request(_file_target(big_file, record, f"length={length}")))
        response = conn.read_response(timeout=10)
        assert response.status == 200 and response.header("content-length") == str(length)
        assert response.body == big_file.read_bytes()[:length]
        assert conn.read_quiet(0.3) == b""  # not a byte more
    wait_for(lambda: "closed" in record.read_text(), 5, "the file's close()")
    if TARGET != "uvicorn":
        assert sum(_reads(record)) == length  # nor read past it


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
