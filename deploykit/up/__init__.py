"""`deploykit up`: the project's stack on this machine, without root or systemd.

``local.py`` derives the local variant of the settings and the command lines
(pure); ``run.py`` writes the run directory, runs nginx and `deploykit serve`
as plain processes and stops them; ``follow.py`` merges their logs.
"""

from deploykit.up.local import Layout, localize, static_folder
from deploykit.up.run import RUN_DIR_NAME, up

__all__ = ["RUN_DIR_NAME", "Layout", "localize", "static_folder", "up"]
