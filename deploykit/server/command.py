"""`deploykit serve`: uvicorn's flags, validated against the shared ServerSettings model.

Parsed with argparse rather than typer: `deploykit serve` is started on every
deploy and restart, and skipping typer, rich and the toolkit's imports makes
the server answer its first request sooner (see bench/README.md). Flags that
are not given are left out, so defaults come from the model alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from deploykit.errors import DeployKitError, UsageError
from deploykit.server.interface import INTERFACES
from deploykit.server.options_spec import SPEC

_BOOL = argparse.BooleanOptionalAction
#: What an optional number's flag takes to mean None (e.g. `--ws-ping-interval none`: no pings).
NONE = "none"


def _float_or_none(raw: str) -> float | None:
    return None if raw.lower() == NONE else float(raw)


#: The words a BOOL flag value may be (uvicorn's, from click), case-insensitive.
TRUE_WORDS = ("1", "true", "t", "yes", "y", "on")
FALSE_WORDS = ("0", "false", "f", "no", "n", "off")


def _bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"{raw!r} is not a boolean: use true or false (or 1/0, yes/no, on/off)")


class _Version(argparse.Action):
    """`--version`: print deploykit's version (from the package metadata, read only
    when asked, so starting the server does not pay for importlib.metadata) and exit."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        import platform

        from deploykit.version import version  # not the package root, which leads to render and check

        python = f"{platform.python_implementation()} {platform.python_version()}"
        print(f"deploykit {version()} ({python}, {platform.system()})")
        parser.exit()


#: A flag that takes an optional true/false word, as uvicorn's does (`--ws-per-message-deflate false`);
#: a bare flag still means true, and the --no- form false. Other bool fields get BooleanOptionalAction.
_BOOL_VALUE: dict[str, Any] = {"type": _bool, "nargs": "?", "const": True, "metavar": "BOOL"}
#: The argparse settings the option table decides (see arguments); FLAGS must not repeat them.
_FROM_SPEC = ("choices", "type", "default", "action")
#: FLAGS' key for the default --help shows where the effective default is not the model's.
DEFAULT_TEXT = "default_text"

