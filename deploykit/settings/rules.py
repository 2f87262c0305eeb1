"""Cross-field rules of the server options, with no pydantic import: the
ServerSettings model (settings/server.py) and `deploykit serve`'s option
validator (server/options.py) both apply this table, so each rule is written
once and both sources of options get the same verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Options that mean nothing alone: a group is set in full or not at all (None is unset).
#: A TLS key needs its certificate and a certificate its key.
SET_TOGETHER: tuple[tuple[str, ...], ...] = (("ssl_keyfile", "ssl_certfile"),)


def set_in_part(values: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The groups of SET_TOGETHER that VALUES (field -> value; absent means unset) sets only in part."""
    return [group for group in SET_TOGETHER if len({values.get(name) is None for name in group}) > 1]


def together(names: Sequence[str]) -> str:
    """The error for a group set in part, naming every member (as fields, or as flags)."""
    return f"{' and '.join(names)} must be set together"
