"""The typed settings model shared by the toolkit and the bundled server.

Every model is frozen and forbids unknown keys, so a typo in a profile is an
error that names the field, never a silently ignored setting. Cross-field
rules (a TLS key without a certificate, systemd stopping before the graceful
timeout ends) live in ``model_validator`` hooks next to the fields they tie.
"""

from __future__ import annotations

import posixpath
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from deploykit.errors import UsageError
from deploykit.remote.target import parse_ssh
from deploykit.settings import processes, serving
from deploykit.settings.acme import AcmeSettings, http01_refusal
from deploykit.settings.base import Model, conflict
from deploykit.settings.processes import ProcessSettings, TimerSettings, UnitWord, without_disabled
from deploykit.settings.server import ServerSettings
from deploykit.settings.syntax import CHECKS, control_character
from deploykit.settings.types import (
    AppName,
    Command,
    EnvKey,
    EnvValue,
    Expires,
    FolderName,
    Host,
    IpAddress,
    ModuleRef,
    ProjectPath,
    Rate,
    RealIpSource,
    RequestHeader,
    SafePath,
    ServerName,
    Size,
    UnixName,
    UrlPrefix,
)

#: Where systemd puts StateDirectory= folders.
STATE_ROOT = "/var/lib"


class AppSettings(Model):
    name: AppName
    module: ModuleRef = Field(default="app:app", description="the ASGI or WSGI app, as module:attribute")
    factory: bool = False
    interface: Literal["auto", "asgi3", "asgi2", "wsgi"] = Field(
        default="auto",
        description="the app's kind (`deploykit serve --interface`): auto detects ASGI3, ASGI2 or WSGI "
        "(Flask, Django's wsgi.py) from the callable at start-up",
    )
    working_dir: SafePath = Field(default="/srv/{app}", description="WorkingDirectory= of the service")
    venv: SafePath = Field(default="/srv/{app}/.venv", description="virtualenv holding the app and deploykit")
    user: UnixName | None = Field(default=None, description="None runs the service as a DynamicUser")
    group: UnixName | None = None
    create_user: bool = Field(default=True, description="apply creates app.user when missing")
    run_mode: Literal["serve", "gunicorn"] = Field(
        default="serve", description="`deploykit serve`, or Gunicorn with deploykit's worker class"
    )
    env: dict[EnvKey, EnvValue] = Field(default_factory=dict, description="written to the env file (0600)")
    secrets: dict[EnvKey, SecretStr] = Field(
        default_factory=dict, description="env file only; masked in output and diffs"
    )
    state_directories: dict[EnvKey, FolderName] = Field(
        default_factory=dict,
        description='writable folders: MEDIA_ROOT = "media" makes /var/lib/<app>/media (StateDirectory=: '
        "systemd creates it, owned by the service user, and keeps it across deploys) and sets $MEDIA_ROOT to it",
    )

    @model_validator(mode="after")
    def _secrets_are_clean(self) -> AppSettings:
        for key, secret in self.secrets.items():
            value = secret.get_secret_value()
            found = control_character(value)
            if found is not None:  # the value itself is never shown
                raise conflict(
                    f"secret {key} contains {found}: must not contain newlines, line separators or other control "
                    "characters",
                    f"secrets.{key}",
                )
            if key in self.env:
                raise conflict(f"{key} is set both in app.env and app.secrets", f"secrets.{key}", f"env.{key}")
        for key in self.state_directories:
            if key in self.env or key in self.secrets:
                where = f"env.{key}" if key in self.env else f"secrets.{key}"
                raise conflict(
                    f"{key} is set both in app.state_directories and app.env/app.secrets",
                    f"state_directories.{key}",
                    where,
                )
        return self

    def state_paths(self) -> dict[str, str]:
        """app.state_directories as absolute paths: variable -> /var/lib/<app>/<folder>."""
        return {key: f"{STATE_ROOT}/{self.name}/{folder}" for key, folder in self.state_directories.items()}


