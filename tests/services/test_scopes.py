"""Grants scoped to pipelines: an actor scoped to some pipelines (by name pattern or tag) sees
and acts on those only. Every other pipeline is absent from its lists, paged ones included,
and naming it, or one of its runs or backfills, is answered as for one that does not exist.
Unscoped actors see everything. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from legato.domain.records import NotFound, RunRecord
from legato.domain.states import BackfillState
from legato.services.actor import Actor
from legato.services.door import Door
from legato.services.service_errors import (
    Forbidden,
    NotFoundError,
    ServiceError,
    UnknownPipeline,
)
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import make_project

CODE = """
from legato import pipeline, task
from legato.partitions import static
from legato.schedules import cron
from legato.triggers import webhook


@task(in_process=True)
def work() -> int:
    return 1


@task(in_process=True)
def fail(x: int) -> int:
    raise ValueError("no")


@pipeline(schedule=cron("0 3 * * *", name="nightly"), triggers=[webhook("hook")])
def finance_daily():
    work()


@pipeline(partitions=static(["eu", "us"]))
def finance_regions():
    work()


@pipeline(tags=["team-b"], schedule=cron("0 4 * * *", name="nightly"), triggers=[webhook("hook")])
def marketing():
    fail(work())


@pipeline(tags=["team-b"], partitions=static(["eu", "us"]))
def marketing_regions():
    work()
