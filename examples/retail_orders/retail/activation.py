"""Activation: the daily summary sent on to the systems that act on it.

``push_daily_summary`` posts it to the ``webhook`` resource (an ``http`` client; in this
example the project's own local API, which records each batch once per idempotency key).
``publish_daily_summary`` publishes one message per row to RabbitMQ through the ``broker``
resource, in the environments that declare one (prod): a fresh clone runs without a broker.

Both send with the connectors' idempotency keys, the same in every attempt of a task run:
a retried push or publish is recognised by the receiver, not applied twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from legato import Context, task
from retail.local_api import SUMMARY_HOOK
from retail.settings import SUMMARY_QUEUE
from retail.transform import summary_rows

if TYPE_CHECKING:
    import httpx


@task(tags=["activation"], retries=2, retry_delay="1s", timeout="2m")
def push_daily_summary(
    ctx: Context, daily: pd.DataFrame, loaded: dict[str, Any], webhook: httpx.Client
) -> dict[str, Any]:
    """POST the loaded days' sales to the webhook, in batches with idempotency keys."""
    from legato.connectors.http_push import push

    rows = summary_rows(daily, ctx.run_id)
    pushed = push(webhook, SUMMARY_HOOK, rows, ctx=ctx, envelope="days", batch_size=25)
    ctx.log.info(
        "pushed %d rows of %s in %d batches to %s%s",
        pushed.rows,
        ", ".join(loaded["days_loaded"]),
        pushed.batches,
        webhook.base_url,
        SUMMARY_HOOK,
    )
    return {"rows": pushed.rows, "batches": pushed.batches}


@task(tags=["activation"], retries=2, retry_delay="1s", timeout="2m")
def publish_daily_summary(
    ctx: Context, daily: pd.DataFrame, loaded: dict[str, Any]
) -> dict[str, Any]:
    """Publish each row of the summary to the RabbitMQ queue, if this environment has a
    ``broker`` resource; else say so and publish nothing."""
    if "broker" not in list(ctx.resources):
        ctx.log.info("no 'broker' resource in this environment: nothing published")
        return {"published": 0, "queue": None}
    from legato.connectors.publish import publish_amqp

    broker = ctx.resources.broker
    with broker.channel() as channel:
        # Messages are mandatory: the queue must exist before the first is published.
        channel.queue_declare(SUMMARY_QUEUE, durable=True)
    sent = publish_amqp(broker, summary_rows(daily, ctx.run_id), ctx=ctx, queue=SUMMARY_QUEUE)
    ctx.log.info(
        "published %d messages for %s to queue %s",
        sent,
        ", ".join(loaded["days_loaded"]),
        SUMMARY_QUEUE,
    )
    return {"published": sent, "queue": SUMMARY_QUEUE}