class GunicornSettings(Model):
    """Only real Gunicorn settings; names are checked against Gunicorn's registry in tests."""

    workers: int = Field(default=2, ge=1, le=512)
    worker_class: ModuleRef = Field(
        default="deploykit.server.workers.Worker", description="or deploykit.server.workers.H11Worker"
    )
    timeout: int = Field(default=30, ge=1)
    graceful_timeout: int = Field(default=30, ge=1)
    keepalive: int = Field(default=5, ge=1)
    max_requests: int = Field(default=0, ge=0)
    max_requests_jitter: int = Field(default=0, ge=0)
    limit_request_line: int = Field(default=4094, ge=0, le=8190)
    limit_request_fields: int = Field(default=100, ge=1, le=32768)
    limit_request_field_size: int = Field(default=8190, ge=0)
    backlog: int = Field(default=2048, ge=1)
    worker_tmp_dir: SafePath = "/dev/shm"
    preload_app: bool = False
    control_socket: bool = False


class TlsSettings(Model):
    certificate: SafePath | None = Field(
        default=None, description="required without acme; with acme: <acme.config_dir>/live/<app>/fullchain.pem"
    )
    certificate_key: SafePath | None = Field(
        default=None, description="required without acme; with acme: <acme.config_dir>/live/<app>/privkey.pem"
    )
    acme: AcmeSettings | None = Field(
        default=None,
        description="deploykit issues and renews the certificate (HTTP-01 on port 80); "
        "true: on with the defaults, false: off (over a profile that turns it on)",
    )
    policy: Literal["intermediate", "modern"] = Field(
        default="intermediate", description="Mozilla's server-side TLS profile (modern: TLS 1.3 only)"
    )
    trusted_certificate: SafePath | None = Field(
        default=None, description="CA chain for OCSP stapling verification; stapling is rendered only with it"
    )
    ocsp_stapling: Literal["auto", "on", "off"] = "auto"
    resolver: tuple[IpAddress, ...] = Field(
        default=(), description="DNS servers nginx asks for the OCSP responder's address; stapling needs one"
    )
    redirect_http: bool = True
    hsts: bool = True
    hsts_max_age: int = Field(default=31536000, ge=0)
    hsts_include_subdomains: bool = True
    hsts_preload: bool = Field(default=False, description="ask browsers to preload HTTPS-only (hstspreload.org)")

    @field_validator("acme", mode="before")
    @classmethod
    def _acme_switch(cls, value: Any) -> Any:
        """TOML has no null: `acme = false` turns off what a profile turned on."""
        if value is True:
            return {}
        return None if value is False else value

    @property
    def stapling(self) -> bool:
        """OCSP stapling is rendered only with a CA chain to verify responses against."""
        return self.trusted_certificate is not None and self.ocsp_stapling != "off"

    @property
    def cert_path(self) -> str:
        assert self.certificate is not None  # filled in for acme by Settings, required otherwise
        return self.certificate

    @property
    def key_path(self) -> str:
        assert self.certificate_key is not None
        return self.certificate_key

    @model_validator(mode="after")
    def _resolver_for_stapling(self) -> TlsSettings:
        if self.resolver and not self.stapling:
            raise conflict(
                "resolver acts only with OCSP stapling (set trusted_certificate)", "resolver", "trusted_certificate"
            )
        if self.acme is None:
            for name in ("certificate", "certificate_key"):
                if getattr(self, name) is None:
                    raise conflict(f"{name} is required unless acme issues the certificate", name, "acme")
        else:
            live = self.acme.config_dir + "/live/"
            for name in ("certificate", "certificate_key"):
                if not str(getattr(self, name)).startswith(live):
                    raise conflict(
                        f"{name} is set by hand while acme issues the certificate into {live}; "
                        f"leave {name} unset, or remove [nginx.tls.acme] to use your own files",
                        name,
                        "acme",
                    )
            if self.stapling:
                raise conflict(
                    "OCSP stapling with acme: Let's Encrypt has ended OCSP; leave trusted_certificate unset",
                    "trusted_certificate",
                    "acme",
                )
            if self.acme.requires_email and self.acme.email is None:
                raise conflict(f"the ACME directory {self.acme.directory!r} requires an account email", "acme.email")
        if self.hsts_preload and not (
            self.hsts and self.hsts_include_subdomains and self.hsts_max_age >= 31536000 and self.redirect_http
        ):
            raise conflict(
                "hsts_preload needs hsts, hsts_include_subdomains, redirect_http and hsts_max_age >= 31536000 "
                "(the preload list's rules)",
                "hsts_preload",
            )
        return self


