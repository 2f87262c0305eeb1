"""GENERATED from deploykit.settings.server.ServerSettings; do not edit.

Regenerate with `python -m deploykit.settings.codegen > deploykit/server/options_spec.py`;
tests/unit/test_server_options.py fails while this file is stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """The validated options of `deploykit serve` (mirrors ServerSettings)."""

    host: str = '127.0.0.1'
    port: int = 8000
    uds: str | None = None
    fd: int | None = None
    backlog: int = 2048
    loop: str = 'auto'
    http: str = 'auto'
    ws: str = 'auto'
    lifespan: str = 'auto'
    env_file: str | None = None
    root_path: str = ''
    workers: int = 1
    limit_concurrency: int | None = None
    limit_max_requests: int | None = None
    limit_max_requests_jitter: int = 0
    timeout_keep_alive: float = 5
    timeout_header_read: float = 10
    timeout_graceful_shutdown: float = 30
    timeout_worker_healthcheck: float = 10
    proxy_headers: bool = True
    forwarded_allow_ips: tuple[str, ...] = ('127.0.0.1', '::1', 'unix:')
    server_header: bool = True
    date_header: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    max_header_size: int = 16384
    max_request_line: int = 8190
    h11_max_incomplete_event_size: int = 16384
    ws_max_size: int = 16777216
    ws_max_queue: int = 32
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_per_message_deflate: bool = True
    wsgi_threads: int | None = None
    reset_contextvars: bool = False
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_ca_certs: str | None = None
    ssl_ciphers: str = 'TLSv1'
    ssl_keyfile_password: str | None = None
    ssl_version: int = 17
    ssl_cert_reqs: int = 0
    reload: bool = False
    reload_dirs: tuple[str, ...] = ()
    reload_includes: tuple[str, ...] = ('*.py',)
    reload_excludes: tuple[str, ...] = ('.*', '.py[cod]', '.sw.*', '~*')
    reload_delay: float = 0.25
    log_level: str = 'info'
    log_config: str | None = None
    access_log: bool = True
    access_log_format: str = 'text'
    use_colors: bool | None = None


SPEC: dict[str, dict[str, Any]] = {
    'host': {'kind': 'str', 'syntax': 'host or IP', 'default': '127.0.0.1'},
    'port': {'ge': 0, 'le': 65535, 'kind': 'int', 'default': 8000},
    'uds': {'optional': True, 'kind': 'str', 'syntax': 'absolute path', 'default': None},
    'fd': {'optional': True, 'ge': 0, 'kind': 'int', 'default': None},
    'backlog': {'ge': 1, 'kind': 'int', 'default': 2048},
    'loop': {'kind': 'choice', 'choices': ('auto', 'uvloop', 'asyncio'), 'default': 'auto'},
    'http': {'kind': 'choice', 'choices': ('auto', 'httptools', 'h11'), 'default': 'auto'},
    'ws': {'kind': 'choice', 'choices': ('auto', 'websockets', 'websockets-sansio', 'wsproto', 'none'), 'default': 'auto'},
    'lifespan': {'kind': 'choice', 'choices': ('auto', 'on', 'off'), 'default': 'auto'},
    'env_file': {'optional': True, 'kind': 'str', 'syntax': 'absolute path', 'default': None},
    'root_path': {'optional': False, 'kind': 'str', 'choices': ('',), 'syntax': 'URL path', 'default': ''},
    'workers': {'ge': 1, 'le': 512, 'kind': 'int', 'default': 1},
    'limit_concurrency': {'optional': True, 'ge': 1, 'kind': 'int', 'default': None},
    'limit_max_requests': {'optional': True, 'ge': 1, 'kind': 'int', 'default': None},
    'limit_max_requests_jitter': {'ge': 0, 'kind': 'int', 'default': 0},
    'timeout_keep_alive': {'gt': 0, 'kind': 'float', 'default': 5},
    'timeout_header_read': {'gt': 0, 'le': 300, 'kind': 'float', 'default': 10},
    'timeout_graceful_shutdown': {'gt': 0, 'kind': 'float', 'default': 30},
    'timeout_worker_healthcheck': {'gt': 0, 'kind': 'float', 'default': 10},
    'proxy_headers': {'kind': 'bool', 'default': True},
    'forwarded_allow_ips': {'kind': 'list', 'item': 'IP/CIDR, * or unix:', 'default': ('127.0.0.1', '::1', 'unix:')},
    'server_header': {'kind': 'bool', 'default': True},
    'date_header': {'kind': 'bool', 'default': True},
    'headers': {'kind': 'dict', 'item': 'header name', 'value': 'one-line text', 'default': {}},
    'max_header_size': {'ge': 256, 'le': 1048576, 'kind': 'int', 'default': 16384},
    'max_request_line': {'ge': 32, 'le': 1048576, 'kind': 'int', 'default': 8190},
    'h11_max_incomplete_event_size': {'ge': 1024, 'kind': 'int', 'default': 16384},
    'ws_max_size': {'ge': 1, 'kind': 'int', 'default': 16777216},
    'ws_max_queue': {'ge': 1, 'kind': 'int', 'default': 32},
    'ws_ping_interval': {'optional': True, 'gt': 0, 'kind': 'float', 'default': 20.0},
    'ws_ping_timeout': {'optional': True, 'gt': 0, 'kind': 'float', 'default': 20.0},
    'ws_per_message_deflate': {'kind': 'bool', 'default': True},
    'wsgi_threads': {'optional': True, 'ge': 1, 'le': 1024, 'kind': 'int', 'default': None},
    'reset_contextvars': {'kind': 'bool', 'default': False},
    'ssl_keyfile': {'optional': True, 'kind': 'str', 'syntax': 'absolute path', 'default': None},
    'ssl_certfile': {'optional': True, 'kind': 'str', 'syntax': 'absolute path', 'default': None},
    'ssl_ca_certs': {'optional': True, 'kind': 'str', 'syntax': 'absolute path', 'default': None},
    'ssl_ciphers': {'kind': 'str', 'syntax': 'nginx token', 'default': 'TLSv1'},
    'ssl_keyfile_password': {'optional': True, 'kind': 'str', 'default': None},
    'ssl_version': {'ge': 0, 'kind': 'int', 'default': 17},
    'ssl_cert_reqs': {'ge': 0, 'le': 2, 'kind': 'int', 'default': 0},
    'reload': {'kind': 'bool', 'default': False},
    'reload_dirs': {'kind': 'list', 'item': 'absolute path', 'default': ()},
    'reload_includes': {'kind': 'list', 'item': 'one-line text', 'default': ('*.py',)},
    'reload_excludes': {'kind': 'list', 'item': 'one-line text', 'default': ('.*', '.py[cod]', '.sw.*', '~*')},
    'reload_delay': {'ge': 0, 'kind': 'float', 'default': 0.25},
    'log_level': {'kind': 'choice', 'choices': ('critical', 'error', 'warning', 'info', 'debug', 'trace'), 'default': 'info'},
    'log_config': {'optional': True, 'kind': 'str', 'syntax': 'absolute path', 'default': None},
    'access_log': {'kind': 'bool', 'default': True},
    'access_log_format': {'kind': 'str', 'syntax': 'access log format', 'default': 'text'},
    'use_colors': {'optional': True, 'kind': 'bool', 'default': None},
}
