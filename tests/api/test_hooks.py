"""The webhook trigger endpoint: POST /api/v1/hooks/{pipeline}/{trigger}."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.api.conftest import Api
from tests.helpers import door

HOOK = "/hooks/greet/hook"


def token(api: Api) -> str:
    return api.hook_token()


def fire(
    api: Api, body: object = None, key: str | None = None, tok: str | None = None, **headers: str
) -> httpx.Response:
    h = {"Authorization": f"Bearer {tok if tok is not None else token(api)}", **headers}
    if key is not None:
        h["Idempotency-Key"] = key
    if isinstance(body, bytes | str):
        return api.client.post("/api/v1" + HOOK, content=body, headers=h)
    return api.client.post("/api/v1" + HOOK, json=body, headers=h)


def test_webhook_starts_a_run_once_per_idempotency_key(api: Api) -> None:
    r = fire(api, {"n": 9, "label": "hooked"}, key="delivery-1")
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["created"] is True and out["state"] == "queued"
    run = api.get(f"/runs/{out['run_id']}").json()["run"]
    assert run["pipeline"] == "greet" and run["origin"] == "trigger:hook"
    assert run["params"] == {"n": 9, "label": "hooked", "ratio": None}
    assert [x.id for x in api.heard if x is not None] == [out["run_id"]]
    again = fire(api, {"n": 9, "label": "hooked"}, key="delivery-1")
    assert again.status_code == 200
    assert again.json() == {"run_id": out["run_id"], "created": False, "state": "queued"}
    assert len(api.heard) == 1  # nobody is woken for a run that exists
    other = fire(api, {"n": 1}, key="delivery-2")
    assert other.status_code == 201 and other.json()["run_id"] != out["run_id"]
    # Without a key, each call makes a run; an empty body means the defaults.
    a, b = fire(api, b""), fire(api, b"")
    assert a.status_code == b.status_code == 201 and a.json()["run_id"] != b.json()["run_id"]
    assert api.get(f"/runs/{a.json()['run_id']}").json()["run"]["params"]["n"] == 1
    # The token may come in X-Legato-Token instead.
    r = api.client.post("/api/v1" + HOOK, json={}, headers={"X-Legato-Token": token(api)})
    assert r.status_code == 201
    assert len(api.get("/runs", params={"pipeline": "greet"}).json()["runs"]) == 5


def test_a_webhook_has_no_token_until_an_admin_makes_one(api: Api) -> None:
    r = api.client.post("/api/v1" + HOOK, json={}, headers={"X-Legato-Token": "guess"})
    assert r.status_code == 401
    assert "has no token yet" in r.json()["error"] and "legato triggers token" in r.json()["error"]
    first = token(api)
    stored = api.ws.store.triggers.trigger_states()[("greet", "hook")].token
    assert stored is not None and first not in stored  # only its hash is kept
    assert fire(api, {}).status_code == 201
    # A new token replaces the old one at once.
    second = door(api.ws).automation.webhook_token("greet", "hook")
    assert fire(api, {}, tok=first).status_code == 401
    assert fire(api, {}, tok=second).status_code == 201


def test_webhook_refuses_a_wrong_or_missing_token(api: Api) -> None:
    token(api)
    assert fire(api, {}, tok="not-the-token").status_code == 401
    assert fire(api, {}, tok="").status_code == 401
    r = api.client.post("/api/v1" + HOOK, json={})
    assert r.status_code == 401
    assert r.json() == {"error": "missing or wrong token for this webhook", "field": None}
    assert api.get("/runs").json()["runs"] == []


def test_webhook_refuses_a_token_that_is_not_ascii(api: Api) -> None:
    for raw in ("é".encode(), "\u20ac".encode(), b"\xff\xfe", (token(api) + "é").encode()):
        for name, value in (("Authorization", b"Bearer " + raw), ("X-Legato-Token", raw)):
            r = api.client.post("/api/v1" + HOOK, json={}, headers={name: value})
            assert r.status_code == 401, (name, value, r.text)
            assert r.json()["error"] == "missing or wrong token for this webhook"
    assert api.get("/runs").json()["runs"] == []


def test_webhook_refuses_params_the_pipeline_refuses(api: Api) -> None:
    r = fire(api, {"n": "lots"})
    assert r.status_code == 422 and r.json()["field"] == "n"
    r = fire(api, {"size": 3})
    assert r.status_code == 422 and r.json()["field"] == "size"
    assert fire(api, b"{not json").status_code == 400
    assert fire(api, [1, 2]).status_code == 400
    assert fire(api, b"\xff\xfe").status_code == 400
    assert api.get("/runs").json()["runs"] == []


def test_webhook_unknown_or_not_a_webhook_is_404(api: Api) -> None:
    for path in ("/hooks/greet/nope", "/hooks/nope/hook", "/hooks/greet/after-flaky"):
        r = api.client.post("/api/v1" + path, json={}, headers={"X-Legato-Token": token(api)})
        assert r.status_code == 404, path
        assert r.json()["error"]


def test_a_paused_webhook_starts_nothing(api: Api) -> None:
    api.post("/pipelines/greet/triggers/hook/pause")
    r = fire(api, {})
    assert r.status_code == 409 and "paused" in r.json()["error"]
    api.post("/pipelines/greet/triggers/hook/unpause")
    assert fire(api, {}).status_code == 201


def test_the_token_survives_a_new_app(api: Api, backend: str) -> None:
    from legato.server.app import create_app

    first = token(api)
    create_app(door(api.ws), web=False)  # ensure_triggers again: the token is kept
    assert fire(api, {}, tok=first).status_code == 201


def test_a_webhook_called_too_often_is_told_to_wait(make_api: Callable[..., Api]) -> None:
    api = make_api(toml="[limits]\nwebhook_per_minute = 3\n")
    answers = [fire(api, {}).status_code for _ in range(3)]
    answers += [fire(api, {}, tok="a guess").status_code]  # wrong tokens count too
    assert answers == [201, 201, 201, 429]
    r = fire(api, {})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert "too many calls" in r.json()["error"]
    assert len(api.get("/runs").json()["runs"]) == 3


def test_the_rate_limit_refills_with_time() -> None:
    from legato.api.hook_routes import RateLimit

    now = [0.0]
    limit = RateLimit(60, clock=lambda: now[0])  # one a second, a burst of 60
    assert all(limit.wait(("p", "t")) == 0 for _ in range(60))
    assert limit.wait(("p", "t")) == 1.0
    assert limit.wait(("p", "other")) == 0  # each webhook has its own
    now[0] = 2.0
    assert limit.wait(("p", "t")) == 0
