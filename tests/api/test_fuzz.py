"""Schemathesis over the whole API of a project with data in it: no answer is a 5xx.

Each operation of the OpenAPI document gets its own Hypothesis run of cases generated from
the document (``APIOperation.as_strategy``). Now and then the generated path parameters are
swapped for names and ids that exist (pipelines with their schedules and triggers, runs with
their tasks and attempts, a backfill), and bodies for ones that reach the services (the
pipelines' params with any JSON values, partitions, tasks), so the fuzzing goes past the
404s into the services and the store. Runs once per backend.

(schemathesis' own pytest integration, ``schemathesis.pytest.from_fixture(...).parametrize()``,
does not work with pytest 9.2: it sets ``Node._nodeid``, which pytest 9.2 no longer has.)
"""

from __future__ import annotations

import os
import re
import string
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET

from tests.api.conftest import DAYS, Api

#: Cases per operation; FUZZ_EXAMPLES=500 for a longer hunt.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))

SETTINGS = settings(
    max_examples=EXAMPLES,
    # On CI the same cases every time (a seed derived from the test); elsewhere new ones.
    derandomize=os.environ.get("CI") == "true",
    deadline=None,
    database=None,  # nothing kept from one test run to the next
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)

#: Text that stores choke on (NUL, lone surrogates), or that is merely odd.
odd_text = st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "../..", "%00", "", " "])
texts = st.text() | odd_text
#: What a URL can carry: no lone surrogates (a client cannot encode them).
url_texts = st.text() | odd_text.filter(lambda s: not any("\ud800" <= c <= "\udfff" for c in s))
#: Any JSON value, including huge numbers and odd text.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
keys = st.text(string.ascii_letters + string.digits + "-_.:", min_size=1, max_size=40)


def params_of(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(names) | texts, json_values, max_size=3)


@pytest.fixture
def fuzz_api(make_api: Callable[..., Api], receiver: Any) -> tuple[Api, dict[str, Any]]:
    """The default project with runs of every kind, a backfill, a webhook, an alert rule
    sending to a real receiver and a SQLite resource; what exists."""
    api = make_api(
        toml=f'[channels.ops]\nkind = "webhook"\nurl = "{receiver.url}"\n'
        '[alerts.failures]\ncondition = "run_failed"\nchannels = ["ops"]\n'
        '[resources.orders]\nkind = "sql"\nurl = "sqlite:///orders.db"\n'
    )
    finished = []
    for pipeline, body in (
        ("flaky", {}),
        ("greet", {"params": {"n": 2}}),
        ("days", {"partition": "2026-02-24"}),
    ):
        finished.append(api.run(pipeline, **body))
        api.clock.advance(1)
    queued = api.launch("greet")["id"]
    api.clock.advance(1)
    r = api.post("/backfills", {"pipeline": "days", "start": "2026-02-25", "end": "2026-02-27"})
    assert r.status_code == 201, r.text
    api.clock.advance(1)
    backfill = r.json()["id"]
    # Path parameters that fit together.
    together = [
        *({"pipeline": p} for p in ("greet", "flaky", "days")),
        *({"pipeline": "greet", "name": s} for s in ("nightly", "hourly")),
        *({"pipeline": "greet", "name": t, "trigger": t} for t in ("hook", "after-flaky")),
        *({"run_id": d["run"]["id"]} for d in finished),
        {"run_id": queued},
        *(
            {"run_id": d["run"]["id"], "task_key": a["task_key"], "attempt": a["number"]}
            for d in finished
            for a in d["attempts"]
        ),
        *(
            {"run_id": d["run"]["id"], "task_key": t["task_key"]}
            for d in finished
            for t in d["tasks"]
        ),
        {"backfill_id": backfill},
        {"rule": "failures"},
        {"key": "greetings"},
    ]
    known = {
        "pipeline": ["greet", "flaky", "days"],
        "finished": [d["run"]["id"] for d in finished],
        "queued": [queued],
        "task_key": ["hello", "boom", "after"],
        "attempt": [1, 2],
        "name": ["nightly", "hourly", "hook", "after-flaky"],
        "trigger": ["hook", "after-flaky"],
        "backfill_id": [backfill],
        "rule": ["failures"],
        "key": ["greetings"],
        "together": together,
        "token": api.hook_token(),
    }
    return api, known


