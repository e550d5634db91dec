"""CLI commands of automation: the daemon, schedules, triggers, queue (backfills:
``backfill_commands.py``)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from legato.cli.console import escape, rich_console
from legato.cli.main import (
    JsonOpt,
    ProjectOpt,
    app,
    fail,
    out,
    parse_params,
    user_errors,
    workspace,
)

if TYPE_CHECKING:
    from legato.cli.dev_command import DevOptions

schedules_app = typer.Typer(help="List, pause and unpause schedules.", no_args_is_help=False)
triggers_app = typer.Typer(help="List, pause and unpause triggers.", no_args_is_help=False)
queue_app = typer.Typer(help="The queue of runs waiting to start, and its order.")
app.add_typer(schedules_app, name="schedules")
app.add_typer(triggers_app, name="triggers")
app.add_typer(queue_app, name="queue")


def when_text(t: object) -> str:
    return "" if t is None else f"{t:%Y-%m-%d %H:%M:%S}"


def print_rows(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]], empty: str) -> None:
    """Print rows under their column names (ids never wrapped), or ``empty`` if none."""
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in columns:
        table.add_column(col, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    rich_console().print(table)
    if not rows:
        out.print(empty)


def print_data(data: object) -> None:
    from legato.cli.render import print_json

    print_json(data)


def _serve(
    project: Path,
    *,
    web: bool,
    host: str | None,
    port: int | None,
    max_runs: int | None,
    tls: tuple[Path | None, Path | None, bool] = (None, None, False),
    log_format: str = "text",
    metrics_at: tuple[str, int] | None = None,
    dev: DevOptions | None = None,
) -> None:
    from legato.daemon.loop import Daemon, DaemonOptions

    say = _logging(log_format)

    with user_errors(), workspace(project) as door:
        door.project.start_workers()  # fork workers first (see Workspace)
        for e in door.project.load_errors():
            say(f"failed to load {e.module}: {e.message}")
        from legato.server.serve import choose_tls

        options = DaemonOptions(web=web, host=host, port=port, max_runs=max_runs)
        # In JSON the daemon's own log lines say it all; in text they are printed as well.
        options.on_event = say if log_format == "text" else None
        options.metrics_at = metrics_at
        options.tls = choose_tls(door.project.settings(), tls[0], tls[1])
        options.insecure_no_tls = tls[2]
        if dev is not None:
            dev.apply(door, options, say)
        daemon = Daemon(door, options)
        names = ", ".join(sorted(door.project.pipelines())) or "none"
        command = "dev" if dev is not None else "up" if web else "scheduler"
        settings = door.project.settings()
        say(
            f"legato {command}: project {settings.name}, environment "
            f"{settings.environment} (pipelines: {names}); Ctrl-C stops"
        )
        daemon.run()
        say("stopped")


def _logging(log_format: str) -> Callable[[str], None]:
    """Set up the process's log lines; returns how the command says a line of its own."""
    import logging

    from legato.observability.logs import configure

    if log_format not in ("text", "json"):
        fail(f"--log-format must be text or json, not {log_format!r}")
    if log_format == "json":
        configure("json", stream=sys.stdout)
        cli_log = logging.getLogger("legato.cli")
        return cli_log.info
    configure("text")

    def say(line: str) -> None:
        out.print(escape(line), highlight=False)

    return say


HostOpt = Annotated[str | None, typer.Option("--host", help="Web server address.")]
LogFormatOpt = Annotated[
    str,
    typer.Option(
        "--log-format",
        help="The daemon's log lines: text, or json (one object per line, with run ids).",
    ),
]
PortOpt = Annotated[int | None, typer.Option("--port", help="Web server port (0: any).")]
CertOpt = Annotated[Path | None, typer.Option("--tls-cert", help="HTTPS certificate (PEM).")]
KeyOpt = Annotated[Path | None, typer.Option("--tls-key", help="HTTPS private key (PEM).")]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure-no-tls",
        help="Serve plain HTTP on an address other machines reach (a proxy terminates TLS).",
    ),
]


