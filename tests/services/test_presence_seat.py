"""SQLite's one scheduler seat holds across a store file that was removed or replaced, and a
store whose file was swapped under a process is not reported healthy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from legato.domain.records import StoreReplaced
from legato.services.service_errors import ServiceError
from legato.services.workspace import Workspace
from tests.helpers import ONE_TASK, door, make_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "p", ONE_TASK)


def test_a_second_scheduler_is_refused_even_after_the_store_folder_was_deleted(
    project: Path, spaces: list[Workspace]
) -> None:
    first, second = spaces
    first_door = door(first)
    first_door.presence.take_seat("host:1:0:aa", "up", first.clock())
    shutil.rmtree(project / ".legato")  # a user "cleans up" under the running daemon

    # The second one opens a brand-new store at the same path: the rows of the first are
    # gone with the old file, but the seat is still held.
    with pytest.raises(ServiceError, match="another scheduler already drives"):
        door(second).presence.take_seat("host:2:0:bb", "up", second.clock())

    first_door.presence.forget("host:1:0:aa")  # a clean stop gives the seat back
    door(second).presence.take_seat("host:2:0:bb", "up", second.clock())
    door(second).presence.forget("host:2:0:bb")


def test_a_deleted_store_is_not_healthy_and_stops_the_heartbeat(
    project: Path, spaces: list[Workspace]
) -> None:
    ws = spaces[0]
    d = door(ws)
    d.presence.take_seat("host:1:0:aa", "up", ws.clock())
    assert d.catalog.health().store_ok
    shutil.rmtree(project / ".legato")

    health = d.catalog.health()
    assert not health.store_ok
    assert "was removed" in str(health.store_error)
    with pytest.raises(StoreReplaced, match="was removed"):
        d.presence.beat("host:1:0:aa", "up", None, ws.clock())


def test_a_replaced_store_file_is_noticed(project: Path, spaces: list[Workspace]) -> None:
    ws, other = spaces
    d = door(ws)
    d.presence.take_seat("host:1:0:aa", "up", ws.clock())
    db = project / ".legato" / "legato.db"
    shutil.copy(db, project / "copy.db")
    (project / "copy.db").replace(db)  # same path, another file

    with pytest.raises(StoreReplaced, match="was replaced"):
        d.presence.beat("host:1:0:aa", "up", None, ws.clock())
    assert door(other).catalog.health().store_ok  # a process that opened the new file is fine


def test_postgresql_has_no_file_to_watch_and_takes_several_schedulers(
    tmp_path: Path, pg_url: str
) -> None:
    project = make_project(tmp_path / "pg", ONE_TASK, extra=f'\n[store]\nurl = "{pg_url}"\n')
    first, second = Workspace(project), Workspace(project)
    try:
        for ws, owner in ((first, "host:1:0:aa"), (second, "host:2:0:bb")):
            d = door(ws)
            assert not d.presence.one_seat_only()
            d.presence.beat(owner, "scheduler", None, ws.clock())  # no file: nothing to check
            assert d.catalog.health().store_ok
        alive = {x.id for x in door(first).catalog.health().daemons}
        assert alive == {"host:1:0:aa", "host:2:0:bb"}
    finally:
        first.close()
        second.close()
