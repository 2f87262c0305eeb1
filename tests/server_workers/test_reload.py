"""--reload: a real server process restarting on file changes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from deploykit.server.reload import matches
from tests.conftest import free_port
from tests.polling import wait_for, write_atomic
from tests.server_workers.support import get

APP_V1 = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b"VERSION"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
"""


def _body(port: int) -> str:
    try:
        return get(port, timeout=1)[1]
    except OSError:
        return ""


def test_reload_restarts_on_change_and_survives_a_syntax_error(tmp_path: Path) -> None:
    module = tmp_path / "reloadme.py"
    module.write_text(APP_V1.replace("VERSION", "v1"))
    port = free_port()
    log = tmp_path / "reload.log"
    argv = [sys.executable, "-m", "deploykit", "serve", "reloadme:app", "--port", str(port), "--app-dir",
            str(tmp_path), "--reload", "--reload-dir", str(tmp_path), "--reload-delay", "0.1"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=tmp_path, stdout=out, stderr=out)
    try:
        wait_for(lambda: _body(port) == "v1", 15, "v1")
        # Each edit lands as one rename: a truncate and a write seen in two batches would be two restarts.
        write_atomic(module, APP_V1.replace("VERSION", "v2"))
        wait_for(lambda: _body(port) == "v2", 15, "v2 after an edit")
        write_atomic(module, "def broken(:\n")
        wait_for(lambda: "SyntaxError" in log.read_text(), 15, "the syntax error to be logged")
        assert proc.poll() is None, "the reloader must survive a broken app"
        write_atomic(module, APP_V1.replace("VERSION", "v3"))
        wait_for(lambda: _body(port) == "v3", 15, "v3 after the fix")
        (tmp_path / "notes.txt").write_text("not python")
        time.sleep(0.5)
        assert log.read_text().count("changed; restarting") == 3  # the .txt did not count
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    assert code == 0, log.read_text()


def test_include_and_exclude_globs() -> None:
    assert matches("/src/app/main.py", ("*.py",), (".*",))
    assert not matches("/src/app/.hidden.py", ("*.py",), (".*",))
    assert not matches("/src/app/notes.txt", ("*.py",), ())
    assert matches("/src/app/templates/a.html", ("*.py", "*.html"), ())
    assert not matches("/src/app/main.pyc", ("*.py",), (".py[cod]", "*.pyc"))


def test_polling_fallback_sees_changes_new_and_removed_files(tmp_path: Path) -> None:
    """The mtime poller used when watchfiles is not importable."""
    import socket as socket_module

    from deploykit.server.options import validate
    from deploykit.server.reload import Reloader

    (tmp_path / "a.py").write_text("a = 1\n")
    settings = validate({"reload_dirs": [str(tmp_path)], "reload_delay": 0.1})
    with socket_module.socket() as unused:
        reloader = Reloader(settings, lambda: None, unused)  # type: ignore[arg-type,return-value]
        changes = reloader._poll()
        assert next(changes) == set()  # watching
        time.sleep(0.05)
        (tmp_path / "a.py").write_text("a = 22\n")
        (tmp_path / "b.py").write_text("b = 1\n")
        (tmp_path / "notes.txt").write_text("ignored\n")
        assert next(changes) == {str(tmp_path / "a.py"), str(tmp_path / "b.py")}
        (tmp_path / "b.py").unlink()
        assert next(changes) == {str(tmp_path / "b.py")}
        reloader.stop.set()
        assert next(changes, None) is None
