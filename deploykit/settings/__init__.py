"""Typed settings: the model and the loader that merges its sources."""

from deploykit.settings.load import Loaded, load
from deploykit.settings.model import Settings

__all__ = ["Loaded", "Settings", "load"]
