"""From an identity provider's groups to one Legato role."""

from __future__ import annotations

import pytest

from legato.security.sso import choose_role

ROLE_MAP = {
    "admins": "admin",
    "ops": "operator",
    "finance": "finance_operator",
    "audit": "auditor",
    "everyone": "viewer",
}


@pytest.mark.parametrize(
    ("groups", "role"),
    [
        (["everyone", "admins", "ops"], "admin"),
        (["everyone", "ops"], "operator"),
        (["ops", "finance"], "operator"),
        (["everyone", "finance"], "finance_operator"),
        (["audit", "finance"], "finance_operator"),  # mapped first in role_map
        (["everyone"], "viewer"),
        (["everyone", "unknown"], "viewer"),
    ],
)
def test_the_most_powerful_mapped_role_wins(groups: list[str], role: str) -> None:
    assert choose_role(groups, ROLE_MAP, None) == role


def test_no_mapped_group_gives_the_default_role_or_none() -> None:
    assert choose_role(["marketing"], ROLE_MAP, "viewer") == "viewer"
    assert choose_role(["marketing"], ROLE_MAP, None) is None
    assert choose_role([], ROLE_MAP, None) is None


def test_a_mapped_group_beats_the_default_role() -> None:
    assert choose_role(["everyone"], ROLE_MAP, "operator") == "viewer"
