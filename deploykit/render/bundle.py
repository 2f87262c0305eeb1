"""What a render produces: files with their content, mode and owner."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath


class Kind(StrEnum):
    NGINX_SITE = "nginx-site"
    GUNICORN_CONF = "gunicorn-conf"
    SERVICE_UNIT = "service-unit"
    SOCKET_UNIT = "socket-unit"
    ENV_FILE = "env-file"
    PROCESS_UNIT = "process-unit"
    TIMER_UNIT = "timer-unit"
    ACME_SERVICE = "acme-renew-service"
    ACME_TIMER = "acme-renew-timer"


#: the kinds of systemd unit files; a process's or timer's units are named by settings/processes.py
UNIT_KINDS = frozenset(
    {Kind.SERVICE_UNIT, Kind.SOCKET_UNIT, Kind.PROCESS_UNIT, Kind.TIMER_UNIT, Kind.ACME_SERVICE, Kind.ACME_TIMER}
)


#: the env file holds secrets: only root reads it (systemd reads it before dropping privileges)
ENV_FILE_MODE = 0o600


@dataclass(frozen=True)
class RenderedFile:
    path: str
    kind: Kind
    content: str
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    secret: bool = False

    def relative(self) -> PurePosixPath:
        """The host path without its leading '/', for writing under another root."""
        return PurePosixPath(self.path).relative_to("/")


@dataclass(frozen=True)
class Bundle:
    """An ordered, immutable set of rendered files, keyed by their host path."""

    files: tuple[RenderedFile, ...]

    def __iter__(self) -> Iterator[RenderedFile]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def by_kind(self, kind: Kind) -> RenderedFile | None:
        return next((f for f in self.files if f.kind is kind), None)

    def as_mapping(self) -> Mapping[str, RenderedFile]:
        return {f.path: f for f in self.files}
