"""docs/deploy.md followed as written, on one test machine.

Every fenced block whose first line is ``# /some/path`` is a file of the layout. The test
writes each under ``tmp_path`` (``/etc/...`` becomes ``tmp_path/etc/...``), changing only
what must differ on a test machine (the table in ``substitutions()``), then brings the
units up in the order of the doc's "Bring-up" commands, as systemd would run them: each
unit's ``Environment=``, ``EnvironmentFile=``, ``WorkingDirectory=``, ``ExecStartPre=`` (run
to completion, must succeed) and ``ExecStart=`` (a real subprocess; a ``Type=oneshot`` one
run to completion), with a systemd-like environment, not the test's. ``MACHINES`` says how
many machines run each unit. What cannot run here (``systemctl``, ``User=``, ``Restart=``,
``After=``, the install commands...) is checked against the rest of the doc instead; a
directive the test does not know fails it, so nothing the doc says is silently skipped.

Then, through the web server's REST API: runs launched succeed with their attempts on the
Dask workers, the health check lists both schedulers, and after one scheduler is SIGKILLed
while it drives a run, the other takes the run over and runs launched afterwards succeed.
(Both schedulers are on this one host, so the survivor sees at once that the victim's pid
is gone and does not wait for its lease to expire, as it would across machines.)
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import DaemonProcess, Daemons, free_port, process_alive, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
]

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
VENV = Path(sys.executable).parent.parent  # this checkout's venv: Legato, distributed

# How many machines of the layout run each unit here (the others: one).
MACHINES = {"dask-worker.service": 2, "legato-scheduler.service": 2}

# The project deployed to the doc's project folder, as the module its legato.toml names:
# three tasks passing values through the shared result store.
PIPELINE = """
import os
import time

from legato import Context, pipeline, task


@task
def extract(n: int) -> list[int]:
    return list(range(n))


@task
def transform(xs: list[int], pause: float) -> list[int]:
    time.sleep(pause)
    return [x * x for x in xs]


@task
def load(ctx: Context, ys: list[int]) -> int:
    print(f"loaded total {sum(ys)} in pid {os.getpid()}")
    return sum(ys)


@pipeline
def nightly(n: int = 3, pause: float = 0.0):
    load(transform(extract(n), pause))
"""


@dataclass(frozen=True)
class Sub:
    """One difference between the doc's machines and this test machine."""

    pattern: str  # a regular expression over the doc's text (MULTILINE)
    value: str
    why: str


def substitutions(root: Path, pg_url: str, ports: dict[str, int]) -> list[Sub]:
    """The substitution table. Earlier rows win where two match at the same place."""
    return [
        Sub(
            r"(?<=^LEGATO_DATABASE_URL=)\S+",
            pg_url,
            "the database: a fresh schema of the test's PostgreSQL (pg_url)",
        ),
        Sub(r"/srv/legato/venv\b", str(VENV), "the venv: this checkout's, with Legato installed"),
        Sub(r"\b(?:dask|web)\.internal\b", "127.0.0.1", "host names: this machine"),
        Sub(r"\b0\.0\.0\.0\b", "127.0.0.1", "listen on loopback only"),
        *(
            Sub(rf"(?<![\d.]){port}(?!\d)", str(free), f"port {port}: a free port")
            for port, free in ports.items()
        ),
        Sub(r"--nworkers \d+", "--nworkers 1", "one worker process per worker machine"),
        Sub(
            r"(?<![\w.:/-])/(?=(?:etc|srv|mnt|var)/)",
            f"{root}/",
            "absolute paths: under the test's root folder",
        ),
    ]


