"""``legato partitions``: how a partitioned pipeline's partitions stand, summed up or listed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from legato.cli.main import JsonOpt, ProjectOpt, app, out, user_errors, workspace
from legato.cli.operate import print_data, print_rows

if TYPE_CHECKING:
    from legato.services.partition_views import PartitionState, PartitionSummary
    from legato.services.partitions_service import Partitions

#: The newest ranges of failed and of missing partitions the summary prints.
CLI_RANGES = 10


@app.command()
def partitions(
    pipeline: Annotated[str, typer.Argument(metavar="PIPELINE")],
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            help="List the partitions in this state (repeatable): missing (never run), "
            "queued, running, succeeded, failed, canceled.",
            show_default=False,
        ),
    ] = None,
    first: Annotated[str | None, typer.Option("--from", help="First partition key.")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last partition key.")] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Count by year, month, day or hour (time partitions)."),
    ] = None,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """How a pipeline's partitions stand: counts by state and the ranges of failed and
    missing ones. With --state, --from/--to or --json: the partitions themselves."""
    with user_errors(), workspace(project) as door:
        if state or json_out or ((first or last) and by is None):
            _list(door.partitions, pipeline, state or [], first, last, json_out)
            return
        summary = door.partitions.summary(
            pipeline, granularity=by, first=first, last=last, ranges=CLI_RANGES
        )
        _print_summary(summary)


def _list(
    service: Partitions, pipeline: str, states: list[str], first: str | None, last: str | None,
    json_out: bool,
) -> None:
    from legato.services.partition_views import MAX_PAGE

    found: list[PartitionState] = []
    cursor = None
    while True:
        page = service.page(pipeline, states=states, first=first, last=last, cursor=cursor,
                            limit=MAX_PAGE)
        found.extend(page.partitions)
        cursor = page.next_cursor
        if cursor is None:
            break
    if json_out:
        print_data([p.__dict__ for p in found])
        return
    from legato.cli.render import styled

    rows = [(p.key, p.state if p.run_id is None else styled(p.state), p.run_id or "")
            for p in found]
    print_rows(("partition", "state", "run"), rows, "no partitions match")
    out.print(f"{len(found)} partitions", highlight=False)


def _print_summary(summary: PartitionSummary) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts.items()))
    out.print(f"{summary.total} partitions: {counts or 'none yet'}", highlight=False)
    for label, ranges, total in (("failed", summary.failed, summary.failed_ranges),
                                 ("missing", summary.missing, summary.missing_ranges)):
        if not ranges:
            continue
        shown = ", ".join(
            r.first if r.count == 1 else f"{r.first} .. {r.last} ({r.count})" for r in ranges
        )
        earlier = f" (and {total - len(ranges)} earlier ranges)" if total > len(ranges) else ""
        out.print(f"{label}: {shown}{earlier}", highlight=False)
    if summary.buckets:
        states = sorted({s for b in summary.buckets for s in b.counts})
        rows = [(b.label, *(str(b.counts.get(s, "")) for s in states)) for b in summary.buckets]
        print_rows((summary.granularity or "", *states), rows, "")
