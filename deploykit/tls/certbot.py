"""certbot's command lines for [nginx.tls.acme] (pure: argv lists, never a shell).

Everything the client keeps lives under ``acme.config_dir`` (root only):
the account key, ``archive/`` and ``live/<app>/`` (the certificate, chain and
key nginx reads), ``renewal/<app>.conf``, and its work and log folders. The
certificate's name (``--cert-name``) is the app's name, so two apps on one host
keep two certificates."""

from __future__ import annotations

from deploykit.settings.acme import AcmeSettings
from deploykit.settings.model import Settings

#: what nginx gets after a renewal: a reload (new workers read the new files), never a restart
RELOAD_NGINX = "systemctl reload nginx.service"


def acme_of(settings: Settings) -> AcmeSettings | None:
    tls = settings.nginx.tls
    return tls.acme if tls is not None else None


def _common(acme: AcmeSettings) -> list[str]:
    return [
        "--non-interactive",
        "--config-dir",
        acme.config_dir,
        "--work-dir",
        f"{acme.config_dir}/work",
        "--logs-dir",
        f"{acme.config_dir}/logs",
    ]


def environment(acme: AcmeSettings) -> list[str]:
    """NAME=VALUE pairs the client runs with: the private ACME server's CA, when given."""
    return [f"REQUESTS_CA_BUNDLE={acme.ca_bundle}"] if acme.ca_bundle else []


def issue_argv(settings: Settings) -> list[str]:
    """certonly by HTTP-01 through nginx's ACME webroot, for every server name; keeps a
    certificate that is still valid for those names (a second apply asks the CA nothing)."""
    acme = acme_of(settings)
    assert acme is not None and settings.nginx.acme_root is not None  # the model requires both
    argv = [acme.client, "certonly", *_common(acme), "--agree-tos", "--server", acme.directory_url]
    argv += ["--webroot", "--webroot-path", settings.nginx.acme_root, "--cert-name", settings.app.name]
    for name in settings.nginx.server_names:
        argv += ["--domain", name]
    if acme.key_type == "ecdsa":
        argv += ["--key-type", "ecdsa", "--elliptic-curve", "secp256r1"]
    else:
        argv += ["--key-type", "rsa", "--rsa-key-size", "2048"]
    argv += ["--email", acme.email, "--no-eff-email"] if acme.email else ["--register-unsafely-without-email"]
    return [*_env_prefix(acme), *argv, "--keep-until-expiring", "--expand"]


def renew_argv(settings: Settings, *, force: bool = False, env: bool = True) -> list[str]:
    """Renew this app's certificate when due (within 30 days of expiry, or at the CA's ARI
    window), then reload nginx; FORCE renews now."""
    acme = acme_of(settings)
    assert acme is not None
    argv = [acme.client, "renew", *_common(acme), "--cert-name", settings.app.name, "--no-random-sleep-on-renew"]
    argv += ["--deploy-hook", RELOAD_NGINX]
    return [*(_env_prefix(acme) if env else []), *argv, *(["--force-renewal"] if force else [])]


def _env_prefix(acme: AcmeSettings) -> list[str]:
    env = environment(acme)
    return ["env", *env] if env else []


def certificates_argv(settings: Settings) -> list[str]:
    acme = acme_of(settings)
    assert acme is not None
    return [*_env_prefix(acme), acme.client, "certificates", *_common(acme), "--cert-name", settings.app.name]
