"""Server-sent event streams: a run's events as they are recorded, an attempt's log as it grows.

Both poll the store or the log file a few times a second from the event loop (the reads run
in worker threads): SQLite cannot notify, and a quarter second is below what a person watching
a page notices. A stream ends once there is nothing more to come, or when the client leaves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from legato.api.schemas import EventOut
from legato.domain.states import RunState, TaskState
from legato.services.door import Door

POLL = 0.25  # seconds between looks at the store or the file
KEEPALIVE = 15.0  # a comment line this often keeps proxies from closing an idle stream
CHUNK = 64 * 1024  # most bytes of log sent in one message
_FINISHED = {s.value for s in RunState if s.finished}


class Pace:
    """A stream's wait between two looks: ``POLL`` seconds, and a keep-alive comment owed
    after ``KEEPALIVE`` seconds of sending nothing."""

    def __init__(self) -> None:
        self.quiet = 0.0

    def sent(self) -> None:
        """Something was sent: the quiet starts again."""
        self.quiet = 0.0

    async def wait(self, request: Request) -> str | None:
        """Wait; None if the client has left, else what to send now ("" or a comment)."""
        if await request.is_disconnected():
            return None
        await asyncio.sleep(POLL)
        self.quiet += POLL
        if self.quiet >= KEEPALIVE:
            self.quiet = 0.0
            return ": keep-alive\n\n"
        return ""


def sse(data: str, *, event: str | None = None, id: int | None = None) -> str:
    """One server-sent event (``data`` must not hold newlines: send JSON)."""
    head = (f"id: {id}\n" if id is not None else "") + (f"event: {event}\n" if event else "")
    return f"{head}data: {data}\n\n"


async def run_events(
    ctx: Door, run_id: str, after: int, request: Request
) -> AsyncIterator[str]:
    """The run's events after ``after``, then new ones as they come; ``end`` once finished."""
    last = after
    quiet = 0.0
    while True:
        events = await run_in_threadpool(ctx.catalog.events, run_id, last)
        for e in events:
            last = e.id
            yield sse(EventOut.of(e).model_dump_json(), event="event", id=e.id)
        ended = any(e.kind == "run_state" and e.new_state in _FINISHED for e in events)
        if not events or ended:
            run = await run_in_threadpool(ctx.catalog.get_run, run_id)
            if run.state.finished:
                # Events of the finish are written with the state: none can follow.
                tail = await run_in_threadpool(ctx.catalog.events, run_id, last)
                for e in tail:
                    last = e.id
                    yield sse(EventOut.of(e).model_dump_json(), event="event", id=e.id)
                yield sse(json.dumps({"state": str(run.state)}), event="end", id=last)
                return
        if await request.is_disconnected():
            return
        await asyncio.sleep(POLL)
        quiet = 0.0 if events else quiet + POLL
        if quiet >= KEEPALIVE:
            quiet = 0.0
            yield ": keep-alive\n\n"


async def attempt_log(
    ctx: Door,
    run_id: str,
    task_key: str,
    attempt: int,
    path: Path,
    request: Request,
    offset: int = 0,
) -> AsyncIterator[str]:
    """The log's text from byte ``offset``, then what is appended while the attempt runs.

    Secret values the run has read are masked: while the attempt runs, only whole lines are
    sent (a value is never cut in two between messages, where no mask would find it), and the
    values are looked up again after each read (a value printed was read, and recorded as
    read, before it was printed)."""
    pace = Pace()
    start, sent, tail = offset, 0, ""  # what was sent: how much, and its last characters
    inode = None  # of the file read so far: masking the log at the end replaces the file
    while True:
        now = await run_in_threadpool(_inode, path)
        if inode is not None and now is not None and now != inode:
            text, offset = await run_in_threadpool(_rest, path, offset, start == 0, sent, tail)
        else:
            text, offset = await run_in_threadpool(_read_from, path, offset, True)
        inode = now if now is not None else inode
        if text:
            pace.sent()
            masked = await _masked(ctx, run_id, task_key, attempt, text)
            sent, tail = sent + len(masked), (tail + masked)[-_TAIL:]
            yield sse(json.dumps({"text": masked}), event="log")
            continue  # more may be waiting beyond one chunk
        row = await run_in_threadpool(ctx.runs.task_run, run_id, task_key)
        running = row.attempt == attempt and row.state == TaskState.RUNNING
        if not running:
            if await run_in_threadpool(_inode, path) != inode:
                continue  # replaced meanwhile: the top of the loop finds its place again
            text, offset = await run_in_threadpool(_read_from, path, offset)
            if text:
                masked = await _masked(ctx, run_id, task_key, attempt, text)
                yield sse(json.dumps({"text": masked}), event="log")
                continue
            yield sse(json.dumps({"attempt": attempt}), event="end")
            return
        beat = await pace.wait(request)
        if beat is None:
            return
        if beat:
            yield beat


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


#: Characters of the end of what a log stream sent that it keeps, to find its place again.
_TAIL = 4096


def _rest(path: Path, offset: int, from_start: bool, sent: int, tail: str) -> tuple[str, int]:
    """What the log at ``path`` holds after what was sent, and the offset of its end, once its
    worker replaced it by a copy with the secret values masked (which moves what follows
    them): the place is found by the text sent (its first ``sent`` characters when the stream
    began at the start, else its last ``tail``), and by the byte ``offset`` only when that
    text is not there."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "", offset
    text = data.decode("utf-8", errors="replace")
    if from_start and text[max(0, sent - len(tail)) : sent] == tail:
        return text[sent:], len(data)
    at = text.rfind(tail) if tail else -1
    if at >= 0:
        return text[at + len(tail) :], len(data)
    return data[offset:].decode("utf-8", errors="replace"), len(data)


async def _masked(ctx: Door, run_id: str, task_key: str, attempt: int, text: str) -> str:
    entry = await run_in_threadpool(ctx.catalog.log, run_id, task_key, attempt)
    return entry.mask.mask(text)


def _read_from(path: Path, offset: int, whole_lines: bool = False) -> tuple[str, int]:
    try:
        with path.open("rb") as f:
            if offset >= path.stat().st_size:
                return "", offset  # nothing there yet (seeking that far may even fail)
            f.seek(offset)
            data = f.read(CHUNK)
    except FileNotFoundError:
        return "", offset
    if not data:
        return "", offset
    # Never split a UTF-8 sequence between two messages.
    cut = len(data)
    if len(data) == CHUNK:
        while cut > 0 and (data[cut - 1] & 0xC0) == 0x80:
            cut -= 1
        if cut > 0 and data[cut - 1] >= 0xC0:
            cut -= 1
        cut = cut or len(data)
    if whole_lines and len(data) < CHUNK:
        # The end of a line still being written waits for the rest of it.
        cut = data.rfind(b"\n") + 1
        if not cut:
            return "", offset
    return data[:cut].decode("utf-8", errors="replace"), offset + cut
