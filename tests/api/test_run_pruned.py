"""A run's detail says what retention removed of it ([retention] logs and results)."""

from __future__ import annotations

from datetime import timedelta

from legato.services.retention_service import Policy
from tests.api.conftest import Api
from tests.helpers import door


def test_a_runs_detail_lists_what_retention_removed(api: Api) -> None:
    runs = door(api.ws).runs
    old = runs.run_pipeline("greet", {}).id
    api.clock.advance(3 * 24 * 3600)
    newest = runs.run_pipeline("greet", {}).id
    assert api.get(f"/runs/{old}").json()["pruned"] == []
    door(api.ws).retention.prune(Policy.of(timedelta(days=30), logs=timedelta(days=1)))
    assert api.get(f"/runs/{old}").json()["pruned"] == ["logs"]
    assert api.get(f"/runs/{newest}").json()["pruned"] == []
