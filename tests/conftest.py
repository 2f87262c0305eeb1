from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from deploykit.settings.load import load, shipped_profiles
from deploykit.settings.model import Settings

PROFILES = shipped_profiles()


def settings_for(profile: str | None, *overrides: str, environ: dict[str, str] | None = None) -> Settings:
    return load(profile=profile, environ=environ or {}, overrides=("app.name=demo", *overrides)).settings


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads a deploykit.toml or DEPLOYKIT_* variable from the developer's machine."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in __import__("os").environ if k.startswith("DEPLOYKIT_")]:
        monkeypatch.delenv(key)


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
