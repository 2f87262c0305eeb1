"""Every setting takes effect: walk every field of every settings model (through
nested models and lists of them), give it a valid value other than its
default, render, and require that the bundle changed.

A field may instead be
- refused in that run mode, with a message naming it (``serving.refusal``:
  [server] fields that cannot apply to a deployment), or
- listed in ``effects.NOT_RENDERED`` with the place that reads it (check,
  plan, apply, up); such a field must then leave the bundle unchanged, so a
  stale entry fails too.
A new field with no effect fails here until it gets one.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from deploykit.errors import SettingsError
from deploykit.render import Bundle, render
from deploykit.settings import serving
from deploykit.settings.effects import NOT_RENDERED
from deploykit.settings.load import Source, validate
from deploykit.settings.model import Settings
from deploykit.settings.types import Syntax

#: One valid value per syntax label (a second one where the first may be a default).
SAMPLES: dict[str, tuple[str, ...]] = {
    "absolute path": ("/srv/walk/x", "/srv/walk/y"),
    "nginx token": ("HIGH", "MEDIUM"),
    "one-line text": ("walk value %$ 1", "walk 2"),
    "IP/CIDR, * or unix:": ("10.9.0.0/16", "*"),
    "variable name": ("WALK_VAR", "WALK_OTHER"),
    "app name": ("walk", "walk-two"),
    "user/group name": ("walker", "walkers"),
    "module:attr": ("walk.mod:app", "walk.other:app"),
    "host name": ("walk.example.com", "other.example.com"),
    "URL path": ("/walk/", "/other/"),
    "size (16m)": ("3m", "5m"),
    "rate (10r/s)": ("7r/s", "9r/m"),
    "nginx time": ("3h", "5d"),
    "host or IP": ("10.1.2.3", "10.1.2.4"),
    "access log format": ("json", "{client} {status}"),
    "header name": ("X-Walk", "X-Other"),
    "folder name": ("walkdir", "otherdir"),
    "project path": ("walkfiles", "otherfiles"),
    "IP/CIDR or unix:": ("10.9.0.0/16", "unix:"),
    "request header name": ("X-Real-IP", "CF-Connecting-IP"),
    "IP address": ("10.1.2.53", "::1"),
    "command": ("walk-worker --one", ("walk-worker", "--two")),
    "calendar event": ("hourly", "Mon *-*-* 04:00"),
    "unit name part": ("walk", "walk-two"),
}

#: Values the type alone cannot give (each says why); never a way to skip a field.
OVERRIDES: dict[str, Any] = {
    # must stay above the graceful timeout (30 s), or the model refuses it
    "systemd.timeout_stop_sec": 45,
    # acts at the `http2 on;` threshold (1.25.1), on the TLS server
    "nginx.version": (1, 25, 1),
    # "auto" and "on" render alike (stapling on); "on" only makes check's missing-OCSP-URL finding an error
    "nginx.tls.ocsp_stapling": "off",
    # the model reads it: a readable PEM file
    "nginx.tls.acme.ca_bundle": str(Path(__file__).with_name("walk-ca.pem")),
    # free text checked by the model itself: an address, a named directory or an https:// URL
    "nginx.tls.acme.email": "walk@example.com",
    "nginx.tls.acme.directory": "staging",
    # a hook is a shell line or an argv list
    "deploy.hooks.before_switch": ["true"],
    "deploy.hooks.after_switch": [["true", "--walk"]],
    # where plan/apply/status... work (NOT_RENDERED), a valid ssh:// URL
    "deploy.hosts": ["ssh://deploy@web1.example:2222"],
}

TLS = {"certificate": "/etc/ssl/walk.pem", "certificate_key": "/etc/ssl/walk.key"}
#: ACME on: the certificate paths are the client's files
ACME = {"acme": {}}
MANAGED = {
    "certificate": "/etc/deploykit/acme/live/demo/fullchain.pem",
    "certificate_key": "/etc/deploykit/acme/live/demo/privkey.pem",
}
#: What must be on for a field to matter at all (each says why).
PREREQUISITES: dict[str, dict[str, Any]] = {
    # the TLS server block is the only one with these
    "nginx.listen_tls": {"nginx.tls": TLS},
    "nginx.version": {"nginx.tls": TLS},
    # Group= is rendered with User=; a DynamicUser gets its own group
    "app.group": {"app.user": "walker"},
    # the ACME webroot is on the port-80 server that redirects to TLS
    "nginx.acme_root": {"nginx.tls": TLS},
    # stapling is rendered only with a chain to verify the answers
    "nginx.tls.ocsp_stapling": {"nginx.tls.trusted_certificate": "/etc/ssl/chain.pem"},
    # the realip directives act only for trusted peers; without real_ip_from the model refuses them
    "nginx.real_ip_header": {"nginx.real_ip_from": ["10.0.0.0/8"]},
    "nginx.real_ip_recursive": {"nginx.real_ip_from": ["10.0.0.0/8"]},
    # the resolver serves OCSP stapling, rendered only with a chain to verify the answers
    "nginx.tls.resolver": {"nginx.tls.trusted_certificate": "/etc/ssl/chain.pem"},
    # ACME issues into its own files: the TLS site before it uses those same paths, given by hand
    "nginx.tls.acme": {"nginx.tls": MANAGED},
    # the renewal units exist only with ACME on
    "paths.acme_service_unit": {"nginx.tls": ACME},
    "paths.acme_timer_unit": {"nginx.tls": ACME},
    # hooks run around a code release switch; without code releases the model refuses them
    "deploy.hooks.before_switch": {"deploy.code_releases": True},
    "deploy.hooks.after_switch": {"deploy.code_releases": True},
}
# a certificate holds real names, never the catch-all '_' (the default)
for _acme_field in (
    "nginx.tls.acme",
    "paths.acme_service_unit",
    "paths.acme_timer_unit",
    *(f"nginx.tls.acme.{name}" for name in ("email", "directory", "ca_bundle", "key_type", "client", "config_dir")),
):
    PREREQUISITES.setdefault(_acme_field, {})["nginx.server_names"] = ["walk.example.com"]
#: Fields of the gunicorn run mode only (conf.py is not rendered in the serve mode).
GUNICORN_ONLY = ("gunicorn.", "paths.gunicorn_conf")

#: A minimal valid item for a list of models, and the presence value of an optional model.
MINIMAL: dict[str, Any] = {
    "nginx.tls": TLS,
    "nginx.tls.acme": {},
    "nginx.static[]": {"url": "/walk-static/", "path": "/srv/walk/static/"},
    "nginx.websockets[]": {"url": "/walk-ws/"},
    "nginx.rate_limit": {},
    # a table of models ('{}' marks its one item, named "walk")
    "processes{}": {"command": "walk-worker"},
    "timers{}": {"command": "walk-job", "on_calendar": "daily"},
    "deploy.hooks": {},
}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """(dotted name, field) for every field, nested ones included ('[]' marks a list item)."""
    for name, info in model.model_fields.items():
        dotted = f"{prefix}{name}"
        yield dotted, info
        sub = _model_in(info.annotation)
        if sub is not None:
            origin = typing.get_origin(info.annotation)
            yield from fields(
                sub, f"{dotted}[]." if origin is tuple else (f"{dotted}{{}}." if origin is dict else f"{dotted}.")
            )


def _label(annotation: Any, metadata: list[Any]) -> str | None:
    found = [m for m in metadata if isinstance(m, Syntax)]
    if typing.get_origin(annotation) is typing.Annotated:
        found += [m for m in annotation.__metadata__ if isinstance(m, Syntax)]
    return found[0].label if found else None


def value_of(annotation: Any, metadata: list[Any], default: Any) -> Any:
    """A valid value of ANNOTATION (with its constraints) that differs from DEFAULT."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    label = _label(annotation, metadata)
    if label is not None:
        return next(s for s in SAMPLES[label] if s != default)
    if origin is typing.Annotated:
        return value_of(args[0], [*metadata, *annotation.__metadata__], default)
    if origin in (typing.Union, types.UnionType):
        choices = [a for a in args if a is not type(None)]
        literal = [a for a in choices if typing.get_origin(a) is typing.Literal]
        if literal and default not in typing.get_args(literal[0]):
            return typing.get_args(literal[0])[0]
        rest = [a for a in choices if typing.get_origin(a) is not typing.Literal]
        return value_of(rest[0], metadata, default)
    if origin is typing.Literal:
        return next(a for a in args if a != default)
    if origin is tuple:
        return (value_of(args[0], [], None),)
    if origin is dict:
        return {value_of(args[0], [], None): value_of(args[1], [], None)}
    if annotation is SecretStr:
        return "walk-secret"
    if annotation is bool:
        return not default if default is not None else True
    if annotation in (int, float):
        return _number(annotation, metadata, default)
    raise AssertionError(f"no sample for {annotation!r}: add a SAMPLES label or an OVERRIDES entry")


