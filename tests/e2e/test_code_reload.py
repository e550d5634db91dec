"""A daemon runs the code on disk: edits are picked up by new runs without a restart.

Each test starts a real `legato up`, edits the project's files while it runs, and checks what
a user sees: which code a run executed (its log and the marker files its tasks write) and
the code version the run records.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from legato.domain.ids import run_folder
from tests.e2e.browser import web_url
from tests.e2e.test_daemon import submit
from tests.helpers import Daemons, cli, http_client, make_project, marks, wait_for

if TYPE_CHECKING:
    from legato.store.store import Store

TASKS = """
import time
from pathlib import Path
from legato import pipeline, task

HERE = Path(__file__).parent

@task
def count() -> list[int]:
    gate = HERE / "gate"
    while {wait} and not gate.exists():
        time.sleep(0.02)
    return [1, 2, 3]

@task
def average(counts: list[int]) -> float:
    value = sum(counts) / {divisor}
    print("average is", value, "from code {label}")
    with open(HERE / "marks.txt", "a") as fh:
        fh.write("{label}\\n")
    return value

@pipeline
def stats():
    average(count())
"""


def code(label: str, divisor: str = "len(counts)", wait: bool = False) -> str:
    return TASKS.format(label=label, divisor=divisor, wait=wait)


def edit(path: Path, text: str) -> None:
    """Rewrite a source file as an editor would (the file changes size and mtime)."""
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def wait_state(store: Store, run_id: str, state: str, timeout: float = 30) -> None:
    def reached() -> bool:
        found = store.runs.get_run(run_id).state.value
        if found != state and found in ("succeeded", "failed", "canceled"):
            raise AssertionError(f"run {run_id} ended {found}, not {state}")
        return found == state

    wait_for(reached, timeout=timeout, what=f"run {run_id} {state}")


def log_of(project: Path, run_id: str, task: str) -> str:
    return (project / ".legato" / "logs" / run_folder(run_id) / f"{task}.1.log").read_text()


def test_rerun_after_a_fix_runs_the_fixed_code_and_records_its_version(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", code("broken", divisor="0"))
    daemon = daemons.up(project)
    http = http_client(web_url(daemon), project)
    first = http.post("/api/v1/pipelines/stats/runs", json={}).json()
    store = store_of(project)
    wait_state(store, first["id"], "failed")
    assert "ZeroDivisionError" in log_of(project, first["id"], "average")

    edit(project / "flows.py", code("fixed"))
    again = http.post(f"/api/v1/runs/{first['id']}/rerun", json={})
    assert again.status_code == 201, again.text
    rerun = again.json()
    wait_state(store, rerun["id"], "succeeded")
    assert "average is 2.0 from code fixed" in log_of(project, rerun["id"], "average")
    assert marks(project / "marks.txt") == ["fixed"]
    recorded = store.runs.get_run(rerun["id"]).code_version
    assert recorded != first["code_version"]
    assert recorded == pipeline_version(project)
    daemon.wait_output("code changed: reloaded 1 pipeline (")
    daemon.wait_output(f"queued run {rerun['id']} of stats (re-run of {first['id']})")

    # The run page shows the version and links to what changed since the previous run.
    page = http.get(f"/runs/{rerun['id']}").text
    assert f'href="/runs/{rerun["id"]}/code"' in page and recorded in page
    changes = http.get(f"/api/v1/runs/{rerun['id']}/code").json()
    assert changes["previous_run_id"] == first["id"]
    assert changes["previous_code_version"] == first["code_version"]
    assert [(c["path"], c["change"]) for c in changes["changes"]] == [("flows.py", "changed")]
    diff = changes["changes"][0]["diff"]
    assert "-    value = sum(counts) / 0\n" in diff
    assert "+    value = sum(counts) / len(counts)\n" in diff
    shown = http.get(f"/runs/{rerun['id']}/code").text
    assert "1 file changed since the previous run" in shown
    assert "value = sum(counts) / len(counts)" in shown


def pipeline_version(project: Path, name: str = "stats") -> str:
    """The code version a fresh load of the files on disk gives ``name``."""
    import json

    done = cli("pipelines", "--json", project=project)
    assert done.returncode == 0, done.stdout + done.stderr
    [found] = [p for p in json.loads(done.stdout)["pipelines"] if p["name"] == name]
    return str(found["code_version"])


def test_a_run_in_flight_finishes_on_its_code_and_a_new_run_uses_the_edit(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", code("old", wait=True))
    daemon = daemons.up(project)
    http = http_client(web_url(daemon), project)
    store = store_of(project)
    before = http.post("/api/v1/pipelines/stats/runs", json={}).json()
    wait_for(
        lambda: store.runs.get_task_run(before["id"], "count").state.value == "running",
        what="the first task waiting for its gate",
    )

    edit(project / "flows.py", code("new"))
    after = http.post("/api/v1/pipelines/stats/runs", json={}).json()
    wait_state(store, after["id"], "succeeded")
    (project / "gate").write_text("open")
    wait_state(store, before["id"], "succeeded")

    assert "from code old" in log_of(project, before["id"], "average")
    assert "from code new" in log_of(project, after["id"], "average")
    assert sorted(marks(project / "marks.txt")) == ["new", "old"]
    assert store.runs.get_run(before["id"]).code_version == before["code_version"]
    assert store.runs.get_run(after["id"]).code_version == pipeline_version(project)
    assert after["code_version"] != before["code_version"]


def test_submit_after_an_edit_runs_the_submitted_code(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", code("one"))
    daemon = daemons.up(project)
    web_url(daemon)
    store = store_of(project)
    first = submit(project, "stats")
    wait_state(store, first, "succeeded")

    edit(project / "flows.py", code("two"))
    second = submit(project, "stats")
    wait_state(store, second, "succeeded")
    assert "from code two" in log_of(project, second, "average")
    assert marks(project / "marks.txt") == ["one", "two"]
    assert store.runs.get_run(second).code_version == pipeline_version(project)
    assert store.runs.get_run(second).code_version != store.runs.get_run(first).code_version


# -- code from outside the project folder ----------------------------------------------------

USES_LIB = """
from pathlib import Path
import helperlib
from legato import pipeline, task

