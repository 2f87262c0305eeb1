"""`deploykit serve` as a drop-in for uvicorn: every flag of the installed uvicorn's
--help is accepted with the same arity (and its choices), except a commented few;
and real-process tests of the flags that closed the last gaps (issue 17 item 3):
--version, --ws websockets-sansio, --ws-per-message-deflate BOOL, --reload with
--workers, --reset-contextvars, --h11-max-incomplete-event-size."""

from __future__ import annotations

import base64
import functools
import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from deploykit.errors import DeployKitError
from deploykit.server.command import flag_options, flags_for, options, parser
from deploykit.server.options import validate
from deploykit.server.protocols import ws_engines
from deploykit.version import DISTRIBUTION
from tests.polling import SERVER_START_TIMEOUT, wait_for
from tests.serve_options.test_options import Proc, serve  # noqa: F401  # serve is a fixture

PROBE = "tests.serve_options.apps:context_probe"

#: uvicorn flags `deploykit serve` deliberately does not take as uvicorn does, each with why.
#: Values are the uvicorn choices it refuses, or None when the flag itself is absent.
DIFFERENT: dict[str, set[str] | None] = {
    # uvicorn's own experimental engines (its zuvloop/zttp packages); deploykit has its own
    # event-loop choice (uvloop or asyncio) and parsers (httptools or h11).
    "--loop": {"zuvloop"},
    "--http": {"zttp"},
    # HTTP/2 needs uvicorn's zttp parser; deploykit serves HTTP/1.1 behind nginx, which speaks h2 to clients.
    "--http2": None,
}

_OPTION = re.compile(r"^  (--[a-z0-9-]+)(?: / (--[a-z0-9-]+))?(?: (\[[^\]]+\]|[A-Z]+))?(?:\s{2,}|$)")
_SAMPLES = {"INTEGER": "2", "FLOAT": "2.5", "BOOLEAN": "false", "TEXT": "x", "PATH": "x"}


@functools.cache
def uvicorn_flags() -> dict[str, str | None]:
    """flag -> its metavar (INTEGER, [a|b], ...) or None when it takes no value, from uvicorn --help."""
    uvicorn = shutil.which("uvicorn", path=os.path.dirname(sys.executable))
    if uvicorn is None:
        pytest.fail("uvicorn is not installed: it is in the [dev] extra")
    text = subprocess.run([uvicorn, "--help"], capture_output=True, text=True, check=True).stdout
    found: dict[str, str | None] = {}
    for line in text.splitlines():
        if match := _OPTION.match(line):
            flag, negative, metavar = match.groups()
            found[flag] = metavar
            if negative:
                found[negative] = None
    return found


def test_the_help_is_read() -> None:
    # Guards the parser of uvicorn's help against a format change that would make the parity test empty.
    flags = uvicorn_flags()
    assert len(flags) > 50
    assert flags["--port"] == "INTEGER" and flags["--reload"] is None and flags["--no-access-log"] is None
    assert flags["--ws"] == "[auto|websockets|websockets-sansio|wsproto]"


@pytest.mark.parametrize("flag", sorted(uvicorn_flags()))
def test_serve_takes_each_uvicorn_flag_with_the_same_arity(flag: str) -> None:
    metavar = uvicorn_flags()[flag]
    different = DIFFERENT.get(flag, set())
    if flag in DIFFERENT and different is None:  # really absent: when it lands, DIFFERENT must shrink
        with pytest.raises(SystemExit):
            parser().parse_args([flag, "app:app"])
        return
    if flag in ("--help", "--version"):  # print and exit: same meaning; test_version runs --version
        assert any(flag in action.option_strings for action in parser()._actions)  # noqa: SLF001
        return
    if metavar is None:  # takes no value: the next argument stays the APP
        assert parser().parse_args([flag, "app:app"]).app == "app:app"
        return
    if metavar.startswith("["):
        samples = [c for c in metavar[1:-1].split("|") if c not in (different or set())]
    else:
        samples = [_SAMPLES[metavar]]
    for sample in samples:
        args = parser().parse_args([flag, sample, "app:app"])  # takes a value: APP comes after it
        assert args.app == "app:app"
        if metavar.startswith("[") or metavar == "BOOLEAN":
            validate(options(args), "command line")  # and the settings model takes the value too
    for refused in different or ():
        with pytest.raises(SystemExit):
            parser().parse_args([flag, refused, "app:app"])


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "deploykit", "serve", "--version"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"deploykit {importlib.metadata.version(DISTRIBUTION)} (")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--ws-per-message-deflate", "false"], False),
        (["--ws-per-message-deflate", "OFF"], False),
        (["--ws-per-message-deflate", "0"], False),
        (["--ws-per-message-deflate", "yes"], True),
        (["--ws-per-message-deflate"], True),  # the bare flag, as before
        (["--no-ws-per-message-deflate"], False),  # as before
    ],
)
def test_ws_per_message_deflate_takes_a_boolean(argv: list[str], expected: bool) -> None:
    assert flag_options(argv)["ws_per_message_deflate"] is expected


