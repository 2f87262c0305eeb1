"""A FastAPI app for the raw-socket suite (tests/server/test_fastapi.py), written as its users write
one: routes, a Pydantic body, a StreamingResponse and a background task. Imported (by
tests/server/apps.py) only by the servers that run it. No ``from __future__ import annotations``:
FastAPI reads the annotations at run time, as in most FastAPI code."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel


def _note(record: str | None, text: str) -> None:
    if record:
        with Path(record).open("a") as out:
            out.write(text + "\n")


class Item(BaseModel):
    name: str
    count: int


fastapi_app = FastAPI()


@fastapi_app.get("/")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@fastapi_app.post("/items")
async def create(item: Item) -> dict[str, Any]:
    return {"name": item.name, "count": item.count * 2}


@fastapi_app.get("/stream")
async def stream(record: str | None = None) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        sent = 0
        try:
            while True:  # endless, as a feed or a token stream: only the client's leaving ends it
                yield b"data: %d\n\n" % sent
                _note(record, str(sent))
                sent += 1
                await asyncio.sleep(0.01)
        finally:
            _note(record, "closed")

    return StreamingResponse(events(), media_type="text/event-stream")


@fastapi_app.get("/background")
async def background(tasks: BackgroundTasks, record: str | None = None) -> dict[str, bool]:
    tasks.add_task(_note, record, "background ran")
    return {"queued": True}
