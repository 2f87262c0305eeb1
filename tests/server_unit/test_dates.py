"""The server's two clocks, written without email.utils and datetime (whose imports cost the
server ~1.5 MiB of RSS at start-up): the Date header and the JSON access log's time, checked
against the standard library's own formatting."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from email.utils import formatdate

import pytest

from deploykit.server.logs import utc_time
from deploykit.server.state import http_date

# Epoch, leap days, year ends, 2038, every weekday and month, sub-second fractions at the rounding edges.
INSTANTS = [0.0, 951782400.0, 1709164799.0, 1767225599.999, 2**31 + 0.25, 4102444800.0, 1764485400.5]
INSTANTS += [float(random.Random(7).randrange(0, 4_000_000_000)) + k / 7 for k in range(60)]


@pytest.mark.parametrize("now", [float(int(t)) for t in INSTANTS])
def test_the_date_header_is_imf_fixdate(now: float) -> None:
    assert http_date(now).decode("ascii") == formatdate(now, usegmt=True)


@pytest.mark.parametrize("now", [*INSTANTS, 3561133969.773, 1.0009995, 1.9999996])
def test_the_json_log_time_is_isoformat_to_the_millisecond(now: float) -> None:
    assert utc_time(now) == datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")


def test_serving_leaves_out_what_it_does_not_need() -> None:
    """email.utils, datetime, json (JSON logs only) and shutil (argparse's formatter) cost RSS in every worker."""
    code = (
        "import sys; from deploykit.server import command, server;"
        "from deploykit.server.protocols import http_httptools;"
        "command.parser().parse_args(['app:app', '--port', '1']);"
        "print(sorted(m for m in ('email.utils', 'datetime', 'json', 'shutil') if m in sys.modules))"
    )
    # Not under the suite's coverage, which measures subprocesses too and imports json and datetime to do it.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE", "COV_CORE"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "[]"
