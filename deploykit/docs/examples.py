"""Console examples in README.md and docs/, produced by running the real commands.

A page marks an example as::

    <!-- example: NAME -->
    ```console
    (replaced by `python -m deploykit.docs` with each command and its real output)
    ```
    <!-- /example -->

The examples run in order in one fresh project folder (a staging root, `--root stage`, stands in
for the host), so the tutorial's steps build on each other as they do for a reader. Timings and
release ids change from run to run; `normalise` masks them when tests/docs compares a page with a
new run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Example:
    name: str
    commands: tuple[str, ...]  # as shown, each starting with `deploykit`
    folder: str = "shop"  # the project folder it runs in, under one temporary directory


#: Run in this order, in one project folder.
EXAMPLES: tuple[Example, ...] = (
    Example(
        "init",
        (
            "deploykit init --no-input --profile fastapi --name shop --module shop.main:app"
            " --server-name shop.example.com",
        ),
    ),
    Example("render", ("deploykit render --out out",)),
    Example("render-diff", ("deploykit render --diff out --set nginx.client_max_body_size='\"64m\"'",)),
    Example("check", ("deploykit check",)),
    Example("check-bad-value", ("deploykit check --set nginx.server_names='[\"shop.example.com; return 200\"]'",)),
    Example("apply-staging", ("deploykit apply --root stage --create-root --yes",)),
    Example("plan-staging", ("deploykit plan --root stage --set app.env.GREETING='\"hello\"'",)),
    Example("plan-clean", ("deploykit plan --root stage",)),
    Example(
        "django-init",
        (
            "deploykit init --no-input --profile django --name blog --module config.asgi:application"
            " --server-name blog.example.com",
        ),
        folder="blog",
    ),
    Example("django-check", ("deploykit check",), folder="blog"),
    Example(
        "ws-init",
        (
            "deploykit init --no-input --profile websocket --name chat --module chat.main:app"
            " --server-name chat.example.com",
        ),
        folder="chat",
    ),
    Example(
        "ws-check-ping",
        ("deploykit check --set server.ws_ping_interval=4000 --set server.ws_ping_timeout=10",),
        folder="chat",
    ),
)

MARK = re.compile(r"(<!-- example: ([a-z][a-z0-9-]*) -->\n```console\n)(.*?)(```\n<!-- /example -->)", re.S)


def _deploykit() -> list[str]:
    return [sys.executable, "-m", "deploykit"]


def _run(example: Example, work: Path, env: dict[str, str]) -> str:
    text = []
    for line in example.commands:
        argv = shlex.split(line)
        if argv[0] != "deploykit":
            raise ValueError(f"example {example.name!r}: {line!r} does not start with deploykit")
        done = subprocess.run(
            [sys.executable, "-m", "deploykit", *argv[1:]],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        text.append(f"$ {line}\n{done.stdout}")
        if done.returncode:
            text.append(f"$ echo $?\n{done.returncode}\n")
    return "".join(text)


def run_examples() -> dict[str, str]:
    """Each example's console text: `$ command`, its merged output, and `$ echo $?` when it failed.
    The folders run side by side (each in order), since most of the time is process start-up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYKIT_") and k != "FORCE_COLOR"}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="100", NO_COLOR="1", TERM="dumb")
    folders: dict[str, list[Example]] = {}
    for example in EXAMPLES:
        folders.setdefault(example.folder, []).append(example)
    with tempfile.TemporaryDirectory(prefix="deploykit-docs-") as tmp:

        def run_folder(examples: list[Example]) -> dict[str, str]:
            work = Path(tmp) / examples[0].folder
            work.mkdir()
            return {example.name: _run(example, work, env) for example in examples}

        with ThreadPoolExecutor(max_workers=len(folders)) as pool:
            shown: dict[str, str] = {}
            for result in pool.map(run_folder, folders.values()):
                shown.update(result)
    return {example.name: shown[example.name] for example in EXAMPLES}


def normalise(text: str) -> str:
    """Mask what changes between runs: durations and release ids."""
    text = re.sub(r"\b\d+ ms( *)", lambda m: "N ms" + " " * max(1, len(m.group(0)) - 4), text)
    text = re.sub(r"\(\d+\.\d+s\)", "(N.NNs)", text)
    return re.sub(r"\b\d{8}T\d{9}Z\b", "RELEASE", text)


def blocks(text: str) -> Iterable[tuple[str, str]]:
    """(name, console text) for each marked example in a page."""
    for match in MARK.finditer(text):
        yield match.group(2), match.group(3)


def fill(text: str, shown: dict[str, str]) -> str:
    """TEXT with every marked example replaced by its produced output."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in shown:
            raise KeyError(f"no example named {name!r} in deploykit/docs/examples.py")
        return match.group(1) + shown[name] + match.group(4)

    return MARK.sub(replace, text)
