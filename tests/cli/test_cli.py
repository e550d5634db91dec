"""The legato command as a user types it: output, exit codes, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli, make_project, process_alive, wait_for

OK = """
import logging
from legato import Context, pipeline, task

@task
def hello(ctx: Context, name: str) -> str:
    print(f"hello {name} from stdout")
    logging.getLogger("mine").warning("a warning from logging")
    return name

@task
def boom(x: str) -> None:
    raise RuntimeError(f"broken for {x}")

@pipeline
def greet(name: str = "world", times: int = 1):
    hello(name)

@pipeline
def breaks():
    boom(hello("x"))
"""


def test_init_then_run_the_scaffold(tmp_path: Path) -> None:
    target = tmp_path / "newproj"
    made = cli("init", str(target))
    assert made.returncode == 0, made.stderr
    ran = cli("run", "hello", "--param", "name=Ada", project=target)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "succeeded" in ran.stdout
    again = cli("init", str(target))
    assert again.returncode == 2 and "exists already" in again.stderr


def test_run_show_logs_and_json(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", OK)
    ran = cli("run", "greet", "--param", "name=Ada", project=project)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    runs = json.loads(cli("runs", "--json", project=project).stdout)
    assert [(r["pipeline"], r["state"], r["params"]) for r in runs] == [
        ("greet", "succeeded", {"name": "Ada", "times": 1})
    ]
    run_id = runs[0]["id"]
    shown = json.loads(cli("show", run_id[:8], "--json", project=project).stdout)
    assert shown["tasks"][0]["task_key"] == "hello"
    logs = cli("logs", run_id, "hello", project=project)
    assert "hello Ada from stdout" in logs.stdout
    assert "a warning from logging" in logs.stdout
    text = cli("show", run_id, project=project)
    assert "hello" in text.stdout and "succeeded" in text.stdout


def test_failed_run_exits_1_and_says_what_failed(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", OK)
    ran = cli("run", "breaks", project=project)
    assert ran.returncode == 1
    assert "RuntimeError: broken for x" in ran.stdout
    assert "legato rerun" in ran.stdout


def test_usage_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", OK)
    cases = [
        (("run", "nope"), "no pipeline named 'nope'"),
        (("run", "gret"), "did you mean 'greet'"),
        (("run", "greet", "--param", "times=many"), "param 'times' expects int"),
        (("run", "greet", "--param", "colour=red"), "has no param 'colour'"),
        (("run", "greet", "--param", "oops"), "--param takes key=value"),
        (("show", "ffffffff"), "ffffffff"),
    ]
    for args, message in cases:
        res = cli(*args, project=project)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert message in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_malformed_toml_is_a_clear_error_and_keeps_the_store(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", OK)
    assert cli("run", "greet", project=project).returncode == 0
    good = (project / "legato.toml").read_text()
    (project / "legato.toml").write_text("[project\nmodules = ", encoding="utf-8")
    res = cli("runs", project=project)
    assert res.returncode == 2 and "not valid TOML" in res.stderr and "Traceback" not in res.stderr
    (project / "legato.toml").write_text(good, encoding="utf-8")
    runs = json.loads(cli("runs", "--json", project=project).stdout)
    assert len(runs) == 1 and runs[0]["state"] == "succeeded"


def test_broken_module_is_reported_and_others_load(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", OK)
    (project / "broken.py").write_text("import nothing_here_at_all\n", encoding="utf-8")
    toml = (project / "legato.toml").read_text().replace('["flows"]', '["flows", "broken"]')
    (project / "legato.toml").write_text(toml, encoding="utf-8")
    res = cli("pipelines", "--json", project=project)
    data = json.loads(res.stdout)
    assert sorted(p["name"] for p in data["pipelines"]) == ["breaks", "greet"]
    assert data["errors"][0]["module"] == "broken"
    assert "broken.py:1: ModuleNotFoundError" in data["errors"][0]["error"]
    assert cli("run", "greet", project=project).returncode == 0


def test_definition_error_names_file_and_line(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", OK + "\n@pipeline\ndef wrong():\n    hello(1, 2, 3)\n")
    res = cli("pipelines", "--json", project=project)
    err = json.loads(res.stdout)["errors"][0]["error"]
    assert "flows.py:" in err and "called wrongly" in err


SLOW = """
import os, time
from pathlib import Path
from legato import pipeline, task

@task
def wait_long() -> None:
    (Path(__file__).parent / "started").write_text(str(os.getpid()))
    time.sleep(60)

@pipeline
def slow():
    wait_long()
"""


def test_ctrl_c_cancels_the_run_and_its_attempts(tmp_path: Path) -> None:
    import signal
    import subprocess

    from tests.helpers import LEGATO

    project = make_project(tmp_path / "p", SLOW)
    proc = subprocess.Popen(
        [LEGATO, "run", "slow", "--project", str(project)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: (project / "started").exists(), what="task start")
    worker = int((project / "started").read_text())
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "was canceled" in stderr and "Traceback" not in stderr
    runs = json.loads(cli("runs", "--json", project=project).stdout)
    assert runs[0]["state"] == "canceled"
    wait_for(lambda: not process_alive(worker), timeout=10, what="worker exit")


def test_load_errors_are_recorded_in_the_store(tmp_path: Path) -> None:
    from legato.services.workspace import Workspace

    project = make_project(tmp_path / "p", OK)
    (project / "broken.py").write_text("def oops(:\n", encoding="utf-8")
    toml = (project / "legato.toml").read_text().replace('["flows"]', '["flows", "broken"]')
    (project / "legato.toml").write_text(toml, encoding="utf-8")
    assert cli("run", "greet", project=project).returncode == 0
    with Workspace(project) as ws:
        loc = ws.store.runs.get_code_location(ws.config.name)
    assert loc is not None
    assert sorted(loc.pipelines) == ["breaks", "greet"]
    assert [e["module"] for e in loc.errors] == ["broken"]
    assert "broken.py:1: SyntaxError" in loc.errors[0]["message"]


def test_resume_of_a_run_that_is_being_driven_is_refused(tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from tests.helpers import LEGATO

    project = make_project(tmp_path / "p", SLOW)
    proc = subprocess.Popen(
        [LEGATO, "run", "slow", "-q", "--project", str(project)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (project / "started").exists(), what="task start")
        run_id = json.loads(cli("runs", "--json", project=project).stdout)[0]["id"]
        t0 = time.monotonic()
        res = cli("resume", run_id, project=project)
        assert res.returncode == 2
        assert "is being driven by" in res.stderr
        assert time.monotonic() - t0 < 10
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)


def test_version() -> None:
    import legato

    res = cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"legato {legato.__version__}"
