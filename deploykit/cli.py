"""The `deploykit` command line. Each command parses options and calls one
library function; `main()` is the one place errors become exit codes:
0 ok, 1 error, 2 usage, 3 check findings / pending differences."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer import completion
from typer._completion_classes import completion_init  # typer's scripts call its own classes: register them
from typer.exceptions import TyperException

from deploykit import console
from deploykit.check import run_checks
from deploykit.check.report import to_json, to_junit
from deploykit.errors import CheckFailed, DeployKitError, StackUnhealthy, UsageError
from deploykit.host import connect
from deploykit.host.staging import diff_tree, write_tree
from deploykit.project import init_from_answers, piped
from deploykit.render import render
from deploykit.settings.load import Loaded, load

if TYPE_CHECKING:
    from deploykit.apply import Deploy
    from deploykit.host.base import Host
    from deploykit.plan import Plan
    from deploykit.remote.commands import Remote

app = typer.Typer(
    name="deploykit",
    help="Render, check and deploy an ASGI app's nginx + systemd + Gunicorn stack.",
    no_args_is_help=True,
    add_completion=False,  # typer's options guess the shell and take no name; ours below take SHELL
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.command(
    "serve",
    short_help="Run an ASGI app with the bundled server.",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def serve(ctx: typer.Context) -> None:
    """Run an ASGI app with the bundled server (uvicorn's flags; see `deploykit serve --help`)."""
    from deploykit.server.command import main as serve_main

    raise typer.Exit(serve_main(ctx.args))


Config = Annotated[
    Path | None, typer.Option("--config", "-c", help="Project settings file [default: ./deploykit.toml].")
]
Profile = Annotated[str | None, typer.Option("--profile", "-p", help="Preset: a shipped name or a .toml path.")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="Override one setting: section.field=value.")]
Root = Annotated[Path | None, typer.Option("--root", help="Work on a tree standing in for / (commands not run).")]
CreateRoot = Annotated[
    bool, typer.Option("--create-root", help="Start a new staging tree when the --root folder does not exist.")
]
Target = Annotated[
    list[str] | None,
    typer.Option(
        "--host",
        metavar="<url>",
        help="local (default), nsenter:PID (a container's PID 1) or ssh://[user@]host[:port] (repeat for several)"
        " [env: DEPLOYKIT_HOST; deploy.hosts].",
    ),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before changing the host.")]
Format = Annotated[str, typer.Option("--format", "-f", help="table or json (a report on stdout).")]
Wheelhouse = Annotated[
    str | None,
    typer.Option("--wheelhouse", help="The app's wheels (a folder on the host, made by `deploykit build`) to install."),
]
NoHealth = Annotated[bool, typer.Option("--no-health", help="Skip the health check through socket and nginx.")]


def _show_version(value: bool) -> None:
    if value:
        from deploykit.version import version

        console.plain(f"deploykit {version()}")
        raise typer.Exit(0)


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"
    pwsh = "pwsh"


def _install_completion(ctx: typer.Context, param: typer.CallbackParam, shell: Shell | None) -> None:
    if shell is not None:
        completion.install_callback(ctx, param, shell.value)  # writes the script, then exits 0


def _show_completion(ctx: typer.Context, param: typer.CallbackParam, shell: Shell | None) -> None:
    if shell is not None:
        completion.show_callback(ctx, param, shell.value)  # prints the script, then exits 0


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    show_version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_show_version, help="Show the version and exit.")
    ] = False,
    install_completion: Annotated[
        Shell | None,
        typer.Option(
            metavar="SHELL", is_eager=True, callback=_install_completion, help="Install tab completion for SHELL."
        ),
    ] = None,
    show_completion: Annotated[
        Shell | None,
        typer.Option(
            metavar="SHELL", is_eager=True, callback=_show_completion, help="Print the completion script for SHELL."
        ),
    ] = None,
) -> None:
    """deploykit: one settings model, a rendered stack, real validators."""


def _settings(config: Path | None, profile: str | None, sets: list[str] | None) -> Loaded:
    return load(project=config, profile=profile, overrides=sets or ())


