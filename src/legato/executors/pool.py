"""The driver's side of the worker processes: the zygote's handle and the pool of workers.

Not thread-safe: only the driver's loop (the thread calling the executor) uses it.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import selectors
import signal
import socket
import time
from collections.abc import Collection, Sequence
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from legato.executors.interface import BATCH_LOST, AttemptOutcome, AttemptSpec
from legato.executors.recycle import Retiring
from legato.executors.scratch_log import salvage
from legato.executors.zygote import (
    MSG_MAX,
    WorkerConfig,
    describe_exit,
    fork_zygote,
    kill_worker,
    send_msg,
)
from legato.security.files import open_private

log = logging.getLogger(__name__)

AttemptKey = tuple[str, str, int]  # run_id, task_key, attempt
SPAWN_TIMEOUT = 30.0  # seconds to wait for the zygote to answer a spawn request
_EXIT_STATUS_WAIT = 1.0  # seconds to wait for a dead worker's exit status
_SPAWN_RETRY = 1.0  # seconds before asking again after a failed fork

# Descriptors held by live executors. A zygote closes those of *other* executors: a copy
# of a worker's socket kept there would hide that worker's death (no EOF) from its driver.
owned_fds: set[int] = set()


class ExecutorError(RuntimeError):
    """The executor cannot go on (its fork server died, no slot was free...)."""


def attempt_key(spec: AttemptSpec) -> AttemptKey:
    return (spec.run_id, spec.task_key, spec.attempt)


def note(path: str, text: str) -> None:
    """Append a line to an attempt's log from the driver (why it was killed or died)."""
    with suppress(OSError), open(
        open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC), "a", encoding="utf-8"
    ) as f:
        f.write(f"legato: {text}\n")


def _salvage(spec: AttemptSpec, pid: int) -> None:
    """Publish what the killed (or dead) worker ``pid`` wrote for ``spec`` to its log."""
    try:
        salvage(spec.log_path, pid)
    except OSError as exc:
        note(spec.log_path, f"the attempt's output could not be kept: {exc}")


def outcome(spec: AttemptSpec, status: str, worker: str, **fields: Any) -> AttemptOutcome:
    return AttemptOutcome(run_id=spec.run_id, task_key=spec.task_key, attempt=spec.attempt,
                          status=status, worker=worker, **fields)


class ForkServer:
    """The driver's handle on the zygote: spawn requests and the messages that come back."""

    def __init__(
        self,
        config: WorkerConfig,
        close_in_child: Collection[int] = (),
        *,
        close_sockets: bool = False,
    ) -> None:
        self.pid, self.sock = fork_zygote(config, close_in_child, close_sockets=close_sockets)
        self.alive = True
        self._poller = select.poll()
        self._poller.register(self.sock, select.POLLIN)

    def fileno(self) -> int:
        return self.sock.fileno()

    def request_spawn(self) -> bool:
        """Ask for one more worker; the answer comes later through ``read()``."""
        try:
            send_msg(self.sock, ("spawn",))
            return True
        except OSError:
            self.alive = False
            return False

    def poll(self, timeout: float) -> bool:
        """Whether a message is ready within ``timeout`` seconds."""
        return bool(self._poller.poll(max(0, int(timeout * 1000))))

    def read(self) -> tuple[Any, ...] | None:
        """The next message ("spawned" ones carry a Connection); None once the zygote is gone."""
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, MSG_MAX, 1)
        except OSError:
            data, fds = b"", []
        if not data:
            for fd in fds:
                os.close(fd)
            self.alive = False
            return None
        msg: tuple[Any, ...] = pickle.loads(data)
        if msg[0] == "spawned":
            return ("spawned", msg[1], Connection(fds[0]))
        return msg

    def stop(self, timeout: float = 5.0) -> None:
        """Make the zygote kill its workers and exit; reap it. Idempotent."""
        if self.pid == 0:
            return
        with suppress(OSError):
            send_msg(self.sock, ("quit",))
        self.sock.close()
        self.alive = False
        deadline = time.monotonic() + timeout
        while True:
            try:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            if time.monotonic() > deadline:
                with suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                with suppress(ChildProcessError):
                    os.waitpid(self.pid, 0)
                break
            time.sleep(0.002)
        self.pid = 0


@dataclass(eq=False)
class Worker:
    pid: int
    conn: Connection
    label: str
    spec: AttemptSpec | None = None  # the attempt it runs (a batch's first)
    batch: tuple[AttemptSpec, ...] = ()  # the attempts of the batch it runs, if it runs one

    def specs(self) -> tuple[AttemptSpec, ...]:
        """The attempts it runs now."""
        if self.batch:
            return self.batch
        return () if self.spec is None else (self.spec,)


