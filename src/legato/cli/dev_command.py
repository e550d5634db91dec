"""``legato dev``: ``legato up`` for writing pipelines.

A save reloads the code at once (a file watcher, not the daemon's stat poll), load errors
show on every page of the web UI while they last, and ``--run PIPELINE`` queues a run of that
pipeline at start and each time its code changes, as a test watcher reruns tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from legato.cli.main import ProjectOpt, app, parse_params
from legato.cli.operate import HostOpt, LogFormatOpt, PortOpt, _serve

if TYPE_CHECKING:
    from legato.daemon.loop import DaemonOptions
    from legato.services.door import Door


@dataclass(frozen=True)
class DevOptions:
    """What ``legato dev`` adds to ``legato up``."""

    launch: tuple[str, ...] = ()
    params: dict[str, str] = field(default_factory=dict)

    def apply(self, door: Door, options: DaemonOptions, say: Callable[[str], None]) -> None:
        """Set the daemon's ``options`` for development; check the pipelines to launch."""
        options.watch = True
        loaded = door.project.pipelines()
        for name in self.launch:
            if name in loaded:
                continue
            if not door.project.load_errors():
                door.project.pipeline(name)  # no such pipeline: the error names close ones
            say(f"{name} is not loaded (a module failed to load): it runs once it loads")
        options.launch = self.launch
        options.launch_params = dict(self.params)


@app.command()
def dev(
    project: ProjectOpt = Path("."),
    run: Annotated[
        list[str] | None,
        typer.Option(
            "--run",
            "-r",
            metavar="PIPELINE",
            help="Launch a run of PIPELINE at start and each time its code changes.",
        ),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-P", help="key=value, for --run's runs.")
    ] = None,
    host: HostOpt = None,
    port: PortOpt = None,
    max_runs: Annotated[int | None, typer.Option(help="Runs driven at once.")] = None,
    log_format: LogFormatOpt = "text",
) -> None:
    """Run everything in one process, as `legato up` does, while you write pipelines: a saved
    edit reloads the code at once (runs in flight finish on theirs), load errors show on
    every page of the web UI, and --run launches a pipeline after each edit."""
    options = DevOptions(tuple(run or ()), parse_params(param or []))
    _serve(
        project, web=True, host=host, port=port, max_runs=max_runs, log_format=log_format,
        dev=options,
    )