def apply(subs: list[Sub], text: str) -> str:
    """``text`` with every row of ``subs`` applied in one pass; each row must match."""
    combined = re.compile("|".join(f"(?P<s{i}>{s.pattern})" for i, s in enumerate(subs)), re.M)
    used = [0] * len(subs)

    def one(m: re.Match[str]) -> str:
        i = int(str(m.lastgroup)[1:])
        used[i] += 1
        return subs[i].value

    out = combined.sub(one, text)
    stale = [s.why for s, n in zip(subs, used, strict=True) if n == 0]
    assert not stale, f"substitutions that match nothing in {DOC.name} (update the table): {stale}"
    return out


# -- reading the doc ------------------------------------------------------------------------

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)


def file_blocks(text: str) -> dict[str, str]:
    """Path -> content of every fenced block whose first line is a comment naming a path."""
    out: dict[str, str] = {}
    for m in _FENCE.finditer(text):
        first = m.group(1).split("\n", 1)[0].strip()
        named = re.fullmatch(r"#\s*(/\S+)", first)
        if named:
            assert named.group(1) not in out, f"{named.group(1)} is given twice"
            out[named.group(1)] = m.group(1)
    return out


def section(text: str, title: str) -> str:
    """The text under the ``## title...`` heading, up to the next ``## `` heading."""
    m = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"{DOC.name} has no section '## {title}'"
    return m.group(1)


def found(pattern: str, text: str, what: str) -> re.Match[str]:
    m = re.search(pattern, text, re.M)
    assert m, f"{DOC.name} does not say {what}"
    return m


def systemctl_units(text: str, verbs: tuple[str, ...]) -> list[str]:
    """Units named by ``systemctl VERB [--now] UNIT`` commands in ``text``, in order."""
    alts = "|".join(verbs)
    return re.findall(rf"systemctl (?:{alts})(?: --now)? (\S+\.service)", text)


# -- systemd units, as systemd reads them ---------------------------------------------------


class _Multi(dict):  # type: ignore[type-arg]
    """configparser's section dict where a repeated key adds a line (ExecStartPre= twice)."""

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, list) and isinstance(self.get(key), list):
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    parser = configparser.RawConfigParser(
        strict=False, dict_type=_Multi, interpolation=None, empty_lines_in_values=False
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return {s: {k: str(v).split("\n") for k, v in parser[s].items()} for s in parser.sections()}


# Directives the test carries out, and those it only checks against the rest of the doc.
RUN = {"Type", "Environment", "EnvironmentFile", "WorkingDirectory", "ExecStartPre", "ExecStart"}
CHECKED = {
    "Description",
    "Wants",
    "After",
    "Requires",
    "User",
    "Group",
    "Restart",
    "RestartSec",
    "WantedBy",
}


@dataclass
class Unit:
    name: str
    sections: dict[str, dict[str, list[str]]]
    instance: str = ""  # %i of a template unit

    def get(self, section: str, key: str) -> list[str]:
        return self.sections.get(section, {}).get(key, [])

    @property
    def type(self) -> str:
        return (self.get("Service", "Type") or ["simple"])[-1]

    def spec(self, value: str) -> str:
        """Expand the specifiers the doc may use (%i, %%); any other one fails the test."""

        def one(m: re.Match[str]) -> str:
            if m.group(1) == "%":
                return "%"
            assert m.group(1) == "i", f"{self.name}: specifier %{m.group(1)} not handled"
            return self.instance

        return re.sub(r"%(.)", one, value)

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """``base``, then Environment=, then each EnvironmentFile= (which win), as systemd."""
        env = dict(base)
        for line in self.get("Service", "Environment"):
            for word in shlex.split(self.spec(line)):
                key, _, val = word.partition("=")
                env[key] = val
        for line in self.get("Service", "EnvironmentFile"):
            path = self.spec(line)
            optional = path.startswith("-")
            path = path.lstrip("-")
            if optional and not Path(path).exists():
                continue
            for raw in Path(path).read_text().splitlines():
                raw = raw.strip()
                if not raw or raw[0] in "#;":
                    continue
                key, sep, val = raw.partition("=")
                assert sep, f"{path}: not KEY=VALUE: {raw!r}"
                val = val.strip()
                if len(val) > 1 and val[0] == val[-1] and val[0] in "'\"":
                    val = val[1:-1]
                env[key.strip()] = val
        return env

    def argv(self, line: str, env: dict[str, str]) -> tuple[list[str], bool]:
        """An Exec*= line as systemd splits it (``${VAR}``, ``$VAR`` words); and whether a
        failure is ignored (the ``-`` prefix)."""
        line = self.spec(line).strip()
        ignore = line.startswith("-")
        line = line.lstrip("-")
        assert line[0] not in "@+!:", f"{self.name}: Exec prefix {line[0]!r} not handled"
        words: list[str] = []
        for word in shlex.split(line):
            whole = re.fullmatch(r"\$([A-Za-z_]\w*)", word)
            if whole:
                words += env.get(whole.group(1), "").split()
                continue
            words.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), word))
        assert words and Path(words[0]).is_absolute(), f"{self.name}: {line!r}: not a path"
        assert os.access(words[0], os.X_OK), f"{self.name}: {words[0]} is not executable here"
        return words, ignore