@app.command(short_help="Write a commented deploykit.toml for a project.")
def init(
    folder: Annotated[Path, typer.Argument(help="Project directory.")] = Path("."),
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Shipped profile or .toml path.")] = None,
    name: Annotated[str | None, typer.Option(help="App name (systemd unit, socket, nginx names).")] = None,
    module: Annotated[str | None, typer.Option(help="ASGI app as module:attribute.")] = None,
    server_name: Annotated[list[str] | None, typer.Option("--server-name", help="nginx server_name (repeat).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing deploykit.toml.")] = False,
    no_input: Annotated[bool, typer.Option("--no-input", help="Never prompt or read stdin; use defaults.")] = False,
) -> None:
    """Write a commented deploykit.toml (asks for what flags do not give; reads answers from a pipe)."""
    flags = {"profile": profile, "name": name, "module": module, "server_names": " ".join(server_name or ())}
    given = {key: value for key, value in flags.items() if value}
    terminal = sys.stdin.isatty()
    read = None if no_input else (console.prompt if terminal else piped(sys.stdin.readline))
    again = console.ask_again if terminal and not no_input else None
    target = init_from_answers(folder, given, read=read, again=again, force=force)
    console.info(f"[green]wrote[/] {target}; next: deploykit check -c {target}")


@app.command("render", short_help="Render the stack's files to a folder, the screen or a diff.")
def render_cmd(
    config: Config = None,
    profile: Profile = None,
    sets: Sets = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write files under this root.")] = None,
    show: Annotated[bool, typer.Option("--print", help="Print the files (secrets masked).")] = False,
    diff: Annotated[
        Path | None, typer.Option("--diff", help="Diff against files under this root; exit 3 if any.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite changed files under --out.")] = False,
) -> None:
    """Render every file of the stack: under --out, to the screen, or as a diff."""
    _exclusive(("--out", out is not None), ("--print", show), ("--diff", diff is not None))
    if force and out is None:
        raise UsageError("--force only applies to --out", hint="--force overwrites changed files under --out DIR.")
    loaded = _settings(config, profile, sets)
    bundle = render(loaded.settings)
    secret_keys = list(loaded.settings.app.secrets)
    if show:
        console.show_bundle(bundle, secret_keys)
        return
    if diff is not None:
        lines = diff_tree(bundle, diff, secret_keys)
        console.show_diff(lines)
        if lines:
            raise typer.Exit(3)
        console.info(f"no differences under {diff}")
        return
    root = out if out is not None else Path(tempfile.mkdtemp(prefix=f"deploykit-{loaded.settings.app.name}-"))
    for path in write_tree(bundle, root, force=force):
        console.info(f"[green]wrote[/] {path}")


@app.command(short_help="Check the rendered stack with nginx, systemd and Gunicorn.")
def check(
    config: Config = None,
    profile: Profile = None,
    sets: Sets = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or junit.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", help="Write the json/junit report to a file.")] = None,
) -> None:
    """Render, then run nginx -t, systemd-analyze verify/security, Gunicorn's
    config loader and cross-file checks. Exit 3 when anything is found."""
    _formats(fmt, "table", "json", "junit")
    loaded = _settings(config, profile, sets)
    report = run_checks(loaded.settings)
    if fmt == "table":
        console.findings_table(report)
    else:
        text = to_json(report) if fmt == "json" else to_junit(report)
        if output is not None:
            console.write_report(output, text)
        else:
            console.plain(text)
    if report.failed:
        raise CheckFailed(f"{sum(f.counts for f in report.findings)} finding(s) in the rendered stack")


@app.command("plan", short_help="Show what apply would change on the host.")
def plan_cmd(
    config: Config = None,
    profile: Profile = None,
    sets: Sets = None,
    root: Root = None,
    target: Target = None,
    wheelhouse: Wheelhouse = None,
) -> None:
    """Show what apply would change: a diff per file, the code switch and its hooks,
    and the service actions. Exit 0 when nothing would change, 3 when changes are pending."""
    loaded = _settings(config, profile, sets)
    local, remote = _where(target, loaded, root)
    if remote:
        raise typer.Exit(remote.run("plan"))
    _show_plan(connect(root, local), loaded, wheelhouse)


def _show_plan(host: Host, loaded: Loaded, wheelhouse: str | None = None) -> None:
    from deploykit.apply.run import plan_with_recovery

    result = plan_with_recovery(host, render(loaded.settings), loaded.settings, wheelhouse)
    if not result.changes:
        console.info("no changes: the host matches the rendered stack")
        return
    console.show_pending(result)
    raise typer.Exit(3)


