"""Settings -> the nginx site file. Location logic is computed here, so the
template only loops and prints."""

from __future__ import annotations

from dataclasses import dataclass

from deploykit.render.bundle import Kind, RenderedFile
from deploykit.render.jinja import render_template
from deploykit.settings.model import NginxSettings, Settings
from deploykit.tls.policy import policy

HTTP2_ON_DIRECTIVE = (1, 25, 1)  # `http2 on;` replaced `listen ... http2` in nginx 1.25.1


@dataclass(frozen=True)
class Location:
    url: str
    static_path: str | None = None
    expires: str = ""
    read_timeout: int = 60
    send_timeout: int = 60
    buffering: bool = True
    limited: bool = False


def identifier(app_name: str) -> str:
    """app names allow '-', nginx variable and zone names do not."""
    return "deploykit_" + app_name.replace("-", "_")


def locations(nginx: NginxSettings) -> list[Location]:
    limited = set(nginx.rate_limit.urls) if nginx.rate_limit else set()
    base = Location(
        url="/",
        read_timeout=nginx.proxy_read_timeout,
        send_timeout=nginx.proxy_send_timeout,
        buffering=nginx.proxy_buffering,
        limited="/" in limited,
    )
    found = [base]
    for static in nginx.static:
        found.append(Location(url=static.url, static_path=static.path, expires=static.expires))
    ws_urls = set()
    for ws in nginx.websockets:
        ws_urls.add(ws.url)
        found.append(
            Location(
                url=ws.url,
                read_timeout=ws.read_timeout,
                send_timeout=ws.read_timeout,
                buffering=False,
                limited=ws.url in limited,
            )
        )
    for url in sorted(limited - ws_urls - {"/"}):
        found.append(
            Location(
                url=url,
                read_timeout=nginx.proxy_read_timeout,
                send_timeout=nginx.proxy_send_timeout,
                buffering=nginx.proxy_buffering,
                limited=True,
            )
        )
    return found


def listen_on(nginx: NginxSettings, port: int) -> list[str]:
    """The `listen` addresses for PORT: nginx.listen_address alone, or every
    IPv4 address plus [::] when ipv6 is on."""
    address = nginx.listen_address
    if address is not None:
        return [f"[{address}]:{port}" if ":" in address else f"{address}:{port}"]
    return [str(port), f"[::]:{port}"] if nginx.ipv6 else [str(port)]


def render_site(settings: Settings, *, http_only: bool = False) -> RenderedFile:
    """The site file. HTTP_ONLY: the same site without its TLS server, answering ACME
    challenges on port 80: what apply installs while the first certificate is issued."""
    nginx = settings.nginx
    tls = None if http_only else nginx.tls
    plain_main = tls is None or not tls.redirect_http
    acme = nginx.tls is not None and nginx.tls.acme is not None
    challenge_root = nginx.acme_root if acme and plain_main else None
    stapling = tls is not None and tls.stapling
    content = render_template(
        "nginx_site.conf.j2",
        app=settings.app.name,
        ident=identifier(settings.app.name),
        socket=settings.paths.socket,
        nginx=nginx,
        tls=tls,
        stapling=stapling,
        resolver=" ".join(f"[{a}]" if ":" in a else a for a in tls.resolver) if tls else "",
        http2_on=nginx.version >= HTTP2_ON_DIRECTIVE,
        policy=policy(tls.policy) if tls else None,
        challenge_root=challenge_root,
        locations=locations(nginx),
        listen_plain=listen_on(nginx, nginx.listen),
        listen_tls=listen_on(nginx, nginx.listen_tls),
        server_names=" ".join(nginx.server_names),
    )
    return RenderedFile(path=settings.paths.nginx_site, kind=Kind.NGINX_SITE, content=content)