"""

FINANCE = {"finance_daily", "finance_regions"}
HIDDEN = {"marketing", "marketing_regions"}


@dataclass
class Project:
    ws: Workspace
    admin: Door  # the local user: unscoped

    def scoped(self, *scope: str, role: str = "operator") -> Door:
        """The services for an API client of ``role`` scoped to ``scope``."""
        actor = Actor.http_client(
            f"token:{role}-{'-'.join(scope)}",
            permissions=self.ws.roles.permissions(role),
            role=role,
            auth="token",
            scope=scope,
        )
        return self.ws.door(actor)


@pytest.fixture(params=BACKENDS)
def project(
    request: pytest.FixtureRequest, tmp_path: Path, store_url_for: Callable[[str], str]
) -> Iterator[Project]:
    extra = ""
    if request.param == "postgresql":
        extra = f'\n[store]\nurl = "{store_url_for("postgresql")}"\n'
    ws = Workspace(make_project(tmp_path / "proj", CODE, extra=extra))
    try:
        yield Project(ws, ws.door(Actor.local_user()))
    finally:
        ws.close()


def test_a_scope_covers_pipelines_by_name_pattern_or_tag() -> None:
    def sees(scope: tuple[str, ...], name: str, tags: tuple[str, ...] = ()) -> bool:
        return Actor.http_client(scope=scope).sees(name, tags)

    assert sees((), "anything")
    assert sees(("finance_*",), "finance_daily")
    assert not sees(("finance_*",), "marketing")
    assert not sees(("finance_*",), "Finance_daily")  # names are case-sensitive
    assert sees(("finance_*", "tag:team-b"), "marketing", ("team-b",))
    assert not sees(("tag:team-b",), "marketing", ("team-a",))
    assert not sees(("tag:team-b",), "team-b")  # a tag is not a name
    assert sees(("marketing",), "marketing") and not sees(("marketing",), "marketing_regions")


def test_lists_show_only_the_pipelines_in_scope(project: Project) -> None:
    admin = project.admin
    for name in sorted(FINANCE | HIDDEN):
        admin.runs.create_run(name, partition="eu" if name.endswith("regions") else None)
    admin.automation.create_backfill("marketing_regions", keys=["eu", "us"])
    admin.automation.create_backfill("finance_regions", keys=["us"])

    team_a = project.scoped("finance_*")
    assert [p.name for p in team_a.catalog.pipelines()] == sorted(FINANCE)
    assert set(team_a.project.pipelines()) == FINANCE
    assert {s.pipeline for s in team_a.automation.schedules()} == {"finance_daily"}
    assert {t.pipeline for t in team_a.automation.triggers()} == {"finance_daily"}
    assert {r.pipeline for r in team_a.catalog.runs().runs} == FINANCE
    assert {r.pipeline for r in team_a.automation.queue()} == FINANCE
    assert set(team_a.runs.summary()) == FINANCE
    assert {b.record.pipeline for b in team_a.automation.backfills()} == {"finance_regions"}
    assert team_a.catalog.runs(pipeline="marketing").runs == ()

    team_b = project.scoped("tag:team-b")
    assert {p.name for p in team_b.catalog.pipelines()} == HIDDEN
    assert {r.pipeline for r in team_b.catalog.runs().runs} == HIDDEN
    assert {b.record.pipeline for b in team_b.automation.backfills()} == {"marketing_regions"}

    everyone = {p.name for p in admin.catalog.pipelines()}
    assert everyone == FINANCE | HIDDEN
    assert {r.pipeline for r in admin.automation.queue()} == FINANCE | HIDDEN


def test_pages_of_runs_are_full_and_hold_only_runs_in_scope(project: Project) -> None:
    admin = project.admin
    mine: list[RunRecord] = []
    for _ in range(5):
        mine.append(admin.runs.create_run("finance_daily"))
        for _ in range(3):  # more hidden runs than a page holds between two of mine
            admin.runs.create_run("marketing")
    team_a = project.scoped("finance_*")
    seen: list[str] = []
    cursor = None
    while True:
        page = team_a.catalog.runs(limit=2, cursor=cursor)
        assert len(page.runs) == 2 or page.next_cursor is None
        seen += [r.id for r in page.runs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [r.id for r in reversed(mine)]
    queued = team_a.automation.queue()
    assert [r.id for r in queued] == [r.id for r in mine]


def test_naming_what_is_out_of_scope_is_answered_as_for_what_does_not_exist(
    project: Project,
) -> None:
    admin = project.admin
    hidden = admin.runs.run_pipeline("marketing")  # finished, failed: can be re-run, marked
    queued = admin.runs.create_run("marketing")
    backfill = admin.automation.create_backfill("marketing_regions", keys=["eu"])
    team_a = project.scoped("finance_*")

    def refused(call: Callable[[], object]) -> str:
        with pytest.raises((NotFoundError, NotFound)) as err:
            call()
        return str(err.value)

    missing = "0" * len(hidden.id)
    assert refused(lambda: team_a.catalog.get_run(hidden.id)) == f"no run with id {hidden.id!r}"
    assert refused(lambda: team_a.catalog.get_run(missing)) == f"no run with id {missing!r}"
    for call in (
        lambda: team_a.catalog.run(hidden.id),
        lambda: team_a.catalog.events(hidden.id),
        lambda: team_a.catalog.code_changes(hidden.id),
        lambda: team_a.catalog.log(hidden.id, "work", 1),
        lambda: team_a.catalog.mark_task(hidden.id, "fail", "succeeded"),
        lambda: team_a.runs.find_run(hidden.id),
        lambda: team_a.runs.find_run(hidden.id[:14]),
        lambda: team_a.runs.logs(hidden.id),
        lambda: team_a.runs.task_run(hidden.id, "work"),
        lambda: team_a.runs.rerun(hidden.id),
        lambda: team_a.runs.cancel(queued.id),
        lambda: team_a.automation.move(queued.id, "top"),
        lambda: team_a.automation.backfill(backfill.id),
        lambda: team_a.automation.backfill(backfill.id[:6]),
        lambda: team_a.automation.set_backfill_state(backfill.id, BackfillState.CANCELED),
    ):
        refused(call)
    assert team_a.runs.task_runs(hidden.id) == []
    assert team_a.runs.attempts(hidden.id) == []
    assert team_a.catalog.backfill_runs(backfill.id) == []

    for call in (
        lambda: team_a.catalog.pipeline("marketing"),
        lambda: team_a.project.pipeline("marketing"),
        lambda: team_a.automation.partitions("marketing_regions"),
        lambda: team_a.automation.trigger_events("marketing"),
        lambda: team_a.automation.set_schedule_paused("marketing", True),
        lambda: team_a.automation.set_trigger_paused("marketing", "hook", True),
        lambda: team_a.automation.submit("marketing"),
        lambda: team_a.runs.create_run("marketing"),
        lambda: team_a.automation.create_backfill("marketing_regions", keys=["us"]),
    ):
        with pytest.raises(UnknownPipeline) as err:
            call()
        # Close matches and the list of pipelines name only those in scope.
        assert "marketing_regions" not in str(err.value).replace("'marketing_regions'", "", 1)
    with pytest.raises(UnknownPipeline, match="did you mean 'finance_daily'"):
        team_a.catalog.pipeline("finance_dailx")

    # Nothing was changed by any of it.
    assert admin.catalog.get_run(queued.id).state == "queued"
    assert admin.automation.backfill(backfill.id).record.state == BackfillState.RUNNING
    assert not any(s.paused for s in admin.automation.schedules())
    assert [r.id for r in admin.automation.queue()] == [queued.id]


def test_a_run_id_prefix_resolves_among_the_runs_in_scope(project: Project) -> None:
    admin = project.admin
    mine = admin.runs.create_run("finance_daily")
    theirs = admin.runs.create_run("marketing")
    common = ""
    for a, b in zip(mine.id, theirs.id, strict=True):
        if a != b:
            break
        common += a
    assert len(common) >= 1
    with pytest.raises(Exception, match="matches several runs"):
        admin.runs.find_run(common)
    assert project.scoped("finance_*").runs.find_run(common).id == mine.id


def test_in_scope_everything_works_as_for_an_unscoped_actor(project: Project) -> None:
    team_a = project.scoped("finance_*")
    done = project.admin.runs.run_pipeline("finance_daily")
    assert team_a.catalog.run(done.id).run.id == done.id
    assert [e.attempt for e in team_a.runs.logs(done.id)] == [1]
    assert team_a.catalog.log(done.id, "work", 1).outcome == "succeeded"
    assert team_a.runs.rerun(done.id, task="work").pipeline == "finance_daily"
    queued = team_a.automation.submit("finance_daily")
    assert team_a.automation.move(queued.id, "top").id == queued.id
    assert team_a.runs.cancel(queued.id).id == queued.id
    team_a.automation.set_schedule_paused("finance_daily", True)
    assert [s.paused for s in team_a.automation.schedules()] == [True]
    made = team_a.automation.create_backfill("finance_regions", keys=["eu"])
    assert team_a.automation.backfill(made.id[:6]).record.id == made.id
    assert [p.key for p in team_a.automation.partitions("finance_regions")] == ["eu", "us"]


def test_a_scoped_admin_is_scoped_for_pipelines_and_still_an_admin(project: Project) -> None:
    project.admin.runs.create_run("marketing")
    admin_a = project.scoped("finance_*", role="admin")
    assert admin_a.catalog.runs().runs == ()
    with pytest.raises(UnknownPipeline):
        admin_a.catalog.pipeline("marketing")
    assert [u.name for u in admin_a.accounts.users()] == []
    admin_a.accounts.create_token("made-by-a", "viewer")
    assert admin_a.audit.entries(action="tokens.change")
    operator_a = project.scoped("finance_*")
    with pytest.raises(Forbidden):
        operator_a.accounts.users()
    with pytest.raises(Forbidden):
        operator_a.audit.entries()


def test_a_scoped_actor_is_not_shown_the_modules_that_failed_to_load(
    project: Project,
) -> None:
    (project.ws.config.root / "broken.py").write_text("raise RuntimeError('finance secret')\n")
    toml = project.ws.config.root / "legato.toml"
    text = toml.read_text()
    toml.write_text(text.replace('modules = ["flows"]', 'modules = ["flows", "broken"]'))
    with Workspace(project.ws.config.root) as ws:
        admin = ws.door(Actor.local_user())
        scoped = Project(ws, admin).scoped("finance_*")
        assert [e["module"] for e in admin.catalog.load_errors()] == ["broken"]
        assert scoped.catalog.load_errors() == []
        assert scoped.project.load_errors() == []
        with pytest.raises(UnknownPipeline) as err:
            scoped.catalog.pipeline("nope")
        assert "broken" not in str(err.value)


def test_a_grant_takes_only_usable_scopes(project: Project) -> None:
    accounts = project.admin.accounts
    for bad in ("", "tag:", "finance *", "x\x00", "p" * 201):
        with pytest.raises(ServiceError, match="not a usable scope") as err:
            accounts.create_token(f"t{len(bad)}", "viewer", scope=("finance_*", bad))
        assert err.value.field == "scope"
        with pytest.raises(ServiceError, match="not a usable scope"):
            accounts.add_user(f"u{len(bad)}", "viewer", scope=(bad,))
    assert accounts.tokens() == [] and accounts.users() == []
    made = accounts.create_token("team-b", "viewer", scope=("tag:team-b", "marketing?*"))
    assert made.record.scope == ("tag:team-b", "marketing?*")
    accounts.add_user("ann", "operator", scope=("finance_*",))
    with pytest.raises(ServiceError, match="not a usable scope"):
        accounts.set_role("ann", "viewer", ("tag:",))
    assert accounts.set_role("ann", "viewer", ("tag:team-a",)).scope == ("tag:team-a",)


FIN_CODE = """
from legato import pipeline, task