# (flag, what the option table cannot know) — every flag maps to the ServerSettings field of the same
# name (or dest). Choices, value types, bool actions and the "[default]" ending each help come from the
# table generated from the model (options_spec.SPEC), never from here: see arguments().
FLAGS: list[tuple[str, dict[str, Any]]] = [
    ("--host", {"help": "bind address"}),
    ("--port", {"help": "bind port"}),
    ("--uds", {"help": "bind to this unix socket path"}),
    ("--fd", {"help": "serve on an inherited socket fd (3 from systemd)"}),
    ("--backlog", {"help": "listen backlog"}),
    ("--loop", {"help": "event loop"}),
    ("--http", {"help": "HTTP parser; auto is httptools when installed, else h11"}),
    ("--ws", {"help": "WebSocket implementation; websockets-sansio is websockets"}),
    ("--ws-max-size", {"help": "close (1009) on a larger WebSocket message, in bytes"}),
    ("--ws-max-queue", {"help": "received WebSocket messages held for the app before reading stops"}),
    ("--ws-ping-interval", {"help": "seconds between keepalive pings, or none"}),
    ("--ws-ping-timeout", {"help": "close (1011) when a ping is not answered within N s, or none"}),
    ("--ws-per-message-deflate", {**_BOOL_VALUE, "help": "permessage-deflate"}),
    (
        "--wsgi-threads",
        # The model's None means "computed at start-up" (interface.wsgi_threads).
        {"help": "threads per process for a WSGI app", DEFAULT_TEXT: "4 x CPUs / workers, at least 2"},
    ),
    ("--reset-contextvars", {"help": "run each request in a fresh contextvars.Context"}),
    ("--lifespan", {"help": "ASGI lifespan"}),
    ("--env-file", {"help": "load KEY=VALUE lines into the environment first"}),
    ("--workers", {"help": "worker processes"}),  # default: $WEB_CONCURRENCY, else the model's (ENVIRONMENT)
    ("--root-path", {"help": "ASGI root_path when mounted below a prefix"}),
    ("--limit-concurrency", {"help": "answer 503 beyond this many requests in flight"}),
    ("--limit-max-requests", {"help": "a worker exits (and is replaced) after this many requests"}),
    ("--limit-max-requests-jitter", {"help": "add up to this many to each worker's limit"}),
    ("--timeout-worker-healthcheck", {"help": "replace a worker whose event loop is stuck this long"}),
    ("--timeout-keep-alive", {"help": "close idle keep-alive connections after N s"}),
    ("--timeout-header-read", {"help": "total seconds to receive a request head"}),
    ("--timeout-graceful-shutdown", {"help": "seconds to drain on stop"}),
    ("--proxy-headers", {"help": "trust X-Forwarded-*/Forwarded from allowed IPs"}),
    # default: $FORWARDED_ALLOW_IPS, else the model's (ENVIRONMENT)
    ("--forwarded-allow-ips", {"help": "comma-separated IPs, CIDRs, * or unix:"}),
    ("--server-header", {"help": "send 'server: deploykit'"}),
    ("--date-header", {"help": "send a Date header"}),
    ("--header", {"action": "append", "metavar": "NAME:VALUE", "help": "default response header (repeat)"}),
    ("--max-header-size", {"help": "header section limit in bytes, else 431"}),
    ("--max-request-line", {"help": "request-target limit in bytes, else 414"}),
    ("--h11-max-incomplete-event-size", {"help": "h11 buffer limit in bytes"}),
    ("--ssl-keyfile", {"help": "TLS key file"}),
    ("--ssl-certfile", {"help": "TLS certificate file"}),
    ("--ssl-keyfile-password", {"help": "password of the key file"}),
    ("--ssl-version", {"help": "ssl protocol constant"}),
    ("--ssl-cert-reqs", {"help": "client certs: 0 none, 1 optional, 2 required"}),
    ("--ssl-ca-certs", {"help": "CA file for client certificates"}),
    ("--ssl-ciphers", {"help": "cipher string"}),
    ("--log-level", {"help": "log level"}),
    ("--log-config", {"help": "logging config: .json/.yaml (dictConfig) or .ini (fileConfig)"}),
    ("--access-log", {"help": "one log line per request"}),
    ("--access-log-format", {"help": "text, json, or a template like '{client} {status} {duration_ms}'"}),
    # The model's None means "decide at start-up": colour when stderr is a terminal (logs.configure).
    ("--use-colors", {"help": "colour log output", DEFAULT_TEXT: "when a terminal"}),
    ("--reload", {"help": "restart on code changes (development)"}),
    # The model's () means the current directory (reload.Reloader).
    (
        "--reload-dir",
        {"action": "append", "dest": "reload_dirs", "help": "directory to watch (repeat)", DEFAULT_TEXT: "."},
    ),
    ("--reload-include", {"action": "append", "dest": "reload_includes", "help": "glob to watch (repeat)"}),
    ("--reload-exclude", {"action": "append", "dest": "reload_excludes", "help": "glob to ignore (repeat)"}),
    ("--reload-delay", {"help": "seconds to let changes settle before restarting"}),
]

#: Flags that fall back to an environment variable when not given, as uvicorn (and Gunicorn,
#: for WEB_CONCURRENCY) read them: field -> (variable, parse; None means "unset or unusable").
ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "workers": ("WEB_CONCURRENCY", lambda raw: int(raw) if raw.isdigit() else None),
    "forwarded_allow_ips": ("FORWARDED_ALLOW_IPS", lambda raw: raw if raw.strip() else None),
}


def _dest(flag: str, kwargs: Mapping[str, Any]) -> str:
    """The ServerSettings field a flag sets (``--header`` is collected into ``headers``)."""
    dest = str(kwargs.get("dest", flag[2:].replace("-", "_")))
    return "headers" if dest == "header" else dest


