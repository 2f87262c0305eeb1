"""ServerConfig: the validated server options plus what is derived from them
once at start-up (trusted proxies, header blocks, the SSL context), so the
per-request path only reads attributes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deploykit.errors import DeployKitError
from deploykit.server.options import ServerOptions
from deploykit.server.protocols.proxy import TrustedProxies

if TYPE_CHECKING:
    import ssl

ASGIApp = Callable[..., Any]
SERVER_NAME = b"deploykit"


@dataclass(frozen=True)
class ServerConfig:
    settings: ServerOptions
    app: ASGIApp
    trusted: TrustedProxies = field(default_factory=TrustedProxies)
    extra_headers: tuple[tuple[bytes, bytes], ...] = ()
    tls: ssl.SSLContext | None = None  # a ready context (Gunicorn's), instead of the ssl_* options

    @classmethod
    def build(cls, settings: ServerOptions, app: ASGIApp, tls: ssl.SSLContext | None = None) -> ServerConfig:
        extra = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in settings.headers.items())
        return cls(settings, app, TrustedProxies.parse(settings.forwarded_allow_ips), extra, tls)

    def with_request_limit(self, limit: int) -> ServerConfig:
        """This config with --limit-max-requests set to LIMIT (a worker's jittered limit)."""
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, limit_max_requests=limit))

    @property
    def max_head(self) -> int:
        """Bytes a request head may take: the request line plus the header section."""
        return self.settings.max_request_line + self.settings.max_header_size

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.tls is not None:
            return self.tls
        return tls_context(self.settings)


def tls_context(s: ServerOptions) -> ssl.SSLContext | None:
    """The context the --ssl-* options describe (None without --ssl-certfile); a missing,
    unreadable or non-PEM file is a DeployKitError naming the flag and the file."""
    if s.ssl_certfile is None:
        return None
    import ssl  # only TLS servers pay for it

    files = {"--ssl-certfile": s.ssl_certfile, "--ssl-keyfile": s.ssl_keyfile, "--ssl-ca-certs": s.ssl_ca_certs}
    for flag, path in files.items():
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise DeployKitError(f"{flag} {path}: {exc.strerror}") from exc
    context = ssl.SSLContext(s.ssl_version)
    try:
        context.load_cert_chain(s.ssl_certfile, s.ssl_keyfile, s.ssl_keyfile_password)
    except ssl.SSLError as exc:
        key = f" with --ssl-keyfile {s.ssl_keyfile}" if s.ssl_keyfile else ""
        raise DeployKitError(
            f"--ssl-certfile {s.ssl_certfile}{key}: not a PEM certificate and matching key ({exc.reason or exc})",
            hint="Both files must be PEM (-----BEGIN ...-----); the key must belong to the certificate.",
        ) from exc
    context.verify_mode = ssl.VerifyMode(s.ssl_cert_reqs)
    if s.ssl_ca_certs:
        try:
            context.load_verify_locations(s.ssl_ca_certs)
        except ssl.SSLError as exc:
            raise DeployKitError(
                f"--ssl-ca-certs {s.ssl_ca_certs}: not PEM certificates ({exc.reason or exc})"
            ) from exc
    if s.ssl_ciphers:
        try:
            context.set_ciphers(s.ssl_ciphers)
        except ssl.SSLError as exc:
            raise DeployKitError(f"--ssl-ciphers {s.ssl_ciphers!r}: no cipher matches") from exc
    return context
