"""Apps for the option tests (importable by a server subprocess)."""

from __future__ import annotations

import json
import os
from typing import Any


async def info(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    client = scope["client"][0] if scope.get("client") else None
    env = os.environ.get("DK_OPTION_TEST", "")
    body = json.dumps({"scheme": scope["scheme"], "env": env, "path": scope["path"], "client": client})
    data = body.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def make_app() -> Any:
    return info