@task
def say() -> str:
    with open(Path(__file__).parent / "marks.txt", "a") as fh:
        fh.write(helperlib.WORD + "\\n")
    return helperlib.WORD

@pipeline
def lib_user():
    say()
"""


def test_an_edit_to_a_local_package_outside_the_project_is_new_code(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store], monkeypatch
) -> None:
    lib = tmp_path / "libs"
    lib.mkdir()
    (lib / "helperlib.py").write_text("WORD = 'first'\n")
    # As a sibling checkout is put on the path.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(lib), os.environ.get("PYTHONPATH")]))
    )
    project = make_project(tmp_path / "proj", USES_LIB)
    daemon = daemons.up(project)
    web_url(daemon)
    store = store_of(project)
    one = submit(project, "lib_user")
    wait_state(store, one, "succeeded")

    edit(lib / "helperlib.py", "WORD = 'second'\n")
    version = pipeline_version(project, "lib_user")
    assert version != store.runs.get_run(one).code_version
    two = submit(project, "lib_user")
    wait_state(store, two, "succeeded")
    assert marks(project / "marks.txt") == ["first", "second"]
    assert store.runs.get_run(two).code_version == version


# -- a broken edit ------------------------------------------------------------------------------

HOOKED = """
from pathlib import Path
from legato import pipeline, task
from legato.triggers import webhook

@task
def work(n: int) -> int:
    with open(Path(__file__).parent / "marks.txt", "a") as fh:
        fh.write(f"{label}{{n}}\\n")
    return n

@pipeline(triggers=[webhook()])
def hooked(n: int = 0):
    work(n)
"""

OTHER = """
from legato import pipeline, task

@task(in_process=True)
def other_step() -> int:
    return 1

@pipeline
def other():
    other_step()
