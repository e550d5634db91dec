"""Idempotency keys: what each message or request an activation connector sends carries so
the receiver can drop repeats.

A key is ``<run id>/<task>[/<map index>][/<key>]/<position>``: the run, the task (and its
map index) from the context, the caller's ``key`` naming one send among a task's several,
and the position of the message or batch in it. Never the attempt: when an attempt fails
half-way and the task is retried, what it sends again carries the keys it had the first
time, and a later run's sends have new ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato.definitions.context import Context

__all__ = ["idempotency_key"]


def idempotency_key(ctx: Context | None, key: str | None, position: int) -> str:
    """The key of the message or batch at ``position`` (from 0) of the send named ``key``
    in ``ctx``'s task run, the same on every attempt. Without ``ctx``, ``key`` alone names
    the send, and is required."""
    if ctx is None:
        if not key:
            raise ValueError(
                "idempotency keys come from the task's context: pass ctx=ctx (or key=...)"
            )
        return f"{key}/{position}"
    parts = [ctx.run_id, ctx.task]
    if ctx.map_index is not None:
        parts.append(str(ctx.map_index))
    if key:
        parts.append(key)
    parts.append(str(position))
    return "/".join(parts)
