"""The ``legato`` command line. Every command is a few lines over ``legato.services``."""

from __future__ import annotations

import contextlib
import copy
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.models import CommandInfo, TyperInfo

from legato.cli.console import Printer, console, escape, rich_console

if TYPE_CHECKING:
    from legato.domain.records import RunRecord
    from legato.services.door import Door

app = typer.Typer(
    name="legato",
    help="Legato: run data pipelines written in plain Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _Lazy:
    # The consoles are made on first use: most commands never need Rich's import.
    def __init__(self, stderr: bool) -> None:
        self.stderr = stderr
        self._printer: Printer | None = None

    def __getattr__(self, name: str) -> Any:
        if self._printer is None:
            self._printer = console(self.stderr)
        return getattr(self._printer, name)


out: Printer = _Lazy(stderr=False)
err: Printer = _Lazy(stderr=True)

ProjectOpt = Annotated[
    Path,
    typer.Option(
        "--project",
        "-p",
        envvar="LEGATO_PROJECT",
        help="Project folder (holds legato.toml).",
        show_default="current folder",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _choose_env(name: str | None) -> str | None:
    # Through the environment variable, so that every process a command starts (workers, a
    # daemon's children) reads the same [env.NAME] settings.
    if name:
        import os

        from legato.config import ENV_VARIABLE

        os.environ[ENV_VARIABLE] = name
    return name


EnvOpt = Annotated[
    str | None,
    typer.Option(
        "--env",
        "-e",
        help="The environment: legato.toml's [env.NAME] laid over its other settings "
        "(default: LEGATO_ENV, else the settings as they are).",
        callback=_choose_env,
        metavar="NAME",
        show_default=False,
    ),
]

F = TypeVar("F", bound=Callable[..., Any])
USAGE_EXIT = 2


def fail(message: str, code: int = USAGE_EXIT) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one line on stderr and exit code 2."""
    from legato.config import ConfigError
    from legato.definitions.errors import DefinitionError, ParamError
    from legato.services.service_errors import ServiceError

    try:
        yield
    except (ConfigError, ServiceError, DefinitionError, ParamError) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:
        from legato.domain.records import StoreError
        from legato.server.serve import ServeError

        if isinstance(exc, (StoreError, ServeError)):
            raise fail(str(exc)) from None
        raise


def workspace(project: Path) -> Door:
    """The door to the project's services, for the person running this command."""
    from legato.services.actor import Actor
    from legato.services.door import open_door

    return open_door(str(project), Actor.local_user())


def parse_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise fail(f"--param takes key=value, got {item!r}")
        params[key.strip()] = value
    return params


def _drive_and_report(
    door: Door, start: Callable[..., RunRecord], quiet: bool, total: int
) -> None:
    from legato.cli.render import RunProgress, run_summary

    started: list[RunRecord] = []
    printer = console()  # the live view needs the console itself, not the lazy stand-in
    with RunProgress(printer, total, quiet=quiet, waits_for=_condition_of(door)) as progress:

        def created(run: RunRecord) -> None:
            started.append(run)
            if not quiet:
                out.print(f"run [bold]{run.id}[/] of {run.pipeline} started", highlight=False)

        try:
            run = start(on_created=created, on_progress=progress)
        except KeyboardInterrupt:
            which = f"run {started[0].id}" if started else "the run"
            err.print(f"interrupted: {which} was canceled", highlight=False)
            raise typer.Exit(130) from None
    counted = progress.counted(run)
    if counted is not None:  # the driver counted them: a map's many rows are not read back
        run_summary(printer, run, [], counts=counted)
    else:
        run_summary(printer, run, door.runs.task_runs(run.id))
    if run.state.value != "succeeded":
        raise typer.Exit(1)


def _condition_of(door: Door) -> Callable[[str, str], str | None]:
    """What a task of a pipeline waits for before a retry: its retry condition, if any."""

    def waits_for(pipeline: str, node: str) -> str | None:
        try:
            cond = door.project.pipeline(pipeline).graph.nodes[node].task.retry.condition
        except Exception:  # a pipeline or node the loaded code no longer has: say nothing
            return None
        if cond is None:
            return None
        limit = f" ({cond.timeout:g}s at most)" if cond.timeout is not None else ""
        return f"condition {cond.label}{limit}"

    return waits_for


def _version(value: bool) -> None:
    if value:
        from legato import __version__

        out.print(f"legato {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    env: EnvOpt = None,
) -> None:
    """Legato: run data pipelines written in plain Python."""


@app.command()
def run(
    pipeline: Annotated[str, typer.Argument(help="Name of the pipeline.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="A param as key=value; repeat.")
    ] = None,
    partition: Annotated[str | None, typer.Option("--partition", help="Partition key.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the final line.")] = False,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Run a pipeline to completion here, with a live view; exit 1 if the run fails."""
    with user_errors():
        params = parse_params(param or [])
        with workspace(project) as door:
            total = len(door.project.pipeline(pipeline).graph.nodes)

            def start(**kw: Any) -> RunRecord:
                return door.runs.run_pipeline(
                    pipeline, params, partition=partition, from_text=True, **kw
                )

            if json_out:
                from legato.cli.scripted import drive_as_json

                drive_as_json(door, start)
                return
            _drive_and_report(door, start, quiet, total)


@app.command()
def rerun(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN", help="Run id (a unique prefix is enough).")
    ],
    from_failure: Annotated[
        bool, typer.Option("--from-failure", help="Re-run failed tasks and their downstream.")
    ] = False,
    task: Annotated[
        str | None, typer.Option("--task", help="Re-run this task and its downstream.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Start a new run linked to RUN that reuses its stored results."""
    if from_failure == (task is not None):
        raise fail("say what to re-run: --from-failure or --task TASK")
    with user_errors(), workspace(project) as door:
        door.project.start_workers()
        new = door.runs.rerun(run_id, task=task)
        total = len(door.project.pipeline(new.pipeline).graph.nodes)

        def start(on_created: Callable[[RunRecord], None], **kw: Any) -> RunRecord:
            on_created(new)
            return door.runs.execute(new.id, **kw)

        if json_out:
            from legato.cli.scripted import drive_as_json

            drive_as_json(door, start)
            return
        from legato.cli.materialize_command import _saying

        # Its origin notes first: which results retention removed, and so runs again.
        _drive_and_report(door, _saying(door, start, quiet), quiet, total)


@app.command()
def resume(
    run_id: Annotated[
        str | None,
        typer.Argument(metavar="[RUN]", help="Run to resume; default: all that need it."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Carry on runs whose driving process died: finished tasks are not run again."""
    with user_errors(), workspace(project) as door:
        runs = [door.runs.find_run(run_id)] if run_id else door.runs.resumable()
        if not runs:
            out.print("no run needs resuming")
            return
        failed = False
        for r in runs:
            total = len(door.project.pipeline(r.pipeline).graph.nodes)
            door.project.start_workers()

            def start(
                on_created: Callable[[RunRecord], None], _r: RunRecord = r, **kw: Any
            ) -> RunRecord:
                if not quiet:
                    out.print(f"resuming run [bold]{_r.id}[/] of {_r.pipeline}", highlight=False)
                return door.runs.execute(_r.id, wait=True, **kw)

            try:
                _drive_and_report(door, start, quiet, total)
            except typer.Exit:
                failed = True
        if failed:
            raise typer.Exit(1)


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    project: ProjectOpt = Path("."),
) -> None:
    """Cancel a run: running attempts are killed, nothing new starts."""
    with user_errors(), workspace(project) as door:
        r = door.runs.cancel(run_id)
        if r.state.finished:
            out.print(f"run {r.id} canceled")
        else:
            out.print(f"cancel requested for run {r.id}; its driver stops it within a second")


@app.command()
def runs(
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only runs in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000)] = 20,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """List recent runs, newest first."""
    from legato.domain.states import RunState
    from legato.services.catalog import MAX_PAGE

    with user_errors(), workspace(project) as door:
        if state is not None and state not in {s.value for s in RunState}:
            raise fail(f"unknown state {state!r} (states: {', '.join(s.value for s in RunState)})")
        found: list[RunRecord] = []
        cursor: str | None = None
        while len(found) < limit:  # the same pages the API serves, as many as asked for
            page = door.catalog.runs(
                pipeline=pipeline,
                states=[state] if state else (),
                cursor=cursor,
                limit=min(MAX_PAGE, limit - len(found)),
            )
            found += page.runs
            cursor = page.next_cursor
            if cursor is None:
                break
        if json_out:
            from legato.cli.render import print_json

            print_json(found)
            return
        from rich.table import Table

        from legato.cli.render import duration, styled

        table = Table(box=None, header_style="bold")
        # Ids are what users copy into the next command: never cut them short.
        table.add_column("run", no_wrap=True, min_width=20)
        for col in ("pipeline", "state", "env", "partition", "created (UTC)", "took", "re-run of"):
            table.add_column(col, no_wrap=col in ("state", "created (UTC)"))
        for r in found:
            table.add_row(
                r.id,
                r.pipeline,
                styled(r.state.value),
                r.environment or "",
                r.partition or "",
                f"{r.created_at:%m-%d %H:%M:%S}",
                duration(r.started_at, r.finished_at),
                r.parent_run_id or "",
            )
        rich_console().print(table)
        if not found:
            out.print("no runs yet")


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Show a run: its tasks, their states, attempts and errors."""
    with user_errors(), workspace(project) as door:
        r = door.runs.find_run(run_id)
        if json_out:
            from legato.cli.render import print_json
            from legato.cli.scripted import run_json

            print_json(run_json(door, r.id))
            return
        from legato.cli.check_commands import add_check_rows

        rows = door.runs.task_runs(r.id)
        steps: dict[str, list[Any]] = {}  # each check as the run page's graph draws it
        for step in door.catalog.run(r.id).checks:
            steps.setdefault(step.node, []).append(step)
        from rich.table import Table

        from legato.cli.render import duration, styled

        out.print(f"run [bold]{r.id}[/]  pipeline {r.pipeline}  {styled(r.state.value)}")
        if r.environment:
            out.print(f"environment: {escape(r.environment)}")
        if r.params:
            out.print(f"params: {escape(str(r.params))}")
        if r.partition:
            out.print(f"partition: {r.partition}")
        if r.parent_run_id:
            out.print(f"re-run ({r.rerun_kind}) of {r.parent_run_id}")
        if r.error:
            out.print(f"[red]{escape(r.error)}[/]")
        from legato.services.pruned_results import pruned_notes

        for note in pruned_notes(door.runs.pruned(r.id)):
            out.print(f"[yellow]{escape(note)}[/]")
        table = Table(box=None, header_style="bold")
        for col in ("task", "state", "attempts", "took", "note"):
            table.add_column(col)
        for t in rows:
            note = t.error or (f"reused from {t.reused_from}" if t.reused_from else "")
            if t.result_note:
                stored = escape(f"result stored as {t.result_format}: {t.result_note}")
                note = f"{note}; {stored}" if note else stored
            table.add_row(
                t.task_key,
                styled(t.state.value),
                str(t.attempt),
                duration(t.started_at, t.finished_at) if t.attempt else "",
                note,
            )
            add_check_rows(table, steps.get(t.task_key, ()))
        rich_console().print(table)


@app.command()
def logs(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    task: Annotated[str | None, typer.Argument(metavar="[TASK]")] = None,
    attempt: Annotated[
        int | None, typer.Option("--attempt", help="Only this attempt number.")
    ] = None,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Print the captured stdout, stderr and logging of a run's attempts."""
    with user_errors(), workspace(project) as door:
        entries = door.runs.logs(run_id, task)
        if attempt is not None:
            entries = [e for e in entries if e.attempt == attempt]
        if json_out:
            from legato.cli.scripted import print_logs

            print_logs(entries)
            return
        if not entries:
            out.print("no logs yet")
            return
        for e in entries:
            out.print(
                f"[bold]── {e.task_key} · attempt {e.attempt} · {e.outcome} ──[/]", highlight=False
            )
            if e.note:  # before the text: a log of megabytes would hide it at the end
                out.print(f"[yellow]{escape(e.note)}[/]", highlight=False, soft_wrap=True)
            text = e.text()
            sys.stdout.flush()
            sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


@app.command()
def pipelines(
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """List the project's pipelines, and the modules that failed to load."""
    with user_errors(), workspace(project) as door:
        pipes = door.project.pipelines()
        door.project.register()
        summary = door.runs.summary()
        items: list[dict[str, Any]] = []
        for name, p in sorted(pipes.items()):
            count, last = summary.get(name, (0, None))
            items.append(
                {
                    "name": name,
                    "description": p.description.split("\n", 1)[0],
                    "tasks": len(p.graph.nodes),
                    "params": [q.name for q in p.params.values()],
                    "code_version": p.code_version,
                    "file": f"{p.file}:{p.line}",
                    "runs": count,
                    "last_run": last,
                }
            )
        errors = [{"module": e.module, "error": e.message} for e in door.project.load_errors()]
        if json_out:
            from legato.cli.render import print_json

            print_json({"pipelines": items, "errors": errors})
            return
        from rich.table import Table

        from legato.cli.render import styled

        table = Table(box=None, header_style="bold")
        for col in ("pipeline", "tasks", "params", "runs", "last run", "description"):
            table.add_column(col)
        for it in items:
            last = it["last_run"]
            table.add_row(
                it["name"],
                str(it["tasks"]),
                ", ".join(it["params"]),
                str(it["runs"]),
                f"{last.id} {styled(last.state.value)}" if last else "",
                it["description"],
            )
        rich_console().print(table)
        for e in errors:
            err.print(
                f"[red]failed to load {e['module']}:[/] {escape(e['error'])}", highlight=False
            )


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="Folder for the new project.")],
) -> None:
    """Make a new project that runs as it is: legato.toml and a hello pipeline."""
    from legato.cli.scaffold import ScaffoldError, scaffold

    try:
        files = scaffold(directory)
    except ScaffoldError as exc:
        raise fail(str(exc)) from None
    for f in files:
        out.print(f"wrote {f}")
    out.print(f"next: legato run hello --project {directory}")


# The operating commands (up, dev, web, scheduler, schedules, triggers, backfills, queue) and the
# accounts (users, tokens), alerts, the audit trail and secrets register themselves on ``app``;
# ``legato db`` and ``legato certs`` are added here.
from legato.cli import accounts as _accounts  # noqa: E402
from legato.cli import alert_commands as _alerts  # noqa: E402
from legato.cli import asset_commands as _assets  # noqa: E402
from legato.cli import audit_commands as _audit  # noqa: E402
from legato.cli import backfill_commands as _backfills  # noqa: E402
from legato.cli import check_commands as _checks  # noqa: E402
from legato.cli import config_commands as _config  # noqa: E402
from legato.cli import dev_command as _dev  # noqa: E402
from legato.cli import materialize_command as _materialize  # noqa: E402
from legato.cli import operate as _operate  # noqa: E402
from legato.cli import partition_commands as _partitions  # noqa: E402
from legato.cli import resources_commands as _resources  # noqa: E402
from legato.cli import secrets as _secrets  # noqa: E402
from legato.cli.certs_commands import certs_app  # noqa: E402
from legato.cli.db_commands import db_app  # noqa: E402

del _operate, _accounts, _alerts, _audit, _dev, _secrets, _config, _resources, _assets, _checks
del _materialize, _partitions, _backfills
app.add_typer(db_app, name="db")
app.add_typer(certs_app, name="certs")


def _only(argv: list[str]) -> typer.Typer:
    """The app with only the command (or group) ``argv`` names, when it names one.

    Typer turns every registered command into a click command before parsing anything:
    about 50 ms for Legato's ~130 commands, more than a one-task run itself. A command line
    that names one command needs only that one; anything else (``--help``, no command, a
    misspelt one that deserves the full list) gets the whole app."""
    name = argv[1] if len(argv) > 1 else ""
    if not name or name.startswith("-"):
        return app
    commands = [c for c in app.registered_commands if _command_name(c) == name]
    groups = [g for g in app.registered_groups if _group_name(g) == name]
    if not commands and not groups:
        return app
    trimmed = copy.copy(app)
    trimmed.registered_commands = commands
    trimmed.registered_groups = groups
    return trimmed


def _command_name(info: CommandInfo) -> str:
    if info.name:
        return info.name
    callback = info.callback
    return getattr(callback, "__name__", "").lower().replace("_", "-")


def _group_name(info: TyperInfo) -> str:
    return info.name or (info.typer_instance.info.name if info.typer_instance else None) or ""


def main() -> None:
    """Entry point of the ``legato`` console script."""
    try:
        _only(sys.argv)()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
        _leave(exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1))


def _leave(code: int) -> None:
    # Tearing the interpreter down (freeing a thousand modules) costs 40-80 ms per command.
    # Each command has closed its store and stopped its workers by now, so flush what is
    # buffered and leave without it.
    import logging
    import os

    from legato.observability import tracing

    tracing.flush()  # spans still queued would be lost with the interpreter
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