def tweak(case: Any, draw: Callable[..., Any], known: dict[str, Any]) -> None:
    """Swap in things that exist, or bodies that reach the services, now and then."""
    path = case.operation.path
    method = case.method.upper()
    # A stream of a run that is not finished would not end: only finished runs there.
    stream = path.endswith("/stream")
    runs = known["finished"] if stream else known["finished"] + known["queued"]
    choices = {**known, "run_id": runs}
    params = case.path_parameters or {}
    how = draw(st.sampled_from(["as generated", "each", "together", "together"]))
    if how == "each":
        for name in list(params):
            if name in choices and draw(st.booleans()):
                params[name] = draw(st.sampled_from(choices[name]))
    elif how == "together" and params:
        fits = [
            t
            for t in known["together"]
            if set(params) <= set(t) and (not stream or t.get("run_id") in runs)
        ]
        if fits:
            chosen = draw(st.sampled_from(fits))
            params.update({k: v for k, v in chosen.items() if k in params})
    if not draw(st.booleans()):
        return
    if method == "POST" and path == "/api/v1/pipelines/{pipeline}/runs":
        case.body = draw(
            st.fixed_dictionaries(
                {"params": params_of(["n", "label", "ratio"])},
                optional={"partition": texts | st.sampled_from(DAYS), "priority": st.integers()},
            )
            | st.fixed_dictionaries(
                {},
                optional={
                    "params": st.fixed_dictionaries(
                        {}, optional={"n": st.integers(), "label": st.text()}
                    ),
                    "partition": st.sampled_from(DAYS),
                },
            )
        )
    elif method == "POST" and path == "/api/v1/backfills":
        days = st.sampled_from(DAYS)
        case.body = draw(
            st.fixed_dictionaries(
                {"pipeline": st.sampled_from(["days", "days", "greet"]) | texts},
                optional={
                    "partitions": st.lists(days | texts, max_size=3),
                    "start": days | texts,
                    "end": days | texts,
                    "all": st.booleans(),
                    "params": params_of(["n"]),
                    "max_concurrent": st.integers(),
                },
            )
            | st.fixed_dictionaries(
                {"pipeline": st.just("days"), "partitions": st.lists(days, max_size=3)},
                optional={"all": st.booleans(), "max_concurrent": st.integers(1, 5)},
            )
            | st.fixed_dictionaries(
                {"pipeline": st.just("days"), "start": days, "end": days},
                optional={"all": st.booleans()},
            )
        )
    elif method == "POST" and path == "/api/v1/assets/{key}/materialize":
        case.body = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "pipeline": st.sampled_from(known["pipeline"]) | texts,
                    "partition": st.sampled_from(DAYS) | texts,
                    "params": params_of(["n", "label", "ratio"]),
                },
            )
        )
    elif method == "POST" and path.endswith("/rerun"):
        case.body = {"task": draw(st.sampled_from(known["task_key"]) | texts)}
    elif method == "GET" and path == "/api/v1/runs":
        case.query = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "pipeline": st.sampled_from(known["pipeline"]) | url_texts,
                    "partition": st.sampled_from(DAYS) | url_texts,
                    "cursor": st.sampled_from(runs) | st.text(max_size=64),
                    "state": st.lists(st.sampled_from(["queued", "failed", "succeeded"])),
                    "created_after": st.datetimes(timezones=st.timezones()).map(str),
                    "environment": st.just("default") | url_texts,
                    "limit": st.integers(1, 500),
                },
            )
        )
    elif method == "GET" and path.startswith("/api/v1/pipelines/{pipeline}/partitions"):
        case.query = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "state": st.lists(
                        st.sampled_from(["missing", "queued", "failed"]) | url_texts
                    ),
                    "from": st.sampled_from(DAYS) | url_texts,
                    "to": st.sampled_from(DAYS) | url_texts,
                    "cursor": st.sampled_from(DAYS) | url_texts,
                    "limit": st.integers(-1, 1001),
                    "granularity": st.sampled_from(["year", "month", "day", "hour"]) | url_texts,
                },
            )
        )
    elif method == "POST" and path == "/api/v1/resources/check":
        case.body = {"names": draw(st.lists(st.sampled_from(["orders"]) | texts, max_size=3))}
    elif method == "POST" and path.endswith("/silence"):
        case.body = {"for": draw(st.sampled_from(["2h", "30m", "0s", "-1h", "9999999d"]) | texts)}
    elif path == "/api/v1/hooks/{pipeline}/{trigger}":
        case.headers = {
            **(case.headers or {}),
            "X-Legato-Token": known["token"],
            "Idempotency-Key": draw(keys | st.just("k" * 600)),
        }


