"""Each doctor finding, triggered and not, from canned facts and through `diagnose` on a FakeHost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from deploykit.host.base import CommandResult, FileFacts
from deploykit.host.fake import FakeHost
from deploykit.host.staging import StagingHost
from deploykit.operate.doctor import (
    clock_findings,
    diagnose,
    disk_findings,
    port_findings,
    socket_findings,
    unit_findings,
)
from deploykit.operate.parse import DiskUsage, Listener, PathStat
from deploykit.operate.status import Units
from deploykit.settings.model import Settings
from tests.conftest import settings_for
from tests.operate.conftest import Canned, deployed_host

UNITS = Units("demo.service", "demo.socket")
SOCK = "/run/demo.sock"


def found(host: FakeHost, settings: Settings) -> list[tuple[str, str, str]]:
    """(check, severity, message) of every finding that counts."""
    return [(f.check, f.severity, f.message) for f in diagnose(host, settings).findings if f.counts]


def test_a_healthy_host_is_clean(host: FakeHost, settings: Settings) -> None:
    report = diagnose(host, settings)
    assert not report.failed and report.findings == ()
    names = ["units", "socket", "port", "drift", "certificate", "renewal", "disk", "clock"]
    assert [r.name for r in report.results] == names


# socket permissions
def test_socket_nginx_can_use() -> None:
    assert (
        socket_findings(SOCK, PathStat(0o660, "root", "www-data", "socket"), "www-data", {"www-data"}, UNITS, "0660")
        == []
    )


def test_socket_nginx_cannot_use() -> None:
    [finding] = socket_findings(
        SOCK, PathStat(0o600, "root", "www-data", "socket"), "www-data", {"www-data"}, UNITS, "0660"
    )
    assert finding.severity == "error" and finding.file == SOCK
    assert (
        "nginx (user www-data, groups www-data) cannot connect to /run/demo.sock: it is 0600 root:www-data"
        in finding.message
    )
    assert finding.hint is not None and "chmod 0660 /run/demo.sock" in finding.hint
    assert "systemctl restart demo.socket demo.service" in finding.hint


def test_socket_missing_not_a_socket_or_no_nginx_user() -> None:
    assert "does not exist" in socket_findings(SOCK, None, "www-data", {"www-data"}, UNITS, "0660")[0].message
    regular = PathStat(0o644, "root", "root", "regular file")
    assert (
        "is a regular file, not a socket" in socket_findings(SOCK, regular, "www-data", set(), UNITS, "0660")[0].message
    )
    ok = PathStat(0o660, "root", "www-data", "socket")
    assert "nginx.user 'nginx' does not exist" in socket_findings(SOCK, ok, "nginx", None, UNITS, "0660")[0].message


def test_socket_permissions_through_the_host(host: FakeHost, settings: Settings, canned: Canned) -> None:
    canned.socket_stat = CommandResult(0, "600 root www-data socket\n")
    assert [c for c, _, _ in found(host, settings)] == ["socket"]


# port 80
def test_port_held_by_nginx() -> None:
    assert (
        port_findings(80, [Listener("0.0.0.0:80", ("nginx",), (38, 112)), Listener("[::]:80", ("nginx",), (38,))]) == []
    )


def test_port_held_by_something_else() -> None:
    [finding] = port_findings(80, [Listener("*:80", ("apache2",), (900, 901))])
    assert finding.severity == "error" and finding.message == "port 80 is held by apache2 (pid 900, 901), not nginx"


def test_port_free_or_held_by_an_unnamed_process() -> None:
    assert port_findings(80, [])[0].message == "nothing listens on port 80"
    assert port_findings(80, [Listener("0.0.0.0:80", (), ())])[0].severity == "warning"


def test_port_squatter_through_the_host(host: FakeHost, settings: Settings, canned: Canned) -> None:
    canned.ss[80] = 'LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("python3",pid=4242,fd=3))\n'
    assert found(host, settings) == [("port", "error", "port 80 is held by python3 (pid 4242), not nginx")]
    assert ["ss", "-ltnpH", "sport = :80"] in host.commands


def test_tls_port_is_checked_too(canned: Canned) -> None:
    tls = settings_for("tls", 'nginx.server_names=["shop.example"]')
    host = deployed_host(tls, canned)
    host.files[tls.nginx.tls.cert_path] = FileFacts(b"x", 0o644, "root", "root")  # type: ignore[union-attr]
    diagnose(host, tls)
    assert ["ss", "-ltnpH", "sport = :443"] in host.commands


# units
def test_units_active_or_idle() -> None:
    assert unit_findings({"demo.service": "inactive", "demo.socket": "active", "nginx.service": "active"}, {},
                         {"demo.service"}) == []  # fmt: skip


def test_a_failed_unit_with_its_last_log_lines() -> None:
    states = {"demo.service": "failed", "demo.socket": "active", "nginx.service": "inactive"}
    findings = unit_findings(states, {"demo.service": "ModuleNotFoundError: No module named 'app'\n"}, set())
    assert [f.message for f in findings] == [
        "demo.service has failed; its last log lines:\nModuleNotFoundError: No module named 'app'",
        "nginx.service is inactive",
    ]
    assert findings[0].hint == "fix the cause, then systemctl reset-failed demo.service && systemctl start demo.service"


def test_failed_unit_through_the_host(host: FakeHost, settings: Settings, canned: Canned) -> None:
    canned.is_failed = "failed\nactive\nactive\n"
    canned.journal_cat = "boom\n"
    assert found(host, settings) == [("units", "error", "demo.service has failed; its last log lines:\nboom")]
    assert ["journalctl", "-u", "demo.service", "-n", "10", "-o", "cat", "--no-pager"] in host.commands


# disk
def test_disk_thresholds_and_one_finding_per_filesystem() -> None:
    root, srv = DiskUsage("/dev/vda", 91, 2048, "/"), DiskUsage("/dev/vdb", 98, 1024, "/srv")
    usage = [("/var/lib/deploykit/demo", root), ("/var/log", root), ("/srv/demo", srv)]
    findings = disk_findings(usage)
    assert [(f.severity, f.message) for f in findings] == [
        ("warning", "/ is 91% full (2 MiB free; holds /var/lib/deploykit/demo, /var/log)"),
        ("error", "/srv is 98% full (1 MiB free; holds /srv/demo)"),
    ]
    assert disk_findings([("/var/log", DiskUsage("/dev/vda", 90, 10, "/"))]) == []


def test_disk_through_the_host_skips_missing_paths(host: FakeHost, settings: Settings, canned: Canned) -> None:
    full = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vdb 100 98 2 98% /var/log\n"
    canned.df = {"/var/log": CommandResult(0, full), "/srv/demo": CommandResult(1, "", "df: /srv/demo: No such file")}
    assert found(host, settings) == [("disk", "error", "/var/log is 98% full (0 MiB free; holds /var/log)")]


# clock
def test_clock_synchronised() -> None:
    assert clock_findings(CommandResult(0, "yes\n"), container=False) == []


def test_clock_not_synchronised() -> None:
    [finding] = clock_findings(CommandResult(0, "no\n"), container=False)
    assert finding.severity == "warning" and "timedatectl set-ntp true" in (finding.hint or "")


def test_clock_in_a_container_or_unknown_is_only_information() -> None:
    assert clock_findings(CommandResult(0, "no\n"), container=True)[0].severity == "info"
    missing = clock_findings(CommandResult(127, "", "timedatectl: not found"), container=False)
    assert [(f.severity, f.message) for f in missing] == [
        ("info", "clock synchronisation unknown: timedatectl is not installed")
    ]
    no_bus = clock_findings(CommandResult(1, "", "Failed to connect to bus"), container=False)
    assert no_bus[0].severity == "info" and "unknown" in no_bus[0].message


def test_clock_through_the_host(host: FakeHost, settings: Settings, canned: Canned) -> None:
    canned.ntp = CommandResult(0, "no\n")
    assert found(host, settings) == [("clock", "warning", "the clock is not NTP-synchronised")]
    canned.container = True
    assert found(host, settings) == []


# drift
def test_a_file_edited_by_hand_is_named(host: FakeHost, settings: Settings) -> None:
    site = settings.paths.nginx_site
    before = host.files[site]
    host.files[site] = FileFacts(before.content + b"# hand edit\n", before.mode, before.owner, before.group)
    [(check, severity, message)] = found(host, settings)
    assert (check, severity) == ("drift", "warning")
    assert message.startswith(f"{site} was changed on the host since release ")


def test_a_deleted_file_and_a_changed_mode(host: FakeHost, settings: Settings) -> None:
    del host.files[settings.paths.socket_unit]
    env = host.files[settings.paths.env_file]
    host.files[settings.paths.env_file] = FileFacts(env.content, 0o644, env.owner, env.group)
    messages = [m for _, _, m in found(host, settings)]
    assert any(m.startswith(f"{settings.paths.socket_unit} was deleted since release") for m in messages)
    assert any(
        m.startswith(f"{settings.paths.env_file} is mode 0644, release") and "installed 0600" in m for m in messages
    )


def test_settings_changed_since_the_release_are_pending(host: FakeHost, canned: Canned) -> None:
    changed = settings_for("websocket", "app.env.DEMO_GREETING=new")
    [(check, severity, message)] = found(host, changed)
    assert (check, severity) == ("drift", "warning")
    assert message.startswith("pending changes: the settings render 1 file(s) differently from release ")
    assert message.endswith(": /etc/default/demo")


def test_no_release_recorded(settings: Settings, canned: Canned) -> None:
    assert found(FakeHost(hook=canned.answer), settings) == [
        ("drift", "warning", "no release recorded: this stack was not installed by deploykit apply")
    ]


def test_a_current_release_without_its_manifest(host: FakeHost, settings: Settings) -> None:
    host.files[f"{settings.paths.state_dir}/current"] = FileFacts(b"20200101T000000000Z\n", 0o600, "root", "root")
    [(check, severity, message)] = found(host, settings)
    assert (check, severity) == ("drift", "error") and "no release '20200101T000000000Z'" in message


# certificate (real openssl on a copy read from the host)


def tls_host(canned: Canned, cert: Path | None) -> tuple[FakeHost, Settings]:
    settings = settings_for("tls", 'nginx.server_names=["shop.example"]', "nginx.tls.ocsp_stapling=off")
    canned.ss[443] = canned.ss[80]
    host = deployed_host(settings, canned)
    if cert is not None:
        host.files[settings.nginx.tls.cert_path] = FileFacts(cert.read_bytes(), 0o644, "root", "root")  # type: ignore[union-attr]
    return host, settings


@pytest.mark.tools
def test_certificate_valid_for_long(self_signed: Callable[..., tuple[Path, Path]], canned: Canned) -> None:
    host, settings = tls_host(canned, self_signed(days=90)[0])
    assert found(host, settings) == []


@pytest.mark.tools
def test_certificate_expiring_soon(self_signed: Callable[..., tuple[Path, Path]], canned: Canned) -> None:
    host, settings = tls_host(canned, self_signed(days=3)[0])
    cert = settings.nginx.tls.certificate  # type: ignore[union-attr]
    assert found(host, settings) == [("certificate", "warning", f"{cert}: the certificate expires within 14 days")]


@pytest.mark.tools
def test_certificate_unparsable_or_missing(canned: Canned, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    host, settings = tls_host(canned, garbage)
    cert = settings.nginx.tls.certificate  # type: ignore[union-attr]
    assert found(host, settings) == [
        ("certificate", "error", f"{cert}: the certificate has expired or cannot be parsed")
    ]
    host, settings = tls_host(canned, None)
    assert found(host, settings) == [("certificate", "error", f"{cert} does not exist on the host")]


# a staging root
def test_on_a_staging_root_only_file_checks_run(tmp_path: Path, settings: Settings) -> None:
    report = diagnose(StagingHost(tmp_path), settings)
    assert {r.name: r.ran for r in report.results} == {
        "units": False, "socket": False, "port": False, "drift": True, "certificate": True, "renewal": False,
        "disk": False, "clock": False,
    }  # fmt: skip
    assert [f.message for f in report.findings] == [
        "no release recorded: this stack was not installed by deploykit apply"
    ]


def test_a_failed_last_renewal_and_a_disabled_timer_are_errors_with_the_log(canned: Canned) -> None:
    settings = settings_for("tls", 'nginx.server_names=["shop.example"]')
    canned.ss[443] = canned.ss[80]
    host = deployed_host(settings, canned)
    canned.show["demo-acme-renew.service"] = "Result=exit-code\nExecMainExitTimestamp=Mon 2026-11-30 00:40:38 UTC\n"
    canned.show["demo-acme-renew.timer"] = "UnitFileState=disabled\nNextElapseUSecRealtime=\n"
    canned.journal_cat = "urn:acme:error:rateLimited\n"  # the renewal unit's log
    found = [f for f in diagnose(host, settings).findings if f.check == "renewal"]
    assert [(f.severity, f.message.split("\n")[0]) for f in found] == [
        ("error", "demo-acme-renew.timer is not enabled"),
        ("error", "the last renewal failed (exit-code, Mon 2026-11-30 00:40:38 UTC):"),
    ]
    assert found[1].message.endswith("urn:acme:error:rateLimited") and found[1].hint == "deploykit renew"
