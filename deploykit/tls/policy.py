"""Mozilla's server-side TLS profiles, read from their published guidelines
(``mozilla-guidelines-5.8.json``: the fields nginx needs, copied from the URL
it names on the date it gives). The site renders the chosen profile's
protocols, ciphers and curves, with a comment naming the version and date.

DHE suites are left out: they need an ``ssl_dhparam`` file deploykit does not
manage, and every client of the intermediate profile has an ECDHE suite."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

DATA = "mozilla-guidelines-5.8.json"
Name = Literal["intermediate", "modern"]


@dataclass(frozen=True)
class Policy:
    name: str
    protocols: str  # nginx ssl_protocols
    ciphers: str  # nginx ssl_ciphers ("" for TLS 1.3 only: its suites are not configurable)
    curves: str  # nginx ssl_ecdh_curve
    prefer_server_ciphers: bool
    source: str  # the comment above the directives


@cache
def _data() -> dict[str, object]:
    text = resources.files("deploykit.tls").joinpath(DATA).read_text(encoding="utf-8")
    return dict(json.loads(text))


def policy(name: Name) -> Policy:
    data = _data()
    config = data["configurations"][name]  # type: ignore[index]
    ciphers = [c for c in config["openssl_ciphers"] if not c.startswith("DHE-")]
    return Policy(
        name=name,
        protocols=" ".join(config["tls_versions"]),
        ciphers=":".join(ciphers),
        curves=":".join(config["tls_curves"]),
        prefer_server_ciphers=bool(config["server_preferred_order"]),
        source=f"Mozilla {name} (guidelines {data['version']}, {data['source']}, copied {data['copied']})",
    )
