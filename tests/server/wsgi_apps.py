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
- ``/environ``: the environ's plain values as JSON
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
        if self.record:
            with open(self.record, "a") as fh:
                fh.write(text)


def _environ_json(environ: dict[str, Any]) -> bytes:
    plain = {k: v for k, v in environ.items() if isinstance(v, str | bool | int | tuple)}
    return json.dumps(plain, sort_keys=True).encode()


# -- Flask ----------------------------------------------------------------------------------
def _flask() -> Any:
    from flask import Flask, Response, request

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
    from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
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

    from django.views.decorators.csrf import csrf_exempt

    return [
        path("", hello),
        path("echo", csrf_exempt(echo)),
        path("large", large),
        path("boom", boom),
        path("environ", environ),
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