class ProcessPool:
    """``size`` worker processes, forked by the zygote, each running one attempt at a time.

    Creating it forks the zygote; ``start(sel)`` then registers the sockets in the
    executor's selector (whose events come back through ``on_event``) and pre-warms.
    """

    def __init__(self, size: int, config: WorkerConfig, *, close_sockets: bool = False) -> None:
        self.size = size
        self.zygote = ForkServer(config, close_in_child=set(owned_fds), close_sockets=close_sockets)
        owned_fds.add(self.zygote.fileno())
        self.by_pid: dict[int, Worker] = {}
        self.idle: list[Worker] = []
        self.busy: dict[AttemptKey, Worker] = {}
        self.ready: list[AttemptOutcome] = []  # outcomes produced, for the executor to take
        self._sel: selectors.BaseSelector | None = None
        self._pending = 0  # spawn requests not answered yet
        self._exits: dict[int, int] = {}  # wait statuses of our workers, from the zygote
        self._spawn_after = 0.0
        self._closed = False
        self.retired = False  # another pool took over (see retire)

    def start(self, sel: selectors.BaseSelector, *, wait: bool = True) -> None:
        """Register with the executor's selector and ask for ``size`` workers.

        With ``wait=False`` the workers are forked while the caller goes on (the first
        submit waits for one if it has to): start-up work overlaps on another CPU.
        """
        self._sel = sel
        sel.register(self.zygote.sock, selectors.EVENT_READ, self.zygote)
        self.top_up()
        if not wait:
            return
        deadline = time.monotonic() + SPAWN_TIMEOUT
        while self._pending and self.zygote.alive and time.monotonic() < deadline:
            if self.zygote.poll(deadline - time.monotonic()):
                self._read_zygote()
        if not self.by_pid:
            raise ExecutorError("the local executor could not start its worker processes")

    def free(self) -> int:
        """Idle workers plus those being forked (submit waits for the fork to finish)."""
        self.top_up()
        return len(self.idle) + self._pending

    def submit(self, spec: AttemptSpec) -> str:
        return self._send(spec, (spec,))

    def submit_batch(self, specs: Sequence[AttemptSpec]) -> str:
        """Send ``specs`` (elements of one mapped node) to one worker, which runs them in
        turn and sends back all their outcomes at once."""
        return self._send(list(specs), tuple(specs))

    def _send(self, job: AttemptSpec | list[AttemptSpec], specs: tuple[AttemptSpec, ...]) -> str:
        """Send ``job`` (one attempt, or a batch as a list) to an idle worker."""
        while True:
            if not self.idle:
                self._await_spawn()
            w = self.idle.pop()  # the most recently used: its caches are warm
            try:
                w.conn.send(job)
            except OSError:  # died while idle; its EOF was not seen yet
                self._drop(w)
                self.top_up()
                continue
            except Exception as exc:  # a spec does not pickle; nothing was sent
                self.idle.append(w)
                error = f"the attempt cannot be sent to a worker: {exc}"
                self.ready.extend(outcome(s, "failed", w.label, retryable=False, error=error)
                                  for s in specs)
                return w.label
            w.spec, w.batch = specs[0], (specs if isinstance(job, list) else ())
            for spec in specs:
                self.busy[attempt_key(spec)] = w
            return w.label

    def kill(self, key: AttemptKey) -> tuple[AttemptSpec, str, list[AttemptSpec]] | None:
        """SIGKILL the worker running ``key``; returns its spec, its label and the other
        attempts of its batch (stopped too), None if not running."""
        w = self.busy.get(key)
        if w is None or w.spec is None:
            return None
        specs = w.specs()
        spec = next(s for s in specs if attempt_key(s) == key)
        kill_worker(w.pid)
        self._drop(w)
        _salvage(spec, w.pid)
        self.top_up()
        return spec, w.label, [s for s in specs if s is not spec]

    def on_event(self, data: Any) -> None:
        """Handle a selector event of ours: a message of the zygote or a worker's outcome."""
        if data is self.zygote:
            self._read_zygote()
        elif isinstance(data, Worker) and self.by_pid.get(data.pid) is data:
            self._read_worker(data)  # (unless dropped by an earlier event of the batch)

    def check_alive(self) -> None:
        """Raise ExecutorError once no worker is left and none can be forked."""
        if not self.zygote.alive and not self.by_pid and not self._closed:
            raise ExecutorError("the worker fork server (zygote) died; restart the driver")

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for w in list(self.by_pid.values()):
            spec = w.spec
            if spec is not None:
                kill_worker(w.pid)  # its attempt is dropped: no need to wait for it
            self._drop(w)  # closing its socket makes an idle worker close up and exit
            if spec is not None:
                _salvage(spec, w.pid)
        owned_fds.discard(self.zygote.fileno())
        if self._sel is not None:
            with suppress(KeyError, ValueError):
                self._sel.unregister(self.zygote.sock)
        self.zygote.stop()  # kills busy workers, reaps them all and exits; we reap it
        self._pending = 0

    # -- internals -----------------------------------------------------------------------

    def _read_worker(self, w: Worker) -> None:
        try:
            msg = w.conn.recv()
        except (EOFError, OSError):
            self._died(w)
            return
        specs = w.specs()
        if not specs:
            return  # nothing is expected from an idle worker
        w.spec, w.batch = None, ()
        for spec in specs:
            del self.busy[attempt_key(spec)]
        self.idle.append(w)
        if isinstance(msg, Retiring):  # its last reply: it leaves, a fresh one replaces it
            log.info("worker %s is replaced: it %s", w.label, msg.why)
            msg = msg.reply
            self._drop(w)
            self.top_up()
        elif len(self.by_pid) > self.size:  # a retiring pool (size 0) keeps no idle worker
            self._drop(w)
        if isinstance(msg, str):  # the worker could not run the spec at all
            self.ready.extend(outcome(s, "failed", w.label, error=msg, retryable=False)
                              for s in specs)
        elif isinstance(msg, list):  # a batch's outcomes
            self.ready.extend(msg)
        else:
            self.ready.append(msg)

    def _died(self, w: Worker) -> None:
        spec = w.spec
        batch = w.batch
        # Whatever the task started goes too. Without an exit status yet, the worker is
        # either still being torn down (the kill is a no-op then) or the task closed the
        # socket and lives on (it must go).
        kill_worker(w.pid, exited=w.pid in self._exits)
        status = self._exit_status(w.pid) if spec is not None else None
        self._drop(w)
        self.top_up()
        if spec is None:
            return
        error = describe_exit(status)
        if batch:
            # Which element it was running is not known, and none of the batch's results
            # was sent: each element runs again, on its own (see BATCH_LOST).
            lost = f"{error}, in the middle of a batch; it runs again on its own"
            self.ready.extend(outcome(s, "interrupted", w.label, error=lost, retryable=True,
                                      extra={BATCH_LOST: True}) for s in batch)
            return
        _salvage(spec, w.pid)
        note(spec.log_path, error)
        extra: dict[str, Any] = {}
        if status is not None and os.WIFSIGNALED(status):
            extra["signal"] = os.WTERMSIG(status)
        elif status is not None and os.WIFEXITED(status):
            extra["exit_code"] = os.WEXITSTATUS(status)
        self.ready.append(outcome(spec, "crashed", w.label, error=error, retryable=True,
                                  extra=extra))

    def _exit_status(self, pid: int) -> int | None:
        # The zygote reaps a worker within moments of its death and tells us how it ended.
        deadline = time.monotonic() + _EXIT_STATUS_WAIT
        while pid not in self._exits and self.zygote.alive:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self.zygote.poll(left):
                self._read_zygote()
        return self._exits.pop(pid, None)

    def _drop(self, w: Worker) -> None:
        """Forget a worker (dead or being killed) and close our end of its socket."""
        self.by_pid.pop(w.pid, None)
        self._exits.pop(w.pid, None)
        for spec in w.specs():
            self.busy.pop(attempt_key(spec), None)
        with suppress(ValueError):
            self.idle.remove(w)
        if not w.conn.closed:
            owned_fds.discard(w.conn.fileno())
            if self._sel is not None:
                with suppress(KeyError, ValueError):
                    self._sel.unregister(w.conn)
            w.conn.close()

    def _read_zygote(self) -> None:
        msg = self.zygote.read()
        if msg is None:  # the zygote died: no more workers can be forked
            self._pending = 0
            if self._sel is not None:
                with suppress(KeyError, ValueError):
                    self._sel.unregister(self.zygote.sock)
            return
        if msg[0] == "spawned":
            pid, conn = msg[1], msg[2]
            self._pending = max(0, self._pending - 1)
            if self._closed or self._sel is None:
                conn.close()
                return
            w = Worker(pid, conn, f"pid {pid}")
            self.by_pid[pid] = w
            self.idle.append(w)
            owned_fds.add(conn.fileno())
            self._sel.register(conn, selectors.EVENT_READ, w)
        elif msg[0] == "exit":
            if msg[1] in self.by_pid:
                self._exits[msg[1]] = msg[2]
        elif msg[0] == "error":
            self._pending = max(0, self._pending - 1)
            self._spawn_after = time.monotonic() + _SPAWN_RETRY

    def top_up(self) -> None:
        """Ask the zygote for the workers missing from the pool (lazily, no waiting)."""
        z = self.zygote
        if not z.alive or self._closed or time.monotonic() < self._spawn_after:
            return
        for _ in range(self.size - len(self.by_pid) - self._pending):
            if not z.request_spawn():
                break
            self._pending += 1

    def retire(self) -> None:
        """Keep no worker beyond the attempts running now: another pool has taken over.

        An attempt submitted later still gets a worker, forked for it (about a millisecond).
        """
        self.size = 0
        self.retired = True
        for w in list(self.idle):
            self._drop(w)

    def _await_spawn(self) -> None:
        self.top_up()
        # A retired pool keeps no workers: it forks one for each attempt of its runs.
        if (self.retired and not self.idle and not self._pending and self.zygote.alive
                and not self._closed and self.zygote.request_spawn()):
            self._pending += 1
        deadline = time.monotonic() + SPAWN_TIMEOUT
        while not self.idle:
            if not self.zygote.alive or not self._pending:
                self.check_alive()
                raise ExecutorError("no free worker: call submit() only when free_slots() > 0")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ExecutorError("the zygote did not fork a worker in time")
            if self.zygote.poll(left):
                self._read_zygote()