class StaticLocation(Model):
    """``location URL { alias PATH; }``. Both always end in ``/``: a prefix without
    it (``/static``) lets ``/static../secret`` walk out of PATH through the alias,
    and a URL with it but a PATH without makes every file 404."""

    url: UrlPrefix = Field(description="a trailing / is added")
    path: SafePath = Field(description="a folder; a trailing / is added")
    expires: Expires = "7d"
    source: ProjectPath | None = Field(
        default=None,
        description="where these files live in the project, relative to deploykit.toml; `deploykit up` serves them",
    )

    @field_validator("url", "path")
    @classmethod
    def _folder(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"


class WebSocketLocation(Model):
    url: UrlPrefix
    read_timeout: int = Field(default=3600, ge=1, description="seconds an idle WebSocket is kept open")


class RateLimit(Model):
    rate: Rate = "10r/s"
    burst: int = Field(default=20, ge=0)
    urls: tuple[UrlPrefix, ...] = ("/",)


class NginxSettings(Model):
    server_names: tuple[ServerName, ...] = ("_",)
    listen: int = Field(default=80, ge=1, le=65535)
    listen_address: Host | None = Field(
        default=None, description="listen on this address only (127.0.0.1, ::1); default: every address"
    )
    listen_tls: int = Field(default=443, ge=1, le=65535)
    version: tuple[int, int, int] = Field(default=(1, 22, 1), description="nginx version to render for")
    user: UnixName = Field(default="www-data", description="nginx's worker user; owns the socket group")
    default_server: bool = False
    ipv6: bool = True
    acme_root: SafePath | None = Field(
        default="/var/www/letsencrypt", description="webroot for ACME challenges on the port-80 redirect server"
    )
    tls: TlsSettings | None = None
    client_max_body_size: Size = "16m"
    proxy_connect_timeout: int = Field(default=5, ge=1)
    proxy_read_timeout: int = Field(default=60, ge=1)
    proxy_send_timeout: int = Field(default=60, ge=1)
    proxy_buffering: bool = True
    upstream_keepalive: int = Field(default=16, ge=0, description="idle keepalive connections to the app")
    static: tuple[StaticLocation, ...] = ()
    websockets: tuple[WebSocketLocation, ...] = ()
    gzip: bool = True
    access_log: Literal["off"] | SafePath = "/var/log/nginx/{app}.access.log"
    error_log: SafePath = "/var/log/nginx/{app}.error.log"
    rate_limit: RateLimit | None = None
    security_headers: bool = True
    real_ip_from: tuple[RealIpSource, ...] = Field(
        default=(),
        description="load balancers / CDNs trusted to name the client in real_ip_header (nginx's realip module); "
        "rate limits and logs then see the client, not the balancer",
    )
    real_ip_header: RequestHeader = Field(
        default="X-Forwarded-For", description="the header a trusted real_ip_from peer names the client in"
    )
    real_ip_recursive: bool = Field(
        default=False,
        description="skip every trusted address in the header, not only the last (a CDN before a balancer)",
    )

    @model_validator(mode="after")
    def _locations_unique(self) -> NginxSettings:
        seen: dict[str, str] = {}
        declared = [(s.url, f"static[{i}].url") for i, s in enumerate(self.static)]
        declared += [(w.url, f"websockets[{i}].url") for i, w in enumerate(self.websockets)]
        for url, where in declared:
            if url == "/":
                raise conflict(f"{where} '/' would replace the app's own location; use a sub-path", where)
            if url in seen:
                raise conflict(f"location {url!r} is declared twice ({seen[url]} and {where})", seen[url], where)
            seen[url] = where
        if self.rate_limit is not None:
            for url in self.rate_limit.urls:
                if seen.get(url, "").startswith("static") or seen.get(url.rstrip("/") + "/", "").startswith("static"):
                    raise conflict(
                        f"rate_limit url {url!r} is a static location; static files are not rate limited",
                        "rate_limit.urls",
                    )
        if self.tls is None and self.listen == 443:
            raise conflict("listen is 443 but no tls is configured", "listen", "tls")
        if self.tls is not None and self.listen == self.listen_tls:
            raise conflict(
                f"listen and listen_tls are both {self.listen}; plain HTTP and TLS need their own ports",
                "listen",
                "listen_tls",
            )
        self._acme_rules()
        if not self.real_ip_from and (self.real_ip_header != "X-Forwarded-For" or self.real_ip_recursive):
            raise conflict(
                "real_ip_header and real_ip_recursive act only with real_ip_from (the trusted proxies)",
                "real_ip_header",
                "real_ip_recursive",
            )
        return self

    def _acme_rules(self) -> None:
        if self.tls is None or self.tls.acme is None:
            return
        for index, name in enumerate(self.server_names):
            why = http01_refusal(name)
            if why is not None:
                raise conflict(f"server_names[{index}]: {why} (nginx.tls.acme issues for server_names)", "server_names")
        if self.listen != 80:
            raise conflict(
                f"listen is {self.listen} but acme validates by HTTP-01: port 80 must reach nginx; set listen = 80",
                "listen",
                "tls.acme",
            )
        if self.acme_root is None:
            raise conflict("acme needs acme_root, the folder nginx serves HTTP-01 challenges from", "acme_root")


class SystemdSettings(Model):
    socket_activation: bool = Field(default=True, description="<app>.socket owns the socket; restarts queue")
    socket_mode: Literal["0660", "0600", "0666"] = "0660"
    hardening: Literal["strict", "standard", "off"] = Field(default="strict", description="sandboxing level")
    memory_deny_write_execute: bool = False
    read_write_paths: tuple[SafePath, ...] = Field(
        default=(),
        description="extra writable paths; each must exist on the host (check says when one does not). "
        "For the app's own data use app.state_directories",
    )
    restart: Literal["no", "on-failure", "always", "on-abnormal"] = "on-failure"
    restart_sec: int = Field(default=2, ge=0)
    start_limit_burst: int = Field(default=5, ge=1)
    start_limit_interval_sec: int = Field(default=60, ge=1)
    timeout_stop_sec: int | None = Field(default=None, ge=1, description="default: graceful timeout + 10")
    watchdog_sec: int | None = Field(default=None, ge=1)
    limit_nofile: int = Field(default=65536, ge=1024)
    memory_max: Size | None = None
    cpu_quota: int | None = Field(default=None, ge=1, description="percent of one CPU")
    tasks_max: int | None = Field(default=None, ge=1)
    security_threshold: float = Field(
        default=2.0, ge=0, le=10, description="highest `systemd-analyze security` score check accepts"
    )


class PathSettings(Model):
    """Where each rendered file goes on the host. ``{app}`` is replaced by app.name."""

    nginx_site: SafePath = "/etc/nginx/sites-available/{app}.conf"
    nginx_site_enabled: SafePath = "/etc/nginx/sites-enabled/{app}.conf"
    gunicorn_conf: SafePath = "/etc/deploykit/{app}/gunicorn.conf.py"
    service_unit: SafePath = "/etc/systemd/system/{app}.service"
    socket_unit: SafePath = "/etc/systemd/system/{app}.socket"
    env_file: SafePath = "/etc/default/{app}"
    acme_service_unit: SafePath = Field(
        default="/etc/systemd/system/{app}-acme-renew.service", description="with nginx.tls.acme: the renewal job"
    )
    acme_timer_unit: SafePath = Field(
        default="/etc/systemd/system/{app}-acme-renew.timer", description="with nginx.tls.acme: twice a day"
    )
    socket: SafePath = Field(default="/run/{app}.sock", description="the app's unix socket, nginx's upstream")
    state_dir: SafePath = "/var/lib/deploykit/{app}"

    @model_validator(mode="after")
    def _one_file_each(self) -> PathSettings:
        """Two files on one path overwrite each other, and `plan` never converges."""
        seen: dict[str, str] = {}
        for name, value in self:
            key = posixpath.normpath(value)
            if key in seen:
                raise conflict(
                    f"paths.{seen[key]} and paths.{name} are both {value}; each needs its own path", seen[key], name
                )
            seen[key] = name
        return self


class HookSettings(Model):
    """Commands run in the new release, as the service (see apply/hooks.py)."""

    before_switch: tuple[Command, ...] = Field(
        default=(), description="run in the new release before the switch (migrate, collectstatic); a failure aborts"
    )
    after_switch: tuple[Command, ...] = Field(
        default=(), description="run once the new release is healthy; a failure rolls the release back"
    )
    timeout: int = Field(default=300, ge=1, le=86400, description="seconds each hook may run")


class DeploySettings(Model):
    """How `apply` proves and keeps a deploy."""

    code_releases: bool = Field(
        default=False,
        description="install the app's code into app.working_dir/releases/<id> (its own venv) and switch a "
        "`current` link; the units run from current (app.venv is not used)",
    )
    project: ProjectPath | None = Field(
        default=None, description="the app's project folder: `apply` builds its wheelhouse when given none"
    )
    hooks: HookSettings = Field(default_factory=HookSettings)
    health_path: UrlPrefix = Field(default="/", description="GET through the socket and nginx after apply")
    health_timeout: int = Field(default=30, ge=1, le=600, description="seconds apply waits for a 2xx/3xx answer")
    keep_releases: int = Field(
        default=5, ge=1, le=100, description="releases kept under paths.state_dir (and their code folders)"
    )
    hosts: list[str] = Field(
        default_factory=list, description="ssh://[user@]host[:port] servers plan/apply/status... work on by default"
    )

    @model_validator(mode="after")
    def _hooks_need_releases(self) -> DeploySettings:
        if (self.hooks.before_switch or self.hooks.after_switch) and not self.code_releases:
            why = "hooks run around a code release switch: set deploy.code_releases = true"
            raise conflict(why, "hooks", "code_releases")
        return self

    @field_validator("hosts")
    @classmethod
    def _ssh_urls(cls, value: list[str]) -> list[str]:
        seen = set()
        for url in value:
            try:
                target = parse_ssh(url, "host")
            except UsageError as exc:
                raise ValueError(exc.message) from None
            if target in seen:
                raise ValueError(f"{target} is listed twice")
            seen.add(target)
        return value


class Settings(Model):
    app: AppSettings
    server: ServerSettings = Field(default_factory=ServerSettings)
    gunicorn: GunicornSettings = Field(default_factory=GunicornSettings)
    nginx: NginxSettings = Field(default_factory=NginxSettings)
    systemd: SystemdSettings = Field(default_factory=SystemdSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    processes: dict[UnitWord, ProcessSettings] = Field(
        default_factory=dict, description="commands that run beside the app: <app>-<name>.service (a worker)"
    )
    timers: dict[UnitWord, TimerSettings] = Field(
        default_factory=dict, description="commands run on a calendar: <app>-<name>.timer and its oneshot service"
    )

    #: `[processes.<name>] enabled = false` (or a timer's) leaves out what a profile defines
    _turned_off = field_validator("processes", "timers", mode="before")(without_disabled)

    @model_validator(mode="before")
    @classmethod
    def _expand_app_placeholders(cls, data: Any) -> Any:
        """Replace ``{app}`` in every string default or value with the app's name."""
        if not isinstance(data, dict):
            return data
        app = data.get("app")
        if not isinstance(app, dict):
            return data  # no [app] at all: one "app: required" error
        name = app.get("name")
        try:
            if not isinstance(name, str):
                raise ValueError("not a string")
            CHECKS["app name"](name)
        except ValueError:
            # app.name is missing or fails on its own; expanding it would add one follow-on
            # error per {app} path, each blamed on the profile or the defaults. A valid
            # stand-in keeps the report to the one real error (validation fails regardless).
            name = "app"
        return _expand(_acme_paths(data), name, _defaults_with_placeholder())

    @model_validator(mode="after")
    def _stop_after_graceful(self) -> Settings:
        stop = self.systemd.timeout_stop_sec
        if stop is not None and stop <= self.graceful_timeout:
            graceful = (
                "gunicorn.graceful_timeout" if self.app.run_mode == "gunicorn" else "server.timeout_graceful_shutdown"
            )
            raise conflict(
                f"systemd.timeout_stop_sec ({stop}) must be greater than the graceful timeout "
                f"({self.graceful_timeout}s), or systemd kills workers that are still draining",
                "systemd.timeout_stop_sec",
                graceful,
            )
        return self

    @model_validator(mode="after")
    def _units_unique(self) -> Settings:
        for unit, field, other in processes.collisions(self):
            raise conflict(f"{field} would install {unit}, which {other} already names; rename it", field, other)
        return self

    @model_validator(mode="after")
    def _server_fields_take_effect(self) -> Settings:
        problems = serving.refusals(self.server, self.app.run_mode, self.paths.socket)
        if problems:
            # blame the source that set a refused value, or the one that switched the run mode
            fields = [f"server.{name}" for name in problems]
            if any(name in serving.GUNICORN_OWNS for name in problems):
                fields.append("app.run_mode")
            if len(fields) == 1:  # the error already names the one field
                raise conflict(next(iter(problems.values())), *fields)
            raise conflict("; ".join(f"server.{name}: {why}" for name, why in problems.items()), *fields)
        return self

    @property
    def backlog(self) -> int:
        """The listen backlog: the socket unit's and the server's (Gunicorn's in its run mode)."""
        return self.gunicorn.backlog if self.app.run_mode == "gunicorn" else self.server.backlog

    @property
    def graceful_timeout(self) -> float:
        if self.app.run_mode == "gunicorn":
            return float(self.gunicorn.graceful_timeout)
        return self.server.timeout_graceful_shutdown

    @property
    def timeout_stop_sec(self) -> int:
        if self.systemd.timeout_stop_sec is not None:
            return self.systemd.timeout_stop_sec
        return int(self.graceful_timeout) + 10


def _defaults_with_placeholder() -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for section, field in Settings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        for name, sub in model.model_fields.items():
            if isinstance(sub.default, str) and "{app}" in sub.default:
                found.setdefault(section, {})[name] = sub.default
    return found


def _acme_paths(data: dict[str, Any]) -> dict[str, Any]:
    """With [nginx.tls.acme], the certificate paths default to the files the ACME client keeps
    under acme.config_dir (``{app}`` is expanded next, with everything else)."""
    nginx = data.get("nginx")
    if not isinstance(nginx, dict) or not isinstance(nginx.get("tls"), dict):
        return data
    tls: dict[str, Any] = nginx["tls"]
    acme = {} if tls.get("acme") is True else tls.get("acme")
    if not isinstance(acme, dict):
        return data
    config_dir = acme.get("config_dir", AcmeSettings.model_fields["config_dir"].default)
    if not isinstance(config_dir, str):
        return data  # refused by its own check
    live = f"{config_dir}/live/{{app}}"
    filled = {"certificate": f"{live}/fullchain.pem", "certificate_key": f"{live}/privkey.pem"}
    return {**data, "nginx": {**nginx, "tls": {**filled, **tls}}}


def _expand(data: dict[str, Any], name: str, defaults: dict[str, dict[str, str]]) -> dict[str, Any]:
    out = dict(data)
    for section, fields in defaults.items():
        given = out.get(section, {})
        if isinstance(given, dict):
            out[section] = {**fields, **given}
    return {key: _replace(value, name, key) for key, value in out.items()}


def _replace(value: Any, name: str, key: str = "") -> Any:
    """Replace ``{app}`` in nested strings; app.env and app.secrets stay verbatim."""
    if isinstance(value, str):
        return value.replace("{app}", name)
    if isinstance(value, dict):
        return {k: v if k in ("env", "secrets") and key == "app" else _replace(v, name, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace(v, name) for v in value]
    return value
