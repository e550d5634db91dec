"""Each partition's state as kept in ``partition_status``: the newest run's (greatest id),
written with the run's creation and each change of its state, read by index."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Connection, func, insert, select, text

from legato.domain.records import Changes, RunRecord
from legato.domain.states import RunState, TaskState, judge_mark
from legato.store import db, migrate, rows
from legato.store import partition_status as status
from legato.store.schema import partition_status, runs
from legato.store.store import Store
from tests.store.store_testkit import T0, Records


def _created(store: Store, rec: Records, pipeline: str = "etl", **fields: object) -> RunRecord:
    run = rec.run(pipeline, **fields)
    store.runs.create_run(run, [rec.task(run, "a")], [])
    return run


def _step_to(store: Store, rec: Records, run: RunRecord, state: RunState) -> RunRecord:
    """Drive ``run`` to ``state`` through the driver's step, as a driver would."""
    leased = store.runs.acquire_lease(run.id, "driver", T0 + timedelta(days=1), T0)
    assert leased is not None
    t = rec.tick()
    new = replace(leased, state=state, started_at=t, finished_at=t if state.finished else None)
    store.runs.apply(
        Changes(run.id, "driver", T0 + timedelta(days=1), run=new, events=[
            rec.event(run, "run_state", old_state=run.state.value, new_state=state.value)])
    )
    return new


def _direct_counts(store: Store, pipeline: str) -> dict[str, int]:
    """Counts by state of each partition's newest run, grouped from every run."""
    r = runs.c
    newest = (
        select(func.max(r.id).label("id"))
        .where(r.pipeline == pipeline, r.partition.is_not(None))
        .group_by(r.partition)
        .subquery()
    )
    stmt = select(r.state, func.count()).join(newest, newest.c.id == r.id).group_by(r.state)
    engine = db.create_engine(store.url)
    try:
        with engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(stmt)}
    finally:
        engine.dispose()


def test_the_newest_run_gives_each_partition_its_state(store: Store, rec: Records) -> None:
    assert store.backfills.partition_states("etl") == {}
    _created(store, rec, partition="2024-01-01", state=RunState.FAILED)
    jan1 = _created(store, rec, partition="2024-01-01", state=RunState.SUCCEEDED)
    _created(store, rec, partition="2024-01-02", state=RunState.SUCCEEDED)
    jan2 = _created(store, rec, partition="2024-01-02")
    _created(store, rec)  # no partition
    report = _created(store, rec, "report", partition="2024-01-01")

    assert store.backfills.partition_states("etl") == {
        "2024-01-01": ("succeeded", jan1.id),
        "2024-01-02": ("queued", jan2.id),
    }
    assert store.backfills.partition_states("report", ["2024-01-01", "2024-01-09"]) == {
        "2024-01-01": ("queued", report.id)
    }
    assert store.backfills.partitions_in_states("etl", ["queued", "failed"]) == {
        "2024-01-02": "queued"
    }
    assert store.backfills.partition_counts("etl") == {"succeeded": 1, "queued": 1}


def test_an_older_run_created_later_does_not_take_the_partition(
    store: Store, rec: Records
) -> None:
    older = rec.run(partition="p")
    newer = _created(store, rec, partition="p", state=RunState.SUCCEEDED)
    store.runs.create_run(older)  # e.g. lost a race to commit
    assert store.backfills.partition_states("etl") == {"p": ("succeeded", newer.id)}


def test_state_changes_follow_the_newest_run_only(store: Store, rec: Records) -> None:
    first = _created(store, rec, partition="p")
    _step_to(store, rec, first, RunState.RUNNING)
    assert store.backfills.partition_states("etl", ["p"]) == {"p": ("running", first.id)}
    second = _created(store, rec, partition="p")
    done = _step_to(store, rec, first, RunState.FAILED)  # the older run ends: not newest now
    assert store.backfills.partition_states("etl", ["p"]) == {"p": ("queued", second.id)}
    assert store.runs.get_run(first.id).state == done.state == RunState.FAILED
    store.runs.acquire_lease(second.id, "driver", T0 + timedelta(days=1), T0)
    store.runs.cancel_without_driver(second.id, "driver", rec.tick(), "code is gone")
    assert store.backfills.partition_states("etl", ["p"]) == {"p": ("canceled", second.id)}
    assert _direct_counts(store, "etl") == store.backfills.partition_counts("etl")


def test_an_operator_mark_changes_the_partition_state(store: Store, rec: Records) -> None:
    run = _created(store, rec, partition="p")
    _step_to(store, rec, run, RunState.FAILED)
    a = replace(rec.task(run, "a"), state=TaskState.FAILED)
    store.runs.acquire_lease(run.id, "driver", T0 + timedelta(days=1), T0)
    store.runs.apply(Changes(run.id, "driver", T0 + timedelta(days=1), task_runs=[a]))
    store.browse.mark_task(run.id, "a", TaskState.SUCCEEDED, rec.tick(), "fixed by hand",
                           judge_mark)  # fmt: skip
    assert store.backfills.partition_states("etl", ["p"]) == {"p": ("succeeded", run.id)}


def test_counts_equal_a_direct_count_from_the_runs(store: Store, rec: Records) -> None:
    states = [RunState.SUCCEEDED, RunState.FAILED, RunState.QUEUED, RunState.CANCELED]
    for i in range(60):
        run = _created(store, rec, partition=f"k{i % 17:02d}", state=states[i % 4])
        if i % 5 == 0:
            _step_to(store, rec, run, RunState.RUNNING)
    counts = store.backfills.partition_counts("etl")
    assert counts == _direct_counts(store, "etl")
    assert sum(counts.values()) == 17


