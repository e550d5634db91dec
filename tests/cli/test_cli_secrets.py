"""``legato secrets``: set from standard input, listed by name only, deleted, keys rotated;
a run's log and ``legato logs`` never show a value its task read."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

from legato.security.keyring import KeyRing, new_key
from tests.helpers import LEGATO, cli, make_project

VALUE = "s3cr3t-from-stdin!"

CODE = """
from legato import pipeline, task

@task
def shows(ctx) -> None:
    print("the password is", ctx.secrets["db_password"])

@pipeline
def show():
    shows()
"""


def _set(project: Path, name: str, value: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [LEGATO, "secrets", "set", name, "--project", str(project)],
        input=value,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_set_list_delete_and_rotate_through_the_command(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", CODE)
    assert _set(project, "db_password", VALUE + "\n") == "set db_password\n"
    listed = cli("secrets", "list", project=project)
    assert listed.returncode == 0 and "db_password" in listed.stdout
    rows = json.loads(cli("secrets", "list", "--json", project=project).stdout)
    assert [r["name"] for r in rows] == ["db_password"]
    assert set(rows[0]) == {"name", "created_at", "updated_at", "updated_by"}
    # The value went through standard input, one trailing newline dropped, sealed.
    store = (project / ".legato" / "legato.db").read_bytes()
    assert VALUE.encode() not in store
    rotated = cli("secrets", "rotate-key", project=project)
    assert rotated.returncode == 0, rotated.stderr
    assert "1 secret(s) encrypted under key k2" in rotated.stdout
    assert "may be dropped: k1" in rotated.stdout
    dropped = cli("secrets", "rotate-key", "--drop-old", project=project)
    assert "dropped old key(s): k1, k2" in dropped.stdout
    assert list(KeyRing.from_file(project / ".legato" / "secret.keys").keys) == ["k3"]
    # A task reads it after the rotations; neither its log nor `legato logs` shows it.
    ran = cli("run", "show", project=project)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    logs = cli("logs", _last_run(project), project=project)
    assert "the password is ****" in logs.stdout and VALUE not in logs.stdout
    assert cli("secrets", "delete", "db_password", project=project).returncode == 0
    gone = cli("secrets", "delete", "db_password", project=project)
    assert gone.returncode == 2 and "no secret 'db_password'" in gone.stderr
    assert "no secrets" in cli("secrets", "list", project=project).stdout


def _last_run(project: Path) -> str:
    runs = json.loads(cli("runs", "--json", project=project).stdout)
    return str(runs[0]["id"])


def test_with_the_ring_in_the_environment_rotation_prints_the_value_to_set(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "p", CODE)
    env = {"LEGATO_SECRET_KEYS": f"k1:{new_key()}"}
    _set(project, "db_password", VALUE, env)
    first = cli("secrets", "rotate-key", project=project, env=env)
    assert first.returncode == 0, first.stderr
    assert "set LEGATO_SECRET_KEYS to this value" in first.stderr
    ring = KeyRing.parse(first.stdout.strip())
    assert list(ring.keys) == ["k1", "k2"] and ring.primary == "k2"
    assert not (project / ".legato" / "secret.keys").exists()
    second = cli("secrets", "rotate-key", project=project, env={"LEGATO_SECRET_KEYS": first.stdout})
    assert "1 secret(s) encrypted under key k2" in second.stdout


def test_at_a_terminal_the_value_is_asked_for_without_echo(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", CODE)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [LEGATO, "secrets", "set", "db_password", "--project", str(project)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    seen = b""
    while b"value" not in seen:
        seen += os.read(leader, 1024)
    os.write(leader, (VALUE + "\n").encode())
    while True:
        try:
            chunk = os.read(leader, 1024)
        except OSError:  # the command ended and closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=60) == 0
    os.close(leader)
    assert b"set db_password" in seen and VALUE.encode() not in seen
