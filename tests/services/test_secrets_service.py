"""Secrets: sealed in the store under a key ring that rotates while secrets keep being set,
read by tasks in their worker (each read audited) and masked wherever the task could show
them; never readable by viewers or operators."""

from __future__ import annotations

import logging
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.security.keyring import KeyRing, new_key
from legato.security.roles import Roles
from legato.services.actor import Actor
from legato.services.door import Door
from legato.services.secrets_service import MAX_VALUE, key_ring
from legato.services.service_errors import Forbidden, NotFoundError, ServiceError
from legato.services.workspace import Workspace
from tests.conftest import BACKENDS
from tests.helpers import door as door_of
from tests.helpers import make_project, signed_client

VALUE = "pa55-Word.fr0m-the-vault"

CODE = """
import subprocess
from legato import pipeline, task

@task(in_process=IN_PROCESS)
def leaky(ctx) -> None:
    value = ctx.secrets["warehouse_password"]
    print("printed:", value)
    ctx.log.info("logged: %s", value)
    subprocess.run(["echo", "from a child:", value], check=True)
    raise RuntimeError(f"cannot connect with {value}")

@task(in_process=True)
def missing(ctx) -> None:
    ctx.secrets["nowhere"]

@task(timeout="1s")
def hangs(ctx) -> None:
    import time
    print("holding", ctx.secrets["warehouse_password"], flush=True)
    time.sleep(60)

@pipeline
def leak():
    leaky()

@pipeline
def stuck():
    hangs()

@pipeline
def lookup():
    missing()
"""


@pytest.fixture(params=BACKENDS)
def ws(request: pytest.FixtureRequest, tmp_path: Path, store_url_for) -> Iterator[Workspace]:
    url = store_url_for(request.param)
    code = CODE.replace("IN_PROCESS", "False")
    root = make_project(tmp_path / "p", code, extra=f'\n[store]\nurl = "{url}"\n')
    with Workspace(root) as made:
        yield made


@pytest.fixture
def door(ws: Workspace) -> Door:
    return door_of(ws)


def _stored_bytes(ws: Workspace) -> bytes:
    """What the store holds on disk: the SQLite file and its write-ahead log (or, on
    PostgreSQL, every secret row as the database returns it)."""
    url = ws.config.database_url
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    return repr(ws.store.secrets.list_secrets()).encode()


def _value(ws: Workspace, name: str) -> str:
    found = ws.store.secrets.get_secret(name)
    ring = key_ring(ws)
    assert found is not None and ring is not None
    return ring.open(found.sealed, name).decode()


def test_a_secret_is_set_listed_by_name_only_and_deleted(ws: Workspace, door: Door) -> None:
    keys = ws.config.secret_key_file
    assert keys is not None and not keys.exists()
    made = door.secrets.set("warehouse_password", VALUE)
    # The first secret makes the key file, readable by its owner only.
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert made.name == "warehouse_password" and made.updated_by.startswith("user:")
    door.secrets.set("api.token-2", "t" * MAX_VALUE)
    listed = door.secrets.names()
    assert [s.name for s in listed] == ["api.token-2", "warehouse_password"]
    assert VALUE not in repr(listed)
    assert _value(ws, "warehouse_password") == VALUE
    assert VALUE.encode() not in _stored_bytes(ws)
    door.secrets.delete("api.token-2")
    assert [s.name for s in door.secrets.names()] == ["warehouse_password"]
    with pytest.raises(NotFoundError, match=r"no secret 'api\.token-2'"):
        door.secrets.delete("api.token-2")
    with pytest.raises(ServiceError, match="not a usable secret name"):
        door.secrets.set("no spaces", "x")
    with pytest.raises(ServiceError, match="more than the 65,536"):
        door.secrets.set("big", "x" * (MAX_VALUE + 1))
    # The value stays out of the audit trail; the name is there.
    rows = door.audit.entries(action="secrets.change")
    assert {r.target for r in rows} == {"warehouse_password", "api.token-2", "no spaces", "big"}
    assert VALUE not in repr(rows)


