from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary folder other users can enter: pytest's tmp_path is 0700 under
    /tmp/pytest-of-<user>, and when the tests run as root nginx's workers run as nobody."""
    folder = Path(tempfile.mkdtemp(prefix="dk-up-"))
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
