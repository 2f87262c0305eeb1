"""The descriptor guard picks whom to close: no request in flight, half-read heads before idle
keep-alive connections, the oldest first; and it counts again only after a margin of new connections."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from deploykit.server.fdlimit import FdGuard


@dataclass(eq=False)
class Conn:
    rank: tuple[int, float] | None
    name: str

    @property
    def transport(self) -> asyncio.Transport:
        raise AssertionError("the guard only picks; the state closes")

    def shed_rank(self) -> tuple[int, float] | None:
        return self.rank


def test_the_guard_closes_half_heads_oldest_first_then_idle_ones_never_busy_ones() -> None:
    used = [0]
    guard = FdGuard(256, count=lambda: used[0])
    assert guard.margin == 16 and guard.check_at == 240
    conns = [
        Conn(None, "busy"),
        Conn((1, 5.0), "idle-old"),
        Conn((0, 9.0), "head-new"),
        Conn((0, 3.0), "head-old"),
        Conn((1, 7.0), "idle-new"),
    ]
    used[0] = 256 - 16 + 4  # within the margin: close down to the low-water mark (224), as far as it can
    picked = [c.name for c in guard.check(conns) if isinstance(c, Conn)]
    assert picked == ["head-old", "head-new", "idle-old", "idle-new"]
    assert guard.check_at == len(conns) - 4 + 16  # not again until a margin of new connections
    used[0] = 256 - 40  # well below: recalibrate, close nothing
    assert guard.check(conns) == []
    assert guard.check_at == 256 - 16 - (used[0] - len(conns))


def test_exhausted_sheds_even_when_the_count_looks_fine() -> None:
    guard = FdGuard(256, count=lambda: 10)
    conns = [Conn((0, float(i)), str(i)) for i in range(40)]
    picked = guard.check(conns, exhausted=True)
    assert [c.name for c in picked if isinstance(c, Conn)] == [str(i) for i in range(32)]  # down to 224 open
