"""The per-process cache of opened resources, and what a task (or an in-process test run)
sees as ``ctx.resources``, overrides included."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from legato.resources.kind import ResourceError, ResourceKind
from legato.resources.opened import Declared, OpenResources, close_all, opened_count

EVENTS: list[str] = []
RELEASE = threading.Event()


class Counting(ResourceKind):
    """Records each open and close in EVENTS; ``wait`` makes open() wait for RELEASE."""

    kind = "counting"
    settings_keys = {"label", "wait", "fail_close", "password"}

    def open(self) -> dict[str, Any]:
        if self.settings.get("wait"):
            RELEASE.wait(30)
        EVENTS.append(f"open {self.name}")
        return {"name": self.name, **self.settings}

    def close(self, client: Any) -> None:
        EVENTS.append(f"close {self.name}")
        if client.get("fail_close"):
            raise OSError("socket already gone")


KIND = f"{__name__}:Counting"


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    close_all()
    EVENTS.clear()
    RELEASE.clear()
    yield
    RELEASE.set()
    close_all()


def test_threads_asking_at_once_open_a_resource_once() -> None:
    res = OpenResources({"db": {"kind": KIND, "wait": True}})
    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(res["db"])) for _ in range(8)]
    for t in threads:
        t.start()
    RELEASE.set()
    for t in threads:
        t.join(30)
    assert len(got) == 8 and all(g is got[0] for g in got)
    assert EVENTS == ["open db"]
    # Another attempt's view of the same declaration gets the same client.
    assert OpenResources({"db": {"kind": KIND, "wait": True}}).db is got[0]
    assert EVENTS == ["open db"]


def test_a_changed_table_opens_its_own_client() -> None:
    a = OpenResources({"db": {"kind": KIND, "label": "dev"}})["db"]
    b = OpenResources({"db": {"kind": KIND, "label": "prod"}})["db"]
    assert (a["label"], b["label"]) == ("dev", "prod")
    assert opened_count() == 2


def test_close_all_closes_newest_first_and_goes_on_past_a_failure() -> None:
    res = OpenResources(
        {"first": {"kind": KIND, "fail_close": True}, "second": {"kind": KIND}}
    )
    _ = res["first"], res["second"]
    errors = close_all()
    assert EVENTS == ["open first", "open second", "close second", "close first"]
    assert errors == ["resource 'first': cannot close: OSError: socket already gone"]
    assert opened_count() == 0
    _ = res["second"]  # opened again on the next use
    assert EVENTS[-1] == "open second"


def test_overrides_are_handed_out_as_given_and_never_closed() -> None:
    mine = object()
    res = OpenResources({"db": {"kind": KIND}}, overrides={"db": mine, "extra": 42})
    assert res["db"] is mine and res.extra == 42
    assert sorted(res) == ["db", "extra"]
    close_all()
    assert EVENTS == []


def test_an_unknown_resource_says_which_exist() -> None:
    res = OpenResources({"db": {"kind": KIND}})
    with pytest.raises(KeyError, match=r"no resource named 'nope' \(resources: db\)"):
        res["nope"]
    with pytest.raises(AttributeError, match="no resource named 'nope'"):
        _ = res.nope


def test_a_wrong_setting_is_a_resource_error_naming_the_resource() -> None:
    res = OpenResources(Declared.of({"db": {"kind": KIND, "colour": "red"}}))
    with pytest.raises(ResourceError, match=r"resource 'db' \(counting\): unknown setting 'colou"):
        res["db"]


def test_secret_values_of_the_resources_used_are_kept_for_masking() -> None:
    res = OpenResources(
        {"db": {"kind": KIND, "password": "${secret:pw}"}}, secret={"pw": "s3cret"}.__getitem__
    )
    assert res.secret_values() == frozenset()
    assert res.db["password"] == "s3cret"
    assert res.secret_values() == {"s3cret"}
    # An attempt that finds the client open already still knows what to mask.
    again = OpenResources({"db": {"kind": KIND, "password": "${secret:pw}"}})
    _ = again.db
    assert again.secret_values() == {"s3cret"}


def test_a_forked_child_neither_reuses_nor_closes_the_parents_clients(tmp_path: Path) -> None:
    parent = OpenResources({"db": {"kind": KIND}}).db
    out = tmp_path / "child"
    pid = os.fork()
    if pid == 0:  # the child reports through a file and leaves without running pytest's exit
        code = 1
        try:
            before = opened_count()
            child = OpenResources({"db": {"kind": KIND}}).db
            errors = close_all()
            out.write_text(f"{before} {child is parent} {EVENTS[-2:]} {errors}")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out.read_text() == "0 False ['open db', 'close db'] []"
    assert EVENTS == ["open db"] and opened_count() == 1  # the parent's is still open
