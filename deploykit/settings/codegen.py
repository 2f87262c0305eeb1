"""Generate ``deploykit/server/options_spec.py`` from ``ServerSettings``.

`deploykit serve` must start fast and small, so it validates its options
without pydantic — but against the very same model: this module turns the
pydantic model into a plain dataclass plus a constraint table, and a test
fails whenever the checked-in file differs from what this prints.

Run ``python -m deploykit.settings.codegen > deploykit/server/options_spec.py``
after changing ServerSettings.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from deploykit.settings.server import ServerSettings
from deploykit.settings.types import Syntax

HEADER = '''"""GENERATED from deploykit.settings.server.ServerSettings; do not edit.

Regenerate with `python -m deploykit.settings.codegen > deploykit/server/options_spec.py`;
tests/unit/test_server_options.py fails while this file is stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
'''


def _syntax(annotation: Any) -> str | None:
    if typing.get_origin(annotation) is typing.Annotated:
        return next((m.label for m in annotation.__metadata__ if isinstance(m, Syntax)), None)
    return None


def _base(annotation: Any) -> Any:
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation


def describe(field_info: FieldInfo) -> tuple[dict[str, Any], str]:
    """(spec entry, Python type) for one field."""
    annotation = field_info.annotation
    spec: dict[str, Any] = {}
    members = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        spec["optional"] = type(None) in typing.get_args(annotation)
    literals = tuple(v for m in members if typing.get_origin(m) is typing.Literal for v in typing.get_args(m))
    rest = [m for m in members if typing.get_origin(m) is not typing.Literal]
    label = next((s for s in (_syntax(m) for m in members) if s), None)
    for item in field_info.metadata:
        label = label or (item.label if isinstance(item, Syntax) else None)
        for bound in ("ge", "gt", "le"):
            if isinstance(item, getattr(annotated_types, bound.capitalize())):
                spec[bound] = getattr(item, bound)
    kind, pytype = _kind(rest, literals, label)
    spec["kind"] = kind
    if literals:
        spec["choices"] = literals
    if label and kind == "str":
        spec["syntax"] = label
    if spec.get("optional"):
        pytype += " | None"
    return spec, pytype


def _kind(rest: list[Any], literals: tuple[Any, ...], label: str | None) -> tuple[str, str]:
    if not rest:
        return "choice", "str"
    base = _base(rest[0])
    origin = typing.get_origin(base)
    if origin is tuple:
        return "list", "tuple[str, ...]"
    if origin is dict:
        return "dict", "dict[str, str]"
    if base is SecretStr:
        return "str", "str"
    names = {bool: "bool", int: "int", float: "float", str: "str"}
    return names[base], names[base]


def _item_syntax(annotation: Any) -> tuple[str | None, str | None]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple:
        return _syntax(args[0]), None
    return _syntax(args[0]), _syntax(args[1])


def entry(field_info: FieldInfo) -> tuple[dict[str, Any], str]:
    """(SPEC entry, Python type) for one field: describe's, plus item syntaxes and the default."""
    spec, pytype = describe(field_info)
    if spec["kind"] in ("list", "dict"):
        key, value = _item_syntax(field_info.annotation)
        spec["item"] = key
        if spec["kind"] == "dict":
            spec["value"] = value
    spec["default"] = field_info.get_default(call_default_factory=True)
    return spec, pytype


def specs(model: type[BaseModel] = ServerSettings) -> dict[str, dict[str, Any]]:
    """MODEL's SPEC table (what options_spec.py holds for ServerSettings); tests derive
    `deploykit serve`'s parser from a changed model's table with it."""
    return {name: entry(info)[0] for name, info in model.model_fields.items()}


def generate() -> str:
    lines = [HEADER, "", "@dataclass(frozen=True, slots=True)", "class ServerOptions:"]
    lines.append('    """The validated options of `deploykit serve` (mirrors ServerSettings)."""')
    lines.append("")
    table: dict[str, dict[str, Any]] = {}
    for name, info in ServerSettings.model_fields.items():
        spec, pytype = entry(info)
        default = spec["default"]
        if isinstance(default, dict):
            lines.append(f"    {name}: {pytype} = field(default_factory=dict)")
        else:
            lines.append(f"    {name}: {pytype} = {default!r}")
        table[name] = spec
    lines += ["", "", "SPEC: dict[str, dict[str, Any]] = {"]
    for name, spec in table.items():
        lines.append(f"    {name!r}: {spec!r},")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(generate(), end="")
