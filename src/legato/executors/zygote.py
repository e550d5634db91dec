"""The fork server ("zygote") of the local executor and the worker processes it forks.

The driver forks the zygote once, right after the user's project is imported and before
it starts any thread. The zygote stays single-threaded and forks every worker on request,
so workers start in about a millisecond with the project already imported, and no fork
ever happens in a process that holds threads (whose locks would be copied mid-use).

Control socket (AF_UNIX, SOCK_SEQPACKET: one pickled tuple per message, fds ride along):

* driver -> zygote: ``("spawn",)``, ``("quit",)``; EOF counts as quit.
* zygote -> driver: ``("spawned", pid)`` with the driver's end of the worker's socket,
  ``("exit", pid, wait_status)`` when a worker ends, ``("error", text)`` if a fork fails.

Zygote and workers ask Linux to SIGKILL them when their parent dies (PR_SET_PDEATHSIG), so
a SIGKILLed driver takes the zygote down and the zygote its workers: no orphaned task keeps
running. Note that the signal follows the *thread* that forked: call ``start()`` from the
driver's main thread.
"""

from __future__ import annotations

import ctypes
import faulthandler
import gc
import logging
import os
import pickle
import resource
import select
import signal
import socket
import stat
import sys
import time
import traceback
from collections.abc import Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from legato.executors.aio import run_async_batch
from legato.executors.batch import run_batch
from legato.executors.interface import AttemptOutcome, AttemptSpec
from legato.executors.recycle import Retiring, WorkerLife
from legato.executors.scratch_log import ScratchLogs
from legato.executors.spin import Spinner
from legato.executors.worker import one_line, run_attempt
from legato.resources.opened import close_all
from legato.results.result_store import ResultStore

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline
    from legato.definitions.task import Task

MSG_MAX = 4096
_PR_SET_PDEATHSIG = 1
#: Seconds the zygote gives its workers, told to go, to close their resources and exit.
CLOSE_GRACE = 3.0


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker needs; inherited through fork, never pickled."""

    pipelines: Mapping[str, Pipeline]
    results: ResultStore
    memory_limit_mb: int | None = None
    max_tasks: int | None = None  # attempts a worker runs before it is replaced
    max_memory_mb: int | None = None  # resident growth past which it is replaced


def set_pdeathsig() -> None:
    """Get SIGKILLed when the parent dies (Linux only; elsewhere nothing happens)."""
    if not sys.platform.startswith("linux"):
        return
    with suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def describe_exit(status: int | None) -> str:
    """A worker's wait status in words, for the error of a crashed attempt."""
    if status is None:
        return "worker process exited unexpectedly"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "unknown"
        text = f"worker process died (signal {sig}: {name})"
        if sig == signal.SIGKILL:
            text += "; killed from outside, often by the out-of-memory killer"
        return text
    if os.WIFEXITED(status):
        return f"worker process exited with code {os.WEXITSTATUS(status)}"
    return f"worker process ended (wait status {status})"


def kill_worker(pid: int, exited: bool = False) -> None:
    """SIGKILL a worker and its process group: what its task started dies with it.

    Safe after the worker was reaped: a pid in use as a process group id is not reused
    while the group has members. ``exited``: the worker itself is known to be gone.
    """
    with suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    if not exited:
        with suppress(OSError):  # it may not have made its group yet
            os.kill(pid, signal.SIGKILL)


def send_msg(sock: socket.socket, msg: tuple[Any, ...], fds: list[int] | None = None) -> None:
    data = pickle.dumps(msg)
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def _reset_signals() -> None:
    # Python-level handlers inherited from the driver would run driver code here.
    with suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        with suppress(OSError, ValueError, TypeError):
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


# -- forking the zygote (driver side; the handle on it is pool.ForkServer) ------------------


