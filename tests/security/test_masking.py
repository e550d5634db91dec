"""Masking replaces secret values by ``****`` in whatever text shows them."""

from __future__ import annotations

from legato.security.masking import MASK, Masker


def test_every_value_is_masked_wherever_it_appears() -> None:
    masker = Masker.of(["hunter2", "", "hunter2-long"])
    assert masker.mask("a hunter2 b hunter2-long c") == "a **** b **** c"
    assert masker.mask_bytes(b"x=hunter2\n\xff") == b"x=****\n\xff"
    assert not Masker.of([""]) and Masker.of([""]).mask("as is") == "as is"


def test_the_long_lines_of_a_value_of_several_lines_are_masked_one_by_one() -> None:
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQ\nab\n-----END KEY-----"
    masker = Masker.of([key])
    logged = "INFO key line: MIIEvQIBADANBgkqhkiG9w0BAQ\nab stays\n"
    assert masker.mask(logged) == f"INFO key line: {MASK}\nab stays\n"
    assert masker.mask(key) == MASK
    assert (masker | Masker.of(["other"])).mask("other ab") == f"{MASK} ab"


def test_the_beginning_of_a_value_left_where_a_text_was_cut_is_masked() -> None:
    masker = Masker.of(["hunter2-password"])
    assert masker.mask_cut("error: bad login hunter2-pa…") == f"error: bad login {MASK}…"
    assert masker.mask_cut("error: h…") == f"error: {MASK}…"
    assert masker.mask_cut("error: x…") == "error: x…"
    assert masker.mask_cut("error: hunter2 is not it") == "error: hunter2 is not it"