class UnitProcess(DaemonProcess):
    """A unit's ExecStart= as a long-running process, its output to a "journal" file.

    Stopping it stops its whole process group too (the worker processes under a
    ``dask worker`` nanny), as systemd does with a service's control group.
    """

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str, log: Path) -> None:
        self.log = log
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )

    def stop(self, sig: int | None = None, timeout: float = 10.0) -> int | None:
        code = super().stop(sig, timeout)
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # what is left of the group
        return code


@dataclass
class Layout:
    """The doc's files written under ``root``, and what was started from them."""

    root: Path
    doc: str  # after substitution
    files: dict[str, str]  # path under root -> content
    units: dict[str, Unit]
    daemons: Daemons
    journal: Path
    base_env: dict[str, str]
    started: dict[str, list[UnitProcess]] = field(default_factory=dict)

    def start(self, name: str, machines: int) -> None:
        unit = self.units[name]
        svc = unit.sections.get("Service", {})
        unknown = {k for s in unit.sections.values() for k in s} - RUN - CHECKED
        assert not unknown, f"{name}: directives the test does not know: {sorted(unknown)}"
        env = unit.environment(self.base_env)
        cwd = unit.spec((svc.get("WorkingDirectory") or [str(self.root)])[-1])
        assert Path(cwd).is_dir(), f"{name}: WorkingDirectory {cwd} does not exist"
        assert unit.type in ("simple", "exec", "oneshot"), f"{name}: Type={unit.type}"
        for machine in range(1, machines + 1):
            tag = f"{name}@{machine}"
            for line in unit.get("Service", "ExecStartPre") + (
                unit.get("Service", "ExecStart") if unit.type == "oneshot" else []
            ):
                argv, ignore = unit.argv(line, env)
                done = subprocess.run(
                    argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60
                )
                with open(self.journal / f"{tag}.log", "a") as fh:
                    fh.write(f"$ {shlex.join(argv)}\n{done.stdout}{done.stderr}")
                assert ignore or done.returncode == 0, (
                    f"{tag}: {shlex.join(argv)} exited {done.returncode}:\n"
                    f"{done.stdout}{done.stderr}"
                )
            if unit.type == "oneshot":
                continue
            (line,) = unit.get("Service", "ExecStart")
            argv, _ = unit.argv(line, env)
            proc = UnitProcess(argv, env, cwd, self.journal / f"{tag}.log")
            # First in the list: the daemons fixture stops them in reverse order of start.
            self.daemons.started.insert(0, proc)
            self.started.setdefault(name, []).append(proc)