def _number(kind: type, metadata: list[Any], default: Any) -> int | float:
    low = next((m.ge for m in metadata if isinstance(m, annotated_types.Ge)), None)
    above = next((m.gt for m in metadata if isinstance(m, annotated_types.Gt)), None)
    high = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
    if default is None:
        base = low if low is not None else (above + 1 if above is not None else 1)
        return kind(base + 2)
    step = 3 if kind is int else 1.5
    for candidate in (default + step, default + 1, default - 1, low, high):
        fits = candidate is not None and candidate != default
        fits = fits and (low is None or candidate >= low) and (above is None or candidate > above)
        if fits and (high is None or candidate <= high):
            return kind(candidate)
    raise AssertionError(f"no number fits {metadata!r} beside {default!r}")


def sample(dotted: str, info: FieldInfo) -> Any:
    if dotted in OVERRIDES:
        return OVERRIDES[dotted]
    model = _model_in(info.annotation)
    if model is not None:
        key = f"{dotted}[]" if typing.get_origin(info.annotation) is tuple else dotted
        value = MINIMAL[key]
        return [value] if key.endswith("[]") else value
    return value_of(info.annotation, list(info.metadata), info.get_default(call_default_factory=True))


def build(mode: str, dotted: str, value: Any = None, *, change: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"app": {"name": "demo", "run_mode": mode}}
    parent = _enclosing(dotted)
    if parent is not None:  # the model holding the field exists in both renders
        _set(data, parent, MINIMAL[parent])
    for path, needed in PREREQUISITES.get(dotted, {}).items():
        _set(data, path, needed)
    if change:
        _set(data, dotted, value)
    return data