def fork_zygote(
    config: WorkerConfig, close_in_child: Collection[int] = (), *, close_sockets: bool = False
) -> tuple[int, socket.socket]:
    """Fork the zygote; returns its pid and the driver's end of the control socket.

    ``close_in_child``: descriptors the zygote must not keep (other executors' sockets).
    ``close_sockets``: close every other socket too. The local executor always asks for it:
    its driver may serve HTTP and talk to the store, and a copy of a client's connection
    kept in the zygote and its workers would keep that connection open after the server
    closed it, and a copy of the listening socket would hold the port.
    """
    drv, zyg = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()  # or the child could write the driver's buffered text again
    driver_pid = os.getpid()
    pid = os.fork()
    if pid == 0:  # the zygote; never returns into the driver's code
        code = 1
        try:
            gc.freeze()  # before closing fds by number: see _zygote_main
            drv.close()
            for fd in close_in_child:
                with suppress(OSError):
                    os.close(fd)
            if close_sockets:
                _close_sockets(keep=zyg.fileno())
            _zygote_main(zyg, config, driver_pid)
            code = 0
        except BaseException:
            with suppress(Exception):
                traceback.print_exc()
        finally:
            os._exit(code)
    zyg.close()
    return pid, drv


def _close_sockets(keep: int) -> None:
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # not Linux: nothing to go by
        return
    for fd in fds:
        if fd <= 2 or fd == keep:
            continue
        with suppress(OSError):
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)


# -- zygote --------------------------------------------------------------------------------


