"""Running the ACME client on the host: the first issue (inside apply's
transaction) and renewals (`deploykit renew`, the timer runs the same command).

The client's own report is what the operator sees when the CA says no: the
problem lines certbot prints (the ACME server's ``Detail:`` for each name, or
its error), without certbot's chatter about log files and forums."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deploykit.errors import DeployKitError
from deploykit.host.base import CommandResult, Host
from deploykit.settings.model import Settings
from deploykit.tls.certbot import acme_of, issue_argv, renew_argv

#: renew when the certificate expires within this (certbot's renewal setting)
RENEW_WITHIN = "30 days"
#: seconds one client run may take (an ACME order polls the CA for its validations)
TIMEOUT = 300
_CHATTER = (
    "Saving debug log",
    "Ask for help",
    "See the logfile",
    "Requesting a certificate",
    "Account registered",
    "Renewing an existing certificate",
    "Processing ",
    "- - - -",
    "Simulating",
    "Hint:",  # certbot's own advice; deploykit gives its hint below the error
    "Some challenges have failed",
)
HINT = (
    "Every server name must resolve to this host and port 80 must reach nginx from the internet (HTTP-01); "
    'try acme.directory = "staging" while testing, since production has rate limits.'
)


class AcmeFailed(DeployKitError):
    """The ACME client could not obtain or renew the certificate."""


@dataclass(frozen=True)
class Outcome:
    changed: bool
    detail: str


def problems(result: CommandResult) -> str:
    """certbot's report of a failed run, cut down to what the CA and the client said, on one line."""
    lines = [line.rstrip() for line in result.output().splitlines()]
    kept = [line for line in lines if line.strip() and not line.lstrip().startswith(_CHATTER)]
    return "; ".join(" ".join(line.split()) for line in kept[-20:]) or f"the ACME client exited {result.returncode}"


def issue(host: Host, settings: Settings) -> Outcome:
    """Obtain (or expand) the certificate for server_names by HTTP-01; a valid one for the
    same names is kept without asking the CA."""
    result = _run(host, issue_argv(settings))
    if not result.ok:
        raise AcmeFailed(f"the ACME server refused the certificate: {problems(result)}", hint=HINT)
    _renew_within(host, settings)
    text = result.output()
    kept = "not yet due for renewal" in text or "Keeping the existing certificate" in text
    names = ", ".join(settings.nginx.server_names)
    return Outcome(not kept, f"kept the certificate for {names}" if kept else f"issued a certificate for {names}")


def _renew_within(host: Host, settings: Settings) -> None:
    """Pin the renewal window in the client's renewal settings: within RENEW_WITHIN of expiry
    (certbot's own default is a third of the lifetime, which differs for short-lived certificates)."""
    acme = acme_of(settings)
    assert acme is not None
    path = f"{acme.config_dir}/renewal/{settings.app.name}.conf"
    facts = host.read(path)
    if facts is None:
        return
    lines = facts.content.decode("utf-8", "replace").split("\n")
    setting = f"renew_before_expiry = {RENEW_WITHIN}"
    if setting in lines:
        return
    kept = [line for line in lines if not line.lstrip("# ").startswith("renew_before_expiry")]
    at = next((i + 1 for i, line in enumerate(kept) if line.startswith("version = ")), 0)
    kept.insert(at, setting)
    host.write(path, "\n".join(kept).encode(), mode=facts.mode, owner=facts.owner, group=facts.group)


def renew(host: Host, settings: Settings, *, force: bool = False) -> Outcome:
    """`certbot renew` for this app's certificate (the timer's command); nginx is reloaded
    by the client's deploy hook only when a certificate was renewed."""
    result = _run(host, renew_argv(settings, force=force))
    if not result.ok:
        raise AcmeFailed(f"renewal failed: {problems(result)}", hint=HINT)
    if "all renewals succeeded" not in result.output():  # certbot's words when it renewed
        return Outcome(False, "the certificate is not due for renewal yet; nothing done")
    return Outcome(True, "renewed the certificate; nginx reloaded")


def _run(host: Host, argv: Sequence[str]) -> CommandResult:
    return host.run(list(argv), timeout=TIMEOUT)