def _enclosing(dotted: str) -> str | None:
    """The optional model or list item that must exist for DOTTED to exist."""
    parts = dotted.split(".")
    for end in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MINIMAL:
            return candidate
    return None


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    """DOTTED may hold one 'name[]' part: the first (only) item of that list, or one
    'name{}' part: the item "walk" of that table."""
    node: Any = data
    parts = dotted.split(".")
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part.endswith("{}"):
            key = ".".join([*parts[:index], part])
            table = node.setdefault(part[:-2], {"walk": copy.deepcopy(MINIMAL[key])})
            if last:
                table["walk"] = copy.deepcopy(value)
            node = table["walk"]
        elif part.endswith("[]"):
            name = part[:-2]
            key = ".".join([*parts[:index], part])
            items = node.setdefault(name, [copy.deepcopy(MINIMAL[key])])
            if last:
                items[0] = copy.deepcopy(value)
            node = items[0]
        elif last:
            node[part] = copy.deepcopy(value)
        else:
            node = node.setdefault(part, {})


def bundle(data: dict[str, Any]) -> Bundle:
    return render(validate([Source("walk", data)]).settings)


INFO = dict(fields(Settings))
#: The sections themselves are not settings: their fields are walked.
SECTIONS = {d for d, info in INFO.items() if "." not in d and _model_in(info.annotation) is not None}
CASES = [
    (mode, dotted)
    for mode in ("serve", "gunicorn")
    for dotted in INFO
    if dotted not in SECTIONS
    and not (dotted.startswith(GUNICORN_ONLY) and mode == "serve")
    and not (dotted == "app.run_mode" and mode == "gunicorn")  # walked once, from serve
]


@pytest.mark.parametrize(("mode", "dotted"), CASES, ids=[f"{m}-{d}" for m, d in CASES])
def test_every_setting_changes_the_bundle_or_is_refused(mode: str, dotted: str) -> None:
    value = sample(dotted, INFO[dotted])
    before = bundle(build(mode, dotted, change=False))
    section, _, name = dotted.partition(".")
    refused = serving.refusal(name, mode) if section == "server" else None
    if refused is not None:
        with pytest.raises(SettingsError) as info:
            bundle(build(mode, dotted, value, change=True))
        assert any(f"server.{name}" in p or name in p for p in info.value.problems), info.value.problems
        return
    after = bundle(build(mode, dotted, value, change=True))
    if dotted in NOT_RENDERED:
        assert after == before, f"{dotted} changes the bundle: remove it from effects.NOT_RENDERED"
    else:
        assert after != before, f"{dotted} = {value!r} changed nothing rendered ({mode} mode)"


def test_the_allow_list_names_real_fields_and_where_they_act() -> None:
    assert set(NOT_RENDERED) <= set(INFO)
    for dotted, where in NOT_RENDERED.items():
        assert where.split(" ")[0] in ("check", "apply", "plan/apply", "up"), (dotted, where)


def test_a_field_without_effect_fails_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard itself: drop the flags a server field renders to, and the walk catches it."""
    import deploykit.render.systemd as systemd

    real = systemd.serve_values
    monkeypatch.setattr(systemd, "serve_values", lambda s: {k: v for k, v in real(s).items() if k != "root_path"})
    with pytest.raises(AssertionError, match="server.root_path"):
        test_every_setting_changes_the_bundle_or_is_refused("serve", "server.root_path")


def test_a_process_field_without_effect_fails_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard reaches into tables of models: a process command that renders nothing is caught."""
    from deploykit.settings import processes

    monkeypatch.setattr(processes, "argv", lambda command: ["/bin/true"])
    with pytest.raises(AssertionError, match=r"processes\{\}.command"):
        test_every_setting_changes_the_bundle_or_is_refused("serve", "processes{}.command")