@app.command()
def up(
    project: ProjectOpt = Path("."),
    host: HostOpt = None,
    port: PortOpt = None,
    max_runs: Annotated[int | None, typer.Option(help="Runs driven at once.")] = None,
    tls_cert: CertOpt = None,
    tls_key: KeyOpt = None,
    insecure_no_tls: InsecureOpt = False,
    log_format: LogFormatOpt = "text",
) -> None:
    """Run everything in one process: scheduler, triggers, runs, and the web UI and API."""
    tls = (tls_cert, tls_key, insecure_no_tls)
    _serve(
        project, web=True, host=host, port=port, max_runs=max_runs, tls=tls,
        log_format=log_format,
    )


@app.command()
def scheduler(
    project: ProjectOpt = Path("."),
    max_runs: Annotated[int | None, typer.Option(help="Runs driven at once.")] = None,
    log_format: LogFormatOpt = "text",
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus metrics at /metrics on this port (0: any free)."),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="The address the metrics are served on.")
    ] = "127.0.0.1",
    insecure_no_tls: Annotated[
        bool,
        typer.Option(
            "--insecure-no-tls",
            help="Serve the metrics (plain HTTP) on an address other machines reach.",
        ),
    ] = False,
) -> None:
    """Run the scheduling part alone, with no web server: schedules, triggers, runs (and
    Prometheus metrics with --metrics-port)."""
    metrics_at = None if metrics_port is None else (metrics_host, metrics_port)
    _serve(
        project, web=False, host=None, port=None, max_runs=max_runs, log_format=log_format,
        metrics_at=metrics_at, tls=(None, None, insecure_no_tls),
    )


@app.command()
def web(
    project: ProjectOpt = Path("."),
    host: HostOpt = None,
    port: PortOpt = None,
    tls_cert: CertOpt = None,
    tls_key: KeyOpt = None,
    insecure_no_tls: InsecureOpt = False,
    log_format: LogFormatOpt = "text",
) -> None:
    """Serve the web UI and the API alone; runs it queues start in `legato scheduler`."""
    import signal
    import threading

    from legato.daemon.alert_thread import AlertThread
    from legato.observability import metrics
    from legato.server.app import create_app, sign_in_url
    from legato.server.hosts import served_hosts
    from legato.server.serve import bind_socket, check_exposure, choose_tls, serve_in_thread
    from legato.services.actor import Actor
    from legato.services.owner import this_owner

    say = _logging(log_format)
    metrics.set_process(role="web")

    stop = threading.Event()
    with user_errors(), workspace(project) as door:
        for e in door.project.load_errors():
            say(f"failed to load {e.module}: {e.message}")
        door.alerts.rules()  # a wrong [alerts] or [channels] table stops the start
        host = host or door.project.settings().web_host
        port = door.project.settings().web_port if port is None else port
        tls = choose_tls(door.project.settings(), tls_cert, tls_key)
        check_exposure(host, tls=tls is not None, insecure=insecure_no_tls)
        sock = bind_socket(host, port)
        port = sock.getsockname()[1]
        hosts = served_hosts(door.project.settings().public_url, host, port)
        old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            app_ = create_app(door, allowed_hosts=hosts)
            served = serve_in_thread(app_, host, port, stop=stop, sock=sock, tls=tls)
            url = door.project.settings().public_url or served.url
            say(f"legato web: {url}/ (API at {url}/api/v1, metrics at {url}/metrics); Ctrl-C stops")
            say(f"sign in: {sign_in_url(door, url)}")
            # The web process watches for no_scheduler (and sends queued alerts) too.
            owner = this_owner()
            alerts = AlertThread(door.as_actor(Actor.scheduler(owner)), owner, lambda: url)
            alerts.start()
            while not stop.wait(0.5) and served.thread.is_alive():
                pass
            alerts.stop()
            served.stop()
            alerts.join(timeout=15)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        say("stopped")