def known_cases(operation: Any, known: dict[str, Any]) -> list[Any]:
    """The operation on things that exist: one case per set of path parameters that fit
    together, so that each operation can be shown to get past its 404s whatever the draws."""
    names = re.findall(r"{(\w+)}", operation.path)
    stream = operation.path.endswith("/stream")
    fits = [
        t
        for t in known["together"]
        if set(names) <= set(t) and (not stream or t.get("run_id") in known["finished"])
    ]
    headers = None
    if operation.path == "/api/v1/hooks/{pipeline}/{trigger}":
        headers = {"X-Legato-Token": known["token"], "Idempotency-Key": "known"}
    body = {} if operation.method.upper() == "POST" and len(operation.body) else NOT_SET
    return [
        operation.Case(
            path_parameters={k: fit[k] for k in names} if names else None,
            headers=headers,
            body=body,
        )
        for fit in (fits if names else [{}])
    ]


def fuzz_test(
    api: Api, operation: Any, known: dict[str, Any], seen: Counter[int]
) -> Callable[[], None]:
    """A Hypothesis test of ``operation``; counts the status codes in ``seen``."""

    @SETTINGS
    @given(case=operation.as_strategy(), data=st.data())
    def fuzz(case: Any, data: st.DataObject) -> None:
        # Time passes between requests. (Two backfills made in one millisecond can get the
        # same id: see test_operations.py::test_backfills_made_in_one_millisecond.)
        api.clock.advance(0.001)
        tweak(case, data.draw, known)
        answer = case.call_and_validate(headers=api.auth, checks=[not_a_server_error])
        seen[answer.status_code] += 1

    return fuzz


def test_no_server_errors(fuzz_api: tuple[Api, dict[str, Any]]) -> None:
    api, known = fuzz_api
    schema = schemathesis.openapi.from_asgi(
        "/api/v1/openapi.json", api.client.app, headers=api.auth
    )
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == 52
    failures: list[str] = []
    answers: dict[str, Counter[int]] = {}
    for operation in operations:
        seen = answers.setdefault(operation.label, Counter())
        try:
            for case in known_cases(operation, known):
                api.clock.advance(0.001)
                status = case.call_and_validate(
                    headers=api.auth, checks=[not_a_server_error]
                ).status_code
                seen[status] += 1
                if status != 404:
                    break
            else:
                failures.append(f"{operation.label}: 404 even on things that exist")
            fuzz_test(api, operation, known, seen)()
        except Exception:  # every operation gets its turn; all failures are reported
            failures.append(f"{operation.label}:\n{traceback.format_exc(limit=3)}")
    print("\n".join(f"{label}: {dict(seen)}" for label, seen in answers.items()))
    assert not failures, "\n\n".join(failures)
    # Every operation got past its 404s (the known case alone makes sure of it).
    assert all(set(seen) - {404} for seen in answers.values()), answers
