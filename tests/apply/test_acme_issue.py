"""apply's first ACME issue on an in-memory host: the HTTP-only site is installed and
nginx reloaded before the client runs; a refusal restores everything, dirs included.
(The real thing, against Pebble, is tests/realhost/test_acme.py.)"""

from __future__ import annotations

import pytest

from deploykit.errors import ApplyFailed
from deploykit.host.base import CommandResult, FileFacts
from deploykit.host.fake import FakeHost
from tests.apply.test_engine import apply, host_with
from tests.conftest import settings_for

SITE = "/etc/nginx/sites-available/demo.conf"
CERT = "/etc/deploykit/acme/live/demo/fullchain.pem"
REFUSED = CommandResult(
    1,
    stderr="Certbot failed to authenticate some domains (authenticator: webroot). The Certificate Authority "
    "reported these problems:\n  Identifier: example.com\n  Type: dns\n  Detail: no valid A records found\n\n"
    "Hint: certbot's advice\nSome challenges have failed.\nAsk for help or search for solutions at x\n",
)


ISSUED = CommandResult(0, "Successfully received certificate.")


class Issuer:
    """certbot on the fake host: records the site nginx had when it ran, writes the certificate."""

    def __init__(self, host: FakeHost, result: CommandResult = ISSUED) -> None:
        self.host, self.result, self.site_seen = host, result, ""

    def __call__(self, argv: list[str]) -> CommandResult | None:
        if argv[1:2] != ["certonly"]:
            return None
        self.site_seen = self.host.files[SITE].content.decode()
        if self.result.ok:
            self.host.files[CERT] = FileFacts(b"cert", 0o644, "root", "root")
        return self.result


def test_first_issue_installs_the_http_only_site_reloads_then_writes_the_tls_site() -> None:
    settings, host = settings_for("tls"), host_with()
    host.hook = issuer = Issuer(host)
    report = apply(host, settings).report
    names = [s.name for s in report.steps]
    assert names.index("certificate") < names.index("write files")
    assert "issued a certificate for example.com, www.example.com (HTTP-01 through the HTTP-only site)" in [
        s.detail for s in report.steps
    ]
    # the client ran against the HTTP-only site: the app and the challenge location on port 80, no TLS
    assert "location ^~ /.well-known/acme-challenge/" in issuer.site_seen and "ssl_certificate" not in issuer.site_seen
    order = [" ".join(a) for a in host.commands]
    certonly = next(i for i, a in enumerate(order) if " certonly " in a)
    assert order.index("systemctl reload-or-restart nginx.service") < certonly
    assert "ssl_certificate /etc/deploykit/acme/live/demo/fullchain.pem;" in host.files[SITE].content.decode()
    assert host.dir_modes["/etc/deploykit/acme"] == 0o700
    assert ["systemctl", "enable", "--now", "demo-acme-renew.timer"] in host.commands


def test_a_certificate_already_there_is_kept_and_no_http_only_site_is_installed() -> None:
    settings, host = settings_for("tls"), host_with()
    host.files[CERT] = FileFacts(b"cert", 0o644, "root", "root")
    host.hook = issuer = Issuer(host, CommandResult(0, "Certificate not yet due for renewal; no action taken."))
    host.files[SITE] = FileFacts(b"# the site serving before\n", 0o644, "root", "root")
    report = apply(host, settings).report
    assert "kept the certificate for example.com, www.example.com" in [s.detail for s in report.steps]
    assert issuer.site_seen == "# the site serving before\n"


def test_a_refused_first_issue_restores_the_host_and_quotes_the_ca() -> None:
    settings, host = settings_for("tls"), host_with()
    host.hook = Issuer(host, REFUSED)
    with pytest.raises(ApplyFailed) as caught:
        apply(host, settings)
    error = caught.value
    assert error.restored
    assert str(error).startswith("certificate failed: the ACME server refused the certificate: Certbot failed")
    assert "Identifier: example.com; Type: dns; Detail: no valid A records found" in str(error)
    assert "certbot's advice" not in str(error) and "Ask for help" not in str(error)
    assert error.hint is not None and error.hint.startswith("Every server name must resolve to this host")
    # exactly as before: no site, no link, no ACME folders, nginx reloaded back onto the old config
    assert not any(path.startswith(("/etc/nginx", "/etc/systemd", "/etc/deploykit")) for path in host.files)
    assert "/etc/nginx/sites-enabled/demo.conf" not in host.links
    assert not {"/etc/deploykit/acme", "/var/www/letsencrypt"} & host.dirs
    reloads = [a for a in host.commands if a == ["systemctl", "reload-or-restart", "nginx.service"]]
    assert len(reloads) == 2  # the HTTP-only site in, then the old configuration back


def test_the_renewal_window_is_pinned_to_30_days_in_the_clients_settings() -> None:
    settings, host = settings_for("tls"), host_with()
    conf = "/etc/deploykit/acme/renewal/demo.conf"
    written = (
        "# renew_before_expiry = 30 days\nversion = 5.8.0\narchive_dir = /x\n\n[renewalparams]\nkey_type = ecdsa\n"
    )
    host.files[conf] = FileFacts(written.encode(), 0o644, "root", "root")
    host.hook = Issuer(host)
    apply(host, settings)
    lines = host.files[conf].content.decode().split("\n")
    assert lines[:3] == ["version = 5.8.0", "renew_before_expiry = 30 days", "archive_dir = /x"]
    assert lines.count("renew_before_expiry = 30 days") == 1 and "[renewalparams]" in lines
