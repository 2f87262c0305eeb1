"""``deploykit_set_args``: settings overrides (a dict shaped like deploykit.toml)
-> ``["--set", "section.field=VALUE", ...]``, one pair per leaf.

Each VALUE is written as TOML, which is how deploykit reads a ``--set`` value
(deploykit/settings/load.py ``override_source``), so strings, numbers, booleans,
lists and lists of tables arrive with their types. A nested dict becomes
deeper dotted keys and merges into the project file's table instead of
replacing it (``{"app": {"env": {"A": "1"}}}`` adds one variable).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

try:
    from ansible.errors import AnsibleFilterError  # type: ignore[import-untyped]
except ImportError:  # the unit tests import this file without Ansible
    AnsibleFilterError = ValueError


def toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, Mapping):
        items = (f"{toml_string(str(key))} = {toml_value(item, f'{where}.{key}')}" for key, item in value.items())
        return "{ " + ", ".join(items) + " }" if value else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item, f"{where}[{i}]") for i, item in enumerate(value)) + "]"
    raise AnsibleFilterError(f"deploykit setting {where}: {type(value).__name__} values have no TOML form")


def toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def set_args(settings: Mapping[str, Any] | None) -> list[str]:
    args: list[str] = []

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for raw, value in node.items():
            key = str(raw)
            if not key or "." in key or "=" in key:
                raise AnsibleFilterError(f"deploykit setting key {prefix + key!r}: empty, or holds '.' or '='")
            dotted = prefix + key
            if isinstance(value, Mapping) and value:
                walk(value, dotted + ".")
            else:
                args.extend(["--set", f"{dotted}={toml_value(value, dotted)}"])

    walk(settings or {}, "")
    return args


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"deploykit_set_args": set_args}
