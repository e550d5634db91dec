"""The ``pipelines`` filter of the store's lists and look-ups (what a scoped actor reads), on
both backends: pages stay full and in order, other pipelines' rows are neither listed nor
found, nor counted when an id prefix is resolved."""

from __future__ import annotations

from typing import Any

import pytest

from legato.domain.records import Ambiguous, NotFound, RunRecord
from legato.domain.states import RunState
from legato.store import browse_store
from legato.store.store import Store
from tests.store.store_testkit import Records
from tests.store.test_store_automation import _backfill

PIPES = ("a", "b", "c", "d")


def _made(store: Store, rec: Records, count: int = 24) -> list[RunRecord]:
    made = []
    for i in range(count):
        state = (RunState.FAILED, RunState.SUCCEEDED, RunState.QUEUED)[i % 3]
        run = rec.run(pipeline=PIPES[i % len(PIPES)], state=state)
        store.runs.create_run(run, [], [])
        made.append(run)
    return made


def _pages(store: Store, limit: int, **filters: Any) -> list[str]:
    got: list[str] = []
    cursor = None
    while True:
        page = store.browse.list_runs(limit=limit, before_id=cursor, **filters)
        got += [r.id for r in page]
        if len(page) < limit:
            return got
        cursor = page[-1].id


@pytest.mark.parametrize("branches", [32, 1], ids=["merged-scans", "one-scan"])
def test_runs_pages_hold_only_the_pipelines_given(
    store: Store, rec: Records, branches: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browse_store, "_MAX_BRANCHES", branches)
    made = _made(store, rec)
    newest = list(reversed(made))
    keep = {"a", "c"}
    assert _pages(store, 2, pipelines=keep) == [r.id for r in newest if r.pipeline in keep]
    both = ["failed", "queued"]
    want = [r.id for r in newest if r.pipeline in keep and r.state in both]
    assert _pages(store, 3, pipelines=keep, state=both) == want
    assert _pages(store, 2, pipelines=keep, pipeline="a") == [
        r.id for r in newest if r.pipeline == "a"
    ]
    assert store.browse.list_runs(pipelines=keep, pipeline="b") == []
    assert store.browse.list_runs(pipelines=()) == []
    assert len(store.browse.list_runs(pipelines=None, limit=None)) == len(made)


def test_queue_and_backfills_hold_only_the_pipelines_given(store: Store, rec: Records) -> None:
    made = _made(store, rec)
    queued = [r.id for r in store.queue.queued_runs(pipelines=["b"])]
    assert queued and set(queued) == {
        r.id for r in made if r.pipeline == "b" and r.state == RunState.QUEUED
    }
    assert store.queue.queued_runs(pipelines=[]) == []
    for i, pipe in enumerate(("a", "b", "a")):
        store.backfills.create_backfill(_backfill(f"bf{i}", pipe))
    assert [b.id for b in store.backfills.list_backfills(pipelines=["a"])] == ["bf2", "bf0"]
    assert [b.id for b in store.backfills.list_backfills(pipelines=["a"], limit=1)] == ["bf2"]
    assert store.backfills.get_backfill("bf1", pipelines=["b"]).id == "bf1"
    with pytest.raises(NotFound):
        store.backfills.get_backfill("bf1", pipelines=["a"])
    # "bf" is a prefix of all three; among a's alone, still two.
    with pytest.raises(NotFound, match="more than one"):
        store.backfills.get_backfill("bf", pipelines=["a"])
    assert store.backfills.get_backfill("bf", pipelines=["b"]).id == "bf1"


def test_a_run_is_found_among_the_pipelines_given_only(store: Store, rec: Records) -> None:
    mine = rec.run(pipeline="a", id="0123aaaa")
    theirs = rec.run(pipeline="b", id="0123bbbb")
    for run in (mine, theirs):
        store.runs.create_run(run, [], [])
    with pytest.raises(Ambiguous):
        store.runs.find_run("0123")
    assert store.runs.find_run("0123", pipelines=["a"]).id == mine.id
    with pytest.raises(NotFound):
        store.runs.find_run(theirs.id, pipelines=["a"])
    assert store.runs.find_run(theirs.id, pipelines=["a", "b"]).id == theirs.id
