"""Small helpers shared by the SVG drawings: escaping, CSS-safe tokens, compact numbers."""

from __future__ import annotations

import html
import re


def token(text: str) -> str:
    """A string made safe to use as one CSS class."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


def esc(text: str) -> str:
    """Text escaped for an attribute or an element."""
    return html.escape(text, quote=True)


def num(v: float) -> str:
    """A coordinate with at most one decimal, and none when it is whole."""
    r = round(v, 1)
    return str(int(r)) if r == int(r) else f"{r:.1f}"