def arguments(spec: Mapping[str, Mapping[str, Any]] = SPEC) -> list[tuple[str, dict[str, Any]]]:
    """FLAGS completed from SPEC into add_argument's keywords: a choice field's choices, an int or
    float field's type (an optional float also takes `none`), a bool field's --x/--no-x action,
    and the help's "[default]" from the model (or the flag's DEFAULT_TEXT, or its ENVIRONMENT)."""
    table = []
    for flag, given in FLAGS:
        name = _dest(flag, given)
        field = spec[name]
        kwargs = {key: value for key, value in given.items() if key != DEFAULT_TEXT}
        hand = [key for key in _FROM_SPEC if key in given and not _allowed(key, given[key], field)]
        if hand:
            raise TypeError(f"FLAGS {flag}: {', '.join(hand)} come from the option table (options_spec.SPEC)")
        kind = field["kind"]
        if kind == "choice":
            kwargs["choices"] = field["choices"]
        elif kind == "int":
            kwargs["type"] = int
        elif kind == "float":
            kwargs["type"] = _float_or_none if field.get("optional") else float
        elif kind == "bool" and "type" not in kwargs:
            kwargs["action"] = _BOOL
        default = given.get(DEFAULT_TEXT) or default_text(name, field, words=_WORDS[kwargs.get("type") is _bool])
        if default:
            kwargs["help"] += f" [{default.replace('%', '%%')}]"  # argparse %-formats help texts
        table.append((flag, kwargs))
    return table


def _allowed(key: str, value: Any, field: Mapping[str, Any]) -> bool:
    """Whether FLAGS may set KEY (one of _FROM_SPEC) to VALUE: only what the table cannot know."""
    if key == "action":
        return bool(value == "append")  # a repeated flag collecting a list
    if key == "type":
        return value is _bool and field["kind"] == "bool"  # _BOOL_VALUE's flag shape
    return False


#: How a bool default reads in --help: for a --x/--no-x flag, and for a _BOOL_VALUE flag.
_WORDS = {False: ("on", "off"), True: ("true", "false")}


def default_text(name: str, field: Mapping[str, Any], words: tuple[str, str] = _WORDS[False]) -> str | None:
    """The "[default]" of field NAME's flag from its SPEC entry, None when there is nothing to show
    (None, empty); a field in ENVIRONMENT names its variable first."""
    value = field["default"]
    shown: str | None
    if isinstance(value, bool):
        shown = words[0] if value else words[1]
    elif value is None or (isinstance(value, str | tuple | list | dict) and not value):
        shown = None
    elif isinstance(value, float) and value.is_integer():
        shown = str(int(value))
    elif isinstance(value, tuple | list):
        shown = ", ".join(map(str, value))
    else:
        shown = str(value)
    if name in ENVIRONMENT:
        variable = "$" + ENVIRONMENT[name][0]
        return f"{variable} or {shown}" if shown else variable
    return shown


#: FLAGS as add_argument takes them, from the generated option table.
ARGUMENTS = arguments()


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, sized as argparse sizes it (the terminal's width less 2) without
    importing shutil: argparse builds a formatter for every add_argument, and shutil, with the
    compression modules it imports, would add about 0.3 MiB to every serve process."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None):
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


def _columns() -> int:
    """$COLUMNS, else the width of the terminal on stdout, else 80 (shutil.get_terminal_size's order)."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


def parser(spec: Mapping[str, Mapping[str, Any]] | None = None) -> argparse.ArgumentParser:
    """`deploykit serve`'s parser; SPEC (a changed model's table, in tests) replaces the generated one."""
    p = argparse.ArgumentParser(
        prog="deploykit serve",
        description="Run an ASGI app. Flags mirror uvicorn's.",
        argument_default=argparse.SUPPRESS,
        formatter_class=_Formatter,
    )
    p.add_argument("app", help="the ASGI or WSGI app as module:attribute")
    p.add_argument("--factory", action="store_true", default=False, help="APP is a factory returning the app")
    p.add_argument("--app-dir", default=None, help="import the app from this directory [.]")
    p.add_argument("--version", action=_Version, help="print deploykit's version and exit")
    p.add_argument(
        "--interface",
        choices=INTERFACES,
        default="auto",
        help="the app's kind: auto detects it at start-up (asgi3, asgi2 or wsgi); app.interface in a deployment [auto]",
    )
    for flag, kwargs in ARGUMENTS if spec is None else arguments(spec):
        p.add_argument(flag, **kwargs)
        if kwargs.get("type") is _bool:
            dest = flag[2:].replace("-", "_")
            p.add_argument("--no-" + flag[2:], dest=dest, action="store_false", help=f"same as {flag} false")
    return p


#: Arguments about the app itself (app.module, app.factory, app.interface), not server options.
APP_ARGS = ("app", "factory", "app_dir", "interface")


def flag_options(argv: Sequence[str]) -> dict[str, Any]:
    """Server options from flags alone (no APP), e.g. $DEPLOYKIT_SERVE_ARGS under Gunicorn."""
    return options(parser().parse_args(["-", *argv]))


def flag_interface(argv: Sequence[str]) -> str:
    """The --interface among FLAGS (auto when absent), e.g. from $DEPLOYKIT_SERVE_ARGS."""
    return str(parser().parse_args(["-", *argv]).interface)


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The given flags as ServerSettings fields."""
    given = {k: v for k, v in vars(args).items() if k not in APP_ARGS}
    for name, (variable, parse) in ENVIRONMENT.items():
        if name not in given and (value := parse(os.environ.get(variable, ""))) is not None:
            given[name] = value
    if "forwarded_allow_ips" in given:
        given["forwarded_allow_ips"] = _ip_list(given["forwarded_allow_ips"])
    if "header" in given:
        given["headers"] = dict(_header(h) for h in given.pop("header"))
    for name in _PATHS & given.keys():
        given[name] = os.path.abspath(given[name])  # relative paths, as uvicorn users pass them
    if "reload_dirs" in given:
        given["reload_dirs"] = [os.path.realpath(d) for d in given["reload_dirs"]]
    return given