def test_a_text_range_reads_and_counts_its_partitions(
    store: Store, rec: Records
) -> None:
    states = [RunState.SUCCEEDED, RunState.FAILED, RunState.QUEUED]
    for i in range(40):  # days 01 to 20 of two months, a run each; some re-run
        key = f"2026-{3 + i // 20:02d}-{1 + i % 20:02d}"
        _created(store, rec, partition=key, state=states[i % 3])
        if i % 7 == 0:
            _created(store, rec, partition=key, state=RunState.SUCCEEDED)
    _created(store, rec, "other", partition="2026-03-05")
    b = store.backfills
    every = b.partition_states("etl")
    got = b.partitions_between("etl", "2026-03-10", "2026-04-05")
    assert got == {k: v for k, v in every.items() if "2026-03-10" <= k <= "2026-04-05"}
    assert len(got) == 11 + 5
    failed = b.partitions_between("etl", "2026-03-01", "2026-04-20", ["failed"])
    assert failed == {k: v for k, v in every.items() if v[0] == "failed"} and failed
    april = b.partitions_between("etl", "2026-04-01", "2026-04-30", ["queued", "failed"])
    assert Counter(s for s, _ in april.values()) == Counter(
        s for k, (s, _) in every.items() if k.startswith("2026-04") and s != "succeeded"
    )
    ranges = [("2026-03-01", "2026-03-31"), ("2026-03-19", "2026-04-02"), ("2026-05", "2026-06")]
    assert b.partitions_present("etl", ranges) == [20, 4, 0]
    assert b.partitions_present("etl", []) == []


def _plan(conn: Connection, stmt: object) -> str:
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    if conn.dialect.name == "sqlite":
        return "\n".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
    conn.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table is scanned otherwise
    return "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + sql)))


def test_the_status_query_plans_use_an_index(store: Store, rec: Records) -> None:
    for i in range(50):
        _created(store, rec, f"p{i % 3}", partition=f"k{i}")
    engine = db.create_engine(store.url)
    try:
        with engine.begin() as conn:
            # Enough partitions for the planners' statistics to tell the indexes apart.
            conn.execute(insert(partition_status), [
                {"pipeline": f"p{i % 3}", "partition": f"x{i:05d}", "run_id": f"{i:020d}",
                 "state": "succeeded" if i % 10 else "failed", "updated_at": T0}
                for i in range(6000)])  # fmt: skip
            conn.execute(text("ANALYZE"))
        with engine.begin() as conn:
            page = _plan(conn, status.states_stmt("p1", ["k1", "k4", "k7"]))
            counts = _plan(conn, status.counts_stmt("p1"))
            failed = _plan(conn, status.in_states_stmt("p1", ["failed"]))
            ranged = _plan(conn, status.between_stmt("p1", "x00100", "x00200"))
            ranged_failed = _plan(
                conn, status.between_stmt("p1", "x00100", "x00200", ["failed"])
            )
            present = _plan(
                conn, status.present_stmt(1).bindparams(pipeline="p1", lo0="x00100", hi0="x00200")
            )
    finally:
        engine.dispose()
    if store.backend == "sqlite":
        assert "USING INDEX sqlite_autoindex_partition_status_1" in page, page
        assert "USING COVERING INDEX ix_partition_status_pipeline_state_partition" in counts
        assert "ix_partition_status_pipeline_state_partition" in failed, failed
        assert "SCAN partition_status" not in page + counts + failed
        for plan in (ranged, present):  # a range of the primary key
            assert "INDEX sqlite_autoindex_partition_status_1 (pipeline=? AND " \
                "partition>? AND partition<?)" in plan, plan
        # One range of the state index per state.
        assert "INDEX ix_partition_status_pipeline_state_partition (pipeline=? AND state=? " \
            "AND partition>? AND partition<?)" in ranged_failed, ranged_failed
        assert "SCAN partition_status" not in ranged + ranged_failed + present
    else:
        assert "pk_partition_status" in page, page
        # Either index serves a pipeline's counts (index-only once vacuumed).
        assert "Index Cond: ((pipeline)::text = 'p1'::text)" in counts, counts
        assert "ix_partition_status_pipeline_state_partition" in failed, failed
        assert "Seq Scan" not in page + counts + failed
        for plan in (ranged, ranged_failed, present):
            assert "partition)::text >= 'x00100'" in plan, plan
            assert "Index" in plan, plan
        assert "ix_partition_status_pipeline_state_partition" in ranged_failed, ranged_failed
        assert "Seq Scan" not in ranged + ranged_failed + present


def test_the_migration_fills_the_status_from_the_runs_already_stored(
    store_url_for: Callable[[str], str], rec: Records, backend: str
) -> None:
    url = store_url_for(backend)
    made = [
        rec.run(partition="a", state=RunState.FAILED),
        rec.run(partition="a", state=RunState.SUCCEEDED, finished_at=T0),
        rec.run(partition="b", state=RunState.RUNNING),
        rec.run("other", partition="a", state=RunState.FAILED),
        rec.run(state=RunState.SUCCEEDED),
    ]
    engine = db.create_engine(url)
    try:
        migrate.upgrade(engine, "0012")
        with engine.begin() as conn:
            conn.execute(insert(runs), [rows.run_values(r) for r in made])
        assert migrate.upgrade(engine) == migrate.Migration("0012", migrate.HEAD_REVISION)
    finally:
        engine.dispose()
    with Store.open(url) as store:
        assert store.backfills.partition_states("etl") == {
            "a": ("succeeded", made[1].id), "b": ("running", made[2].id)}
        assert store.backfills.partition_states("other") == {"a": ("failed", made[3].id)}
        assert store.backfills.partition_counts("etl") == _direct_counts(store, "etl")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