def test_ws_per_message_deflate_refuses_a_non_boolean(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["app:app", "--ws-per-message-deflate", "maybe"])
    assert "--ws-per-message-deflate: 'maybe' is not a boolean" in capsys.readouterr().err


@pytest.mark.parametrize("value", [True, False])
def test_ws_per_message_deflate_renders_as_uvicorn_spells_it(value: bool) -> None:
    argv = flags_for({"ws_per_message_deflate": value})
    assert argv == ["--ws-per-message-deflate", str(value).lower()]
    assert flag_options(argv)["ws_per_message_deflate"] is value


def test_websockets_sansio_is_the_websockets_engine() -> None:
    assert ws_engines.resolve("websockets-sansio") == "websockets"
    assert validate(flag_options(["--ws", "websockets-sansio"]), "command line").ws == "websockets-sansio"
    with pytest.raises(DeployKitError):
        validate({"ws": "websockets-nope"}, "command line")


def handshake(port: int, deflate: bool) -> tuple[str, str]:
    """A raw WebSocket handshake: (the response head, the first text message)."""
    key = base64.b64encode(os.urandom(16)).decode()
    offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n".encode()
        )
        data = b""

        def whole() -> bool:  # the head and the first (short) frame have arrived
            frames = data.partition(b"\r\n\r\n")[2]
            return len(frames) >= 2 and len(frames) >= 2 + (frames[1] & 0x7F)

        while not whole():
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, frames = data.partition(b"\r\n\r\n")
    compressed = bool(frames[0] & 0x40)
    length = frames[1] & 0x7F
    payload = frames[2 : 2 + length]
    if compressed:
        payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
    return head.decode(), payload.decode()


@pytest.mark.parametrize("deflate", ["true", "false"])
def test_websockets_sansio_and_deflate_value_on_a_real_server(
    serve: Callable[..., Proc],  # noqa: F811
    deflate: str,
) -> None:
    pytest.importorskip("websockets")
    proc = serve("--ws", "websockets-sansio", "--ws-per-message-deflate", deflate, app=PROBE)
    proc.wait_ready()
    head, text = handshake(proc.port, deflate=True)
    assert head.startswith("HTTP/1.1 101 ")
    assert ("permessage-deflate" in head.lower()) is (deflate == "true")
    assert text == "inherited"


def get_twice(port: int) -> list[str]:
    """Two requests on one keep-alive connection: what each saw of the probe."""
    seen = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, sock.makefile("rb") as reader:
        for _ in range(2):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            seen.append(json.loads(reader.read(length))["seen"])
    return seen


def test_reset_contextvars(serve: Callable[..., Proc]) -> None:  # noqa: F811
    # Without the flag a request runs in a copy of the server's context: it sees a value set at import.
    plain = serve(app=PROBE)
    plain.wait_ready()
    assert get_twice(plain.port) == ["inherited", "inherited"]
    # With it, every request (and WebSocket session) starts from an empty context; nothing leaks between them.
    fresh = serve("--reset-contextvars", app=PROBE)
    fresh.wait_ready()
    assert get_twice(fresh.port) == ["fresh", "fresh"]
    if ws_engines.resolve("auto") is not None:
        assert handshake(fresh.port, deflate=False)[1] == "fresh"


@pytest.mark.parametrize(("workers", "warned"), [("2", True), ("1", False)])
def test_reload_with_workers_warns(
    serve: Callable[..., Proc],  # noqa: F811
    tmp_path: Path,
    workers: str,
    warned: bool,
) -> None:
    proc = serve("--reload", "--reload-dir", str(tmp_path), "--workers", workers)
    proc.wait_ready()
    wait_for(
        lambda: "reloading on changes" in proc.log(),
        SERVER_START_TIMEOUT,
        lambda: "the reloader to start: " + proc.log(),
    )
    assert ("--workers 2 is ignored with --reload" in proc.log()) is warned
    assert proc.stop() == 0


def incomplete_head_answer(port: int, size: int) -> bytes:
    """Send a request head of SIZE bytes that never ends; what the server says within 1 s (b"": nothing yet)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size)
        sock.settimeout(1.0)
        try:
            return sock.recv(65536)
        except TimeoutError:
            return b""


@pytest.mark.parametrize(("flags", "answered"), [((), True), (("--h11-max-incomplete-event-size", "65536"), False)])
def test_h11_max_incomplete_event_size_reaches_the_h11_parser(
    serve: Callable[..., Proc],  # noqa: F811
    flags: tuple[str, ...],
    answered: bool,
) -> None:
    # The server's own limits allow a 2,000-byte head (checked once the head is complete). h11
    # buffers an unfinished head up to max(that, --h11-max-incomplete-event-size): 16 KiB by
    # default, so 20,000 unfinished bytes are refused at once (431); with 64 KiB h11 keeps waiting.
    proc = serve("--http", "h11", "--max-request-line", "1000", "--max-header-size", "1000", *flags)
    proc.wait_ready()
    answer = incomplete_head_answer(proc.port, 20_000)
    assert answer.startswith(b"HTTP/1.1 431 ") is answered, answer[:80]
    if not answered:
        assert answer == b""