@app.command()
def submit(
    pipeline: Annotated[str, typer.Argument(metavar="PIPELINE")],
    param: Annotated[list[str] | None, typer.Option("--param", "-P", help="key=value")] = None,
    partition: Annotated[str | None, typer.Option("--partition")] = None,
    priority: Annotated[int | None, typer.Option("--priority")] = None,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Queue a run for the daemon (`legato up`) to start."""
    with user_errors(), workspace(project) as door:
        run = door.automation.submit(
            pipeline,
            parse_params(param or []),
            partition=partition,
            priority=priority,
            from_text=True,
        )
        if json_out:
            print_data(run)
            return
        out.print(f"queued run [bold]{run.id}[/] of {run.pipeline}", highlight=False)


# -- schedules ---------------------------------------------------------------------------


@schedules_app.callback(invoke_without_command=True)
def schedules_list(
    ctx: typer.Context, json_out: JsonOpt = False, project: ProjectOpt = Path(".")
) -> None:
    """List schedules with their state and next tick."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors(), workspace(project) as door:
        views = door.automation.schedules()
        if json_out:
            print_data([v.__dict__ for v in views])
            return
        rows = [
            (
                v.pipeline,
                v.name,
                v.expression,
                v.tz,
                v.catchup,
                "paused" if v.paused else "on",
                when_text(v.next_tick),
            )
            for v in views
        ]
        columns = ("pipeline", "schedule", "when", "tz", "catch-up", "state", "next (UTC)")
        print_rows(columns, rows, "no schedules")


def _pause_schedule(pipeline: str, name: str | None, project: Path, paused: bool) -> None:
    with user_errors(), workspace(project) as door:
        door.automation.set_schedule_paused(pipeline, paused, name)
        what = f"schedule {name}" if name else "schedules"
        out.print(f"{pipeline}: {what} {'paused' if paused else 'on'}", highlight=False)


NameOpt = Annotated[str | None, typer.Option("--name", help="One schedule (default: all).")]


@schedules_app.command("pause")
def schedules_pause(pipeline: str, name: NameOpt = None, project: ProjectOpt = Path(".")) -> None:
    """Pause a pipeline's schedules: no runs until unpaused."""
    _pause_schedule(pipeline, name, project, True)


@schedules_app.command("unpause")
def schedules_unpause(pipeline: str, name: NameOpt = None, project: ProjectOpt = Path(".")) -> None:
    """Unpause a pipeline's schedules (ticks missed while paused are skipped)."""
    _pause_schedule(pipeline, name, project, False)


# -- triggers ----------------------------------------------------------------------------


@triggers_app.callback(invoke_without_command=True)
def triggers_list(
    ctx: typer.Context,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """List triggers with their state (a webhook's URL, and whether it has a token)."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors(), workspace(project) as door:
        views = door.automation.triggers()
        if json_out:
            print_data([v.__dict__ for v in views])
            return
        rows = []
        for v in views:
            detail = {k: val for k, val in v.detail.items() if k not in ("kind", "name")}
            if v.kind == "webhook":
                detail = {
                    "url": f"/api/v1/hooks/{v.pipeline}/{v.name}",
                    "token": "set" if v.has_token else "none (legato triggers token)",
                }
            text = " ".join(
                f"{k}={','.join(map(str, val)) if isinstance(val, list) else val}"
                for k, val in detail.items()
            )
            rows.append((v.pipeline, v.name, v.kind, "paused" if v.paused else "on", escape(text)))
        print_rows(("pipeline", "trigger", "kind", "state", "detail"), rows, "no triggers")


@triggers_app.command("token")
def triggers_token(pipeline: str, trigger: str, project: ProjectOpt = Path(".")) -> None:
    """Make a new secret token for a webhook and print it once (the old one stops working)."""
    import sys

    with user_errors(), workspace(project) as door:
        token = door.automation.webhook_token(pipeline, trigger)
    sys.stderr.write(
        f"token of webhook {trigger} of {pipeline}; shown once, keep it secret. Send it as "
        "X-Legato-Token (or Authorization: Bearer):\n"
    )
    sys.stdout.write(token + "\n")


@triggers_app.command("pause")
def triggers_pause(pipeline: str, trigger: str, project: ProjectOpt = Path(".")) -> None:
    """Pause a trigger: its events wait (streams) or are not looked for (files)."""
    with user_errors(), workspace(project) as door:
        door.automation.set_trigger_paused(pipeline, trigger, True)
        out.print(f"{pipeline}: trigger {trigger} paused", highlight=False)


@triggers_app.command("unpause")
def triggers_unpause(pipeline: str, trigger: str, project: ProjectOpt = Path(".")) -> None:
    """Unpause a trigger."""
    with user_errors(), workspace(project) as door:
        door.automation.set_trigger_paused(pipeline, trigger, False)
        out.print(f"{pipeline}: trigger {trigger} on", highlight=False)


@triggers_app.command("events")
def triggers_events(
    pipeline: str,
    trigger: str,
    refused: Annotated[
        bool, typer.Option("--refused", help="Only events that made no run.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", help="Events at most.")] = 50,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """A trigger's events, newest first: the run each one made, or why it was refused."""
    with user_errors(), workspace(project) as door:
        views = door.automation.trigger_events(
            pipeline, trigger, refused_only=refused, limit=limit
        )
        if json_out:
            print_data([v.__dict__ for v in views])
            return
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for col in ("received", "event", "outcome"):
            table.add_column(col, no_wrap=True)
        table.add_column("run or reason", overflow="fold")  # a reason is read in full
        for v in views:
            table.add_row(
                when_text(v.received_at),
                escape(v.event_key),
                "[red]refused[/]" if v.refused else "run",
                escape(v.reason or "") if v.refused else (v.run_id or ""),
            )
        rich_console().print(table)
        if not views:
            out.print("no events")


# -- partitions and backfills ------------------------------------------------------------


@queue_app.callback(invoke_without_command=True)
def queue_list(
    ctx: typer.Context, json_out: JsonOpt = False, project: ProjectOpt = Path(".")
) -> None:
    """Queued runs in the order they will start."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors(), workspace(project) as door:
        runs = door.automation.queue()
        if json_out:
            print_data(runs)
            return
        rows = [
            (
                str(i),
                r.id,
                r.pipeline,
                str(r.priority),
                r.partition or "",
                r.origin or "",
                when_text(r.created_at),
            )
            for i, r in enumerate(runs, 1)
        ]
        columns = ("#", "run", "pipeline", "priority", "partition", "origin", "queued (UTC)")
        print_rows(columns, rows, "the queue is empty")


@queue_app.command("move")
def queue_move(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    top: Annotated[bool, typer.Option("--top", help="Start it next.")] = False,
    bottom: Annotated[bool, typer.Option("--bottom", help="Start it last.")] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Move a queued run to the top or the bottom of the queue."""
    if top == bottom:
        raise fail("give exactly one of --top or --bottom")
    with user_errors(), workspace(project) as door:
        r = door.automation.move(run_id, "top" if top else "bottom")
        out.print(
            f"run {r.id} moved to the {'top' if top else 'bottom'} (priority {r.priority})",
            highlight=False,
        )


# -- daemons -----------------------------------------------------------------------------


@app.command("daemons")
def daemons_list(json_out: JsonOpt = False, project: ProjectOpt = Path(".")) -> None:
    """Daemons (legato up, legato scheduler) and their last heartbeat, newest first."""
    with user_errors(), workspace(project) as door:
        now = door.clock()
        found = door.presence.daemons(now)
        if json_out:
            print_data(found)
            return
        rows = [
            (
                d.id,
                d.kind,
                d.host,
                str(d.pid),
                d.version,
                when_text(d.started_at),
                f"{max(0, int((now - d.heartbeat_at).total_seconds()))} s ago",
                d.url or "",
            )
            for d in found
        ]
        columns = ("daemon", "kind", "host", "pid", "version", "started (UTC)", "beat", "url")
        print_rows(columns, rows, "no daemon is running")
