"""A store deleted under a running daemon: the daemon stops loudly instead of writing on to
the deleted file while a second daemon drives the new one."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.helpers import ONE_TASK, Daemons, http_client, make_project, wait_for


def test_deleting_the_store_folder_stops_the_daemon_with_a_clear_message(
    tmp_path: Path, daemons: Daemons
) -> None:
    project = make_project(tmp_path / "proj", ONE_TASK)
    first = daemons.up(project)
    first.wait_output("web UI at", timeout=60)
    url = next(
        line.split("web UI at ", 1)[1].split("/ ", 1)[0]
        for line in first.output().splitlines()
        if "web UI at" in line
    )
    http = http_client(url, project)
    assert http.get("/api/v1/health").json()["store"] == "ok"

    shutil.rmtree(project / ".legato")

    def not_ok() -> bool:
        try:
            r = http.get("/api/v1/health", timeout=5)
            return r.status_code != 200 or r.json()["store"] != "ok"
        except httpx.HTTPError:  # it has stopped already
            return first.proc.poll() is not None

    wait_for(not_ok, timeout=20, what="health no longer ok")
    code = first.proc.wait(30)
    assert code != 0
    out = first.output()
    assert "was removed" in out and str(project / ".legato" / "legato.db") in out
    assert "Traceback" not in out

    # A daemon started afterwards takes the new store.
    second = daemons.up(project)
    second.wait_output("web UI at", timeout=60)
    wait_for(lambda: (project / ".legato" / "legato.db").exists(), what="a new store")
