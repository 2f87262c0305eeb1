"""The `deploykit` console script. `deploykit serve` goes straight to the
server's own small parser: the toolkit's CLI (typer, rich, jinja2, the
checkers) is never imported by a production server process."""

from __future__ import annotations

import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["serve"]:
        from deploykit.server.command import main as serve_main

        return serve_main(argv[1:])
    from deploykit.cli import main as cli_main

    return cli_main(argv)
