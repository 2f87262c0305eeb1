"""[nginx.tls.acme]: what the model fills in, and every refusal naming its field and source."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploykit.errors import SettingsError
from deploykit.settings import acme
from deploykit.settings.load import load
from deploykit.tls import certbot
from tests.conftest import settings_for

WALK_CA = Path(__file__).parents[1] / "render" / "walk-ca.pem"


def problems(*overrides: str) -> tuple[str, ...]:
    with pytest.raises(SettingsError) as info:
        settings_for("tls", *overrides)
    return info.value.problems


def test_acme_fills_the_managed_certificate_paths_and_names_come_from_server_names() -> None:
    settings = settings_for("tls", 'nginx.server_names=["shop.example.com", "www.shop.example.com"]')
    tls = settings.nginx.tls
    assert tls is not None and tls.acme is not None
    assert (tls.cert_path, tls.key_path) == (
        "/etc/deploykit/acme/live/demo/fullchain.pem",
        "/etc/deploykit/acme/live/demo/privkey.pem",
    )
    argv = certbot.issue_argv(settings)
    assert argv[:2] == ["/opt/deploykit/bin/certbot", "certonly"]
    assert argv[argv.index("--server") + 1] == "https://acme-v02.api.letsencrypt.org/directory"
    domains = [argv[i + 1] for i, word in enumerate(argv) if word == "--domain"]
    assert domains == ["shop.example.com", "www.shop.example.com"]
    assert argv[argv.index("--key-type") + 1] == "ecdsa" and "--register-unsafely-without-email" in argv


def test_named_directories_urls_key_type_and_email() -> None:
    settings = settings_for(
        "tls",
        'nginx.tls.acme.directory="staging"',
        'nginx.tls.acme.key_type="rsa"',
        'nginx.tls.acme.email="ops@example.com"',
        f'nginx.tls.acme.ca_bundle="{WALK_CA}"',
    )
    argv = certbot.issue_argv(settings)
    assert argv[:2] == ["env", f"REQUESTS_CA_BUNDLE={WALK_CA}"]
    assert argv[argv.index("--server") + 1] == "https://acme-staging-v02.api.letsencrypt.org/directory"
    assert argv[argv.index("--rsa-key-size") + 1] == "2048"
    assert argv[argv.index("--email") + 1] == "ops@example.com"
    url = settings_for("tls", 'nginx.tls.acme.directory="https://10.0.0.1:14000/dir"').nginx.tls
    assert url is not None and url.acme is not None and url.acme.directory_url == "https://10.0.0.1:14000/dir"


def test_acme_can_be_switched_on_with_true_and_off_over_a_profile_with_false() -> None:
    on = settings_for(None, "nginx.tls.acme=true", 'nginx.server_names=["a.example"]').nginx.tls
    assert on is not None and on.acme is not None
    given = ('nginx.tls.certificate="/c.pem"', 'nginx.tls.certificate_key="/k"')
    off = settings_for("tls", "nginx.tls.acme=false", *given)
    assert off.nginx.tls is not None and off.nginx.tls.acme is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("_", "'_' (the catch-all) is not a name a certificate can hold"),
        ("*.example.com", "'*.example.com' is a wildcard: only DNS-01 validates those"),
        ("192.0.2.7", "'192.0.2.7' is an IP address"),
    ],
)
def test_names_http01_cannot_validate_are_refused(name: str, why: str) -> None:
    (problem,) = problems(f'nginx.server_names=["ok.example", "{name}"]')
    assert problem.startswith("--set nginx.server_names: nginx.server_names: server_names[1]: " + why), problem


def test_listen_other_than_80_is_refused_saying_port_80_must_reach_nginx() -> None:
    (problem,) = problems("nginx.listen=8080")
    assert problem.startswith("--set nginx.listen: nginx.listen: listen is 8080 but acme validates by HTTP-01")
    assert "port 80 must reach nginx" in problem


def test_ca_bundle_must_be_a_readable_pem(tmp_path: Path) -> None:
    (missing,) = problems(f'nginx.tls.acme.ca_bundle="{tmp_path}/none.pem"')
    assert missing.startswith("--set nginx.tls.acme.ca_bundle: nginx.tls.acme.ca_bundle")
    assert "cannot read (No such file or directory)" in missing
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    (not_pem,) = problems(f'nginx.tls.acme.ca_bundle="{junk}"')
    assert "holds no PEM certificate" in not_pem and not_pem.startswith("--set nginx.tls.acme.ca_bundle")


def test_email_directory_and_hand_given_paths_are_checked() -> None:
    (email,) = problems('nginx.tls.acme.email="not an address"')
    assert email.startswith("--set nginx.tls.acme.email: ") and "is not an email address" in email
    (directory,) = problems('nginx.tls.acme.directory="http://plain.example/dir"')
    assert directory.startswith("--set nginx.tls.acme.directory: ") and "https:// URL" in directory
    (by_hand,) = problems('nginx.tls.certificate="/etc/ssl/mine.pem"')
    assert by_hand.startswith("--set nginx.tls.certificate: ") and "leave certificate unset" in by_hand


def test_email_is_required_where_the_directory_requires_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """No shipped directory requires one today (Let's Encrypt accepts accounts without a
    contact); a directory entry that says so makes email required."""
    monkeypatch.setitem(acme.DIRECTORIES, "strict-ca", ("https://ca.example/dir", True))
    (problem,) = problems('nginx.tls.acme.directory="strict-ca"')
    assert "requires an account email" in problem and "nginx.tls.acme.email" in problem
    settings_for("tls", 'nginx.tls.acme.directory="strict-ca"', 'nginx.tls.acme.email="a@ca.example"')


def test_hsts_preload_needs_the_preload_list_rules() -> None:
    (problem,) = problems("nginx.tls.hsts_preload=true", "nginx.tls.hsts_include_subdomains=false")
    assert "hsts_preload needs" in problem and problem.startswith("--set nginx.tls.hsts_")


def test_a_project_file_error_names_the_file(tmp_path: Path) -> None:
    project = tmp_path / "deploykit.toml"
    project.write_text('profile = "tls"\n[app]\nname = "shop"\n[nginx]\nserver_names = ["*.shop.example"]\n')
    with pytest.raises(SettingsError) as info:
        load(project=project, environ={})
    assert info.value.problems[0].startswith(f"{project}: nginx.server_names: server_names[0]: '*.shop.example'")


def test_init_with_the_tls_profile_writes_settings_that_work_for_the_names_given(tmp_path: Path) -> None:
    """The profile's own example.com paths used to stay in place; with ACME the names are the SANs."""
    from deploykit.project import init_project

    target = init_project(tmp_path, profile="tls", name="shop", module="app:app", server_names=["shop.example.com"])
    settings = load(project=target, environ={}).settings
    tls = settings.nginx.tls
    assert tls is not None and tls.acme is not None
    assert tls.cert_path == "/etc/deploykit/acme/live/shop/fullchain.pem"
    assert settings.nginx.server_names == ("shop.example.com",)
    assert [
        w for i, w in enumerate(certbot.issue_argv(settings)) if i and certbot.issue_argv(settings)[i - 1] == "--domain"
    ] == ["shop.example.com"]
    with pytest.raises(SettingsError, match="server_names"):
        init_project(tmp_path / "bad", profile="tls", name="shop", module="app:app", server_names=["_"])
