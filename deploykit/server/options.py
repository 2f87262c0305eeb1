"""Validate `deploykit serve` options without pydantic, against the table that
``deploykit.settings.codegen`` generates from ServerSettings (so the rules are
the model's rules; a test feeds both the same good and bad values).

Messages follow pydantic's wording, so an error reads the same whether it
came from deploykit.toml or from the serve command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploykit.errors import SettingsError
from deploykit.server.options_spec import SPEC, ServerOptions
from deploykit.settings import rules
from deploykit.settings.syntax import CHECKS

__all__ = ["ServerOptions", "validate"]


def validate(given: Mapping[str, Any], source: str = "options") -> ServerOptions:
    problems = []
    values: dict[str, Any] = {}
    for name, value in given.items():
        label = _label(name, source)
        spec = SPEC.get(name)
        if spec is None:
            problems.append(f"{source}: {label} = {value!r}: unknown option")
            continue
        try:
            values[name] = _value(spec, value)
        except ValueError as exc:
            problems.append(f"{source}: {label} = {value!r}: {exc}")
    if not problems:  # the model's cross-field rules, from the table its validator reads
        for group in rules.set_in_part(values):
            problems.append(f"{source}: {rules.together([_label(name, source) for name in group])}")
    if problems:
        count = len(problems)
        raise SettingsError(f"{count} invalid server option{'s' if count != 1 else ''}", problems=tuple(problems))
    return ServerOptions(**values)


def _label(name: str, source: str) -> str:
    """How SOURCE spells option NAME: its flag on the command line, else the field."""
    return "--" + name.replace("_", "-") if source == "command line" else name


def _value(spec: Mapping[str, Any], value: Any) -> Any:
    if value is None:
        if spec.get("optional"):
            return None
        raise ValueError("Input should not be None")
    kind = spec["kind"]
    if kind in ("int", "float"):
        return _bounded(spec, _number(kind, value))
    if kind == "bool":
        return _bool(value)
    if kind == "list":
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError("Input should be a valid list")
        return tuple(_text(spec.get("item"), v) for v in value)
    if kind == "dict":
        if not isinstance(value, Mapping):
            raise ValueError("Input should be a valid dictionary")
        return {_text(spec.get("item"), k): _text(spec.get("value"), v) for k, v in value.items()}
    choices = spec.get("choices", ())
    if value in choices:
        return value
    if kind == "choice":
        raise ValueError("Input should be " + " or ".join(repr(c) for c in choices))
    return _text(spec.get("syntax"), value)


def _number(kind: str, value: Any) -> int | float:
    """pydantic's lax numbers: ints, integral floats, numeric strings (and bools, as 0/1)."""
    try:
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Input should be a valid {'integer' if kind == 'int' else 'number'}") from None


def _bounded(spec: Mapping[str, Any], number: int | float) -> int | float:
    if "ge" in spec and number < spec["ge"]:
        raise ValueError(f"Input should be greater than or equal to {spec['ge']}")
    if "gt" in spec and number <= spec["gt"]:
        raise ValueError(f"Input should be greater than {spec['gt']}")
    if "le" in spec and number > spec["le"]:
        raise ValueError(f"Input should be less than or equal to {spec['le']}")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("Input should be a valid boolean")


def _text(syntax: str | None, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("Input should be a valid string")
    return CHECKS[syntax](value) if syntax else value
