"""`deploykit serve` validates without pydantic; these tests keep its rules
identical to the ServerSettings model it is generated from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from deploykit.errors import SettingsError
from deploykit.server.command import flag_options, flags_for
from deploykit.server.options import ServerOptions, validate
from deploykit.server.options_spec import SPEC
from deploykit.settings.codegen import generate
from deploykit.settings.server import ServerSettings
from tests.render.test_every_setting import value_of

GENERATED = Path(__file__).resolve().parents[2] / "deploykit" / "server" / "options_spec.py"


def test_generated_spec_is_current() -> None:
    assert GENERATED.read_text() == generate(), "run: python -m deploykit.settings.codegen > " + str(GENERATED)


def test_defaults_match_the_model() -> None:
    model = ServerSettings()
    options = ServerOptions()
    for name in ServerSettings.model_fields:
        expected = getattr(model, name)
        if hasattr(expected, "get_secret_value"):
            expected = expected.get_secret_value()
        assert getattr(options, name) == expected, name


def samples(name: str) -> list[Any]:
    """Values near and past each field's edges, of right and wrong types."""
    spec = SPEC[name]
    found: list[Any] = [None, True, "x", 1, 1.5, "", ["a"], {"a": "b"}, "/abs/path", "bad; {}", "a\nb", [1], {"A": 1}]
    for bound in ("ge", "gt", "le"):
        if bound in spec:
            found += [spec[bound] - 1, spec[bound], spec[bound] + 1, str(spec[bound])]
    found += list(spec.get("choices", ())) + ["bogus"]
    if spec["kind"] == "list":
        found += [("127.0.0.1", "unix:"), ["10.0.0.0/8", "*"], ["nope"], ["/a", "/b"], ["a\nb"]]
    if spec["kind"] == "dict":
        found += [{"X-Ok": "v"}, {"bad name": "v"}, {"X-A": "v\r\nInjected: 1"}]
    return found


def accepts_model(name: str, value: Any) -> bool:
    try:
        ServerSettings.model_validate({name: value})
    except ValidationError:
        return False
    return True


def accepts_options(name: str, value: Any) -> bool:
    try:
        validate({name: value})
    except SettingsError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(set(SPEC) - {"ssl_keyfile", "ssl_certfile"}))  # paired: test_tls_pair
def test_same_values_accepted_and_rejected(name: str) -> None:
    disagree = [v for v in samples(name) if accepts_model(name, v) != accepts_options(name, v)]
    assert disagree == [], f"{name}: model and serve options disagree on {disagree!r}"


TLS = {"ssl_keyfile": "/k", "ssl_certfile": "/c"}


@pytest.mark.parametrize("given", [("ssl_keyfile",), ("ssl_certfile",), (), ("ssl_keyfile", "ssl_certfile")])
def test_tls_pair_same_verdict_from_the_model_and_from_serve(given: tuple[str, ...]) -> None:
    """The one rule (settings/rules.py) through both validators, for every combination."""
    values = {name: TLS[name] for name in given}
    ok = len(given) != 1
    assert accepts_model_values(values) == ok
    assert accepts_options_values(values) == ok
    if not ok:
        with pytest.raises(ValidationError, match="ssl_keyfile and ssl_certfile must be set together"):
            ServerSettings.model_validate(values)
        with pytest.raises(SettingsError) as info:
            validate(values)
        assert info.value.problems == ("options: ssl_keyfile and ssl_certfile must be set together",)
        with pytest.raises(SettingsError) as info:
            validate(flag_options(flags_for(values)), source="command line")
        assert info.value.problems == ("command line: --ssl-keyfile and --ssl-certfile must be set together",)
    else:
        assert validate(values).ssl_certfile == values.get("ssl_certfile")


def test_a_rule_added_to_the_table_binds_both_validators(monkeypatch: pytest.MonkeyPatch) -> None:
    from deploykit.settings import rules  # here, so the other tests run against a tree without it

    monkeypatch.setattr(rules, "SET_TOGETHER", (*rules.SET_TOGETHER, ("limit_concurrency", "limit_max_requests")))
    both = {"limit_concurrency": 10, "limit_max_requests": 1000}
    for values in ({"limit_concurrency": 10}, {"limit_max_requests": 1000}):
        assert not accepts_model_values(values)
        assert not accepts_options_values(values)
    assert accepts_model_values(both) and accepts_options_values(both)


def accepts_model_values(values: dict[str, Any]) -> bool:
    try:
        ServerSettings.model_validate(values)
    except ValidationError:
        return False
    return True


def accepts_options_values(values: dict[str, Any]) -> bool:
    try:
        validate(values)
    except SettingsError:
        return False
    return True


def test_errors_name_the_flag_and_use_the_models_wording() -> None:
    with pytest.raises(SettingsError) as info:
        validate({"port": 70000, "http": "fast", "nope": 1}, source="command line")
    assert info.value.problems == (
        "command line: --port = 70000: Input should be less than or equal to 65535",
        "command line: --http = 'fast': Input should be 'auto' or 'httptools' or 'h11'",
        "command line: --nope = 1: unknown option",
    )


@pytest.mark.parametrize("name", sorted(ServerSettings.model_fields))
def test_every_option_round_trips_through_the_flags_the_units_render(name: str) -> None:
    """flags_for (ExecStart, $DEPLOYKIT_SERVE_ARGS) is the parser's table read backwards:
    a non-default value of every field comes back from `deploykit serve`'s parser."""
    info = ServerSettings.model_fields[name]
    raw = value_of(info.annotation, list(info.metadata), info.get_default(call_default_factory=True))
    value = getattr(ServerSettings.model_validate({name: raw, **_PAIRED.get(name, {})}), name)
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    parsed = validate(flag_options(flags_for({name: value, **_PAIRED.get(name, {})})))
    assert getattr(parsed, name) == value


def test_none_turns_pings_off_from_the_command_line() -> None:
    assert flags_for({"ws_ping_interval": None}) == ["--ws-ping-interval", "none"]
    assert validate(flag_options(["--ws-ping-interval", "none"])).ws_ping_interval is None


_PAIRED = {"ssl_keyfile": {"ssl_certfile": "/c"}, "ssl_certfile": {"ssl_keyfile": "/k"}}
