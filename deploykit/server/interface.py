"""Which interface an app speaks (``--interface auto|asgi3|asgi2|wsgi``), and
the adapter that makes every kind an ASGI3 callable for the server.

``auto`` decides once, at start-up, from the callable itself:

- a coroutine function (or an object whose ``__call__`` is one) is ASGI3;
- a class is instantiated per request: ``__init__(scope)`` is ASGI2 (the
  instance is then awaited with ``(receive, send)``), ``__init__(environ,
  start_response)`` is WSGI (PEP 3333 allows a class whose instances are the
  response iterable);
- any other callable is classified by how many positional arguments it takes:
  1 is ASGI2, 2 is WSGI, 3 is ASGI3 (a plain function returning an awaitable).

A callable that would accept more than one of those counts (``*args``,
defaults) or whose signature cannot be read is refused at start-up with an
error that names ``--interface``: a wrong guess would answer every request
with 500 instead.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from deploykit.errors import DeployKitError

if TYPE_CHECKING:
    from deploykit.server.options import ServerOptions

Interface = Literal["auto", "asgi3", "asgi2", "wsgi"]
INTERFACES: tuple[Interface, ...] = ("auto", "asgi3", "asgi2", "wsgi")
#: positional-argument count -> the interface that calls an app with that many
_BY_ARITY = {1: "asgi2", 2: "wsgi", 3: "asgi3"}


def detect(app: Any) -> str:
    """'asgi3', 'asgi2' or 'wsgi' for APP; a DeployKitError when it cannot be told."""
    candidates = _candidates(app)
    if len(candidates) == 1:
        return candidates[0]
    name = _name(app)
    if not candidates:
        raise DeployKitError(
            f"{name} is not an ASGI or WSGI app: it cannot be called with (scope, receive, send), "
            "(environ, start_response) or (scope)",
            hint="Point deploykit serve at the app object itself (module:attribute).",
        )
    raise DeployKitError(
        f"cannot tell whether {name} is {' or '.join(c.upper() for c in candidates)}: "
        "its signature accepts the arguments of each",
        hint="Say which with --interface asgi3, asgi2 or wsgi (app.interface in deploykit.toml).",
    )


def _candidates(app: Any) -> list[str]:
    if inspect.isclass(app):
        if inspect.iscoroutinefunction(_call_method(app)) and _accepts(app, 1):
            return ["asgi2"]  # instance awaited... by calling it with (receive, send)
        if hasattr(app, "__await__") and _accepts(app, 1):
            return ["asgi2"]
        return [kind for count, kind in _BY_ARITY.items() if count != 3 and _accepts(app, count)]
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(_call_method(app)):
        return ["asgi3"]
    return [kind for count, kind in _BY_ARITY.items() if _accepts(app, count)]


def _call_method(app: Any) -> Any:
    """What calling APP runs: its (class's) own __call__ as defined, or None."""
    return inspect.getattr_static(app, "__call__", None)


def _accepts(app: Any, count: int) -> bool:
    """Whether APP can be called with COUNT positional arguments (False when its signature is unreadable)."""
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def _name(app: Any) -> str:
    return repr(getattr(app, "__qualname__", None) or type(app).__qualname__)


def resolve(app: Any, interface: str) -> str:
    """The interface to serve APP with: INTERFACE, or the detected one for 'auto'. An
    explicit choice that contradicts what the app's signature certainly is (an
    ``async def`` app given --interface wsgi) is refused rather than failing on every
    request; where the signature is ambiguous or unreadable the choice is trusted."""
    if interface == "auto":
        return detect(app)
    if interface not in INTERFACES:
        raise DeployKitError(f"--interface {interface!r}: expected one of {', '.join(INTERFACES)}")
    candidates = _candidates(app)
    if len(candidates) == 1 and candidates[0] != interface:
        raise DeployKitError(
            f"--interface {interface}: {_name(app)} is an {candidates[0].upper()} app (from its signature)",
            hint=f"Use --interface {candidates[0]} or auto.",
        )
    return interface


def adapt(app: Any, interface: str, settings: ServerOptions) -> Callable[..., Any]:
    """APP as the ASGI3 callable the server runs, following INTERFACE ('auto': detected now)."""
    kind = resolve(app, interface)
    if kind == "asgi3":
        return app  # type: ignore[no-any-return]
    if kind == "asgi2":
        return ASGI2App(app)
    from deploykit.server.wsgi import WSGIApp  # only WSGI servers pay for it

    return WSGIApp(app, threads=wsgi_threads(settings), multiprocess=settings.workers > 1)


def wsgi_threads(settings: ServerOptions) -> int:
    """--wsgi-threads, or its default: 4 threads per CPU this process may run on, shared among
    the workers, at least 2. Gunicorn's guidance for its gthread worker is 2-4 x cores in
    all (workers x threads); WSGI apps mostly wait on a database or an upstream, so the upper
    end, and the workers share it so that --workers does not multiply the threads."""
    if settings.wsgi_threads is not None:
        return settings.wsgi_threads
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(2, 4 * cpus // settings.workers)


class ASGI2App:
    """An ASGI2 ("double callable") app as ASGI3: ``app(scope)`` makes the instance that
    handles the connection, which is then awaited with ``(receive, send)``."""

    __slots__ = ("app",)

    def __init__(self, app: Callable[[dict[str, Any]], Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        instance = self.app(scope)
        await instance(receive, send)
