"""--interface: detection of ASGI3 / ASGI2 / WSGI apps at start-up, explicit choices,
and the ASGI2 adapter."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import pytest

from deploykit.errors import DeployKitError
from deploykit.server.interface import ASGI2App, adapt, detect, resolve
from deploykit.server.options import validate
from deploykit.server.wsgi import WSGIApp


async def asgi3_function(scope: Any, receive: Any, send: Any) -> None: ...


class ASGI3Instance:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...


def asgi3_sync_wrapper(scope: Any, receive: Any, send: Any) -> Any:  # returns a coroutine
    return asgi3_function(scope, receive, send)


class ASGI2Class:
    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        await send({"type": "seen", "scope": self.scope})


def asgi2_function(scope: Any) -> Callable[..., Any]:
    async def instance(receive: Any, send: Any) -> None: ...

    return instance


def wsgi_function(environ: Any, start_response: Any) -> list[bytes]:
    return []


class WSGIInstance:  # Flask and Django's WSGIHandler look like this
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


class WSGIClass:  # PEP 3333: a class whose instances are the response iterable
    def __init__(self, environ: Any, start_response: Any) -> None: ...

    def __iter__(self) -> Any:
        return iter(())


def wsgi_with_optional(environ: Any, start_response: Any, *, debug: bool = False) -> list[bytes]:
    return []


def ambiguous_args(*args: Any) -> None: ...


def ambiguous_default(a: Any, b: Any, c: Any = None) -> None: ...


def no_arguments() -> None: ...


@pytest.mark.parametrize(
    ("app", "kind"),
    [
        (asgi3_function, "asgi3"),
        (ASGI3Instance(), "asgi3"),
        (functools.partial(asgi3_function), "asgi3"),
        (asgi3_sync_wrapper, "asgi3"),
        (ASGI2Class, "asgi2"),
        (asgi2_function, "asgi2"),
        (wsgi_function, "wsgi"),
        (WSGIInstance(), "wsgi"),
        (WSGIClass, "wsgi"),
        (wsgi_with_optional, "wsgi"),
        (functools.partial(wsgi_function), "wsgi"),
    ],
)
def test_detect(app: Any, kind: str) -> None:
    assert detect(app) == kind


@pytest.mark.parametrize(
    ("app", "message"),
    [
        (ambiguous_args, "cannot tell whether 'ambiguous_args' is ASGI2 or WSGI or ASGI3"),
        (ambiguous_default, "cannot tell whether 'ambiguous_default' is WSGI or ASGI3"),
        (no_arguments, "'no_arguments' is not an ASGI or WSGI app"),
        (ASGI3Instance, "'ASGI3Instance' is not an ASGI or WSGI app"),  # the class, not an instance
    ],
)
def test_undetectable_apps_fail_at_start_up(app: Any, message: str) -> None:
    with pytest.raises(DeployKitError) as info:
        detect(app)
    assert message in str(info.value)


def test_flask_is_wsgi() -> None:  # Django's handler needs settings: tests/server/test_wsgi.py starts one
    flask = pytest.importorskip("flask")
    assert detect(flask.Flask("x")) == "wsgi"


def test_explicit_choice_is_trusted_where_the_signature_is_ambiguous() -> None:
    assert resolve(ambiguous_args, "wsgi") == "wsgi"
    assert resolve(ambiguous_args, "asgi2") == "asgi2"


@pytest.mark.parametrize(
    ("app", "interface", "named"),
    [(asgi3_function, "wsgi", "ASGI3"), (wsgi_function, "asgi3", "WSGI"), (ASGI2Class, "asgi3", "ASGI2")],
)
def test_explicit_choice_contradicting_the_app_is_refused(app: Any, interface: str, named: str) -> None:
    with pytest.raises(DeployKitError) as info:
        resolve(app, interface)
    assert f"--interface {interface}:" in str(info.value) and f"an {named} app" in str(info.value)


def test_adapt() -> None:
    settings = validate({"workers": 3, "wsgi_threads": 5})
    assert adapt(asgi3_function, "auto", settings) is asgi3_function
    assert isinstance(adapt(ASGI2Class, "auto", settings), ASGI2App)
    wsgi = adapt(wsgi_function, "auto", settings)
    assert isinstance(wsgi, WSGIApp) and wsgi.threads == 5 and wsgi.multiprocess is True


def test_wsgi_threads_default_shares_cpus_among_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(4)))
    threads = {w: adapt(wsgi_function, "wsgi", validate({"workers": w})).threads for w in (1, 2, 16)}  # type: ignore[attr-defined]
    assert threads == {1: 16, 2: 8, 16: 2}


def test_asgi2_adapter_calls_the_instance() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(ASGI2App(ASGI2Class)({"type": "http"}, None, send))
    assert sent == [{"type": "seen", "scope": {"type": "http"}}]
