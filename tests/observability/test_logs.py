"""The daemons' JSON log lines: one object per line, with the run's fields where bound."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from legato.observability.logs import JsonFormatter, configure, log_context


@pytest.fixture
def written() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("legato.test.logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log, stream
    log.removeHandler(handler)


def _read(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_inside_a_run_context_carries_its_fields(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = written
    log.info("before")
    with log_context(run_id="r1", pipeline="etl"):
        log.warning("step %d", 3)
        with log_context(task="load", attempt=2):
            log.info("attempt")
        log.info("about another", extra={"run_id": "r2"})  # a record's own field wins
    log.info("after")
    lines = _read(stream)
    assert [line["message"] for line in lines] == [
        "before", "step 3", "attempt", "about another", "after"
    ]
    assert "run_id" not in lines[0] and "run_id" not in lines[4]
    assert lines[1]["run_id"] == "r1" and lines[1]["pipeline"] == "etl"
    assert lines[1]["level"] == "warning" and lines[1]["logger"] == "legato.test.logs"
    assert (lines[2]["task"], lines[2]["attempt"]) == ("load", 2)
    assert lines[2]["run_id"] == "r1"
    assert lines[3]["run_id"] == "r2" and lines[3]["pipeline"] == "etl"
    assert lines[0]["time"].endswith("+00:00")


def test_an_exception_goes_in_its_own_field_and_the_line_stays_one_line(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = written
    try:
        raise ValueError("broken\nacross lines")
    except ValueError:
        log.exception("it failed")
    assert len(stream.getvalue().splitlines()) == 1
    (line,) = _read(stream)
    assert line["message"] == "it failed"
    assert "ValueError: broken" in line["error"]


def test_configure_json_writes_legato_info_lines_and_keeps_others_at_warning() -> None:
    root = logging.getLogger()
    kept = (list(root.handlers), root.level, logging.getLogger("legato").level)
    stream, replaced = io.StringIO(), io.StringIO()
    try:
        configure("json", stream=replaced)
        configure("json", stream=stream)  # replaces the first: no line is written twice
        logging.getLogger("legato.daemon").info("queued run x")
        logging.getLogger("somelib").info("chatter")
        logging.getLogger("somelib").warning("trouble")
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in kept[0]:
            root.addHandler(h)
        root.setLevel(kept[1])
        logging.getLogger("legato").setLevel(kept[2])
    assert [line["message"] for line in _read(stream)] == ["queued run x", "trouble"]
    assert replaced.getvalue() == ""
