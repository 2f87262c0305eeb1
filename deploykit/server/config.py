"""ServerConfig: the validated server options plus what is derived from them
once at start-up (trusted proxies, header blocks, the SSL context), so the
per-request path only reads attributes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
        s = self.settings
        if self.tls is not None:
            return self.tls
        if s.ssl_certfile is None:
            return None
        import ssl  # only TLS servers pay for it

        context = ssl.SSLContext(s.ssl_version)
        context.load_cert_chain(s.ssl_certfile, s.ssl_keyfile, s.ssl_keyfile_password)
        context.verify_mode = ssl.VerifyMode(s.ssl_cert_reqs)
        if s.ssl_ca_certs:
            context.load_verify_locations(s.ssl_ca_certs)
        if s.ssl_ciphers:
            context.set_ciphers(s.ssl_ciphers)
        return context
