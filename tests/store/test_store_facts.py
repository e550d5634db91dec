"""Facts about the store itself: recorded once, the first value kept."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from legato.store.store import Store
from tests.store.store_testkit import T0


def test_a_fact_is_recorded_once_and_the_first_value_is_kept(store: Store) -> None:
    assert store.facts.get_fact("environment") is None
    assert store.facts.settle_fact("environment", "prod", T0) == "prod"
    assert store.facts.settle_fact("environment", "dev", T0) == "prod"
    assert store.facts.get_fact("environment") == "prod"
    assert store.facts.facts() == {"environment": "prod"}


def test_of_processes_racing_to_record_a_fact_one_wins_for_all(store: Store) -> None:
    others = [Store.open(store.url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(len(others)) as pool:
            got = list(
                pool.map(
                    lambda i: others[i].facts.settle_fact("environment", f"env{i}", T0),
                    range(len(others)),
                )
            )
    finally:
        for other in others:
            other.close()
    assert len(set(got)) == 1
    assert store.facts.get_fact("environment") == got[0]
