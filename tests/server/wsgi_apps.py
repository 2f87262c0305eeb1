"""A Flask app and a Django WSGI app with the same routes, for tests/server/test_wsgi.py
(loaded through ``tests.server.apps:flask_app`` / ``:django_app``, so the suite's
harness starts them as it starts the ASGI apps, under every SERVE_TEST_TARGET).

Routes (query strings as noted):
- ``/``: 200 "hello" (a one-element body: Content-Length)
- ``/echo``: the request body, streamed back in the blocks wsgi.input gives
- ``/large?n=BYTES&record=FILE``: N bytes in 64 KiB blocks; FILE gets one line per block
  produced, then "closed" when the iterable's close() runs
- ``/boom?record=FILE``: the body's iterable raises before its first block (500);
  FILE gets "closed" from close()
- ``/endless?read=BYTES&record=FILE`` (POST): reads BYTES of the request body (the rest
  stays unread), then streams 64 KiB blocks without end, recorded as ``/large`` does
- ``/file?path=PATH&record=FILE&length=N``: the file at PATH through Flask's ``send_file``
  or Django's ``FileResponse`` (``wsgi.file_wrapper`` when the server has one); FILE gets
  "wrapper MODULE" (the server's wrapper), "read N" for each read of the file and "closed"
  when it is closed; LENGTH replaces the Content-Length the framework set
- ``/environ``: the environ's plain values as JSON
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

BLOCK = 65536


class Blocks:
    """N bytes in BLOCK-sized pieces, recording each piece and close() in RECORD."""

    def __init__(self, size: int, record: str | None, fail: bool = False) -> None:
        self.left, self.record, self.fail, self.produced = size, record, fail, 0

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self.fail:
            raise RuntimeError("boom in the response iterable")
        if self.left <= 0:
            raise StopIteration
        size = min(BLOCK, self.left)
        self.left -= size
        self.produced += 1
        self._note(f"{self.produced}\n")
        return bytes([65 + self.produced % 26]) * size

    def close(self) -> None:
        self._note("closed\n")

    def _note(self, text: str) -> None:
        _note(self.record, text)


def _note(record: str | None, text: str) -> None:
    if record:
        with open(record, "a") as fh:
            fh.write(text)


ENDLESS = 1 << 62


def _read_body(read: Callable[[int], bytes], size: int) -> None:
    while size > 0 and (chunk := read(min(size, BLOCK))):
        size -= len(chunk)


class RecordedFile(io.FileIO):
    """The file at PATH, noting each read's size and its close() in RECORD."""

    def __init__(self, path: str, record: str | None) -> None:
        super().__init__(path, "r")
        self.record = record

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        _note(self.record, f"read {len(data or b'')}\n")
        return data or b""

    def close(self) -> None:
        if not self.closed:
            _note(self.record, "closed\n")
        super().close()


def _open_recorded(environ: dict[str, Any], path: str, record: str | None) -> RecordedFile:
    wrapper = environ.get("wsgi.file_wrapper")
    _note(record, f"wrapper {getattr(wrapper, '__module__', None)}\n")
    return RecordedFile(path, record)


def _environ_json(environ: dict[str, Any]) -> bytes:
    plain = {k: v for k, v in environ.items() if isinstance(v, str | bool | int | tuple)}
    return json.dumps(plain, sort_keys=True).encode()


# -- Flask ----------------------------------------------------------------------------------
def _flask() -> Any:
    from flask import Flask, Response, request, send_file

    app = Flask("wsgi_suite")

    @app.route("/")
    def hello() -> str:
        return "hello"

    @app.route("/echo", methods=["POST"])
    def echo() -> Response:
        stream = request.stream

        def blocks() -> Iterator[bytes]:
            while chunk := stream.read(BLOCK):
                yield chunk

        return Response(blocks(), mimetype="application/octet-stream")

    @app.route("/large")
    def large() -> Response:
        return Response(Blocks(int(request.args["n"]), request.args.get("record")))

    @app.route("/boom")
    def boom() -> Response:
        return Response(Blocks(1, request.args.get("record"), fail=True))

    @app.route("/environ")
    def environ() -> Response:
        return Response(_environ_json(request.environ), mimetype="application/json")

    @app.route("/endless", methods=["POST"])
    def endless() -> Response:
        _read_body(request.stream.read, int(request.args.get("read", "0")))
        return Response(Blocks(ENDLESS, request.args.get("record")))

    @app.route("/file", methods=["GET", "HEAD"])
    def file() -> Response:
        recorded = _open_recorded(request.environ, request.args["path"], request.args.get("record"))
        response = send_file(recorded, mimetype="application/octet-stream")
        # Werkzeug sets no Content-Length for a file object (it does for a path), Django does.
        response.headers["Content-Length"] = request.args.get("length", str(os.path.getsize(recorded.name)))
        return response

    return app


# -- Django ---------------------------------------------------------------------------------
def _django() -> Any:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="wsgi-suite-only",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=["django.middleware.common.CommonMiddleware"],  # as a new project has: Content-Length
            INSTALLED_APPS=[],
            DATABASES={},
            LOGGING_CONFIG=None,
        )
        django.setup()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def _django_urls() -> list[Any]:
    from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
    from django.urls import path

    def hello(request: HttpRequest) -> HttpResponse:
        return HttpResponse(b"hello")

    def echo(request: HttpRequest) -> StreamingHttpResponse:
        return StreamingHttpResponse(iter(lambda: request.read(BLOCK), b""))

    def large(request: HttpRequest) -> StreamingHttpResponse:
        return StreamingHttpResponse(Blocks(int(request.GET["n"]), request.GET.get("record")))

    def boom(request: HttpRequest) -> StreamingHttpResponse:
        return StreamingHttpResponse(Blocks(1, request.GET.get("record"), fail=True))

    def environ(request: HttpRequest) -> HttpResponse:
        return HttpResponse(_environ_json(request.META), content_type="application/json")

    def endless(request: HttpRequest) -> StreamingHttpResponse:
        _read_body(request.read, int(request.GET.get("read", "0")))
        return StreamingHttpResponse(Blocks(ENDLESS, request.GET.get("record")))

    def file(request: HttpRequest) -> FileResponse:
        recorded = _open_recorded(request.META, request.GET["path"], request.GET.get("record"))
        response = FileResponse(recorded, content_type="application/octet-stream")
        if "length" in request.GET:
            response["Content-Length"] = request.GET["length"]
        return response

    from django.views.decorators.csrf import csrf_exempt

    return [
        path("", hello),
        path("echo", csrf_exempt(echo)),
        path("large", large),
        path("boom", boom),
        path("environ", environ),
        path("endless", csrf_exempt(endless)),
        path("file", file),
    ]


def __getattr__(name: str) -> Any:
    # Built on first use: the ASGI suite's servers import tests.server.apps without Flask or Django.
    if name == "flask_app":
        value = _flask()
    elif name == "django_app":
        value = _django()
    elif name == "urlpatterns":  # Django's ROOT_URLCONF is this module
        value = _django_urls()
    else:
        raise AttributeError(name)
    globals()[name] = value
    return value


def ambiguous(*args: Any) -> list[bytes]:
    """A WSGI app whose signature (*args) auto cannot classify: only an explicit --interface wsgi
    serves it, so a 200 proves the setting reached the process. Answers the name of the thread it
    ran in, after ?sleep=S seconds."""
    import threading
    import time
    from urllib.parse import parse_qs

    environ, start_response = args
    time.sleep(float(parse_qs(environ["QUERY_STRING"]).get("sleep", ["0"])[0]))
    body = threading.current_thread().name.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
