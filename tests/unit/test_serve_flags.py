"""`deploykit serve`'s flags take their choices, value types and the "[default]" of their
help from the option table generated from ServerSettings (issue 17 part 4): the flag
table holds only what the model cannot know, so the two cannot drift apart."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import typing
from typing import Any, Literal

import pytest
from pydantic import Field

from deploykit.server import command
from deploykit.settings import codegen
from deploykit.settings.server import ServerSettings

#: The flags whose --help default is not the model's, on purpose: the model's None or () means
#: "decided at start-up", or an environment variable comes first. Every other flag shows the model's.
OVERRIDDEN = {
    "wsgi_threads": "4 x CPUs / workers, at least 2",
    "use_colors": "when a terminal",
    "reload_dirs": ".",
    "workers": "$WEB_CONCURRENCY or 1",
    "forwarded_allow_ips": "$FORWARDED_ALLOW_IPS or 127.0.0.1, ::1, unix:",
}


def field_actions(parser: argparse.ArgumentParser | None = None) -> dict[str, argparse.Action]:
    """ServerSettings field -> the argparse action of its flag (the --x of a --x/--no-x pair)."""
    flags = dict(command.FLAGS)
    found = {}
    for action in (parser or command.parser())._actions:
        if action.option_strings and action.option_strings[0] in flags:
            flag = action.option_strings[0]
            found[command._dest(flag, flags[flag])] = action
    return found


def test_every_field_has_one_flag() -> None:
    assert sorted(field_actions()) == sorted(ServerSettings.model_fields)


def _literals(annotation: Any) -> tuple[Any, ...] | None:
    return typing.get_args(annotation) if typing.get_origin(annotation) is Literal else None


LITERAL_FIELDS = {
    name: choices for name, info in ServerSettings.model_fields.items() if (choices := _literals(info.annotation))
}


def test_the_literal_fields_are_found() -> None:
    # guards the table below against a change in how the model spells its choices
    assert set(LITERAL_FIELDS) == {"loop", "http", "ws", "lifespan", "log_level"}


@pytest.mark.parametrize("name", sorted(LITERAL_FIELDS))
def test_choices_are_the_models(name: str) -> None:
    assert tuple(field_actions()[name].choices or ()) == LITERAL_FIELDS[name]


def _bracket(action: argparse.Action) -> str | None:
    """The "[default]" at the end of a flag's help, as --help prints it."""
    text = (action.help or "") % {}  # argparse %-formats help texts ("%%" is one "%")
    found = re.search(r" \[(.*)\]$", text)
    return found.group(1) if found else None


def _is_the_models(shown: str | None, default: Any) -> bool:
    """Whether SHOWN, read back as a user would, is DEFAULT (nothing shown for None or empty)."""
    if default is None or (isinstance(default, str | tuple | dict) and not default):
        return shown is None
    if shown is None:
        return False
    if isinstance(default, bool):
        return shown in (("on", "true") if default else ("off", "false"))
    if isinstance(default, tuple):
        return tuple(shown.split(", ")) == default
    if isinstance(default, int | float):
        return type(default)(shown) == default
    return bool(shown == default)


@pytest.mark.parametrize("name", sorted(ServerSettings.model_fields))
def test_help_shows_the_models_default(name: str) -> None:
    shown = _bracket(field_actions()[name])
    if name in OVERRIDDEN:
        assert shown == OVERRIDDEN[name]
    else:
        default = ServerSettings.model_fields[name].get_default(call_default_factory=True)
        assert _is_the_models(shown, default), f"{name}: --help shows [{shown}], the model's default is {default!r}"


def test_help_prints(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        command.parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "--port PORT" in out and "--h11-max-incomplete-event-size" in out


def test_the_flag_table_repeats_nothing_the_model_knows() -> None:
    for flag, kwargs in command.FLAGS:
        assert not {"choices", "default"} & kwargs.keys(), flag
        assert kwargs.get("type") in (None, command._bool), flag  # the BOOL value flag's own parser
        assert kwargs.get("action") in (None, "append"), flag
        assert not re.search(r"\[.*\]$", kwargs["help"]), f"{flag}: its [default] comes from the model"


class Wider(ServerSettings):
    """ServerSettings as a later version might have it: a new choice, a field turned float or bool."""

    loop: Literal["auto", "uvloop", "asyncio", "trio"] = "auto"
    backlog: float = Field(default=2048.5, ge=1)
    reload: Literal["auto", "yes", "no"] = "no"
    workers: int = Field(default=7, ge=1)


def test_a_choice_added_to_the_model_is_taken_by_the_parser() -> None:
    wider = command.parser(codegen.specs(Wider))
    assert wider.parse_args(["-", "--loop", "trio"]).loop == "trio"
    with pytest.raises(SystemExit):
        command.parser().parse_args(["-", "--loop", "trio"])


def test_types_and_defaults_follow_the_model() -> None:
    wider = command.parser(codegen.specs(Wider))
    assert wider.parse_args(["-", "--backlog", "10.5"]).backlog == 10.5
    assert wider.parse_args(["-", "--reload", "yes"]).reload == "yes"  # no longer --reload/--no-reload
    actions = field_actions(wider)
    assert _bracket(actions["backlog"]) == "2048.5"
    assert _bracket(actions["reload"]) == "no"
    assert _bracket(actions["workers"]) == "$WEB_CONCURRENCY or 7"
    with pytest.raises(SystemExit):
        command.parser().parse_args(["-", "--backlog", "10.5"])  # an int today


def test_a_default_with_a_percent_sign_prints() -> None:
    table = codegen.specs(ServerSettings)
    table["access_log_format"] = {**table["access_log_format"], "default": "{status} 100%"}
    action = field_actions(command.parser(table))["access_log_format"]
    assert _bracket(action) == "{status} 100%"
    assert "100%" in command.parser(table).format_help()


def test_the_generated_table_is_the_models() -> None:
    from deploykit.server.options_spec import SPEC

    assert codegen.specs(ServerSettings) == SPEC


@pytest.mark.parametrize(
    "code",
    [
        # the command as systemd starts it, with the parser built
        "import runpy, sys; sys.argv = ['deploykit', 'serve', '--help']; "
        "runpy.run_module('deploykit', run_name='__main__')",
        # flags parsed and validated, as before the app is imported
        "from deploykit.server.command import flag_options; from deploykit.server.options import validate; "
        "validate(flag_options(['--port', '1', '--loop', 'asyncio']), 'command line')",
    ],
)
def test_serve_starts_without_pydantic(code: str) -> None:
    probe = (
        f"import sys\ntry:\n    {code}\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'typer', 'rich'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