def _zygote_main(ctl: socket.socket, config: WorkerConfig, driver_pid: int) -> None:
    set_pdeathsig()
    if os.getppid() != driver_pid:  # the driver died before prctl took effect
        return
    # Objects inherited from the driver were frozen (gc.freeze) right after the fork: they
    # are never collected here, which matters because some wrap fds this process closed
    # (their finalizers would close whatever reuses those numbers), and the collector does
    # not touch (copy) their pages in every worker.
    with suppress(OSError):
        os.setpgid(0, 0)  # out of the terminal's process group: Ctrl-C is for the driver
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # tasks must not read the driver's terminal
    os.close(devnull)
    _reset_signals()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes poll() through wake_w
    me = os.getpid()
    children: set[int] = set()
    poller = select.poll()
    poller.register(ctl, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    try:
        while True:  # an OSError (driver gone mid-send) ends the zygote like a quit
            for fd, _event in poller.poll():
                if fd == wake_r:
                    with suppress(OSError):
                        while os.read(wake_r, 512):
                            pass
                    _reap(ctl, children)
                    continue
                data, _fds, _flags, _addr = socket.recv_fds(ctl, MSG_MAX, 0)
                if not data or pickle.loads(data)[0] == "quit":
                    return
                pid = _spawn(ctl, config, me, (wake_r, wake_w))
                if pid:
                    children.add(pid)
    except OSError:
        return
    finally:
        # Workers whose sockets the driver closed are closing their resources: let them
        # finish (the driver killed those running attempts), then kill what is left.
        _await_children(children, CLOSE_GRACE, wake_r)
        for pid in children:
            kill_worker(pid)
        for pid in children:
            with suppress(ChildProcessError):
                os.waitpid(pid, 0)
        close_all()


def _await_children(children: set[int], grace: float, wake: int) -> None:
    # SIGCHLD writes to the wake pipe: each child's end wakes the wait.
    waker = select.poll()
    waker.register(wake, select.POLLIN)
    deadline = time.monotonic() + grace
    while children:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid:
            children.discard(pid)
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            return
        waker.poll(max(1, int(left * 1000)))
        with suppress(OSError):
            while os.read(wake, 512):
                pass


def _reap(ctl: socket.socket, children: set[int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        send_msg(ctl, ("exit", pid, status))


def _spawn(ctl: socket.socket, config: WorkerConfig, me: int, wake: tuple[int, int]) -> int:
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        pid = os.fork()
    except OSError as exc:
        mine.close()
        theirs.close()
        send_msg(ctl, ("error", f"cannot fork a worker: {exc}"))
        return 0
    if pid == 0:  # the worker
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # tasks wait for their children
            for fd in wake:
                os.close(fd)
            ctl.close()
            theirs.close()
            _worker_main(mine, config, me)
            code = 0
        except BaseException:
            with suppress(Exception):
                traceback.print_exc()
        finally:
            os._exit(code)
    with suppress(OSError):  # as the child does: whoever runs first, the group exists
        os.setpgid(pid, pid)
    mine.close()
    send_msg(ctl, ("spawned", pid), [theirs.fileno()])
    theirs.close()
    return pid


# -- worker --------------------------------------------------------------------------------


def _vm_size() -> int:
    with suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _limit_memory(mb: int) -> None:
    # RLIMIT_AS caps address space, and a worker starts with a lot of it mapped already
    # (the interpreter and every library the project imported: pandas and polars alone map
    # over a GB). So the limit is the worker's size at start plus ``mb``: the room the task
    # gets. An allocation past it raises MemoryError in the task.
    soft = _vm_size() + mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _quiet_console_handlers() -> None:
    # The driver's console handlers write to stderr, which is the attempt log during an
    # attempt: each record would be logged twice. File handlers and the like are kept.
    root = logging.getLogger()
    std = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    for h in list(root.handlers):
        if type(h) is logging.StreamHandler and h.stream in std:
            root.removeHandler(h)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)


def _worker_main(sock: socket.socket, config: WorkerConfig, zygote_pid: int) -> None:
    set_pdeathsig()
    if os.getppid() != zygote_pid:
        return
    with suppress(OSError):
        os.setpgid(0, 0)  # its own process group, so that a kill takes the task's children
    if config.memory_limit_mb:
        _limit_memory(config.memory_limit_mb)
    _quiet_console_handlers()
    with suppress(Exception):
        # fd 2 is the attempt log: a segfault leaves its Python traceback where users look.
        faulthandler.enable(file=2, all_threads=True)
    conn = Connection(sock.detach())
    logs = ScratchLogs()
    try:
        _serve(conn, config, logs, WorkerLife(config.max_tasks, config.max_memory_mb))
    finally:
        logs.close()
        close_all()  # the resources this worker opened, as it leaves


def _tasks_of(pipelines: Mapping[str, Pipeline], specs: list[AttemptSpec]) -> list[Task] | str:
    """The task of each attempt, or why one is unknown to this worker."""
    tasks = []
    for spec in specs:
        try:
            tasks.append(pipelines[spec.pipeline].graph.nodes[spec.node].task)
        except KeyError:
            return f"the worker knows no node {spec.node!r} in pipeline {spec.pipeline!r}"
    return tasks


def _serve(conn: Connection, config: WorkerConfig, logs: ScratchLogs, life: WorkerLife) -> None:
    label = f"pid {os.getpid()}"
    spinner = Spinner()  # see executors/spin.py: only while the CPUs are not contended
    while True:
        # Between polls a runnable driver gets this CPU first.
        spinner.spin(lambda: conn.poll(0), between=os.sched_yield)
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the driver closed our socket: time to go
        reply: AttemptOutcome | list[AttemptOutcome] | str
        try:
            # One attempt, or a batch of attempts of one run (a list).
            job: AttemptSpec | list[AttemptSpec] = pickle.loads(raw)
        except BaseException as exc:
            reply = f"the attempt cannot be read by the worker: {one_line(exc)}"
        else:
            del raw
            specs = job if isinstance(job, list) else [job]
            tasks = _tasks_of(config.pipelines, specs)
            if isinstance(tasks, str):
                reply = tasks
            else:
                if isinstance(job, list):
                    # The driver batches async attempts only with async attempts.
                    runner = run_async_batch if tasks[0].is_async else run_batch
                    reply = runner(job, tasks, config.results, worker=label,
                                   between=life.after_attempt)
                else:
                    reply = run_attempt(
                        job, tasks[0], config.results, capture="fd", worker=label, logs=logs
                    )
                    life.after_attempt()
                life.ran(tasks)
            del job, specs
        why = life.spent()
        try:
            conn.send(reply if why is None else Retiring(reply, why))
        except OSError:
            return
        if why is not None:
            return  # the zygote forks a fresh worker in its place
