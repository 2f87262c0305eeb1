"""`deploykit check` needs no root: the README promises it runs "in CI, without root". Run on the
shared Debian 12 host by an unprivileged user (nobody), from a folder only that user owns, with the
host's real nginx, systemd-analyze and Gunicorn: every check runs, nothing is written outside that
folder and the temporary directory, and a broken setting is still found."""

from __future__ import annotations

import json

import pytest

from tests.realhost.conftest import TOOL, Deployed

pytestmark = pytest.mark.realhost

CHECK_AS_NOBODY = f"""
work=$(mktemp -d /tmp/unprivileged.XXXXXX)
cp /mnt/stage/deploykit.toml "$work/"
chown -R nobody:nogroup "$work"
chmod 700 "$work"
before=$(find /etc /srv /run /var/lib -newer "$work/deploykit.toml" 2>/dev/null | sort | md5sum)
cd "$work"
set +e
runuser -u nobody -- env HOME="$work" {TOOL} check -c "$work/deploykit.toml" --format json $EXTRA > "$work/report.json"
echo "rc=$?"
set -e
after=$(find /etc /srv /run /var/lib -newer "$work/deploykit.toml" 2>/dev/null | sort | md5sum)
[ "$before" = "$after" ] && echo "host unchanged" || echo "host changed"
cat "$work/report.json"
rm -rf "$work"
"""


def check_as_nobody(deployed: Deployed, extra: str = "") -> tuple[int, str, str]:
    """(exit status, whether the host changed, what check printed and said) of one unprivileged check."""
    done = deployed.box.sh(f"EXTRA='{extra}'\n" + CHECK_AS_NOBODY, check=False)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) >= 2, done.stdout + done.stderr
    return int(lines[0].removeprefix("rc=")), lines[1], "\n".join(lines[2:]) + done.stderr


def test_check_runs_every_validator_as_an_unprivileged_user(deployed: Deployed) -> None:
    code, host, printed = check_as_nobody(deployed)
    report = json.loads(printed)
    assert code == 0, json.dumps(report, indent=1)  # nginx -t failed here: bind() to 0.0.0.0:80 (13: Permission denied)
    assert host == "host unchanged"
    ran = {check["name"] for check in report["checks"] if check["ran"]}
    assert {"nginx -t", "gixy", "systemd-analyze verify", "systemd-analyze security", "consistency", "files"} <= ran


def test_an_unprivileged_check_still_finds_a_broken_setting(deployed: Deployed) -> None:
    code, host, printed = check_as_nobody(deployed, "--set nginx.client_max_body_size=1q")
    assert code != 0 and "nginx.client_max_body_size" in printed, printed
    assert host == "host unchanged"
