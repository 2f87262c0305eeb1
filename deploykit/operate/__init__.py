"""Operating a deployed stack: `status` (what runs now), `logs` (journal and
nginx logs merged by time, or followed) and `doctor` (the usual problems, as
findings). Parsing of command output is pure (``parse``, ``logparse``); the
rest reads the host through the Host protocol and never prints."""

from deploykit.operate.doctor import diagnose
from deploykit.operate.logs import logs
from deploykit.operate.status import StatusReport, gather_status

__all__ = ["StatusReport", "diagnose", "gather_status", "logs"]
