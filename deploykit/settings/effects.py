"""Where each setting acts, for the README's reference and the field-walk test.

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
    "deploy.keep_releases": "apply (apply/engine.py: releases pruned after a deploy)",
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
}

#: section -> what its fields change, when not said per field.
SECTIONS: dict[str, str] = {
    "gunicorn": "gunicorn conf.py (gunicorn run mode)",
    "nginx": "nginx site",
    "systemd": "service and socket units",
    "paths": "where apply writes each file",
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
