"""legato.toml's [limits]: what the server and the services take at most."""

from __future__ import annotations

from pathlib import Path

import pytest

from legato.config import ConfigError, load_config
from tests.helpers import make_project


def test_limits_have_defaults_and_can_be_set(tmp_path: Path) -> None:
    config = load_config(make_project(tmp_path / "a", "x = 1\n"))
    assert (config.request_bytes, config.params_bytes) == (1024 * 1024, 256 * 1024)
    toml = "\n[limits]\nrequest_bytes = 5000\nparams_bytes = 300\n"
    config = load_config(make_project(tmp_path / "b", "x = 1\n", extra=toml))
    assert (config.request_bytes, config.params_bytes) == (5000, 300)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("request_bytes = 0", "[limits] request_bytes must be at least 1"),
        ("params_bytes = -5", "[limits] params_bytes must be at least 1"),
        ('request_bytes = "1MB"', "[limits] request_bytes must be a int"),
        ("body_bytes = 10", "unknown key 'body_bytes' in [limits]"),
    ],
)
def test_wrong_limits_are_refused(tmp_path: Path, toml: str, message: str) -> None:
    root = make_project(tmp_path, "x = 1\n", extra=f"\n[limits]\n{toml}\n")
    with pytest.raises(ConfigError) as info:
        load_config(root)
    assert message in str(info.value)
