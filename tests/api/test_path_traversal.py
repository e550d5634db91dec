"""Run ids and task keys in log and attempt URLs cannot reach a file outside the logs folder."""

from __future__ import annotations

from urllib.parse import quote

from tests.api.conftest import Api

SECRET = "TOP-SECRET-CONTENT"


def test_log_and_attempt_urls_refuse_path_traversal(api: Api) -> None:
    rid = api.run("flaky")["run"]["id"]
    # Where a log path built from "../../../secret" as a task key would land (the project's
    # folder), and an absolute path: files that must never be served.
    (api.root / "secret.1.log").write_text(SECRET)
    outside = api.root / "outside.1.log"
    outside.write_text(SECRET)
    keys = [
        "../../../secret",
        "..%2F..%2F..%2Fsecret",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret",
        "..",
        "%2e%2e",
        str(outside.with_suffix("").with_suffix("")),
        quote(str(outside.with_suffix("").with_suffix("")), safe=""),
        "boom/../../../../secret",
        "..\\..\\..\\secret",
    ]
    run_ids = ["..", "%2e%2e", f"{rid}/../..", f"..%2F..%2F{rid}", "/etc", quote("/etc", safe="")]
    paths = []
    for key in keys:
        paths += [
            f"/api/v1/runs/{rid}/tasks/{key}/attempts/1/log",
            f"/api/v1/runs/{rid}/tasks/{key}/attempts/1/log/stream",
            f"/api/v1/runs/{rid}/tasks/{key}/mark",
        ]
    for run_id in run_ids:
        paths += [
            f"/api/v1/runs/{run_id}/tasks/boom/attempts/1/log",
            f"/api/v1/runs/{run_id}/events",
        ]
    for path in paths:
        r = api.client.get(path)
        assert SECRET not in r.text, path
        assert r.status_code in (400, 404, 405, 422), (path, r.status_code)
    # The real log is still served.
    log = api.client.get(f"/api/v1/runs/{rid}/tasks/boom/attempts/1/log")
    assert log.status_code == 200 and "ValueError: boom" in log.text