@app.command("apply", short_help="Install the rendered stack as one transaction.")
def apply_cmd(
    config: Config = None,
    profile: Profile = None,
    sets: Sets = None,
    root: Root = None,
    target: Target = None,
    create_root: CreateRoot = False,
    yes: Yes = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan (same as `deploykit plan`).")] = False,
    fmt: Format = "table",
    wheelhouse: Wheelhouse = None,
    install_app: Annotated[
        str | None, typer.Option("--install-app", hidden=True, help="The old name of --wheelhouse.")
    ] = None,
    no_health: NoHealth = False,
) -> None:
    """Install the rendered stack: back up, write atomically, validate, reload
    the services, health-check; restore everything when a step fails. With
    deploy.code_releases, new code goes into a new release folder and `current`
    switches to it (deploy.project set and no --wheelhouse: built here first)."""
    _exclusive(("--wheelhouse", wheelhouse is not None), ("--install-app", install_app is not None))
    if create_root and root is None:
        raise UsageError("--create-root only applies to --root", hint="Pass --root DIR --create-root for a new tree.")
    loaded = _settings(config, profile, sets)
    local, remote = _where(target, loaded, root)
    if remote:
        preview = not yes and sys.stdin.isatty()
        raise typer.Exit(
            remote.apply(
                config=config,
                preview=preview,
                confirm=_confirm(yes),
                dry_run=dry_run,
                fmt=fmt,
                wheelhouse=wheelhouse or install_app,
                health=not no_health,
            )
        )
    host = connect(root, local, create_root=create_root)
    if dry_run:
        _show_plan(host, loaded, wheelhouse or install_app)
        return
    from deploykit.apply.run import builds_here, built_wheelhouse, deploy_settings

    wheels = wheelhouse or install_app
    if wheels is None and builds_here(loaded.settings):
        with console.step("building the wheelhouse") as activity:
            wheels = built_wheelhouse(host, loaded.settings, config, activity.update)
    deploy = deploy_settings(loaded.settings, host, install_app=wheels, health=not no_health, progress=_progress(fmt))
    _run_deploy(deploy, yes, fmt)


@app.command(short_help="Build the app's wheelhouse (the app and its locked dependencies).")
def build(
    config: Config = None,
    profile: Profile = None,
    sets: Sets = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the wheels (emptied of old wheels).")] = Path(
        "wheelhouse"
    ),
) -> None:
    """pip wheel the project (deploy.project, or the folder of deploykit.toml) and its dependencies
    (the lock file's, when it has requirements.lock or requirements.txt) into one folder, for
    `deploykit apply --wheelhouse` on a host without network."""
    from deploykit.apply.run import project_folder
    from deploykit.build import build as build_wheels

    loaded = _settings(config, profile, sets)
    with console.step("building the wheelhouse") as activity:
        built = build_wheels(project_folder(loaded.settings, config), out, update=activity.update)
    lock = f", dependencies from {built.lock}" if built.lock else ""
    console.info(f"{len(built.wheels)} wheel(s) in {built.folder}{lock}; code version {built.version}")


@app.command(short_help="Put a kept release back.")
def rollback(
    config: Config = None,
    profile: Profile = None,
    sets: Sets = None,
    to: Annotated[str | None, typer.Option("--to", help="Release id [default: the one before the current].")] = None,
    root: Root = None,
    target: Target = None,
    yes: Yes = False,
    fmt: Format = "table",
    no_health: NoHealth = False,
) -> None:
    """Put a kept release back (the same transaction as apply)."""
    from deploykit.apply.run import deploy_release

    loaded = _settings(config, profile, sets)
    local, remote = _where(target, loaded, root)
    if remote:
        raise typer.Exit(remote.rollback(confirm=_confirm(yes), to=to, fmt=fmt, health=not no_health))
    deploy = deploy_release(
        loaded.settings, connect(root, local, create_root=False), to, health=not no_health, progress=_progress(fmt)
    )
    _run_deploy(deploy, yes, fmt)