@task
def book() -> int:
    return {n}

@pipeline
def finance_daily():
    book()
"""

MKT_CODE = """
from legato import pipeline, task

@task
def reach() -> int:
    return {n}

@pipeline
def marketing():
    reach()
"""


def test_a_runs_code_page_leaves_out_the_files_of_pipelines_out_of_scope(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path / "proj", FIN_CODE.format(n=1), module="fin")
    (root / "mkt.py").write_text(MKT_CODE.format(n=1))
    toml = root / "legato.toml"
    toml.write_text(toml.read_text().replace('modules = ["fin"]', 'modules = ["fin", "mkt"]'))
    ws = Workspace(root)
    try:
        admin = ws.door(Actor.local_user())
        admin.runs.create_run("finance_daily")
        for name, code in (("fin.py", FIN_CODE), ("mkt.py", MKT_CODE)):
            (root / name).write_text(code.format(n=2))
        ws.refresh()
        second = admin.runs.create_run("finance_daily")
        everything = admin.catalog.code_changes(second.id)
        assert [c.path for c in everything.changes] == ["fin.py", "mkt.py"]
        finance = Project(ws, admin).scoped("finance_*", role="viewer")
        shown = finance.catalog.code_changes(second.id)
        assert [c.path for c in shown.changes] == ["fin.py"]
        assert "mkt.py" not in shown.files and "fin.py" in shown.files
        assert all("reach" not in (c.diff or "") for c in shown.changes)
    finally:
        ws.close()
