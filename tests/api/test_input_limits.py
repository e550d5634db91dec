"""Input that the stores cannot hold is refused with a 4xx on both backends, never a 500.

Found by the fuzz test (test_fuzz.py): NUL characters (PostgreSQL refuses them in text),
lone surrogates (neither store can encode them), ids beyond 64 bits, keys too long for an
index row, times that leave datetime's range in UTC, log offsets past the end of the file.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import Api, sse


def post_raw(api: Api, path: str, body: str, **headers: str) -> Any:
    # json.dumps escapes a lone surrogate as \ud800: what a client can really send.
    return api.client.post(
        "/api/v1" + path,
        content=body.encode(),
        headers={"content-type": "application/json", **headers},
    )


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/runs/%00", "run_id"),
        ("/runs/a%00/events", "run_id"),
        ("/backfills/%00", "backfill_id"),
        ("/pipelines/greet%00", "pipeline"),
        ("/runs?pipeline=%00", "pipeline"),
        ("/runs?partition=x%00", "partition"),
        ("/runs?state=queued&state=%00", "state"),
        ("/backfills?pipeline=%00", "pipeline"),
    ],
)
def test_nul_in_path_or_query_is_422(api: Api, path: str, field: str) -> None:
    r = api.client.get("/api/v1" + path)
    assert r.status_code == 422, r.text
    assert r.json() == {"error": f"{field}: must not contain NUL characters", "field": field}


def test_nul_or_lone_surrogates_in_bodies_are_422(api: Api) -> None:
    cases = [
        ("/pipelines/greet/runs", {"partition": "a\x00"}, "partition"),
        ("/pipelines/greet/runs", {"partition": "\ud800"}, "partition"),
        ("/pipelines/greet/runs", {"params": {"label": "x\udfff"}}, "params.label"),
        ("/pipelines/greet/runs", {"params": {"\ud800": 1}}, "params.\\ud800"),
        ("/backfills", {"pipeline": "days", "partitions": ["\x00"]}, "partitions.0"),
        ("/backfills", {"pipeline": "\ud800", "partitions": []}, "pipeline"),
    ]
    for path, body, field in cases:
        r = post_raw(api, path, json.dumps(body))
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field, body
    # Even a NUL in a param's value, which the params' JSON could hold escaped, is refused:
    # both stores answer alike.
    r = api.post("/pipelines/greet/runs", {"params": {"label": "a\x00b"}})
    assert r.status_code == 422 and r.json()["field"] == "params.label"
    assert api.get("/runs").json()["runs"] == []


def test_webhook_refuses_unstorable_params_and_keys(api: Api) -> None:
    auth = {"X-Legato-Token": api.hook_token()}
    r = post_raw(api, "/hooks/greet/hook", '{"label": "\\ud800"}', **auth)
    assert r.status_code == 422 and r.json()["field"] == "label"
    r = post_raw(api, "/hooks/greet/hook", "{}", **auth, **{"Idempotency-Key": "k" * 501})
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]
    r = post_raw(api, "/hooks/greet/hook", "{}", **auth, **{"Idempotency-Key": "k" * 500})
    assert r.status_code == 201
    r = post_raw(api, "/hooks/greet/hook", "[" * 100_000, **auth)
    assert r.status_code == 400  # nested beyond what json parses: not JSON to us
    assert len(api.get("/runs").json()["runs"]) == 1


def test_long_partition_of_an_unpartitioned_pipeline_is_422(api: Api) -> None:
    r = api.post("/pipelines/greet/runs", {"partition": "p" * 10_000})
    assert r.status_code == 422 and r.json()["field"] == "partition"
    assert api.post("/pipelines/greet/runs", {"partition": "p" * 500}).status_code == 201


def test_event_ids_beyond_64_bits_are_422(api: Api) -> None:
    rid = api.run("greet")["run"]["id"]
    for path in (f"/runs/{rid}/events", f"/runs/{rid}/events/stream"):
        r = api.get(path, params={"after": 2**63})
        assert r.status_code == 422 and r.json()["field"] == "after", path
        assert api.get(path, params={"after": 2**63 - 1}).status_code == 200
    # The Last-Event-ID header is the browser's: any junk in it is ignored, a huge id is "all".
    for junk, expect_events in ((b"\xb2", True), (b"abc", True), (b"9" * 20, False)):
        got = sse(api.get(f"/runs/{rid}/events/stream", headers={"Last-Event-ID": junk}).text)
        assert got[-1]["event"] == "end", junk
        assert (len(got) > 1) is expect_events, junk


def test_times_out_of_range_in_utc_are_422(api: Api) -> None:
    for field, value in (
        ("created_after", "0001-01-01T00:30:00+01:00"),
        ("created_before", "9999-12-31T23:59:00-01:00"),
    ):
        r = api.get("/runs", params={field: value})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
    r = api.get(
        "/runs",
        params={"created_after": "0001-01-01T00:00:00", "created_before": "9999-12-31T23:59:59Z"},
    )
    assert r.status_code == 200


def test_log_stream_from_an_offset(api: Api) -> None:
    rid = api.run("flaky")["run"]["id"]
    url = f"/runs/{rid}/tasks/boom/attempts/1/log/stream"
    whole = api.get(f"/runs/{rid}/tasks/boom/attempts/1/log").text
    got = sse(api.get(url, params={"offset": 6}).text)
    assert "".join(g["data"]["text"] for g in got if g["event"] == "log") == whole[6:]
    for far in (len(whole.encode()), 17592186040321, 2**63, 2**70):
        got = sse(api.get(url, params={"offset": far}).text)
        assert got == [{"event": "end", "id": None, "data": {"attempt": 1}}], far
