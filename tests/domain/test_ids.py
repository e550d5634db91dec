"""Run ids sort by creation time, and those one process makes in one millisecond in the order
it made them; their folders go under the day they were made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from legato.domain.ids import new_run_id, run_folder

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_ids_made_in_one_millisecond_sort_in_the_order_made() -> None:
    made = [new_run_id(T0) for _ in range(2000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert {i[:12] for i in made} == {made[0][:12]}  # all of the same millisecond


def test_ids_sort_by_time_whatever_was_made_before() -> None:
    later = new_run_id(T0 + timedelta(milliseconds=1))
    earlier = new_run_id(T0)  # a clock set back: the id still says when it was made
    assert earlier < later
    assert int(earlier[:12], 16) == int(later[:12], 16) - 1


def test_a_runs_folder_is_under_its_day() -> None:
    run_id = new_run_id(T0)
    assert run_folder(run_id) == f"2026/03/01/{run_id}"
    assert run_folder("not-a-made-id") == "not-a-made-id"
