"""`deploykit init`: ask for the answers flags do not give, then write a
commented, valid deploykit.toml.

Answers come from one of three places (``ask``):
- a terminal: each question is prompted, and an invalid answer is asked again;
- a pipe or file (``deploykit init < answers.txt``): one line per question, in
  order; an empty line or the end of input takes the default; an invalid line is
  an error naming the line, since nobody is there to ask again;
- ``--no-input``: the defaults, nothing read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploykit.errors import DeployKitError, FileExistsRefused, SettingsError
from deploykit.render.jinja import render_template
from deploykit.settings.load import PROJECT_FILE, Source, profile_source, shipped_profiles, validate
from deploykit.settings.syntax import CHECKS

#: Reads one answer after showing a prompt; None at the end of input.
ReadLine = Callable[[str], str | None]


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    default: str
    check: Callable[[str], object]


def questions(folder: Path) -> tuple[Question, ...]:
    """What init asks, in order (the order of lines in an answers file)."""
    profiles = shipped_profiles()

    def profile(value: str) -> object:
        return profile_source(value, (folder / "profiles",))

    def server_names(value: str) -> object:
        return [CHECKS["host name"](name) for name in value.split()]

    return (
        Question("profile", f"Profile ({'/'.join(profiles)})", "fastapi", profile),
        Question("name", "App name", default_name(folder), CHECKS["app name"]),
        Question("module", "ASGI app (module:attr)", "app.main:app", CHECKS["module:attr"]),
        Question("server_names", "Server names (space-separated)", "_", server_names),
    )


def ask(
    asked: Sequence[Question],
    given: Mapping[str, str],
    read: ReadLine | None,
    *,
    again: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """An answer for every question: GIVEN (from flags) first, then READ (None: the
    defaults). With AGAIN (a terminal), an invalid answer is reported through it and
    asked again; without, it is an error naming the answer's line."""
    answers: dict[str, str] = {}
    line = 0
    for question in asked:
        if question.key in given:
            answers[question.key] = given[question.key]
            continue
        while True:
            raw = read(f"{question.text} [{question.default}]: ") if read is not None else None
            line += raw is not None
            value = raw.strip() if raw is not None and raw.strip() else question.default
            try:
                question.check(value)
            except (ValueError, DeployKitError) as exc:
                problem = f"{question.text}: {value!r}: {exc}"
                if again is None or raw is None:
                    where = f"init answer {line}" if raw is not None else "init"
                    raise SettingsError(
                        f"{where}: {problem}", hint="Answer one question per line; an empty line takes the default."
                    ) from exc
                again(problem)
                continue
            answers[question.key] = value
            break
    return answers


def piped(stream: Callable[[], str]) -> ReadLine:
    """Answers from a non-terminal stdin, one line each (the prompt is not shown)."""

    def read(_prompt: str) -> str | None:
        line = stream()
        return None if line == "" else line.rstrip("\r\n")

    return read


def init_from_answers(
    folder: Path,
    given: Mapping[str, str],
    *,
    read: ReadLine | None,
    again: Callable[[str], None] | None = None,
    force: bool = False,
) -> Path:
    """`deploykit init`: refuse an existing file before asking anything, then ask, then write."""
    _refuse_existing(folder / PROJECT_FILE, force)
    answers = ask(questions(folder), given, read, again=again)
    return init_project(
        folder,
        profile=answers["profile"],
        name=answers["name"],
        module=answers["module"],
        server_names=answers["server_names"].split(),
        force=force,
    )


def _refuse_existing(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise FileExistsRefused(f"{target} already exists")


def default_name(folder: Path) -> str:
    """A valid app name guessed from a directory name."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", folder.resolve().name.lower()).strip("-")
    cleaned = re.sub(r"^[^a-z]+", "", cleaned)[:32].rstrip("-")
    return cleaned if len(cleaned) >= 2 else "app"


def init_project(
    folder: Path,
    *,
    profile: str,
    name: str,
    module: str,
    server_names: Sequence[str] = ("_",),
    force: bool = False,
) -> Path:
    """Validate the answers against the model, then write FOLDER/deploykit.toml."""
    target = folder / PROJECT_FILE
    _refuse_existing(target, force)
    answers = {"app": {"name": name, "module": module}, "nginx": {"server_names": list(server_names)}}
    validate([profile_source(profile, (folder / "profiles",)), Source("init answers", answers)])
    text = render_template(
        "deploykit.toml.j2",
        name=name,
        module=module,
        profile=profile,
        server_names=list(server_names),
        profiles=", ".join(shipped_profiles()),
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DeployKitError(f"cannot write {target}: {exc.strerror}") from exc
    return target
