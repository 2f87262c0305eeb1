"""What apply tells its progress while a long step runs: the wheels pip has read (n of N, from
pip's real output lines), the install and compile phases, and the health wait against its timeout."""

from __future__ import annotations

from deploykit.apply.report import Step
from deploykit.apply.run import deploy_settings
from deploykit.host.base import CommandResult
from tests.apply.test_code_releases import hook_answers, released, wheelhouse
from tests.apply.test_engine import HEALTHY, host_with
from tests.conftest import settings_for

WHEELS = ("anyio-4.16.0-py3-none-any.whl", "app-1-py3-none-any.whl", "idna-3.20-py3-none-any.whl")
#: what pip 23-26 print for `pip install --no-index --find-links WH WH/*.whl` (recorded from a real run)
PIP_OUTPUT = (
    "Looking in links: /wh\n"
    + "".join(f"Processing /wh/{name}\n" for name in WHEELS)
    + "Installing collected packages: idna, app, anyio\n"
    + "Successfully installed anyio-4.16.0 app-1 idna-3.20\n"
)


class Recorder:
    """A Progress that keeps what it was told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def start(self, name: str) -> None:
        self.events.append(("start", name))

    def done(self, step: Step) -> None:
        self.events.append(("done", step.name, step.status))

    def output(self, line: str) -> None:
        self.events.append(("output", line))

    def update(self, phase: str, done: float | None = None, total: float | None = None, *, timed: bool = False) -> None:
        self.events.append(("update", phase, str(done), str(total), "timed" if timed else ""))

    def during(self, step: str) -> list[tuple[str, ...]]:
        begin = self.events.index(("start", step))
        end = next(i for i, e in enumerate(self.events) if e[:2] == ("done", step))
        return [e[1:] for e in self.events[begin + 1 : end] if e[0] == "update"]


def test_a_code_release_install_counts_the_wheels_pip_reads_then_installs_and_compiles() -> None:
    host = host_with()
    hook_answers(host)
    pip_answer = CommandResult(0, PIP_OUTPUT)
    host.hook = lambda argv: pip_answer if argv[1:4] == ["-m", "pip", "install"] else None
    progress = Recorder()
    deploy = deploy_settings(released(), host, install_app=wheelhouse(host, "/wh", *WHEELS), health=False)
    deploy.progress = progress
    deploy.run()
    assert progress.during("install the release") == [
        ("making the venv", "None", "None", ""),
        ("reading the wheels", "0", "3", ""),
        ("reading the wheels", "1", "3", ""),
        ("reading the wheels", "2", "3", ""),
        ("reading the wheels", "3", "3", ""),
        ("installing 3 packages", "None", "None", ""),
        ("compiling", "None", "None", ""),
    ]
    pip = next(argv for argv in host.commands if argv[1:4] == ["-m", "pip", "install"])
    assert "--quiet" not in pip  # pip's "Processing" lines are the progress


def test_the_app_install_counts_the_wheels_and_health_waits_against_its_timeout() -> None:
    settings = settings_for(None, "deploy.health_timeout=45")
    host = host_with()
    for name in WHEELS:
        host.write(f"/mnt/wheels/{name}", b"", mode=0o644)
    host.answers.insert(0, (("/srv/demo/.venv/bin/python3", "-c"), CommandResult(0, HEALTHY)))
    pip_answer = CommandResult(0, PIP_OUTPUT)
    host.hook = lambda argv: pip_answer if argv[1:4] == ["-m", "pip", "install"] else None
    progress = Recorder()
    deploy = deploy_settings(settings, host, install_app="/mnt/wheels", progress=progress)
    deploy.run()
    install = progress.during("install the app")  # in place: app.venv, no code releases
    assert [u[1:3] for u in install if u[0] == "reading the wheels"] == [("0", "3"), ("1", "3"), ("2", "3"), ("3", "3")]
    assert install[-1][0] == "installing 3 packages"
    assert progress.during("health") == [("waiting for an answer", "None", "45", "timed")]
