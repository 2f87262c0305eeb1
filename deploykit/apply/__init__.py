"""Apply, roll back and inspect a deployed stack (the side-effecting half:
everything here goes through a ``deploykit.host`` Host)."""

from deploykit.apply.engine import Deploy
from deploykit.apply.releases import Release, ReleaseStore
from deploykit.apply.report import Report, Step

__all__ = ["Deploy", "Release", "ReleaseStore", "Report", "Step"]