def test_a_key_file_others_can_read_is_refused(ws: Workspace, door: Door) -> None:
    door.secrets.set("a", "one")
    keys = ws.config.secret_key_file
    assert keys is not None
    keys.chmod(0o644)
    with pytest.raises(ServiceError, match="can be read by others"):
        door.secrets.set("b", "two")


def test_rotation_while_secrets_keep_being_set_loses_nothing(
    ws: Workspace, door: Door, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    door.secrets.set("warehouse_password", VALUE)
    stop = threading.Event()
    written: list[str] = []
    errors: list[BaseException] = []

    def keep_setting() -> None:
        try:
            i = 0
            while not stop.is_set() or i < 5:
                door.secrets.set(f"other-{i % 7}", f"value-{i}-{VALUE}")
                written.append(f"other-{i % 7}")
                i += 1
        except BaseException as exc:  # shown by the test, not lost in the thread
            errors.append(exc)

    setter = threading.Thread(target=keep_setting)
    setter.start()
    try:
        done = door.secrets.rotate_key()
    finally:
        stop.set()
        setter.join(timeout=60)
    assert not errors and written
    assert done.primary == "k2" and done.retired == ("k1",) and done.resealed >= 1
    # Every secret opens, each under the new key; the last value set of each is kept.
    assert ws.store.secrets.secrets_not_under("k2") == []
    assert _value(ws, "warehouse_password") == VALUE
    for name in set(written):
        assert _value(ws, name).endswith(VALUE)
    # The old key dropped: everything still opens with the key file as it is now.
    dropped = door.secrets.rotate_key(drop_old=True)
    assert dropped.primary == "k3" and dropped.dropped == ("k1", "k2")
    keys = ws.config.secret_key_file
    assert keys is not None
    ring = KeyRing.from_file(keys)
    assert list(ring.keys) == ["k3"] and stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert _value(ws, "warehouse_password") == VALUE
    assert VALUE.encode() not in _stored_bytes(ws)
    rotations = door.audit.entries(action="secrets.rotate")
    assert [r.outcome for r in rotations] == ["ok", "ok"]
    assert VALUE not in caplog.text  # nor in what the process logged


def test_with_the_ring_in_the_environment_rotation_says_what_to_set(
    ws: Workspace, door: Door, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = KeyRing.parse(f"k1:{new_key()}")
    monkeypatch.setenv("LEGATO_SECRET_KEYS", first.text().strip())
    door.secrets.set("warehouse_password", VALUE)
    step = door.secrets.rotate_key()
    # Nothing written: the new ring is for the operator to set wherever Legato runs.
    assert step.resealed == 0 and step.new_ring is not None and step.primary == "k2"
    keys = ws.config.secret_key_file
    assert keys is not None and not keys.exists()
    assert _value(ws, "warehouse_password") == VALUE
    monkeypatch.setenv("LEGATO_SECRET_KEYS", step.new_ring)
    done = door.secrets.rotate_key()
    assert (done.primary, done.resealed, done.retired) == ("k2", 1, ("k1",))
    assert _value(ws, "warehouse_password") == VALUE
    with pytest.raises(ServiceError, match="drop the old keys from it yourself"):
        door.secrets.rotate_key(drop_old=True)


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_cannot_see_or_change_secrets(door: Door, role: str) -> None:
    door.secrets.set("warehouse_password", VALUE)
    web = door.as_actor(
        Actor.http_client("vic", permissions=Roles.parse().permissions(role), role=role)
    )
    with pytest.raises(Forbidden, match=r"not allowed to secrets\.list"):
        web.secrets.names()
    with pytest.raises(Forbidden, match=r"not allowed to secrets\.change"):
        web.secrets.set("warehouse_password", "stolen")
    with pytest.raises(Forbidden, match=r"not allowed to secrets\.rotate"):
        web.secrets.rotate_key()
    refused = door.audit.entries(actor="http:vic")
    assert {r.action for r in refused} == {"secrets.list", "secrets.change", "secrets.rotate"}
    assert {r.outcome for r in refused} == {"refused"} and "stolen" not in repr(refused)


def test_a_task_reads_a_secret_that_no_log_error_or_api_shows(ws: Workspace, door: Door) -> None:
    door.secrets.set("warehouse_password", VALUE)
    run = door.runs.run_pipeline("leak")
    detail = door.catalog.run(run.id)
    (task,) = detail.tasks
    # The task did read it: the error it raised is there, with the value masked.
    assert task.error == "RuntimeError: cannot connect with ****"
    (attempt,) = detail.attempts
    assert attempt.error == task.error
    assert attempt.traceback is not None and "cannot connect with ****" in attempt.traceback
    assert VALUE not in (attempt.traceback or "")
    # The log file on disk: what the task printed, logged and its child process wrote.
    path = ws.log_path(run.id, "leaky", 1)
    text = path.read_text()
    for line in ("printed: ****", "logged: ****", "from a child: ****", "connect with ****"):
        assert line in text
    assert VALUE not in text
    # The API: the attempt's log, the run's detail.
    with signed_client(ws) as client:
        got = client.get(f"/api/v1/runs/{run.id}/tasks/leaky/attempts/1/log")
        assert got.status_code == 200 and "from a child: ****" in got.text
        assert VALUE not in got.text
        shown = client.get(f"/api/v1/runs/{run.id}")
        assert shown.status_code == 200 and "****" in shown.text and VALUE not in shown.text
        page = client.get(f"/runs/{run.id}?task=leaky")  # the UI's run page and log panel
        assert page.status_code == 200 and "from a child: ****" in page.text
        assert VALUE not in page.text
    # The read is in the audit trail: the run as actor, the task as detail.
    (read,) = door.audit.entries(action="secrets.read")
    assert (read.actor, read.target, read.outcome) == (f"run:{run.id}", "warehouse_password", "ok")
    assert read.detail == {"task": "leaky", "attempt": 1}
    assert door.audit.verify() is None


def test_a_log_read_while_it_is_written_is_masked_too(ws: Workspace, door: Door) -> None:
    door.secrets.set("warehouse_password", VALUE)
    run = door.runs.run_pipeline("leak")
    # As a log still being written would be: the value in plain text in the file.
    path = ws.log_path(run.id, "leaky", 1)
    path.write_text(f"printed: {VALUE}\n")
    (entry,) = door.runs.logs(run.id, "leaky")
    assert entry.text() == "printed: ****\n"


def test_an_attempt_killed_at_its_timeout_has_its_log_masked_too(
    ws: Workspace, door: Door
) -> None:
    door.secrets.set("warehouse_password", VALUE)
    run = door.runs.run_pipeline("stuck")
    (attempt,) = door.runs.attempts(run.id)
    assert attempt.outcome == "timeout"
    text = ws.log_path(run.id, "hangs", 1).read_text()
    assert "holding ****" in text and VALUE not in text


def test_a_missing_secret_is_a_one_line_key_error(door: Door) -> None:
    run = door.runs.run_pipeline("lookup")
    (task,) = door.catalog.run(run.id).tasks
    assert task.error == (
        "KeyError: \"no secret named 'nowhere' (an admin sets it: legato secrets set nowhere)\""
    )


def test_a_task_in_the_driver_process_is_masked_the_same(tmp_path: Path) -> None:
    code = CODE.replace("IN_PROCESS", "True")
    root = make_project(tmp_path / "p", code)
    with Workspace(root) as ws:
        door = door_of(ws)
        door.secrets.set("warehouse_password", VALUE)
        run = door.runs.run_pipeline("leak")
        (task,) = door.catalog.run(run.id).tasks
        assert task.error == "RuntimeError: cannot connect with ****"
        text = ws.log_path(run.id, "leaky", 1).read_text()
        assert "printed: ****" in text and VALUE not in text