@app.command(short_help="Show the live host's units, workers, releases and health.")
def status(
    config: Config = None,
    profile: Profile = None,
    sets: Sets = None,
    target: Target = None,
    fmt: Format = "table",
) -> None:
    """Units, PIDs, workers and requests served, socket, releases and health,
    read from a live host (a --root tree runs nothing, so it has no status).
    Exit 0 when everything is up and healthy, 3 when something is not."""
    from deploykit.operate import gather_status

    _formats(fmt, "table", "json")
    loaded = _settings(config, profile, sets)
    local, remote = _where(target, loaded)
    if remote:
        raise typer.Exit(remote.run("status", ["--format", fmt]))
    report = gather_status(connect(None, local), loaded.settings)
    if fmt == "json":
        console.plain(report.to_json())
    else:
        console.status_view(report)
    if not report.ok:
        raise StackUnhealthy("; ".join(report.problems()))


@app.command(short_help="Show the live host's journal and nginx logs, merged by time.")
def logs(
    config: Config = None,
    profile: Profile = None,
    sets: Sets = None,
    target: Target = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    since: Annotated[str | None, typer.Option("--since", help='e.g. "2026-11-28 08:00", "1h ago", "today".')] = None,
    lines: Annotated[
        int | None, typer.Option("--lines", "-n", min=0, help="Show the last N lines [default: 50, all with --since].")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json (one object a line).")] = "table",
) -> None:
    """The service's and socket's journal and the app's nginx access and error
    logs of a live host, merged by time; -f follows them all."""
    from deploykit.operate import logs as read_logs

    _formats(fmt, "table", "json")
    loaded = _settings(config, profile, sets)
    local, remote = _where(target, loaded)
    if remote:
        raise typer.Exit(remote.logs(follow=follow, since=since, lines=lines, fmt=fmt))
    emit = console.log_entry if fmt == "table" else console.log_entry_json
    read_logs(connect(None, local), loaded.settings, emit, lines=lines, since=since, follow_new=follow)


@app.command(short_help="Look for the usual problems on the host.")
def doctor(
    config: Config = None,
    profile: Profile = None,
    sets: Sets = None,
    root: Root = None,
    target: Target = None,
    fmt: Format = "table",
) -> None:
    """Look for the usual problems on the host: socket permissions, port taken,
    failed units, certificate expiry, disk space, clock, files changed since
    apply. Exit 3 when anything is found."""
    from deploykit.operate import diagnose

    _formats(fmt, "table", "json")
    loaded = _settings(config, profile, sets)
    local, remote = _where(target, loaded, root)
    if remote:
        raise typer.Exit(remote.run("doctor", ["--format", fmt]))
    report = diagnose(connect(root, local, create_root=False), loaded.settings)
    if fmt == "json":
        console.plain(to_json(report))
    else:
        console.findings_table(report, title="deploykit doctor", skipped="not checked: no commands run on --root")
    if report.failed:
        raise CheckFailed(f"{sum(f.counts for f in report.findings)} problem(s) found on the host")


@app.command(short_help="Renew the ACME certificate now (what the renewal timer runs).")
def renew(
    config: Config = None,
    profile: Profile = None,
    sets: Sets = None,
    target: Target = None,
    force: Annotated[bool, typer.Option("--force", help="Renew even when the certificate is not due.")] = False,
) -> None:
    """Renew the certificate of [nginx.tls.acme] when it is within 30 days of expiry (or
    now, with --force), then reload nginx (never a restart)."""
    from deploykit.tls.certbot import acme_of
    from deploykit.tls.issue import renew as renew_now

    loaded = _settings(config, profile, sets)
    if acme_of(loaded.settings) is None:
        raise UsageError("nginx.tls.acme is not set: deploykit manages no certificate here")
    local, remote = _where(target, loaded)
    if remote:
        raise typer.Exit(remote.run("renew", ["--force"] if force else []))
    with console.step("renewing the certificate"):
        outcome = renew_now(connect(None, local), loaded.settings, force=force)
    console.plain(outcome.detail)


@app.command(short_help="Prepare a server for deploykit over SSH (systemd, Python, nginx, deploykit's venv).")
def bootstrap(
    target: Target = None,
    config: Config = None,
    profile: Profile = None,
    sets: Sets = None,
    wheels: Annotated[
        Path | None,
        typer.Option("--wheels", envvar="DEPLOYKIT_WHEELS", help="deploykit's wheel and its dependencies' (a folder)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would change.")] = False,
) -> None:
    """Check systemd and Python on each ssh:// host, install nginx and python3-venv
    with apt when missing, and create deploykit's venv from the shipped wheels.
    Idempotent: says what it changed, or that nothing needed to."""
    from deploykit.remote.commands import where
    from deploykit.remote.session import RemoteHost
    from deploykit.remote.session import bootstrap as prepare

    configured = _settings(config, profile, sets).settings.deploy.hosts if not target else []
    _, remote = where(target, configured)
    if not remote:
        raise UsageError("bootstrap prepares ssh:// hosts", hint="Pass --host ssh://[user@]host[:port].")
    for host in [RemoteHost(each) for each in remote]:
        changes = prepare(host, wheels, dry_run=dry_run, say=console.info)
        for change in changes:
            console.info(f"{host.target}: {change}")
        if not changes:
            console.info(f"{host.target}: nothing to change (nginx, python3-venv and deploykit {host.facts.deploykit})")


def _where(target: list[str] | None, loaded: Loaded, root: Path | None = None) -> tuple[str | None, Remote | None]:
    """This machine, a --root tree or a container (``connect`` takes the first), or the ssh:// hosts."""
    from deploykit.remote.commands import Remote, where

    local, targets = where(target, loaded.settings.deploy.hosts, root)
    return local, Remote(targets, loaded.settings, console.info) if targets else None


def _confirm(yes: bool) -> Callable[[str], None]:
    """Ask before changing the host (unless --yes); raise when the answer is no, or nobody can answer."""

    def confirm(question: str) -> None:
        if yes:
            return
        if not sys.stdin.isatty():
            raise UsageError("this would change the host; pass --yes when not running interactively")
        if not console.confirm(question):
            raise typer.Abort

    return confirm


def _exclusive(*options: tuple[str, bool]) -> None:
    given = [name for name, used in options if used]
    if len(given) > 1:
        raise UsageError(
            f"{' and '.join(given)} cannot be used together",
            hint=f"Pick one of {', '.join(name for name, _ in options)}.",
        )


def _formats(fmt: str, *allowed: str) -> None:
    if fmt not in allowed:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(allowed)}", param_hint="--format")