def read_layout(root: Path, pg_url: str, daemons: Daemons) -> Layout:
    raw = DOC.read_text(encoding="utf-8")
    ports = {p: free_port() for p in ("8786", "8787", "8765")}
    assert len(set(ports.values())) == len(ports)
    doc = apply(substitutions(root, pg_url, ports), raw)
    files = file_blocks(doc)
    for path in files:
        assert path.startswith(f"{root}/"), f"{path}: a file outside the re-rooted folders"
    units = {
        Path(p).name: Unit(Path(p).name, parse_unit(text))
        for p, text in files.items()
        if "/systemd/system/" in p
    }
    assert units, "no systemd unit in the doc"
    home, user = found(r"useradd .*--home-dir (\S+).* (\w+)$", doc, "how to make the user").groups()
    journal = root / "journal"
    journal.mkdir()
    # What systemd gives a service of User=: no variable of the test's own environment.
    base_env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": home,
        "USER": user,
        "LOGNAME": user,
        "SHELL": "/usr/sbin/nologin",
    }
    return Layout(root, doc, files, units, daemons, journal, base_env)


# -- checks of what the test cannot run -----------------------------------------------------


def check_what_cannot_run(lay: Layout, bring_up: list[str]) -> None:
    doc, units = lay.doc, lay.units
    # The bring-up starts every unit, and every unit named anywhere has a file.
    assert sorted(set(bring_up)) == sorted(units), (bring_up, sorted(units))
    for name in systemctl_units(doc, ("enable", "start", "restart", "stop", "status")):
        assert name in units, f"systemctl names {name}, which has no unit file in the doc"
    for name in re.findall(r"journalctl -u\s+([\w@.-]+)", doc):
        assert name.removesuffix(".service") + ".service" in units, f"journalctl -u {name}"
    # Rolling upgrades migrate before they restart a scheduler.
    upgrades = section(doc, "Upgrades")
    oneshots = [n for n, u in units.items() if u.type == "oneshot"]
    assert oneshots, "no migration unit"
    migrate_at = min(upgrades.find(f"systemctl start {n}") for n in oneshots)
    restart_at = upgrades.find("systemctl restart legato-scheduler.service")
    assert 0 <= migrate_at < restart_at, "the upgrade must migrate before restarting schedulers"
    assert bring_up.index(oneshots[0]) < bring_up.index("legato-scheduler.service")
    # The user the units run as is made by the install commands; the venv they run is the
    # one the install commands fill, with the dask extra.
    for name, unit in units.items():
        for user in unit.get("Service", "User") + unit.get("Service", "Group"):
            assert user == lay.base_env["USER"], f"{name}: User/Group {user} is never created"
        for dep in (
            unit.get("Unit", "Wants") + unit.get("Unit", "After") + unit.get("Unit", "Requires")
        ):
            for d in dep.split():
                assert d.endswith(".target") or d in units, f"{name}: unknown unit {d}"
        for target in unit.get("Install", "WantedBy"):
            assert target.endswith(".target"), f"{name}: WantedBy={target}"
        if unit.type == "oneshot":
            assert not unit.get("Install", "WantedBy"), f"{name}: run by hand at each deploy"
        else:
            # "always": a Dask worker whose scheduler went away exits with status 0.
            assert unit.get("Service", "Restart") == ["always"], f"{name}: Restart="
            assert unit.get("Install", "WantedBy"), f"{name}: not enabled at boot"
    # The install commands fill a release's venv with legato[dask] and link it where the
    # units run it (that venv is this checkout's here).
    found(r'^\$R/venv/bin/pip install "legato\[dask\]', doc, "pip install legato[dask]")
    found(rf"^ln -sfn \$R/venv {re.escape(str(VENV))}$", doc, "where the venv is linked")
    # The Dask requirements the doc states are in the units.
    sched = " ".join(units["dask-scheduler.service"].get("Service", "Environment"))
    assert "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0" in sched
    assert "--nthreads 1" in units["dask-worker.service"].get("Service", "ExecStart")[-1]


# -- the REST API -----------------------------------------------------------------------------


#: The API token the doc's command made (set by the test before the API is called).
AUTH: dict[str, str] = {}