def _ip_list(raw: str) -> list[str]:
    return [ip.strip() for ip in raw.split(",") if ip.strip()]


_PATHS = {"uds", "env_file", "ssl_keyfile", "ssl_certfile", "ssl_ca_certs", "log_config"}


#: field -> (flag, argparse kwargs): ARGUMENTS read the other way.
BY_FIELD: dict[str, tuple[str, dict[str, Any]]] = {_dest(flag, kwargs): (flag, kwargs) for flag, kwargs in ARGUMENTS}


def flags_for(values: Mapping[str, Any]) -> list[str]:
    """The inverse of `options`: the flags that make `deploykit serve` parse to VALUES
    (ServerSettings fields, already validated). The rendered units build their
    command lines with it, so the parser and the units share this one table; a
    test round-trips every field through both."""
    argv: list[str] = []
    for name, value in values.items():
        flag, kwargs = BY_FIELD[name]
        action = kwargs.get("action")
        if action is _BOOL:
            if value is None:
                raise ValueError(f"{flag}: None is its default and has no flag")
            argv.append(flag if value else "--no-" + flag[2:])
        elif kwargs.get("type") is _bool:
            argv += [flag, "true" if value else "false"]
        elif name == "headers":
            for header, text in value.items():
                argv += [flag, f"{header}:{text}"]
        elif action == "append":
            for item in value:
                argv += [flag, str(item)]
        elif name == "forwarded_allow_ips":
            argv += [flag, ",".join(value)]
        elif value is None:
            if kwargs.get("type") is not _float_or_none:
                raise ValueError(f"{flag}: None is its default and has no flag")
            argv += [flag, NONE]
        elif isinstance(value, float):
            argv += [flag, str(int(value)) if value.is_integer() else repr(value)]
        elif isinstance(value, bool):
            raise ValueError(f"{flag}: takes no boolean")  # pragma: no cover - every bool flag uses _BOOL
        else:
            argv += [flag, str(value)]
    return argv


def main(argv: Sequence[str]) -> int:
    """Entry point of `deploykit serve`; errors become one line, a hint and an exit code."""
    args = parser().parse_args(list(argv))
    try:
        given = options(args)
        from deploykit.server import run

        return run(
            args.app,
            factory=args.factory,
            app_dir=args.app_dir,
            interface=args.interface,
            source="command line",
            **given,
        )
    except DeployKitError as exc:
        from deploykit import console

        console.error(exc, debug=getattr(args, "log_level", "info") in ("debug", "trace"))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _header(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition(":")
    if not sep or not name.strip():
        raise UsageError(f"--header {raw!r}: expected NAME:VALUE")
    return name.strip(), value.strip()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
