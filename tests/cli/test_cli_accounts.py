"""``legato users``, ``legato tokens`` and ``legato audit`` through the real command: accounts
made and changed by the local admin, a token printed once, and the audit trail, whose
``verify`` finds a row edited behind Legato's back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.helpers import ONE_TASK, cli, make_project

PASSWORD = "a password long enough"


def test_users_and_tokens_are_made_listed_and_changed(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", ONE_TASK)
    added = cli("users", "add", "ann", "--role", "operator", "--password-stdin",
                project=project, input=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    short = cli("users", "add", "bob", "--password-stdin", project=project, input="short\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    unknown = cli("users", "add", "bob", "--role", "boss", "--no-password", project=project)
    assert unknown.returncode == 2 and "no role 'boss'" in unknown.stderr
    assert cli("users", "set-role", "ann", "viewer", project=project).returncode == 0
    assert cli("users", "disable", "ann", project=project).returncode == 0
    users = json.loads(cli("users", "list", "--json", project=project).stdout)
    assert [(u["name"], u["role"], u["disabled"], u["password"]) for u in users] == [
        ("ann", "viewer", True, True)
    ]
    assert PASSWORD not in (project / ".legato" / "legato.db").read_bytes().decode("latin-1")

    made = cli("tokens", "create", "--name", "ci", "--role", "operator", "--expires", "90d",
               project=project)  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("lgt_") and "shown once" in made.stderr
    listed = cli("tokens", "list", "--json", project=project).stdout
    assert token not in listed and token.split("_", 2)[2] not in listed
    (row,) = json.loads(listed)
    assert (row["name"], row["role"], row["last_used_at"]) == ("ci", "operator", None)
    assert row["expires_at"] is not None
    assert cli("tokens", "revoke", "ci", project=project).returncode == 0
    assert json.loads(cli("tokens", "list", "--json", project=project).stdout) == []


def test_audit_lists_what_was_done_and_verify_finds_an_edited_row(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", ONE_TASK)
    cli("users", "add", "ann", "--role", "operator", "--no-password", project=project)
    cli("tokens", "create", "--name", "ci", "--role", "viewer", project=project)
    cli("run", "etl", project=project)
    rows = json.loads(cli("audit", "--json", project=project).stdout)
    actions = [r["action"] for r in rows][::-1]
    assert actions == ["users.change", "tokens.change", "runs.launch"]
    assert all(r["actor"].startswith("user:") and r["auth"] == "local" for r in rows)
    ok = cli("audit", "verify", project=project)
    assert ok.returncode == 0 and "intact" in ok.stdout

    # Someone with the store's file rewrites who made the token.
    with sqlite3.connect(project / ".legato" / "legato.db") as db:
        db.execute("UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 2")
    broken = cli("audit", "verify", project=project)
    assert broken.returncode == 1
    assert "broken at row 2" in broken.stdout
    found = cli("audit", "--json", "--action", "users.change", project=project)
    assert [r["target"] for r in json.loads(found.stdout)] == ["ann"]
