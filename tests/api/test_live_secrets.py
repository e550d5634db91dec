"""A log read while its attempt still runs masks the secrets the task has read: the log
endpoint, its live stream (which sends whole lines only) and the final file."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.api.conftest import Api, sse
from tests.api.test_live import Driver, read_until
from tests.helpers import door, wait_for

pytestmark = pytest.mark.timeout(90)

VALUE = "live-s3cret-token-value"

GATED = """
import time
from pathlib import Path
from legato import pipeline, task

HERE = Path(__file__).parent

@task
def gate(ctx) -> int:
    value = ctx.secrets["api_token"]
    print("token is", value, flush=True)
    print("half a line with", value, end="", flush=True)
    deadline = time.monotonic() + 60
    while not (HERE / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    print(" and its end", flush=True)
    return 1

@pipeline
def gated():
    gate()
"""


def test_a_live_log_is_masked_before_the_attempt_ends(make_api: Callable[..., Api]) -> None:
    api = make_api(GATED)
    door(api.ws).secrets.set("api_token", VALUE)
    rid = api.launch("gated")["id"]
    driver = Driver(api, rid)
    path = f"/runs/{rid}/tasks/gate/attempts/1/log"
    try:
        # On disk the value is still there while the attempt runs...
        log_file = api.ws.log_path(rid, "gate", 1)
        wait_for(
            lambda: log_file.exists() and "half a line" in log_file.read_text(),
            timeout=30,
            what="the task to print",
        )
        assert VALUE in log_file.read_text()
        # ... but nothing shows it.
        got = api.get(path)
        assert got.status_code == 200 and VALUE not in got.text
        assert "token is ****\nhalf a line with ****" in got.text
        log: list[str] = []
        with api.client.stream("GET", f"/api/v1{path}/stream") as lg:
            lines = lg.iter_lines()
            read_until(lines, log, "token is")
            (api.root / "go").touch()
            log.extend(lines)
        driver.join()
    finally:
        (api.root / "go").touch()
    sent = sse("\n".join(log))
    text = "".join(e["data"]["text"] for e in sent if e["event"] == "log")
    assert text == "token is ****\nhalf a line with **** and its end\n"
    assert VALUE not in log_file.read_text()
    assert "token is ****" in api.get(path).text
