"""Markup in plain output: tags dropped, user text with brackets printed as written."""

from __future__ import annotations

import io

import pytest

from legato.cli.console import PlainConsole, escape, strip_markup


@pytest.mark.parametrize(
    "text",
    ["[Errno 2] No such file", "KeyError: ['id']", "fetch[3]", "a\\", "[bold]not a tag[/]", ""],
)
def test_escaped_text_prints_as_written(text: str) -> None:
    assert strip_markup(escape(text)) == text
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, highlight=False, width=200).print(escape(text))
    assert buf.getvalue().rstrip("\n") == text


def test_plain_console_drops_tags() -> None:
    buf = io.StringIO()
    PlainConsole(buf).print("run [bold]abc[/] [red]failed[/]:", escape("[Errno 2] gone"))
    assert buf.getvalue() == "run abc failed: [Errno 2] gone\n"
