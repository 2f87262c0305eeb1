"""The CLI's commands on ssh:// hosts, with the SSH session and the build faked:
what each command sends to the hosts, when it asks, and that apply builds
deploy.project here and ships that wheelhouse (as a local apply builds it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploykit.cli import main
from deploykit.errors import UsageError
from deploykit.remote import commands
from deploykit.remote.commands import Remote, where
from deploykit.remote.target import SshTarget
from deploykit.settings.load import Source, validate
from deploykit.settings.model import Settings

ONE = SshTarget("web1", "root")
TWO = SshTarget("web2", "root", 2222)


@dataclass
class Sent:
    """What reached the hosts: (hosts, command, args, the wheels shipped and their files then)."""

    calls: list[tuple[list[str], str, list[str], Path | None, list[str]]] = field(default_factory=list)
    codes: dict[str, int] = field(default_factory=dict)

    def __call__(
        self,
        targets: Sequence[SshTarget],
        settings: Settings,
        command: str,
        args: Sequence[str],
        app_wheels: Path | None,
        say: commands.Say,
    ) -> int:
        files = sorted(p.name for p in app_wheels.iterdir()) if app_wheels is not None else []
        self.calls.append(([str(t) for t in targets], command, list(args), app_wheels, files))
        return self.codes.get(command, 0)


def settings(**deploy: object) -> Settings:
    data = {"app": {"name": "demo"}, "nginx": {"server_names": ["demo.example"]}, "deploy": deploy}
    return validate([Source("deploykit.toml", data)]).settings


def never(question: str) -> None:
    raise AssertionError(f"asked {question!r}")


def test_where_takes_flags_then_env_then_the_settings() -> None:
    assert where(None, [], environ={}) == (None, [])
    assert where(["local"], ["ssh://root@web1"], environ={}) == ("local", [])
    assert where(None, ["ssh://root@web1"], environ={}) == (None, [ONE])
    assert where(None, ["ssh://root@web1"], environ={"DEPLOYKIT_HOST": "ssh://root@web2:2222"}) == (None, [TWO])
    assert where(None, ["ssh://root@web1"], Path("/tmp/tree"), environ={}) == (None, [])


def test_apply_asks_then_applies_on_every_host_in_turn() -> None:
    sent, asked = Sent(), list[str]()
    remote = Remote([ONE, TWO], settings(), print, run_on=sent)
    code = remote.apply(config=None, preview=False, confirm=asked.append, dry_run=False, fmt="json",
                        wheelhouse=None, health=False)  # fmt: skip
    assert code == 0
    assert asked == ["Apply these changes on ssh://root@web1, ssh://root@web2:2222?"]
    assert sent.calls == [(["ssh://root@web1", "ssh://root@web2:2222"], "apply",
                           ["--yes", "--format", "json", "--no-health"], None, [])]  # fmt: skip


def test_an_interactive_apply_shows_the_plans_and_stops_when_nothing_changes() -> None:
    sent = Sent()
    remote = Remote([ONE], settings(), print, run_on=sent)
    code = remote.apply(config=None, preview=True, confirm=never, dry_run=False, fmt="table", wheelhouse=None,
                        health=True)  # fmt: skip
    assert (code, [c[1] for c in sent.calls]) == (0, ["plan"])
    sent.codes["plan"] = 3  # changes pending: ask, then apply
    asked: list[str] = []
    remote.apply(config=None, preview=True, confirm=asked.append, dry_run=False, fmt="table", wheelhouse=None,
                 health=True)  # fmt: skip
    assert [c[1] for c in sent.calls] == ["plan", "plan", "apply"] and len(asked) == 1


def test_a_dry_run_only_plans() -> None:
    sent = Sent(codes={"plan": 3})
    remote = Remote([ONE], settings(), print, run_on=sent)
    assert remote.apply(config=None, preview=True, confirm=never, dry_run=True, fmt="table", wheelhouse=None,
                        health=True) == 3  # fmt: skip
    assert [c[1:3] for c in sent.calls] == [("plan", [])]


def test_a_no_stops_before_anything_reaches_the_host() -> None:
    def no(question: str) -> None:
        raise UsageError("no")

    sent = Sent()
    remote = Remote([ONE], settings(), print, run_on=sent)
    with pytest.raises(UsageError):
        remote.rollback(confirm=no, to=None, fmt="table", health=True)
    assert sent.calls == []


def test_apply_ships_a_given_wheelhouse_and_builds_nothing(tmp_path: Path) -> None:
    (tmp_path / "app-1-py3-none-any.whl").write_bytes(b"wheel")
    sent = Sent()

    def build(settings: Settings, config: Path | None, out: Path) -> Path:
        raise AssertionError("built although --wheelhouse was given")

    remote = Remote([ONE], settings(code_releases=True, project="app"), print, run_on=sent, build=build)
    remote.apply(config=None, preview=False, confirm=lambda q: None, dry_run=False, fmt="table",
                 wheelhouse=str(tmp_path), health=True)  # fmt: skip
    assert sent.calls[0][3:] == (tmp_path, ["app-1-py3-none-any.whl"])
    with pytest.raises(UsageError, match="--wheelhouse nowhere: not a folder here"):
        remote.apply(config=None, preview=False, confirm=lambda q: None, dry_run=False, fmt="table",
                     wheelhouse="nowhere", health=True)  # fmt: skip


@pytest.mark.parametrize(
    ("deploy", "builds"),
    [({"code_releases": True, "project": "app"}, True), ({"code_releases": True}, False), ({"project": "app"}, False)],
)
def test_apply_builds_deploy_project_here_under_code_releases(
    tmp_path: Path, deploy: dict[str, object], builds: bool
) -> None:
    sent, built = Sent(), []
    config = tmp_path / "proj" / "deploykit.toml"

    def build(settings: Settings, given: Path | None, out: Path) -> Path:
        built.append(given)
        (out / "demo-1-py3-none-any.whl").write_bytes(b"wheel")
        return out

    remote = Remote([ONE], settings(**deploy), print, run_on=sent, build=build)
    remote.apply(config=config, preview=False, confirm=lambda q: None, dry_run=False, fmt="table", wheelhouse=None,
                 health=True)  # fmt: skip
    [(_, command, _, wheels, files)] = sent.calls
    assert command == "apply"
    if builds:
        assert built == [config] and files == ["demo-1-py3-none-any.whl"]
        assert wheels is not None and not wheels.exists()  # a temporary folder, gone after the apply
    else:
        assert built == [] and wheels is None


def test_logs_follow_works_on_one_host_at_a_time() -> None:
    sent = Sent()
    with pytest.raises(UsageError, match="one host at a time"):
        Remote([ONE, TWO], settings(), print, run_on=sent).logs(follow=True, since=None, lines=None, fmt="table")
    Remote([ONE], settings(), print, run_on=sent).logs(follow=True, since="1h ago", lines=5, fmt="json")
    assert sent.calls[0][1:3] == ("logs", ["--format", "json", "--follow", "--since", "1h ago", "--lines", "5"])


def test_the_cli_builds_deploy_project_beside_its_toml_and_ships_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`apply --host ssh://` with deploy.project: pip wheel runs here, on the project folder named
    relative to deploykit.toml, and that wheelhouse travels to the host (faked: the SSH session)."""
    project = tmp_path / "site" / "src"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'demo'\nversion = '1'\n")
    config = tmp_path / "site" / "deploykit.toml"
    config.write_text('[app]\nname = "demo"\n[nginx]\nserver_names = ["demo.example"]\n'
                      '[deploy]\ncode_releases = true\nproject = "src"\n')  # fmt: skip
    sent, pip = Sent(), []

    def fake_build(folder: Path, out: Path) -> object:
        pip.append(folder)
        (out / "demo-1-py3-none-any.whl").write_bytes(b"wheel")
        return type("Built", (), {"folder": out})()

    monkeypatch.setattr(commands, "_run_on", sent)
    monkeypatch.setattr("deploykit.build.build", fake_build)
    monkeypatch.delenv("DEPLOYKIT_HOST", raising=False)
    code = main(["apply", "-c", str(config), "--host", "ssh://root@web1", "--yes"])
    assert code == 0, capsys.readouterr().err
    assert pip == [project]
    [(hosts, command, args, _, files)] = sent.calls
    assert (hosts, command, args, files) == (["ssh://root@web1"], "apply", ["--yes", "--format", "table"],
                                             ["demo-1-py3-none-any.whl"])  # fmt: skip
    assert "building deploy.project src here" in capsys.readouterr().err


def test_ctrl_c_ends_logs_follow_with_exit_0_and_anything_else_with_the_interrupt() -> None:
    def interrupted(*args: object) -> int:
        raise KeyboardInterrupt

    remote = Remote([ONE], settings(), print, run_on=interrupted)
    assert remote.logs(follow=True, since=None, lines=None, fmt="table") == 0
    with pytest.raises(KeyboardInterrupt):
        remote.logs(follow=False, since=None, lines=None, fmt="table")
