"""Throughput of the broker publish connectors: N rows (a list of dicts) published to a
RabbitMQ queue (publisher confirms), an MQTT topic (QoS 1, PUBACKs awaited) and a Redis
stream, through the clients the amqp, mqtt and redis resource kinds open; the best of
``--repeat`` runs per connector and batch size. Every queue and stream it makes is deleted.

For comparison, ``--confirm-rows`` rows are also published to RabbitMQ one at a time on a
channel in confirm mode (a confirm awaited per message, all pika's blocking API offers),
which is what publish_amqp's transaction per batch replaced.

    .venv/bin/python bench/publish.py [--rows 20000] [--batches 100 1000] [--repeat 3]
        [--confirm-rows 2000] [--amqp URL] [--mqtt-host H --mqtt-port P] [--redis URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from legato.connectors.publish import publish_amqp, publish_mqtt, publish_redis_stream
from legato.resources.kind import kind_class


def best(repeat: int, once: Callable[[], int]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return min(times)


def confirm_each(client: Any, queue: str, rows: list[dict[str, Any]]) -> None:
    import pika

    from legato.connectors.rows import encode

    props = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
    start = time.perf_counter()
    with client.channel(confirm=True) as ch:
        for row in rows:
            ch.basic_publish("", queue, encode(row), props, mandatory=True)
    seconds = time.perf_counter() - start
    print(f"  amqp, a confirm per message ({len(rows)} rows): {seconds:6.2f} s, "
          f"{len(rows) / seconds:8.0f} messages/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--batches", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--confirm-rows", type=int, default=2000)
    ap.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    ap.add_argument("--mqtt-host", default="127.0.0.1")
    ap.add_argument("--mqtt-port", type=int, default=1883)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()

    rows = [{"order": i, "day": "2026-12-06", "total": i * 1.5} for i in range(args.rows)]
    kinds: dict[str, Any] = {
        "amqp": kind_class("amqp")("b", {"url": args.amqp}),
        "mqtt": kind_class("mqtt")("b", {"host": args.mqtt_host, "port": args.mqtt_port}),
        "redis": kind_class("redis")("b", {"url": args.redis}),
    }
    clients = {name: kind.open() for name, kind in kinds.items()}
    token = uuid.uuid4().hex[:8]
    queue, topic, stream = f"bench-{token}", f"bench/{token}", f"bench-{token}"
    print(f"{args.rows} rows, best of {args.repeat}; {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    try:
        with clients["amqp"].channel() as ch:
            ch.queue_declare(queue, durable=True)
        for size in args.batches:
            runs: dict[str, Callable[[], int]] = {
                "amqp": partial(publish_amqp, clients["amqp"], rows, queue=queue, key="b",
                                batch=size),
                "mqtt": partial(publish_mqtt, clients["mqtt"], rows, topic, key="b", batch=size),
                "redis": partial(publish_redis_stream, clients["redis"], rows, stream, key="b",
                                 batch=size, maxlen=args.rows),
            }
            for name, once in runs.items():
                seconds = best(args.repeat, once)
                print(f"  {name:6s} batch {size:5d}: {seconds:6.2f} s, "
                      f"{args.rows / seconds:8.0f} messages/s")
                if name == "amqp":
                    with clients["amqp"].channel() as ch:
                        ch.queue_purge(queue)
        confirm_each(clients["amqp"], queue, rows[: args.confirm_rows])
    finally:
        with clients["amqp"].channel() as ch:
            ch.queue_delete(queue)
        clients["redis"].delete(stream)
        for name, kind in kinds.items():
            kind.close(clients[name])


if __name__ == "__main__":
    main()
