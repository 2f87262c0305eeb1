"""Where each setting acts, for the settings reference (docs/reference/settings.md) and the field-walk test.

Almost every field changes a rendered file (tests/render/test_every_setting.py
proves it by walking the model). The few that act only later, in `check`,
`plan`, `apply` or `up`, are listed in ``NOT_RENDERED`` with the place that
reads them; that list is the test's whole allow-list.
"""

from __future__ import annotations

from deploykit.settings import serving

#: dotted field -> where it acts, for fields that change no rendered file.
NOT_RENDERED: dict[str, str] = {
    "app.create_user": "apply (apply/engine.py: useradd when app.user is missing)",
    "nginx.static[].source": "up (up/local.py serves the project's copy of the files)",
    "paths.nginx_site_enabled": "plan/apply (plan.py LinkSite: the sites-enabled link)",
    "paths.state_dir": "apply (apply/engine.py, releases.py: lock and releases)",
    "systemd.security_threshold": "check (check/systemd.py: the highest accepted security score)",
    "deploy.health_path": "apply (apply/probe.py: the health request)",
    "deploy.health_timeout": "apply (apply/probe.py: how long the health gate waits)",
    "nginx.tls.acme.email": "apply (tls/certbot.py: the ACME account's contact)",
    "nginx.tls.acme.directory": "apply (tls/certbot.py: the ACME server; renewals reuse it)",
    "nginx.tls.acme.key_type": "apply (tls/certbot.py: the key of the certificate)",
    "deploy.keep_releases": "apply (apply/engine.py: releases and code folders pruned after a deploy)",
    "deploy.project": "apply (apply/run.py, build.py: the project apply and `deploykit build` build)",
    "deploy.hooks": "apply (apply/hooks.py: commands run around a code release switch)",
    "deploy.hooks.before_switch": "apply (apply/hooks.py: run in the new release before the switch)",
    "deploy.hooks.after_switch": "apply (apply/hooks.py: run after the new release passed the health gate)",
    "deploy.hooks.timeout": "apply (apply/hooks.py: RuntimeMaxSec= of each hook)",
    "deploy.hosts": "plan/apply (remote/target.py: the default --host of plan, apply, rollback, status, logs, doctor)",
}

#: dotted field -> what it changes, where its section's line below would be vague.
FIELDS: dict[str, str] = {
    "app.name": "every file (names, paths, the nginx zone)",
    "app.module": "service unit ExecStart (serve), gunicorn conf.py wsgi_app",
    "app.factory": "service unit ExecStart (serve), gunicorn conf.py wsgi_app",
    "app.working_dir": "service unit WorkingDirectory=",
    "app.venv": "service unit ExecStart",
    "app.user": "service unit User= (none: DynamicUser=yes)",
    "app.group": "service unit Group=",
    "app.run_mode": "service unit ExecStart, gunicorn conf.py",
    "app.env": "env file",
    "app.secrets": "env file",
    "app.state_directories": "service unit StateDirectory= and Environment=",
    "nginx.tls.acme": "nginx site (certificate paths, ACME webroot) and the renewal service + timer",
    "nginx.tls.acme.ca_bundle": "renewal service Environment=REQUESTS_CA_BUNDLE (and apply's client)",
    "nginx.tls.acme.client": "renewal service ExecStart (and apply's client)",
    "nginx.tls.acme.config_dir": "nginx site certificate paths, renewal service ExecStart and ReadWritePaths=",
    "deploy.code_releases": "service unit WorkingDirectory= and ExecStart (run from <app.working_dir>/current)",
}

#: section -> what its fields change, when not said per field.
SECTIONS: dict[str, str] = {
    "gunicorn": "gunicorn conf.py (gunicorn run mode)",
    "nginx": "nginx site",
    "systemd": "service and socket units",
    "paths": "where apply writes each file",
    "processes": "the process's units, <app>-<name>.service (settings/processes.py)",
    "timers": "the timer's units, <app>-<name>.timer and .service (settings/processes.py)",
}


def acts_in(dotted: str) -> str:
    """Where the field DOTTED (``section.name``, ``[]`` for list items) takes effect."""
    if dotted in NOT_RENDERED:
        return NOT_RENDERED[dotted]
    section, _, rest = dotted.partition(".")
    if section == "server":
        return serving.where(rest)
    if dotted in FIELDS:
        return FIELDS[dotted]
    return SECTIONS.get(section, "rendered files")
