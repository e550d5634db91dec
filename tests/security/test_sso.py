"""From an identity provider's groups to one Legato role."""

from __future__ import annotations

import pytest

from legato.security.sso import SsoConfigError, choose_role, resolve_reference

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


def test_a_client_secret_may_come_from_the_environment() -> None:
    env = {"OIDC_SECRET": "s3cret"}
    where = "[auth.oidc] client_secret"
    assert resolve_reference("${env:OIDC_SECRET}", where, env=env) == "s3cret"
    assert resolve_reference("plain-value", where, env=env) == "plain-value"
    with pytest.raises(SsoConfigError, match="environment variable MISSING is not set"):
        resolve_reference("${env:MISSING}", where, env=env)
    with pytest.raises(SsoConfigError, match=r"\[auth.oidc\] client_secret: write a reference"):
        resolve_reference("${OIDC_SECRET}", where, env=env)


def test_a_stored_secret_is_read_by_whoever_can_read_secrets() -> None:
    where = "[auth.oidc] client_secret"
    stored = {"oidc": "from-the-store"}
    assert resolve_reference("${secret:oidc}", where, env={}, secret=stored.__getitem__) == (
        "from-the-store"
    )
    with pytest.raises(SsoConfigError, match="needs the encrypted secrets store"):
        resolve_reference("${secret:oidc}", where, env={})
