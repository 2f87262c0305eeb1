"""Merge the settings sources, remembering where every value came from.

Order, lowest first: a profile preset (``profiles/*.toml``) → the project's
``deploykit.toml`` → ``DEPLOYKIT_SECTION__FIELD`` environment variables →
``--set section.field=value`` overrides. Each leaf value keeps the label of
the source that set it, so a validation error can say "deploykit.toml:
nginx.listen = 'eighty': ..." instead of a bare pydantic dump.

Why not pydantic-settings' own source chain: its sources return merged dicts
without per-field provenance, and naming the file of a bad value is the point.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from deploykit.errors import ProfileNotFound, SettingsError, UsageError
from deploykit.settings.model import Settings

ENV_PREFIX = "DEPLOYKIT_"
PROJECT_FILE = "deploykit.toml"

Leaf = tuple[str | int, ...]


@dataclass(frozen=True)
class Source:
    label: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    sources: tuple[str, ...]
    provenance: Mapping[Leaf, str] = field(default_factory=dict)


def shipped_profiles() -> list[str]:
    folder = resources.files("deploykit") / "profiles"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def read_toml(path: Path) -> dict[str, Any]:
    """A settings file: TOML, or the JSON of resolved settings `--host ssh://` ships (TOML has no null)."""
    try:
        with path.open("rb") as fh:
            if path.suffix == ".json":
                data = json.load(fh)
                if not isinstance(data, dict):
                    raise SettingsError(f"{path}: not a JSON object")
                return data
            return tomllib.load(fh)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path}: not valid JSON: {exc}") from exc
    except FileNotFoundError as exc:
        raise SettingsError(f"{path}: file not found", hint="Create it with `deploykit init`.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded); TOML files are UTF-8"
        ) from exc
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror}") from exc


def profile_source(name: str, search: Sequence[Path] = ()) -> Source:
    """A profile by shipped name, by ``profiles/<name>.toml`` beside the project, or by path."""
    candidate = Path(name)
    if candidate.suffix == ".toml" and candidate.exists():
        return Source(str(candidate), read_toml(candidate))
    for folder in search:
        local = folder / f"{name}.toml"
        if local.exists():
            return Source(str(local), read_toml(local))
    shipped = resources.files("deploykit") / "profiles" / f"{name}.toml"
    if shipped.is_file():
        try:
            data = tomllib.loads(shipped.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:  # pragma: no cover - shipped profiles are tested
            raise SettingsError(f"profiles/{name}.toml: not valid TOML: {exc}") from exc
        return Source(f"profiles/{name}.toml", data)
    raise ProfileNotFound(
        f"profile {name!r} not found",
        hint=f"Shipped profiles: {', '.join(shipped_profiles())}; or pass a path to a .toml file.",
    )


def env_source(environ: Mapping[str, str]) -> list[Source]:
    """``DEPLOYKIT_NGINX__LISTEN=8080`` sets nginx.listen; JSON values give lists and tables."""
    found = []
    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        path = key.removeprefix(ENV_PREFIX).lower().split("__")
        found.append(Source(f"environment {key}", _nest(path, _parse_env_value(environ[key]))))
    return found


def override_source(assignment: str) -> Source:
    """``--set nginx.listen=8080``: the value is read as TOML. A value that is not
    TOML (``app.name=shop``) is taken as a string only where the field holds text;
    elsewhere it is an error, not a string that fails later as "not a valid tuple"."""
    dotted, sep, raw = assignment.partition("=")
    dotted = dotted.strip()
    if not sep or not dotted:
        raise UsageError(f"--set {assignment!r}: expected section.field=value")
    path = dotted.split(".")
    try:
        value: Any = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError as exc:
        if _takes_text(path) is False:
            raise UsageError(
                f"--set {assignment}: not a valid TOML value, and {dotted} does not take text",
                hint=f"Strings need quotes: --set {dotted}='\"...\"'; lists look like [1, 2], tables like {{a = 1}}.",
            ) from exc
        value = raw
    return Source(f"--set {dotted}", _nest(path, value))


def load(
    *,
    project: Path | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
    require_project: bool = False,
) -> Loaded:
    """Read every source, merge them in order and validate the result."""
    sources: list[Source] = []
    project_path = project if project is not None else Path(PROJECT_FILE)
    project_data: dict[str, Any] = {}
    if project_path.exists() or require_project or project is not None:
        project_data = read_toml(project_path)
    chosen = profile or project_data.pop("profile", None)
    project_data.pop("profile", None)
    if chosen is not None:
        if not isinstance(chosen, str):
            raise SettingsError(f"{project_path}: profile must be a string, got {chosen!r}")
        sources.append(profile_source(chosen, (project_path.parent / "profiles",)))
    if project_data:
        sources.append(Source(str(project_path), project_data))
    sources.extend(env_source(os.environ if environ is None else environ))
    sources.extend(override_source(item) for item in overrides)
    return validate(sources)


def validate(sources: Sequence[Source]) -> Loaded:
    merged: dict[str, Any] = {}
    provenance: dict[Leaf, str] = {}
    for source in sources:
        _merge(merged, source.data, source.label, provenance, ())
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        order = ["defaults", *(s.label for s in sources)]
        problems = tuple(_describe(err, provenance, order) for err in exc.errors())
        labels = ", ".join(s.label for s in sources) or "no settings sources"
        count = len(problems)
        raise SettingsError(
            f"{count} invalid setting{'s' if count != 1 else ''} (from {labels}): " + "; ".join(problems),
            problems=problems,
        ) from exc
    return Loaded(settings, tuple(s.label for s in sources), provenance)


def _takes_text(path: Sequence[str]) -> bool | None:
    """Whether the field at PATH accepts a string; None when PATH names no known
    field (validation then reports it, with a suggestion)."""
    model: type[BaseModel] | None = Settings
    keyed = False
    for part in path[:-1]:
        if model is None:
            break
        if keyed:  # the key of a table of models (processes.<name>)
            keyed = False
            continue
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if annotation is not None and typing.get_origin(annotation) is dict:
            value = typing.get_args(annotation)[1]
            if not (isinstance(value, type) and issubclass(value, BaseModel)):
                return _is_text(value)  # app.env.KEY
            keyed = True
        model = _submodel(model, part)
    if model is None or path[-1] not in model.model_fields:
        return None
    return _is_text(model.model_fields[path[-1]].annotation)


def _is_text(annotation: Any) -> bool:
    """str, a validated str, a string Literal, SecretStr, or a union holding one."""
    if annotation is str or annotation is SecretStr:
        return True
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _is_text(args[0])
    if origin is typing.Literal:
        return all(isinstance(a, str) for a in args)
    if origin in (typing.Union, types.UnionType):
        return any(_is_text(a) for a in args)
    return False


def _nest(path: Sequence[str], value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(path):
        out = {part: out}
    assert isinstance(out, dict)
    return out


def _parse_env_value(raw: str) -> Any:
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _merge(into: dict[str, Any], new: Mapping[str, Any], label: str, prov: dict[Leaf, str], at: Leaf) -> None:
    for key, value in new.items():
        here = (*at, key)
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value, label, prov, here)
            continue
        into[key] = _copy(value)
        for stale in [k for k in prov if k[: len(here)] == here]:
            del prov[stale]
        _record(value, label, prov, here)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _record(value: Any, label: str, prov: dict[Leaf, str], here: Leaf) -> None:
    prov[here] = label
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _record(sub, label, prov, (*here, key))


def _describe(err: Mapping[str, Any], provenance: Mapping[Leaf, str], order: Sequence[str] = ()) -> str:
    loc: Leaf = tuple(part for part in err["loc"] if not (isinstance(part, str) and "[" in part))
    dotted = _dotted(loc)
    origin = _origin(loc, provenance)
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "conflict":
        return _describe_conflict(loc, message, err.get("ctx", {}).get("fields", ()), provenance, order)
    if err["type"] == "extra_forbidden":
        message = "unknown setting" + _suggest(loc)
    elif err["type"] == "missing":
        return f"{dotted}: required, but no source sets it{_required_inside(loc)}"
    value = err.get("input")
    shown = "" if isinstance(value, dict) else f" = {value!r}"
    return f"{origin}: {dotted or '(top level)'}{shown}: {message}"


def _describe_conflict(
    loc: Leaf, message: str, fields: Sequence[str], provenance: Mapping[Leaf, str], order: Sequence[str]
) -> str:
    """A cross-field rule broke: blame the latest source that set one of its fields
    (the one that overrode the others), and name that field."""
    rank = {label: i for i, label in enumerate(order)}

    def origin(leaf: Leaf) -> str:  # inside the model only: a field left at its default is "defaults"
        found = [provenance[leaf[:end]] for end in range(len(leaf), len(loc), -1) if leaf[:end] in provenance]
        return found[0] if found else "defaults"

    leaves = [(*loc, *_leaf(f)) for f in fields]
    if not leaves:
        return f"{_origin(loc, provenance)}: {_dotted(loc) or '(top level)'}: {message}"
    blamed = max(leaves, key=lambda leaf: rank.get(origin(leaf), -1))
    label = origin(blamed)
    return f"{label if label != 'defaults' else _origin(loc, provenance)}: {_dotted(blamed)}: {message}"


def _leaf(dotted: str) -> Leaf:
    """'static[0].url' -> ('static', 0, 'url')."""
    parts: list[str | int] = []
    for part in dotted.split("."):
        name, _, index = part.partition("[")
        parts.append(name)
        if index:
            parts.append(int(index.rstrip("]")))
    return tuple(parts)


def _dotted(loc: Leaf) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _origin(loc: Leaf, provenance: Mapping[Leaf, str]) -> str:
    for end in range(len(loc), 0, -1):
        if loc[:end] in provenance:
            return provenance[loc[:end]]
    return "defaults"


def _submodel(model: type[BaseModel] | None, name: str | int) -> type[BaseModel] | None:
    """The model class of field NAME (unwrapping ``X | None``), if it is one."""
    if model is None or not isinstance(name, str) or name not in model.model_fields:
        return None
    annotation = model.model_fields[name].annotation
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _model_at(loc: Leaf) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Settings
    for part in loc:
        model = _submodel(model, part)
    return model


def _suggest(loc: Leaf) -> str:
    model = _model_at(loc[:-1])
    if model is None or not isinstance(loc[-1], str):
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _required_inside(loc: Leaf) -> str:
    model = _model_at(loc)
    if model is None:
        return ""
    needed = [name for name, f in model.model_fields.items() if f.is_required()]
    return f" (set {', '.join(_dotted((*loc, n)) for n in needed)})" if needed else ""
