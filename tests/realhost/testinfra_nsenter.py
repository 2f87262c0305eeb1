"""A testinfra backend for a container reached through nsenter (testinfra has
none): ``testinfra_host(leader)`` gives a ``testinfra.host.Host`` whose
commands run inside the container with a clean environment."""

from __future__ import annotations

from typing import Any

import testinfra
import testinfra.backend
from testinfra.backend import base

from tests.realhost.host import PATH


class NsenterBackend(base.BaseBackend):
    NAME = "nsenter"

    def __init__(self, hostname: str, *args: Any, **kwargs: Any) -> None:
        self.leader = int(hostname)
        super().__init__(hostname, *args, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        inner = self.get_command(command, *args)
        result = self.run_local("nsenter -t %s -a env -i %s LANG=C.UTF-8 /bin/sh -c %s", str(self.leader), PATH, inner)
        result.command = self.encode(inner)
        return result


testinfra.backend.BACKENDS["nsenter"] = f"{__name__}.NsenterBackend"


def testinfra_host(leader: int) -> Any:
    return testinfra.get_host(f"nsenter://{leader}")