def launch(api: str, params: dict[str, Any]) -> str:
    made = httpx.post(
        f"{api}/pipelines/nightly/runs", json={"params": params}, timeout=10, headers=AUTH
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def detail(api: str, run_id: str) -> dict[str, Any]:
    got = httpx.get(f"{api}/runs/{run_id}", timeout=10, headers=AUTH)
    assert got.status_code == 200, got.text
    return dict(got.json())


def state(api: str, run_id: str) -> str:
    return str(detail(api, run_id)["run"]["state"])


def succeeded(api: str, ids: list[str], lay: Layout) -> Callable[[], bool]:
    def check() -> bool:
        for name, procs in lay.started.items():
            for p in procs:
                assert p.proc.poll() is None, f"{name} exited:\n{p.output()[-3000:]}"
        states = [state(api, i) for i in ids]
        assert not {"failed", "canceled"} & set(states), [detail(api, i) for i in ids]
        return all(s == "succeeded" for s in states)

    return check


def health(url: str, auth: dict[str, str]) -> dict[str, Any]:
    try:
        got = httpx.get(url, timeout=5, headers=auth)
    except httpx.TransportError:
        return {}
    return dict(got.json()) if got.status_code == 200 else {}


def worker_addresses(lay: Layout) -> dict[str, int]:
    """Address of each Dask worker process -> the machine (1, 2) it runs on."""
    out = {}
    for machine, proc in enumerate(lay.started["dask-worker.service"], 1):
        for address in re.findall(r"Start worker at:\s+(\S+)", proc.output()):
            out[address] = machine
    return out


# -- the test -------------------------------------------------------------------------------


def test_the_documented_layout_runs_and_survives_a_scheduler_dying(
    tmp_path: Path, pg_url: str, daemons: Daemons, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    lay = read_layout(root, pg_url, daemons)
    bring_up = systemctl_units(section(lay.doc, "Bring-up"), ("enable", "start"))
    check_what_cannot_run(lay, bring_up)

    # The release folder and the project's link, as the install commands make them; the
    # files; the mount point of the shared file system; the legato user's home; and the
    # project's code next to its legato.toml.
    release = Path(found(r"^R=(\S+)$", lay.doc, "the release folder").group(1))
    link = Path(found(r"^ln -sfn \$R/project (\S+)$", lay.doc, "the project link").group(1))
    (release / "project").mkdir(parents=True)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(release / "project")
    for path, text in lay.files.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    (toml_path,) = [Path(p) for p in lay.files if p.endswith("/legato.toml")]
    config = tomllib.loads(toml_path.read_text())
    (module,) = config["project"]["modules"]
    (toml_path.parent / f"{module}.py").write_text(PIPELINE, encoding="utf-8")
    for folder in (config["results"]["url"], config["logs"]["dir"]):
        Path(folder).parent.mkdir(parents=True, exist_ok=True)
    Path(lay.base_env["HOME"]).mkdir(parents=True, exist_ok=True)

    # The web machine's certificate, as the doc makes one to try the layout (run as the
    # test's user: there is no legato user here).
    certs = found(r"^sudo -u \w+ (\S+/legato certs dev .*)$", lay.doc, "the TLS certificate")
    made = subprocess.run(shlex.split(certs.group(1)), capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stdout + made.stderr

    for name in bring_up:
        lay.start(name, MACHINES.get(name, 1))

    # The monitoring's token, made as the doc says (the environment file gives the store).
    make = r"^sudo -u \w+ env \$\(cat (\S+)\) (\S+/legato tokens create .*)$"
    env_file, command = found(make, lay.doc, "how to make an API token").groups()
    env = dict(os.environ)
    for line in Path(env_file).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    made = subprocess.run(
        shlex.split(command), capture_output=True, text=True, timeout=60, env=env
    )
    assert made.returncode == 0, made.stdout + made.stderr
    monitoring = {"Authorization": f"Bearer {made.stdout.strip()}"}
    # The test launches runs too: an operator's token, made the same way.
    assert "--role viewer" in command and "--name monitoring" in command
    ops = command.replace("--role viewer", "--role operator").replace("monitoring", "ops")
    made = subprocess.run(shlex.split(ops), capture_output=True, text=True, timeout=60, env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    monkeypatch.setitem(AUTH, "Authorization", f"Bearer {made.stdout.strip()}")

    # The doc's health check, over HTTPS trusting the CA it names: both schedulers alive.
    check = r"curl --cacert (\S+) -H \"Authorization: Bearer \$TOKEN\"\s+(https://\S+/api/v1/health)"
    ca, url = found(check, lay.doc, "how to check health").groups()
    monkeypatch.setenv("SSL_CERT_FILE", ca)  # what the doc says clients trust the CA with
    api = url.removesuffix("/health")
    schedulers = lay.started["legato-scheduler.service"]

    def both_alive() -> bool:
        for p in schedulers + lay.started["legato-web.service"]:
            assert p.proc.poll() is None, f"exited:\n{p.output()[-3000:]}"
        daemons = health(url, monitoring).get("daemons", [])
        pids = {d["pid"] for d in daemons if d["kind"] == "scheduler"}
        return pids == {p.pid for p in schedulers}

    wait_for(both_alive, timeout=60, what="both schedulers in /api/v1/health")
    report = health(url, monitoring)
    assert report["status"] == "ok" and report["store"] == "ok", report

    # Runs launched through the API succeed, every attempt on a worker of the Dask
    # cluster (both worker machines joined it), the values passing through the shared
    # result store, the logs through the shared logs folder to the web server.
    ids = [launch(api, {"n": n, "pause": 0.5}) for n in (2, 3, 4)]
    wait_for(succeeded(api, ids, lay), timeout=60, what="three runs succeeded")
    workers = worker_addresses(lay)
    (dask_scheduler,) = lay.started["dask-scheduler.service"]
    joined = set(re.findall(r"Register worker addr: (\S+)", dask_scheduler.output()))
    assert {workers[a] for a in joined} == {1, 2}, (joined, workers)
    for run_id, n in zip(ids, (2, 3, 4), strict=True):
        got = detail(api, run_id)
        assert {a["task_key"] for a in got["attempts"]} == {"extract", "transform", "load"}
        for a in got["attempts"]:
            assert a["outcome"] == "succeeded", a
            assert a["worker"] in joined, (a, joined)
        log = httpx.get(
            f"{api}/runs/{run_id}/tasks/load/attempts/1/log", timeout=10, headers=AUTH
        )
        assert f"loaded total {sum(x * x for x in range(n))}" in log.text, log.text

    # A scheduler machine dies while it drives a run: the other one takes the run over.
    slow = launch(api, {"n": 3, "pause": 3.0})

    def transforming() -> bool:
        tasks = {t["task_key"]: t["state"] for t in detail(api, slow)["tasks"]}
        return tasks.get("transform") == "running"

    wait_for(transforming, timeout=30, what="the slow run's transform running")
    (victim,) = [p for p in schedulers if f"started run {slow}" in p.output()]
    (survivor,) = [p for p in schedulers if p is not victim]
    victim.kill()
    assert not process_alive(victim.pid)
    schedulers.remove(victim)  # lay.started's list: no longer expected to be running
    after = launch(api, {"n": 5})
    wait_for(succeeded(api, [slow, after], lay), timeout=45, what="runs after the kill")
    assert f"resuming run {slow}" in survivor.output(), survivor.output()
    transform = [a for a in detail(api, slow)["attempts"] if a["task_key"] == "transform"]
    assert [a["outcome"] for a in transform] == ["interrupted", "succeeded"], transform
    assert transform[-1]["worker"] in worker_addresses(lay)
    assert f"started run {after}" in survivor.output()
