"""The spin before blocking: it stops for a while once it has spun in vain."""

from __future__ import annotations

from legato.executors.spin import Spinner


def test_a_spin_returns_as_soon_as_the_message_is_there() -> None:
    polls: list[int] = []

    def ready() -> bool:
        polls.append(1)
        return len(polls) == 3

    spinner = Spinner(seconds=5.0)
    assert spinner.spin(ready) is True
    assert len(polls) == 3


def test_a_spin_in_vain_backs_off_so_the_next_waits_block_at_once() -> None:
    spinner = Spinner(seconds=0.002, backoff=60.0)
    assert spinner.spin(lambda: False) is False
    assert not spinner.spinning
    polls: list[int] = []
    assert spinner.spin(lambda: bool(polls.append(1))) is False
    assert polls == []  # backing off: not even one poll


def test_spinning_can_be_turned_off() -> None:
    polls: list[int] = []
    spinner = Spinner(seconds=0.0)
    assert spinner.spin(lambda: bool(polls.append(1))) is False
    assert polls == [] and not spinner.spinning
