"""`python -m deploykit.docs [--check] [--no-examples]`, from the repository root: write the
generated reference pages under docs/reference/ and fill the produced examples in README.md and
docs/ (see deploykit/docs/examples.py); `--check` writes nothing and exits 1 when a page is stale."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploykit.docs import examples
from deploykit.docs.pages import REGENERATE, expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploykit.docs", description=__doc__)
    parser.add_argument("--repo", type=Path, default=Path("."), help="the repository root [.]")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when a page is stale")
    parser.add_argument("--no-examples", action="store_true", help="leave the console examples alone")
    args = parser.parse_args(argv)
    if not (args.repo / "docs").is_dir():
        print(f"error: {args.repo}/docs does not exist; run from the repository root", file=sys.stderr)
        return 2
    stale = []
    for page, text in expected(args.repo, run=not args.no_examples).items():
        old = page.read_text() if page.exists() else ""
        same = examples.normalise(old) == examples.normalise(text)
        if args.check:
            if not same:
                stale.append(page)
        elif not same:
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(text)
            print(f"wrote {page}")
    for page in stale:
        print(f"stale: {page}; run: {REGENERATE}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
