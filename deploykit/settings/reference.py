"""The settings reference table, generated from the model: the docs site's
docs/reference/settings.md holds it (`python -m deploykit.docs` writes the page,
tests/docs fails while it is stale); `python -m deploykit.settings.reference` prints the table."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

from deploykit.settings.effects import acts_in
from deploykit.settings.model import Settings
from deploykit.settings.types import Syntax


def _default(field: Any) -> str:
    if field.default is PydanticUndefined:
        return "*required*" if field.default_factory is None else "`" + _show(field.default_factory()) + "`"
    return "`" + _show(field.default) + "`"


def _show(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "{…}"
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


def _type(annotation: Any) -> str:
    """A short, readable name for a field's type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        label = next((m.label for m in annotation.__metadata__ if isinstance(m, Syntax)), None)
        return label or _type(args[0])
    if origin is typing.Literal:
        return " / ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or none" if type(None) in args else "")
    if origin is tuple:
        return (
            "list of " + _type(args[0])
            if len(args) == 2 and args[1] is Ellipsis
            else "[" + ", ".join(map(_type, args)) + "]"
        )
    if origin is dict:
        return f"table of {_type(args[0])} = {_type(args[1])}"
    if annotation is SecretStr:
        return "secret"
    return getattr(annotation, "__name__", str(annotation))


_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.MinLen, "min_length", "at least"),
    (annotated_types.MaxLen, "max_length", "at most"),
)


def _escape(text: str) -> str:
    """A table cell's text: no cell break, and `<app>` shown, not read as an HTML tag."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _constraint(metadata: list[Any]) -> str:
    """The field's numeric bounds and length limits, as "≥ 1, ≤ 512"."""
    parts = []
    for item in metadata:
        for kind, attribute, sign in _BOUNDS:
            if isinstance(item, kind):
                unit = " items" if attribute.endswith("length") else ""
                parts.append(f"{sign} {getattr(item, attribute)}{unit}")
    return ", ".join(parts)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        sub = _model_in(field.annotation)
        if sub is not None:
            origin = typing.get_origin(field.annotation)
            suffix = "[]." if origin is tuple else (".<name>." if origin is dict else ".")
            if suffix == "[].":
                where = acts_in(f"{prefix}{name}")
                note = _escape(field.description or "")
                cells = [f"`{prefix}{name}`", "list of tables", _default(field), _constraint(field.metadata)]
                rows.append("| " + " | ".join([*cells, _escape(where), note]) + " |")
            rows += _rows(sub, f"{prefix}{name}{suffix}")
            continue
        label = next((m.label for m in field.metadata if isinstance(m, Syntax)), None)
        kind = label or _type(field.annotation)
        note = _escape(field.description or "")
        cells = [f"`{prefix}{name}`", kind, _default(field), _constraint(field.metadata)]
        rows.append("| " + " | ".join([*cells, _escape(acts_in(prefix + name)), note]) + " |")
    return rows


def reference_markdown() -> str:
    header = "| setting | type | default | constraint | acts in | note |"
    lines = [header, "|---|---|---|---|---|---|", *_rows(Settings, "")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
