"""A TCP proxy that adds a fixed delay to each direction, to count database round trips.

Every chunk read from one side is written to the other ``delay`` seconds after it arrived,
in order, so a request/response exchange costs ``2 * delay`` more and bandwidth is untouched.
A workload's added time divided by the added time of one ``SELECT 1`` is then the number of
round trips it waits for. Usage (prints ``port N`` once listening):

    .venv/bin/python bench/delay_proxy.py --target 127.0.0.1:5432 --delay-ms 1 [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    # A reader keeps reading while a writer sleeps: the delay is latency, not throughput.
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        while data := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay, data))
        queue.put_nowait((0.0, b""))

    async def write() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def serve(target_host: str, target_port: int, delay: float, port: int) -> None:
    """Listen on 127.0.0.1:``port`` (0: any free one) and forward to the target."""

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            _pump(client_r, server_w, delay), _pump(server_r, client_w, delay)
        )

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    print(f"port {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default="127.0.0.1:5432", help="host:port to forward to")
    ap.add_argument("--delay-ms", type=float, required=True, help="added delay per direction")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    args = ap.parse_args()
    host, _, port = args.target.rpartition(":")
    try:
        asyncio.run(serve(host, int(port), args.delay_ms / 1000, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
