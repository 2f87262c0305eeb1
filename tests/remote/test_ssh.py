"""The ssh command lines deploykit builds, and how ssh's failures read."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from deploykit.host.ssh import SshClient, SshError
from deploykit.remote import layout
from deploykit.remote.target import SshTarget

HOSTILE = ["logs", "--since", "$(touch /tmp/pwned); `id` 'q' \"d\" * ~ | & > x\\", "a b"]


def client(tmp_path: Path, target: SshTarget | None = None, **env: str) -> SshClient:
    control = tmp_path / "control"
    control.mkdir(mode=0o700)
    return SshClient(target or SshTarget("web1", "deploy", 2222), {"DEPLOYKIT_SSH_CONTROL_DIR": str(control), **env})


def test_the_command_line_multiplexes_keeps_host_keys_checked_and_quotes_every_word(tmp_path: Path) -> None:
    ssh = client(tmp_path, DEPLOYKIT_SSH_CONFIG="/etc/ci ssh config")
    argv = ssh.argv(["/opt/deploy kit/bin/python", *HOSTILE])
    control = tmp_path / "control"
    assert argv[:4] == ["ssh", "-F", "/etc/ci ssh config", "-o"]
    options = " ".join(argv[: argv.index("--")])
    for option in ("BatchMode=yes", "StrictHostKeyChecking=yes", f"ControlPath={control}/%C", "ControlMaster=no"):
        assert option in options
    assert argv[argv.index("-l") + 1] == "deploy" and argv[argv.index("-p") + 1] == "2222"
    assert argv[-3:-1] == ["--", "web1"]  # the host can never be read as an option
    # what the remote login shell reads back is exactly the argv
    assert shlex.split(argv[-1]) == ["/opt/deploy kit/bin/python", *HOSTILE]
    master = ssh.master_argv()
    assert "ControlMaster=auto" in master and "ControlPersist=60" in master and master[-3:] == ["-N", "--", "web1"]


def test_the_quoted_command_survives_a_real_shell(tmp_path: Path) -> None:
    """sh -c is what sshd runs the command string with: every hostile word comes back verbatim, nothing runs."""
    marker = tmp_path / "pwned"
    words = [*HOSTILE, f"$(touch {marker})", f"; touch {marker}"]
    command = client(tmp_path).argv(["printf", "%s\\n", *words])[-1]
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:-1] == [w for w in words]
    assert not marker.exists()


def test_no_user_or_port_leaves_them_to_ssh_config(tmp_path: Path) -> None:
    argv = client(tmp_path, SshTarget("web1")).argv(["true"])
    assert "-l" not in argv and "-p" not in argv and "-F" not in argv


def test_agent_argv_uses_the_tool_venv() -> None:
    assert layout.agent("run", "demo", ["logs", "--since", "1h ago"]) == [
        "/opt/deploykit/bin/python", "-m", "deploykit.remote.agent", "run", "demo", "logs", "--since", "1h ago",
    ]  # fmt: skip
    assert layout.unit("demo") == "deploykit-apply-demo.service"


def test_a_shared_control_folder_is_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o777)
    open_dir.chmod(0o777)
    ssh = SshClient(SshTarget("h"), {"DEPLOYKIT_SSH_CONTROL_DIR": str(open_dir)})
    with pytest.raises(SshError, match="must be private"):
        ssh.argv(["true"])


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("No ED25519 host key is known for web1 and you have requested strict checking.\n"
         "Host key verification failed.\n",
         "ssh: the host key of web1 is not known (ED25519 key SHA256:abc); refusing to connect"),
        ("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.\n",
         "ssh: the host key of web1 has CHANGED (it now offers ED25519 key SHA256:abc); refusing to connect"),
        ("nobody@web1: Permission denied (publickey).\n",
         "ssh: nobody@web1 refused the login (nobody@web1: Permission denied (publickey).)"),
        ("ssh: connect to host web1 port 22: Connection refused\n",
         "ssh: cannot reach ssh://nobody@web1: ssh: connect to host web1 port 22: Connection refused"),
    ],
)  # fmt: skip
def test_ssh_failures_become_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stderr: str, expected: str
) -> None:
    ssh = client(tmp_path, SshTarget("web1", "nobody"))
    monkeypatch.setattr(ssh, "fingerprint", lambda: ("ED25519", "SHA256:abc"))
    error = ssh.explain(stderr)
    assert error.message == expected
    assert "\n" not in error.message and error.exit_code == 1