"""


def test_a_broken_edit_keeps_the_last_good_pipelines_serving(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    from tests.e2e.test_daemon import token_of

    project = make_project(tmp_path / "proj", HOOKED.format(label="good"))
    (project / "legato.toml").write_text(
        (project / "legato.toml").read_text().replace('["flows"]', '["flows", "other"]')
    )
    (project / "other.py").write_text(OTHER)
    daemon = daemons.up(project)
    base = web_url(daemon)
    http = http_client(base, project)
    token = token_of(project, "hooked", "webhook")
    store = store_of(project)

    edit(project / "flows.py", HOOKED.format(label="broken").replace("def work(", "def work(("))
    lines = (project / "flows.py").read_text().splitlines()
    where = f"flows.py:{lines.index('def work((n: int) -> int:') + 1}: SyntaxError"
    daemon.wait_output("serving the last good version")
    assert where in daemon.output()
    listed = cli("pipelines", project=project)
    assert where in listed.stdout + listed.stderr
    overview = http.get("/").text  # the UI's pipelines page
    assert where in overview and "serving the last good version" in overview

    made = httpx.post(
        f"{base}/api/v1/hooks/hooked/webhook",
        json={"n": 3},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert made.status_code == 201, made.text
    wait_state(store, made.json()["run_id"], "succeeded")
    assert marks(project / "marks.txt") == ["good3"]
    names = [p["name"] for p in http.get("/api/v1/pipelines").json()]
    assert sorted(names) == ["hooked", "other"]


# -- one broken submodule ---------------------------------------------------------------------


def test_a_broken_submodule_leaves_the_rest_of_its_package_served(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    from tests.e2e.test_daemon import token_of

    project = make_project(tmp_path / "proj", "", module="walk")
    (project / "walk.py").unlink()
    (project / "walk").mkdir()
    (project / "walk" / "__init__.py").write_text("")
    (project / "walk" / "good.py").write_text(textwrap.dedent(HOOKED.format(label="walk")))
    (project / "walk" / "broken.py").write_text("def oops(:\n    pass\n")
    (project / "walk" / "missing.py").write_text("import no_such_package_here\n")

    listed = cli("pipelines", project=project)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "hooked" in listed.stdout
    shown = listed.stdout + listed.stderr  # errors are printed to stderr
    assert "walk/broken.py:1" in shown and "walk/missing.py:1" in shown

    daemon = daemons.up(project)
    base = web_url(daemon)
    token = token_of(project, "hooked", "webhook")
    made = httpx.post(
        f"{base}/api/v1/hooks/hooked/webhook",
        json={"n": 1},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert made.status_code == 201, made.text
    wait_state(store_of(project), made.json()["run_id"], "succeeded")
    assert marks(project / "walk" / "marks.txt") == ["walk1"]


def test_a_run_records_the_code_it_runs_not_the_code_it_was_queued_with(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", code("queued"))
    queued = submit(project, "stats")  # no daemon yet: it waits in the queue
    store = store_of(project)
    queued_version = store.runs.get_run(queued).code_version
    edit(project / "flows.py", code("started"))

    daemons.up(project)
    wait_state(store, queued, "succeeded")
    assert "from code started" in log_of(project, queued, "average")
    recorded = store.runs.get_run(queued).code_version
    assert recorded == pipeline_version(project) != queued_version
    assert store.runs.get_snapshot("stats", recorded) is not None


FILE_TRIGGERED = """
from pathlib import Path
from legato import pipeline, task
from legato.triggers import on_file

@task
def take(path: str) -> None:
    with open(Path(__file__).parent / "marks.txt", "a") as fh:
        fh.write(Path(path).name + "\\n")

@pipeline(triggers=[on_file("inbox/*.csv", every="0.2s")])
def arrivals(path: str = ""):
    take(path)
"""


def test_a_file_trigger_added_by_an_edit_is_listened_to(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", code("one"))
    (project / "inbox").mkdir()
    daemon = daemons.up(project)
    web_url(daemon)
    (project / "more.py").write_text(textwrap.dedent(FILE_TRIGGERED))
    (project / "flows.py").write_text("from more import arrivals  # noqa: F401\n" + code("two"))
    daemon.wait_output("listening for arrivals/file")
    (project / "inbox" / "a.csv").write_text("x\n")
    wait_for(lambda: marks(project / "marks.txt") == ["a.csv"], what="the file's run")


TAKES = """
from pathlib import Path
from legato import pipeline, task

@task
def note(n: int) -> None:
    with open(Path(__file__).parent / "marks.txt", "a") as fh:
        fh.write(f"n={{n}}\\n")

@pipeline
def takes({params}):
    note({arg})
"""


def test_a_run_the_code_no_longer_fits_starts_once_an_edit_makes_it_fit(
    tmp_path: Path, daemons: Daemons, store_of: Callable[[Path], Store]
) -> None:
    project = make_project(tmp_path / "proj", TAKES.format(params="n: int = 0", arg="n"))
    queued = submit(project, "takes", "--param", "n=5")
    edit(project / "flows.py", TAKES.format(params="", arg="1"))  # n is gone
    daemon = daemons.up(project)
    daemon.wait_output(f"cannot start run {queued}")

    edit(project / "flows.py", TAKES.format(params="n: int = 0", arg="n"))  # n is back
    wait_state(store_of(project), queued, "succeeded")
    assert marks(project / "marks.txt") == ["n=5"]
