from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deploykit.settings.load import load, shipped_profiles
from deploykit.settings.model import Settings

PROFILES = shipped_profiles()
#: The package whose modules boot real hosts: the slowest units of work, handed out first (see below).
REALHOST = "tests/realhost/"
#: The unit of work that holds every module on the session's shared host (the `deployed` fixture).
SHARED_HOST = "realhost-deployed"


@pytest.hookimpl(optionalhook=True)
def _still_ignored(signum: int, frame: object) -> None:
    """Ignores the signal here, as SIG_IGN did, but exec resets it to SIG_DFL in the suite's children."""


def pytest_configure(config: pytest.Config) -> None:
    """A suite started as `nohup make test &` from a script (no job control), as some CI runners and
    people do, inherits SIGHUP, SIGINT and SIGQUIT ignored, and an ignored signal stays ignored across
    fork and exec: every process a test started then ignored them. `deploykit logs -f` never ended on
    the SIGINT test_operate sends it, and `make unit` hung. Here a signal the suite found ignored gets a
    handler instead (SIGINT: Python's own), so the suite behaves as it was asked to and its children
    start with the defaults, however it was started."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        if signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else _still_ignored)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist with `--dist loadfile` (`make unit`: `-n 3`), each worker runs whole modules,
    so a module's shared fixtures (its servers, its booted container) are made once; the modules on
    the session's shared host (those that take `deployed`) are one unit, run in their usual order on
    one worker, which boots that host once. (xdist's own `--dist loadgroup` cannot do this here: its
    groups are lost with pytest >= 9, which no longer reads the node id it rewrites.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    shared: dict[str, bool] = {}

    class ModulesAndSharedHost(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            if module not in shared:
                path = Path(str(config.rootpath)) / module
                shared[module] = module.startswith(REALHOST) and "deployed: Deployed" in path.read_text()
            return SHARED_HOST if shared[module] else module

    return ModulesAndSharedHost(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker, the real-host modules first (the scheduler hands out modules in this order,
    `make unit` says --no-loadscope-reorder): they take the longest, and one handed out last would
    leave the other workers idle at the end. The order within each module stays."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: not item.nodeid.startswith(REALHOST))


def settings_for(profile: str | None, *overrides: str, environ: dict[str, str] | None = None) -> Settings:
    return load(profile=profile, environ=environ or {}, overrides=("app.name=demo", *overrides)).settings


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads a deploykit.toml or DEPLOYKIT_* variable from the developer's machine."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("DEPLOYKIT_")]:
        monkeypatch.delenv(key)


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary folder other users can enter: pytest's tmp_path is 0700 under
    /tmp/pytest-of-<user>, and when the tests run as root nginx's workers run as nobody."""
    folder = Path(tempfile.mkdtemp(prefix="dk-open-"))
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def require(tool: str) -> str:
    found = shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        pytest.fail(f"{tool} is required for this test; `make test` installs it with apt-get")
    return found


@pytest.fixture
def self_signed(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """A real certificate pair made by openssl (optionally with an OCSP URL)."""

    def make(days: int = 30, ocsp: bool = False) -> tuple[Path, Path]:
        openssl = require("openssl")
        cert, key = tmp_path / f"cert-{days}.pem", tmp_path / f"key-{days}.pem"
        argv = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        argv += ["-days", str(days), "-subj", "/CN=example.com", "-keyout", str(key), "-out", str(cert)]
        if ocsp:
            argv += ["-addext", "authorityInfoAccess=OCSP;URI:http://127.0.0.1:9/ocsp"]
        subprocess.run(argv, check=True, capture_output=True)
        return cert, key

    return make
