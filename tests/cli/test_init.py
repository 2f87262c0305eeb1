"""`deploykit init` reads its answers from a terminal (asking again on a bad
answer), from a pipe (one line per question), or not at all (--no-input)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploykit.errors import SettingsError
from deploykit.project import ask, piped, questions
from deploykit.settings.load import shipped_profiles

ROOT = Path(__file__).resolve().parents[2]
INIT = [sys.executable, "-m", "deploykit", "init"]


def scripted(*lines: str) -> tuple[list[str], object]:
    prompts: list[str] = []
    queue = list(lines)

    def read(prompt: str) -> str | None:
        prompts.append(prompt)
        return queue.pop(0) if queue else None

    return prompts, read


def test_a_terminal_asks_again_after_an_invalid_answer(tmp_path: Path) -> None:
    prompts, read = scripted("nope", "django", "My Shop", "shop", "", "shop.example www.shop.example")
    problems: list[str] = []
    answers = ask(questions(tmp_path / "folder"), {}, read, again=problems.append)  # type: ignore[arg-type]
    assert answers == {
        "profile": "django",
        "name": "shop",
        "module": "app.main:app",
        "server_names": "shop.example www.shop.example",
    }
    asked = f"Profile ({'/'.join(sorted(shipped_profiles()))})"  # every packaged profile, whatever ships
    assert [p.split(" [")[0] for p in prompts] == [
        asked,
        asked,
        "App name",
        "App name",
        "ASGI app (module:attr)",
        "Server names (space-separated)",
    ]
    assert problems[0].startswith(f"{asked}: 'nope': profile 'nope' not found")
    assert problems[1].startswith("App name: 'My Shop': must be 2-32 lowercase letters")


def test_flags_are_not_asked_and_the_end_of_input_takes_the_defaults(tmp_path: Path) -> None:
    prompts, read = scripted("tls")
    answers = ask(questions(tmp_path / "my-app"), {"module": "pkg:app"}, read)  # type: ignore[arg-type]
    assert answers == {"profile": "tls", "name": "my-app", "module": "pkg:app", "server_names": "_"}
    assert len(prompts) == 3


def test_a_piped_invalid_answer_names_its_line(tmp_path: Path) -> None:
    _, read = scripted("", "shop", "not a module")
    with pytest.raises(SettingsError, match=r"^init answer 3: ASGI app \(module:attr\): 'not a module': must be"):
        ask(questions(tmp_path), {}, read)  # type: ignore[arg-type]


def test_piped_lines_lose_their_line_ends() -> None:
    lines = iter(["django\r\n", "shop\n", ""])
    read = piped(lambda: next(lines))
    assert (read("x"), read("x"), read("x")) == ("django", "shop", None)


def test_answers_from_a_real_pipe(tmp_path: Path) -> None:
    answers = "django\nshop\nconfig.asgi:application\nshop.example www.shop.example\n"
    done = subprocess.run([*INIT, str(tmp_path)], input=answers, text=True, capture_output=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "deploykit.toml").read_text()
    assert 'profile = "django"' in text and 'name = "shop"' in text
    assert 'module = "config.asgi:application"' in text
    assert '"shop.example", "www.shop.example"' in text


def test_a_bad_answer_from_a_pipe_writes_nothing(tmp_path: Path) -> None:
    done = subprocess.run([*INIT, str(tmp_path)], input="django\nMy Shop\n", text=True, capture_output=True, cwd=ROOT)
    assert done.returncode == 1
    assert "error: init answer 2: App name: 'My Shop': must be" in done.stderr
    assert not (tmp_path / "deploykit.toml").exists()


def test_no_input_reads_nothing_from_the_pipe(tmp_path: Path) -> None:
    done = subprocess.run(
        [*INIT, str(tmp_path), "--no-input"], input="django\n", text=True, capture_output=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert 'profile = "fastapi"' in (tmp_path / "deploykit.toml").read_text()


def test_a_real_terminal_asks_again(tmp_path: Path) -> None:
    """Through a pseudo-terminal, as a person would type."""
    main, child = pty.openpty()
    proc = subprocess.Popen([*INIT, str(tmp_path / "site")], stdin=child, stdout=child, stderr=child, cwd=ROOT)
    os.close(child)
    seen = b""

    def until(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 20
        while text not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            if select.select([main], [], [], 0.5)[0]:
                try:
                    seen += os.read(main, 4096)
                except OSError:  # the child closed the terminal
                    break
        assert text in seen, seen.decode(errors="replace")

    try:
        for prompt, answer in [
            (b"Profile", b"websocket"),
            (b"App name", b"Bad Name"),
            (b"try again", b"chat"),
            (b"ASGI app", b""),
            (b"Server names", b"chat.example"),
        ]:
            until(prompt)
            os.write(main, answer + b"\n")
        assert proc.wait(20) == 0, seen.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    text = (tmp_path / "site" / "deploykit.toml").read_text()
    assert 'profile = "websocket"' in text and 'name = "chat"' in text and '"chat.example"' in text
