"""The daemon: scheduler tick, trigger listeners, the web app (API, UI, webhooks) and run drivers
in one process.

One thread (the caller's) runs the loop: tick the scheduler when something may be due, start
queued runs while there is room, and drive every started run through one Conductor. Listener
threads and the web server only record runs and wake the loop; the loop sleeps inside the
executor's wait, which any of them can interrupt, so an event reaches its run's first task
without waiting for a polling interval.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from legato.daemon.alert_thread import AlertThread
from legato.daemon.lineage_thread import LineageThread
from legato.daemon.retention_thread import RetentionThread
from legato.observability import metrics
from legato.scheduler.listeners import Listener, make_listener
from legato.scheduler.tick import Scheduler
from legato.services.actor import Actor
from legato.services.catalog import HEARTBEAT_EVERY
from legato.services.owner import this_owner
from legato.services.service_errors import store_full, store_unavailable

if TYPE_CHECKING:
    from legato.daemon.watch import CodeWatcher
    from legato.domain.records import RunRecord
    from legato.security.tls import TlsFiles
    from legato.server.serve import Served
    from legato.services.door import Door
    from legato.services.driving import Fleet

log = logging.getLogger("legato.daemon")

#: Runs driven by processes that died are looked for this often (their leases run out).
ORPHAN_CHECK = timedelta(seconds=5)
#: Runs queued by other processes (`legato submit`) cannot wake this one: look this often.
QUEUE_POLL = timedelta(seconds=1)
#: The longest the loop sleeps when nothing is due: a safety net, not the wake-up path.
IDLE_WAIT = 5.0
#: While the store is unreachable, it is tried again this often.
STORE_RETRY = timedelta(seconds=2)
#: Once it is back, runs whose leases ran out meanwhile are taken over only after this long.
ORPHAN_GRACE = timedelta(seconds=3)
#: The project's files are looked at (stat) this often for changed code.
CODE_CHECK = timedelta(seconds=0.5)
#: When a watcher hears saves at once (`legato dev`), the stat poll is a slower safety net
#: (for code whose folder appeared after the watcher last looked).
WATCHED_CODE_CHECK = timedelta(seconds=5)
#: How often a daemon removes the heartbeats of daemons long silent (killed, machine lost).
SWEEP_EVERY = timedelta(minutes=1)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class DaemonOptions:
    """What the daemon runs: the scheduler, the run drivers, the web app."""

    schedule: bool = True
    drive: bool = True
    web: bool = True
    host: str | None = None
    port: int | None = None
    max_runs: int | None = None
    tls: TlsFiles | None = None  # None: [web] tls_cert and tls_key, if set
    insecure_no_tls: bool = False  # serve plain HTTP beyond loopback (a proxy terminates TLS)
    on_event: Callable[[str], None] | None = None  # a line per notable event (CLI output)
    # (host, port) to serve /metrics on alone (`legato scheduler --metrics-port`).
    metrics_at: tuple[str, int] | None = None
    # `legato dev`: watch the code's folders for saves instead of polling them, and queue a
    # run of each of these pipelines at start and whenever its code version changes.
    watch: bool = False
    launch: tuple[str, ...] = ()
    launch_params: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class Daemon:
    """Runs until :meth:`stop` (or SIGINT/SIGTERM when started from the main thread)."""

    def __init__(self, door: Door, options: DaemonOptions | None = None) -> None:
        self.opts = options or DaemonOptions()
        self.owner = this_owner()
        # The daemon acts as itself: runs it makes or starts are the scheduler's doing.
        self.door = door.as_actor(Actor.scheduler(self.owner), on_run=self.notify)
        self.scheduler = Scheduler(self.door.automation)
        self.listeners: list[Listener] = []
        self.fleet: Fleet | None = None  # the runs this daemon drives
        self._stop = threading.Event()
        self._poked = threading.Event()  # new runs queued: start them
        self._tick_due = False  # a run finished: upstream triggers and backfills may be due
        self._idle = threading.Event()  # wakes the loop when it drives no runs
        self._served: Served | None = None
        self._metrics_served: Served | None = None
        self.metrics_url: str | None = None
        self._web_socket: socket.socket | None = None
        self._tls: TlsFiles | None = None
        self.url: str | None = None
        self._down_since: datetime | None = None  # when the store stopped answering
        self._reloaded = threading.Event()  # the code was loaded again (by any thread)
        self._code_saved = threading.Event()  # the watcher heard a code file change
        self.watcher: CodeWatcher | None = None
        self._launched: dict[str, str] = {}  # pipeline -> code version last launched
        self._next_sweep: datetime | None = None  # of silent daemons' heartbeats
        self.alerts: AlertThread | None = None
        self.retention: RetentionThread | None = None
        self.lineage: LineageThread | None = None  # with [lineage] only
        self.ready = threading.Event()

    # -- control --------------------------------------------------------------------------

    def notify(self, run: RunRecord | None = None) -> None:
        """Something changed (a run was queued): wake the loop now. Thread-safe."""
        if run is not None:
            self._say(f"queued run {run.id} of {run.pipeline} ({_origin(run)})", run)
        self._poked.set()
        self._idle.set()
        if self.fleet is not None:
            self.fleet.wake()

    def code_saved(self) -> None:
        """A code file changed on disk: look at the code now. Thread-safe."""
        self._code_saved.set()
        self.notify()

    def stop(self) -> None:
        """Ask the loop to end. Thread-safe and signal-safe."""
        self._stop.set()
        self.notify()

    def _say(self, line: str, run: RunRecord | None = None) -> None:
        # A line about a run carries it as fields of its own (JSON logs), not only in words.
        fields = None if run is None else {"run_id": run.id, "pipeline": run.pipeline}
        log.info(line, extra=fields)
        if self.opts.on_event is not None:
            self.opts.on_event(line)

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Start everything and loop until stopped; then stop everything."""
        door = self.door
        settings = door.project.settings()
        door.alerts.rules()  # a wrong [alerts] or [channels] table stops the start, said once
        door.lineage.check()  # so does [lineage] without its client library
        restore = self._install_signals()
        metrics.set_process(role=self._kind, process=self.owner)
        try:
            if self.opts.web:
                self._bind_web()  # a port in use stops the daemon before anything starts
            if self.opts.drive and door.presence.one_seat_only():
                door.presence.take_seat(self.owner, self._kind, door.clock())
            if self.opts.drive:
                self.fleet = door.fleet(
                    owner=self.owner,
                    max_runs=self.opts.max_runs or settings.max_runs,
                    say=self._say,
                )
                self.fleet.start()
            door.project.apply_pools()
            door.project.register()
            door.project.on_reload(self._on_reload)
            if self.opts.watch:
                self._start_watcher()
            metrics.prime(door.project.pipelines())
            door.automation.ensure_triggers()
            if self.opts.schedule:
                self._start_listeners()
            if self.opts.web:
                self._start_web()
            if self.opts.metrics_at is not None:
                self._start_metrics(*self.opts.metrics_at)
            self._beat(door.clock())
            self.alerts = AlertThread(door, self.owner, lambda: self.url)
            self.alerts.start()
            if self.opts.schedule:  # `legato web` alone leaves it to the schedulers
                self.retention = RetentionThread(door, self._say)
                self.retention.start()
            if settings.lineage is not None:
                self.lineage = LineageThread(door, self.owner)
                self.lineage.start()
            self._launch_changed()
            self.ready.set()
            self._loop()
        finally:
            self._shutdown()
            restore()

    def _loop(self) -> None:
        clock = self.door.clock
        next_tick = clock()
        next_orphans = clock()
        next_look = clock()
        next_beat = clock() + HEARTBEAT_EVERY
        code_check = WATCHED_CODE_CHECK if self.opts.watch else CODE_CHECK
        next_code = clock() + code_check
        look = True  # whether queued runs may be startable: checked only when that changes
        while not self._stop.is_set():
            now = clock()
            try:
                if now >= next_code or self._code_saved.is_set():
                    self._code_saved.clear()
                    self.door.project.refresh()  # a change is told through _on_reload
                    next_code = now + code_check
                if self._reloaded.is_set():
                    self._reloaded.clear()
                    metrics.prime(self.door.project.pipelines())
                    if self.alerts is not None:
                        self.alerts.wake()  # the rules may have changed: read them now
                    self.door.automation.ensure_triggers()  # new triggers' state and tokens
                    if self.opts.schedule:
                        self._sync_listeners()
                    self._launch_changed()
                    look = True
                if self._poked.is_set():
                    self._poked.clear()
                    look = True
                    if self.fleet is not None:
                        # An event queued a run: start it before a tick can delay it.
                        self.fleet.start_queued(now)
                if self.opts.schedule and (self._tick_due or now >= next_tick):
                    self._tick_due = False
                    if now >= next_tick:  # due by the clock, not woken by a finished run
                        late = (now - next_tick).total_seconds()
                        metrics.TICK_LATENESS.observe(max(0.0, late))
                    began = time.perf_counter()
                    result = self.scheduler.tick(now)
                    metrics.TICK_SECONDS.observe(time.perf_counter() - began)
                    metrics.TICK_LAST.set(now.timestamp())
                    for run in result.created:
                        self._say(f"queued run {run.id} of {run.pipeline} ({_origin(run)})", run)
                    look = look or bool(result.created)
                    next_tick = result.next_at or now + timedelta(seconds=IDLE_WAIT)
                if now >= next_beat:
                    self._beat(now)
                    next_beat = now + HEARTBEAT_EVERY
                if self.fleet is not None:
                    if now >= next_orphans:
                        self.fleet.adopt_orphans(now)
                        next_orphans = now + ORPHAN_CHECK
                    if look or now >= next_look:
                        self.fleet.start_queued(now)
                        look = False
                        next_look = now + QUEUE_POLL
                if self._down_since is not None:
                    self._say(f"the store is back after {(now - self._down_since).seconds} s")
                    self._down_since = None
            except Exception as exc:
                if not store_unavailable(exc):
                    self._raise_as_full(exc)  # a full disk is no outage
                    raise
                # PostgreSQL restarting, the network gone: wait and try again. Runs being
                # driven go on; their drivers keep what they cannot write yet.
                if self._down_since is None:
                    self._down_since = now
                    self._say(f"the store is unreachable ({_first_line(exc)}); waiting for it")
                retry = now + STORE_RETRY
                next_tick, next_look = max(next_tick, retry), max(next_look, retry)
                # Once it is back, drivers first renew their leases before anyone takes
                # over runs whose leases ran out meanwhile.
                next_orphans = max(next_orphans, retry + ORPHAN_GRACE)
                self._tick_due = False
                look = True
            wait = max(0.0, min((min(next_tick, next_beat, next_code) - clock()).total_seconds(),
                                IDLE_WAIT))
            if self.opts.drive:
                wait = min(wait, (min(next_orphans, next_look) - clock()).total_seconds())
            if self._poked.is_set() or self._stop.is_set() or self._tick_due:
                wait = 0.0
            if self.fleet is not None:
                try:
                    finished = self.fleet.step(max(0.0, wait))
                except Exception as exc:
                    # The conductor lets only a full disk out: its runs are left resumable.
                    self._raise_as_full(exc)
                    raise
                if finished and self.alerts is not None:
                    self.alerts.run_finished()  # its alerts go out now, not at the next look
                if finished and self.lineage is not None:
                    self.lineage.wake()
                for run in finished:
                    self._say(f"run {run.id} of {run.pipeline} {run.state}", run)
                    # Downstream triggers and backfills may be due: tick now. A run nothing
                    # follows does not (a tick per run was most of a short run's cost).
                    self._tick_due = self._tick_due or self.scheduler.follows(run)
                    look = True  # and a place to drive another run is free
            else:
                self._idle.wait(max(0.0, wait))
                self._idle.clear()

    def _raise_as_full(self, exc: Exception) -> None:
        # A full disk stops the daemon with one line saying what to free.
        full = store_full(exc, self.door.project.settings().database_url)
        if full is not None:
            raise full from exc

    def _start_watcher(self) -> None:
        from legato.daemon.watch import CodeWatcher

        self.watcher = CodeWatcher(self.door.project.code_folders, self.code_saved)
        self.watcher.start()
        self.watcher.ready.wait(5)
        n = len(self.watcher.watching)
        self._say(f"watching {n} folder{'s' if n != 1 else ''} of code: saves reload at once")

    def _launch_changed(self) -> None:
        # `legato dev --run`: a run of each pipeline whose code this daemon has not run yet.
        # A module that fails to load keeps its last good pipelines, so no run of those.
        from legato.services.service_errors import ServiceError

        pipelines = self.door.project.pipelines()
        for name in self.opts.launch:
            pipe = pipelines.get(name)
            if pipe is None or self._launched.get(name) == pipe.code_version:
                continue
            self._launched[name] = pipe.code_version
            try:
                run = self.door.automation.submit(name, self.opts.launch_params, from_text=True)
            except ServiceError as exc:
                self._say(f"could not launch {name}: {exc}")
                continue
            self.door.queued(run)

    def _on_reload(self, line: str) -> None:
        self._say(line)
        self._reloaded.set()
        self._tick_due = True  # schedules of new or changed pipelines
        # Another thread (the API's) may have reloaded: the loop acts on it now, not at its
        # next timer (`legato dev --run` launches the edit's run from there).
        self.notify()

    # -- listeners and the web server -------------------------------------------------

    def _start_listeners(self) -> None:
        for pipe in self.door.project.pipelines().values():
            for trig in pipe.automation.triggers:
                listener = make_listener(self.door.automation, pipe, trig, self.notify)
                if listener is not None:
                    listener.start()
                    self.listeners.append(listener)

    def _sync_listeners(self) -> None:
        # After a reload: a listener per trigger of the new code. One whose trigger is gone
        # or was changed stops; a new or changed trigger gets a new listener. Runs are made
        # by unique keys, so the old and the new listener overlapping makes no second run.
        wanted = {
            (pipe.name, trig.name): trig
            for pipe in self.door.project.pipelines().values()
            for trig in pipe.automation.triggers
        }
        for listener in list(self.listeners):
            key = (listener.pipe.name, listener.trigger.name)
            if wanted.get(key) != listener.trigger:
                listener.stop()
                listener.join(timeout=5)
                self.listeners.remove(listener)
                self._say(f"stopped listening for {key[0]}/{key[1]} (its trigger changed)")
        have = {(lis.pipe.name, lis.trigger.name) for lis in self.listeners}
        for pipe in self.door.project.pipelines().values():
            for trig in pipe.automation.triggers:
                if (pipe.name, trig.name) in have:
                    continue
                new = make_listener(self.door.automation, pipe, trig, self.notify)
                if new is not None:
                    new.start()
                    self.listeners.append(new)
                    self._say(f"listening for {pipe.name}/{trig.name}")

    def _web_address(self) -> tuple[str, int]:
        settings = self.door.project.settings()
        host = self.opts.host or settings.web_host
        return host, self.opts.port if self.opts.port is not None else settings.web_port

    def _bind_web(self) -> None:
        from legato.server.serve import bind_socket, check_exposure, check_tls, choose_tls

        host, port = self._web_address()
        self._tls = self.opts.tls or choose_tls(self.door.project.settings())
        check_exposure(host, tls=self._tls is not None, insecure=self.opts.insecure_no_tls)
        if self._tls is not None:
            check_tls(self._tls)
        self._web_socket = bind_socket(host, port)

    def _start_web(self) -> None:
        from legato.server.app import create_app, sign_in_url
        from legato.server.hosts import served_hosts
        from legato.server.serve import serve_in_thread

        host, port = self._web_address()
        assert self._web_socket is not None
        port = self._web_socket.getsockname()[1]  # port 0 was any free port
        hosts = served_hosts(self.door.project.settings().public_url, host, port)
        app = create_app(self.door, allowed_hosts=hosts)
        self._served = serve_in_thread(
            app, host, port, stop=self._stop, sock=self._web_socket, tls=self._tls
        )
        # Behind a proxy only the public address is answered to: that is the one to open.
        self.url = self.door.project.settings().public_url or self._served.url
        self._say(f"web UI at {self.url}/ (API at {self.url}/api/v1, docs at {self.url}/api/docs)")
        self._say(f"sign in: {sign_in_url(self.door, self.url)}")
        self._say(f"webhooks at {self.url}/api/v1/hooks/<pipeline>/<trigger>")

    def _start_metrics(self, host: str, port: int) -> None:
        from legato.server.hosts import served_hosts
        from legato.server.metrics_page import METRICS_PATH, metrics_app
        from legato.server.serve import bind_socket, check_exposure, serve_in_thread

        # Plain HTTP, as Prometheus scrapes by default: only on loopback unless told.
        check_exposure(host, tls=False, insecure=self.opts.insecure_no_tls)
        sock = bind_socket(host, port)
        port = sock.getsockname()[1]
        app = metrics_app(self.door, allowed_hosts=served_hosts(None, host, port))
        self._metrics_served = serve_in_thread(app, host, port, stop=self._stop, sock=sock)
        self.metrics_url = f"{self._metrics_served.url}{METRICS_PATH}"
        self._say(f"metrics at {self.metrics_url}")

    # -- heartbeats -----------------------------------------------------------------------

    @property
    def _kind(self) -> str:
        return "up" if self.opts.web else "scheduler"

    def _beat(self, now: datetime) -> None:
        from legato.domain.records import StoreReplaced

        try:
            self.door.presence.beat(self.owner, self._kind, self.url, now)
        except StoreReplaced:
            # Going on would drive runs in a file nobody sees while another daemon drives
            # the same schedules on the new one: stop, loudly (the command prints why).
            raise
        except Exception as exc:  # a missed beat must not stop the runs
            log.warning("heartbeat failed: %s", exc)
        if self._next_sweep is None or now >= self._next_sweep:
            self._next_sweep = now + SWEEP_EVERY
            self._sweep(now)

    def _sweep(self, now: datetime) -> None:
        try:
            gone = self.door.presence.sweep(now)
        except Exception as exc:  # housekeeping must not stop the runs either
            log.warning("could not remove silent daemons: %s", exc)
            return
        for d in gone:
            self._say(
                f"removed daemon {d.id} (legato {d.kind}, pid {d.pid} on {d.host}): "
                f"silent since {d.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
            )

    # -- stopping -------------------------------------------------------------------------

    def _shutdown(self) -> None:
        try:
            self.door.presence.forget(self.owner)
        except Exception as exc:  # the store may be what failed
            log.warning("could not remove this daemon's heartbeat: %s", exc)
        for listener in self.listeners:
            listener.stop()
        if self.watcher is not None:
            self.watcher.stop()
        if self.alerts is not None:
            self.alerts.stop()
        if self.retention is not None:
            self.retention.stop()
        if self.lineage is not None:
            self.lineage.stop()
        if self._served is not None:
            self._served.server.should_exit = True
        if self.fleet is not None:
            self.fleet.shutdown()
        for listener in self.listeners:
            listener.join(timeout=5)
        if self.alerts is not None:
            self.alerts.join(timeout=15)  # a send in flight ends within its timeout
        if self.retention is not None:
            self.retention.join(timeout=15)  # after the batch in flight
        if self.lineage is not None:
            self.lineage.join(timeout=15)
        if self._metrics_served is not None:
            self._metrics_served.stop()
        if self._served is not None:
            self._served.stop()
        elif self._web_socket is not None:  # bound, but something failed before serving
            self._web_socket.close()

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: object) -> None:
            self._say("stopping")
            self.stop()

        for s in old:
            signal.signal(s, handler)

        def restore() -> None:
            for s, h in old.items():
                signal.signal(s, h)

        return restore


def _origin(run: RunRecord) -> str:
    # A re-run has no origin of its own: say what it re-runs.
    if run.origin:
        return run.origin
    if run.parent_run_id:
        return f"re-run of {run.parent_run_id}"
    return "manual"