def _progress(fmt: str) -> console.StepLines | None:
    _formats(fmt, "table", "json")
    return console.StepLines() if fmt == "table" else None


def _run_deploy(deploy: Deploy, yes: bool, fmt: str) -> None:
    if not yes and not sys.stdin.isatty():
        raise UsageError("this would change the host; pass --yes when not running interactively")

    def confirm(pending: Plan) -> bool:
        if yes:
            return True
        console.show_pending(pending)
        return console.confirm("Apply these changes?")

    try:
        report = deploy.run(confirm)
    finally:
        if fmt == "json":
            console.plain(deploy.report.to_json())
    if fmt == "table":
        console.apply_summary(report)


@app.command("up", short_help="Run the stack here on loopback, without root or systemd.")
def up_cmd(
    config: Config = None,
    profile: Profile = None,
    sets: Sets = None,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="nginx's port on 127.0.0.1; 0 picks a free one.")
    ] = 8080,
    run_dir: Annotated[
        Path | None,
        typer.Option("--dir", help="Rendered files, socket and logs [default: .deploykit-up beside deploykit.toml]."),
    ] = None,
) -> None:
    """Run the stack here, without root or systemd: nginx on 127.0.0.1:PORT in
    front of `deploykit serve` on a unix socket, and each [processes.<name>]
    command beside them (timers are not run), logs followed; Ctrl-C stops them all."""
    from deploykit.settings.load import PROJECT_FILE
    from deploykit.up import up

    loaded = _settings(config, profile, sets)
    up(loaded.settings, config=config if config is not None else Path(PROJECT_FILE), port=port, run_dir=run_dir)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map every error to one line and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        from deploykit.server.command import main as serve_main

        return serve_main(args[1:])
    debug = "--debug" in args
    completion_init()  # so `_DEPLOYKIT_COMPLETE=complete_SHELL` (what the scripts send) is answered
    try:
        code = typer.main.get_command(app).main(args, prog_name="deploykit", standalone_mode=False)
    except DeployKitError as exc:
        console.error(exc, debug=debug)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except TyperException as exc:  # usage errors: typer prints them with the usage line
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            console.info(f"error: {exc.format_message()}")
        return exc.exit_code
    except typer.Abort:
        console.info("aborted")
        return 1
    except SystemExit as exc:  # typer's completion callbacks end with sys.exit
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # noqa: BLE001 - the one place a bug is reported instead of a traceback
        console.unexpected(exc, debug=debug)
        return 1
    return code if isinstance(code, int) else 0
