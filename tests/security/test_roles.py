"""Roles: deny by default, built-in roles as the issue defines them, custom roles from
legato.toml."""

from __future__ import annotations

import pytest

from legato.security.roles import NOTHING, RoleError, Roles


def test_nobody_may_do_anything_and_an_admin_may_do_everything() -> None:
    roles = Roles.parse()
    assert not NOTHING.allows("runs.read")
    admin = roles.permissions("admin")
    assert admin.allows("secrets.read") and admin.allows("users.change") and admin.everything


def test_a_viewer_reads_all_but_secrets_users_tokens_and_the_audit_trail() -> None:
    viewer = Roles.parse().permissions("viewer")
    for action in ("runs.read", "logs.read", "pipelines.read", "backfills.read", "queue.read"):
        assert viewer.allows(action), action
    for action in ("secrets.read", "secrets.list", "users.read", "tokens.read", "audit.read"):
        assert not viewer.allows(action), action
    for action in ("runs.launch", "runs.cancel", "tasks.mark", "backfills.create"):
        assert not viewer.allows(action), action


def test_an_operator_acts_on_runs_but_not_on_accounts_or_secrets() -> None:
    op = Roles.parse().permissions("operator")
    for action in (
        "runs.launch",
        "runs.cancel",
        "runs.rerun",
        "tasks.mark",
        "backfills.create",
        "backfills.change",
        "schedules.pause",
        "triggers.pause",
        "queue.move",
        "runs.read",
    ):
        assert op.allows(action), action
    for action in ("users.change", "tokens.change", "secrets.change", "audit.read"):
        assert not op.allows(action), action


def test_custom_roles_combine_roles_permissions_and_patterns() -> None:
    roles = Roles.parse(
        {
            "analyst": ["viewer", "runs.launch"],
            "lead": ["analyst", "schedules.*"],
        }
    )
    lead = roles.permissions("lead")
    assert lead.allows("runs.read") and lead.allows("runs.launch")
    assert lead.allows("schedules.pause")
    assert not lead.allows("runs.cancel")
    assert roles.names()[:3] == ("viewer", "operator", "admin")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"viewer": ["runs.read"]}, "built-in role cannot be redefined"),
        ({"x": "runs.read"}, "must be a list"),
        ({"x": ["nonsense"]}, "neither a role nor a permission"),
        ({"a": ["b"], "b": ["a"]}, "includes itself"),
    ],
)
def test_an_unusable_roles_table_is_refused_with_its_reason(table: dict, message: str) -> None:
    with pytest.raises(RoleError, match=message):
        Roles.parse(table)


def test_an_unknown_role_is_refused_and_groups_map_to_the_highest_role() -> None:
    roles = Roles.parse({"analyst": ["viewer"]})
    with pytest.raises(RoleError, match="no role 'boss'"):
        roles.permissions("boss")
    assert roles.highest(["viewer", "operator"]) == "operator"
    assert roles.highest(["analyst", "viewer"]) == "analyst"
    assert roles.highest(["admin", "analyst"]) == "admin"
    assert roles.highest(["unknown"]) is None
