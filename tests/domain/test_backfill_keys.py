"""A backfill's partitions kept as spans of ranges and named keys, and read back a page at
a time."""

from __future__ import annotations

import pytest

from legato.domain.backfill_keys import BackfillKeys, KeySpan

LETTERS = "abcdefghij"


def _resolve(first: str, last: str, start: int, stop: int) -> list[str]:
    """The range first..last of the letters, sliced."""
    return list(LETTERS[LETTERS.index(first) : LETTERS.index(last) + 1])[start:stop]


def test_positions_in_a_range_are_kept_as_its_consecutive_stretches() -> None:
    keys = BackfillKeys.within("a", "j", [0, 1, 2, 5, 7, 8, 9])
    assert keys.spans == (KeySpan("a", "j", 0, 3), KeySpan("a", "j", 5, 6),
                          KeySpan("a", "j", 7, 10))  # fmt: skip
    assert keys.total == 7
    assert keys.keys(_resolve) == list("abcfhij")
    # Any page, across the stretches' edges.
    assert [keys.keys(_resolve, i, i + 3) for i in range(0, 7, 3)] == [
        list("abc"), list("fhi"), list("j")]
    assert keys.keys(_resolve, 6, 100) == ["j"] and keys.keys(_resolve, 7, 9) == []
    with pytest.raises(ValueError, match="increase"):
        BackfillKeys.within("a", "j", [3, 2])


def test_a_whole_range_is_one_span_however_long() -> None:
    keys = BackfillKeys.within("2015-01-01T00:00+00:00", "2026-05-31T15:00+00:00",
                               range(100_000))  # fmt: skip
    assert keys.to_json() == [["2015-01-01T00:00+00:00", "2026-05-31T15:00+00:00", 0, 100_000]]
    assert keys.total == 100_000


def test_named_keys_keep_their_order_once_each_and_need_no_range() -> None:
    keys = BackfillKeys.named(["c", "a", "c", "b"])
    assert keys.total == 3 and all(s.named for s in keys.spans)
    never = lambda *_: pytest.fail("a named key is not looked up")  # noqa: E731
    assert keys.keys(never) == ["c", "a", "b"] and keys.keys(never, 1, 2) == ["a"]


def test_json_round_trips_and_a_list_of_keys_reads_as_named_keys() -> None:
    keys = BackfillKeys((KeySpan("a", "j", 2, 4), KeySpan("x", "x", 0, 1)))
    assert keys.to_json() == [["a", "j", 2, 4], "x"]
    assert BackfillKeys.from_json(keys.to_json()) == keys
    # How a backfill was kept before ranges were.
    assert BackfillKeys.from_json(["2024-05-01", "2024-05-02"]) == BackfillKeys.named(
        ["2024-05-01", "2024-05-02"])
