"""The client side's pure parts: host facts, the settings shipped, the wheels packed."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from deploykit.remote.session import HostFacts, pack, settings_payload, wheel_version
from deploykit.settings.load import Source, validate
from deploykit.settings.model import Settings


def test_probe_output_parses_to_facts() -> None:
    text = "systemd=252\npython=3.11.2\nnginx=/usr/sbin/nginx\nvenv=1\ndeploykit=0.3.0\nuid=0\n"
    assert HostFacts.parse(text) == HostFacts("252", "3.11.2", True, True, "0.3.0", True)
    bare = HostFacts.parse("systemd=\npython=\nnginx=\nvenv=\ndeploykit=\nuid=1000\n")
    assert bare == HostFacts("", "", False, False, "", False)
    assert not bare.python_ok()
    assert not HostFacts.parse("python=3.9.2").python_ok()
    assert HostFacts.parse("python=3.12.1").python_ok()


def test_the_shipped_settings_carry_secrets_and_validate_to_the_same_settings() -> None:
    data = {
        "app": {"name": "demo", "secrets": {"TOKEN": "s3 cr$(et)'"}, "env": {"GREETING": "{app} hi"}},
        "nginx": {"server_names": ["demo.example"]},
        "deploy": {"hosts": ["ssh://root@web1"]},
    }
    settings = validate([Source("deploykit.toml", data)]).settings
    payload = settings_payload(settings)
    assert b"s3 cr$(et)'" in payload  # the real value: it only ever travels on stdin
    again = Settings.model_validate(json.loads(payload))
    assert again == settings
    assert again.app.secrets["TOKEN"].get_secret_value() == "s3 cr$(et)'"


def test_wheels_are_found_by_version_and_packed_flat(tmp_path: Path) -> None:
    # deploykit-*.whl is the unrelated project on PyPI: ours is deploykit_asgi-*.whl
    names = ("deploykit_asgi-1.2.0-py3-none-any.whl", "deploykit-9.0-py3-none-any.whl", "pydantic-2.0-py3-none-any.whl")
    for name in (*names, "notes.txt"):
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "sub").mkdir()
    assert wheel_version(tmp_path) == {"1.2.0": "deploykit_asgi-1.2.0-py3-none-any.whl"}
    with tarfile.open(fileobj=io.BytesIO(pack(tmp_path)), mode="r:") as archive:
        assert archive.getnames() == sorted(names)
