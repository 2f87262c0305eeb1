"""One line rule for env files: only "\\n" ends a line where deploykit writes, reads and masks them.

str.splitlines also breaks on \\r \\v \\f \\x1c-\\x1e U+0085 U+2028 U+2029. Before, a secret holding
one of them printed its tail in clear in `render --print` / `plan`, and `serve --env-file` read
`X="a\\u2028INJECTED=yes"` as two variables that sh and systemd never see. Every such character
(and every C1 control) is now refused in env keys, values and secrets, naming the field.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from deploykit.errors import DeployKitError, SettingsError
from deploykit.render.envfile import mask_secrets, masked_diff
from deploykit.server.loader import load_env_file
from deploykit.settings.load import Source, validate
from tests.conftest import require

# Everything str.splitlines breaks on besides "\n", and the C1 controls around U+0085.
BREAKERS = ["\u2028", "\u2029", "\x85", "\v", "\f", "\x1c", "\x1d", "\x1e", "\r"]
C1 = [chr(code) for code in range(0x80, 0xA0)]
REFUSED = sorted(set(BREAKERS + C1))


def _id(char: str) -> str:
    return f"U+{ord(char):04X}"


def _settings(where: str, key: str, value: str) -> None:
    validate([Source("deploykit.toml", {"app": {"name": "demo", where: {key: value}}})])


@pytest.mark.parametrize("char", REFUSED, ids=_id)
@pytest.mark.parametrize("where", ["env", "secrets"])
def test_values_with_a_line_breaker_or_c1_control_are_refused_naming_the_field(where: str, char: str) -> None:
    with pytest.raises(SettingsError) as info:
        _settings(where, "TOKEN", f"s3cr3t{char}INJECTED=yes")
    problems = "\n".join(info.value.problems)
    assert f"app.{where}" in problems and "TOKEN" in problems, problems
    assert f"U+{ord(char):04X}" in problems or "carriage return" in problems, problems
    if where == "secrets":
        assert "s3cr3t" not in str(info.value) and "INJECTED" not in str(info.value), "the secret leaked"


@pytest.mark.parametrize("char", REFUSED, ids=_id)
def test_keys_with_a_line_breaker_or_c1_control_are_refused(char: str) -> None:
    for where in ("env", "secrets"):
        with pytest.raises(SettingsError) as info:
            _settings(where, f"KEY{char}INJECTED", "x")
        assert f"app.{where}" in "\n".join(info.value.problems)


@pytest.mark.parametrize("char", BREAKERS, ids=_id)
def test_a_secret_holding_a_line_breaker_is_masked_whole(char: str) -> None:
    """An env file already on the host (written before validation was strict, or by hand) is masked whole."""
    content = f'# header\nPLAIN="shown"\nTOKEN="s3cr3t{char}TAIL=leak"\nOTHER="x"\n'
    masked = mask_secrets(content, ["TOKEN"])
    assert "s3cr3t" not in masked and "leak" not in masked, masked
    assert masked == '# header\nPLAIN="shown"\nTOKEN="********"\nOTHER="x"\n'
    diff = "".join(masked_diff("/etc/default/demo", content, content.replace("OTHER", "NEW"), True, ["TOKEN"]))
    assert "s3cr3t" not in diff and "leak" not in diff, diff


def test_lines_ends_lines_at_newline_only() -> None:
    from deploykit.settings.syntax import lines

    text = "a\u2028b\x85c\rd\ve\n\nf"
    assert lines(text) == ["a\u2028b\x85c\rd\ve\n", "\n", "f"]
    assert "".join(lines(text)) == text
    assert lines("x\n") == ["x\n"] and lines("") == []


@pytest.mark.parametrize("char", [c for c in REFUSED if c != "\r"], ids=_id)
def test_the_env_file_loader_reads_what_sh_reads(char: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bash = require("bash")
    path = tmp_path / "env"
    path.write_text(f'X="a{char}INJECTED=yes"\nY=plain\n', encoding="utf-8")
    for name in ("X", "Y", "INJECTED"):
        monkeypatch.delenv(name, raising=False)
    values = load_env_file(str(path))
    assert values == {"X": f"a{char}INJECTED=yes", "Y": "plain"}
    assert "INJECTED" not in os.environ
    shell = subprocess.run(
        [bash, "-c", 'set -a; . "$1"; printf %s "$X"; printf "\\0%s" "${INJECTED-unset}"', "bash", str(path)],
        capture_output=True,
        check=True,
        env={"LC_ALL": "C.UTF-8"},
    ).stdout.decode("utf-8")
    assert shell.split("\0") == [values["X"], "unset"]


def test_the_env_file_loader_refuses_a_carriage_return(tmp_path: Path) -> None:
    """systemd ends a line at \\r, sh does not: the loader refuses rather than pick one."""
    path = tmp_path / "env"
    path.write_bytes(b'X="a\rINJECTED=yes"\n')
    with pytest.raises(DeployKitError, match=r"env:1: a carriage return"):
        load_env_file(str(path))


def test_the_env_file_loader_refuses_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_bytes(b'X="\xff"\n')
    with pytest.raises(DeployKitError, match="not UTF-8"):
        load_env_file(str(path))
