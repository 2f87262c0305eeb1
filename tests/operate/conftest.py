"""A FakeHost that answers like the real-host container after `deploykit apply`
(canned `systemctl show`, ps, stat, id, ss, df, timedatectl and probe output,
and a release recorded by the real ReleaseStore), for the operate unit tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from deploykit.apply.releases import ReleaseStore
from deploykit.facts import HostState
from deploykit.host.base import CommandResult, FileFacts
from deploykit.host.fake import FakeHost
from deploykit.render import render
from deploykit.settings.model import Settings
from tests.conftest import settings_for

SERVICE_SHOW = """\
Id=demo.service
LoadState=loaded
ActiveState=active
SubState=running
MainPID=105
StatusText=2 workers, 1234 requests served
NRestarts=0
ActiveEnterTimestamp=@1795853881
UnitFileState=disabled
"""
SOCKET_SHOW = """\
Id=demo.socket
LoadState=loaded
ActiveState=active
SubState=listening
MainPID=0
StatusText=
NRestarts=0
ActiveEnterTimestamp=@1795853880
UnitFileState=enabled
"""
NGINX_SHOW = """\
Id=nginx.service
LoadState=loaded
ActiveState=active
SubState=running
MainPID=38
StatusText=
NRestarts=0
ActiveEnterTimestamp=@1795853845
UnitFileState=enabled
"""
SS_NGINX = (
    'LISTEN 0      511    0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=112,fd=5),("nginx",pid=38,fd=5))\n'
    'LISTEN 0      511       [::]:80    [::]:* users:(("nginx",pid=112,fd=6),("nginx",pid=38,fd=6))\n'
)
DF = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda 264212084 24175664 82215248 23% /\n"
HEALTHY_PROBE = {
    "socket": {"status": 200, "error": "", "seconds": 0.002},
    "nginx": {"status": 200, "error": "", "seconds": 0.004},
}


TIMER_SHOW = "UnitFileState=enabled\nNextElapseUSecRealtime=Mon 2026-11-30 12:40:38 UTC\n"
RENEW_SHOW = "Result=success\nExecMainExitTimestamp=Mon 2026-11-30 00:40:38 UTC\n"


@dataclass
class Canned:
    """Answers by command; tests change single entries to break one thing."""

    show: dict[str, str] = field(default_factory=lambda: {"demo.service": SERVICE_SHOW, "demo.socket": SOCKET_SHOW,
                                                          "nginx.service": NGINX_SHOW,
                                                          "demo-acme-renew.timer": TIMER_SHOW,
                                                          "demo-acme-renew.service": RENEW_SHOW})  # fmt: skip
    children: str = "  107\n  108\n"
    socket_stat: CommandResult = field(default_factory=lambda: CommandResult(0, "660 root www-data socket\n"))
    nginx_groups: CommandResult = field(default_factory=lambda: CommandResult(0, "www-data\n"))
    ss: dict[int, str] = field(default_factory=lambda: {80: SS_NGINX})
    df: dict[str, CommandResult] = field(default_factory=dict)
    is_failed: str = "active\nactive\nactive\n"
    journal_cat: str = ""
    ntp: CommandResult = field(default_factory=lambda: CommandResult(0, "yes\n"))
    container: bool = False
    probe: dict[str, object] = field(default_factory=lambda: dict(HEALTHY_PROBE))
    journal: str = ""
    offset: str = "+0000\n"

    def answer(self, argv: list[str]) -> CommandResult | None:
        name = argv[0]
        if argv[:2] == ["systemctl", "show"]:
            return CommandResult(
                0, self.show.get(argv[-1], f"Id={argv[-1]}\nLoadState=not-found\nActiveState=inactive\n")
            )
        if argv[:2] == ["systemctl", "is-failed"]:
            return CommandResult(0 if "failed" in self.is_failed else 1, self.is_failed)
        if name == "ps":
            return CommandResult(0, self.children)
        if name == "stat":
            return self.socket_stat
        if name == "id":
            return self.nginx_groups
        if name == "ss":
            return CommandResult(0, self.ss.get(int(argv[-1].rsplit(":", 1)[1]), ""))
        if name == "df":
            return self.df.get(argv[-1], CommandResult(0, DF))
        if name == "timedatectl":
            return self.ntp
        if name == "systemd-detect-virt":
            return CommandResult(0 if self.container else 1, "systemd-nspawn\n" if self.container else "none\n")
        if name == "python3":
            return CommandResult(0, json.dumps(self.probe))
        if name == "journalctl":
            return CommandResult(0, self.journal_cat if "cat" in argv else self.journal)
        if name == "date":
            return CommandResult(0, self.offset)
        return None


def deployed_host(settings: Settings, canned: Canned) -> FakeHost:
    """The rendered stack installed, with release 1 recorded as applied, answering with CANNED."""
    host = FakeHost(hook=canned.answer)
    bundle = render(settings)
    store = ReleaseStore(host, settings.paths.state_dir)
    release = store.begin(bundle, HostState(), "apply")
    store.finish(release, "applied")
    for file in bundle:
        host.files[file.path] = FileFacts(file.content.encode(), file.mode, file.owner, file.group)
    host.links[settings.paths.nginx_site_enabled] = settings.paths.nginx_site
    return host


@pytest.fixture
def settings() -> Settings:
    return settings_for("websocket")


@pytest.fixture
def canned() -> Canned:
    return Canned()


@pytest.fixture
def host(settings: Settings, canned: Canned) -> FakeHost:
    return deployed_host(settings, canned)
