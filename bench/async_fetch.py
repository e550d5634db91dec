"""Async tasks: N HTTP fetches through ``.map()`` over an ``async def`` task (issue 19's
target: 20,000 fetches of 100 ms each, 2 workers, under 30 s).

A local HTTP server (asyncio, in a process of its own) answers each GET after ``--delay``
seconds. A throwaway project maps ``fetch`` (httpx, ``concurrency`` coroutines at once per
worker, one httpx client per worker) over the URLs; `legato run crawl` is timed as a whole
process, and the server says how many requests it held at once.

    .venv/bin/python bench/async_fetch.py [--n 20000] [--delay 0.1] [--concurrency 200]
        [--workers 2] [--client httpx|raw]

``--client raw`` fetches over bare asyncio connections instead of httpx. The server runs on
the same machine and takes its share of the CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LEGATO = str(Path(sys.executable).parent / "legato")

FLOWS = """
import asyncio

import httpx
from legato import pipeline, task


@task
def urls(base: str, n: int) -> list[str]:
    return [f"{{base}}/{{i}}" for i in range(n)]


_client: httpx.AsyncClient | None = None


def client() -> httpx.AsyncClient:
    # One client per worker, kept on the worker's event loop from one batch to the next.
    global _client
    if _client is None:
        _client = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=None))
    return _client


@task(concurrency={concurrency}, timeout=60)
async def fetch(url: str) -> int:
    reply = await client().get(url)
    return int(reply.text)


@task(concurrency={concurrency}, timeout=60)
async def fetch_raw(url: str) -> int:
    # The same request over a bare asyncio connection: what the engine costs without
    # an HTTP library's own (httpx spends about 2 ms of CPU per request here).
    host, port, path = url.split("/", 2)[2].replace(":", "/").split("/", 2)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /{{path}} HTTP/1.1\\r\\nHost: {{host}}\\r\\n\\r\\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return int(data.split(b"\\r\\n\\r\\n", 1)[1])


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@pipeline
def crawl(base: str, n: int):
    total(fetch.map(urls(base, n)))


@pipeline
def crawl_raw(base: str, n: int):
    total(fetch_raw.map(urls(base, n)))
"""


def serve(port_out: multiprocessing.Queue, delay: float, most: multiprocessing.Value) -> None:
    state = {"now": 0}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            state["now"] += 1
            most.value = max(most.value, state["now"])
            await asyncio.sleep(delay)
            state["now"] -= 1
            body = line.split()[1].strip(b"/") if line else b"0"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=8192)
        port_out.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--delay", type=float, default=0.1)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--client", choices=("httpx", "raw"), default="httpx")
    args = ap.parse_args()
    ports: multiprocessing.Queue = multiprocessing.Queue()
    most = multiprocessing.Value("i", 0)
    server = multiprocessing.Process(target=serve, args=(ports, args.delay, most), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    try:
        with tempfile.TemporaryDirectory(prefix="legato-bench-async-") as tmp:
            root = Path(tmp)
            (root / "legato.toml").write_text(
                f'[project]\nname = "bench_async"\nmodules = ["flows"]\n\n'
                f"[executor]\nworkers = {args.workers}\n",
                encoding="utf-8",
            )
            (root / "flows.py").write_text(FLOWS.format(concurrency=args.concurrency),
                                           encoding="utf-8")
            name = "crawl" if args.client == "httpx" else "crawl_raw"
            cmd = [LEGATO, "run", name, "-q", "--project", str(root),
                   "--param", f"base=http://127.0.0.1:{port}", "--param", f"n={args.n}"]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            took = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(done.stdout + done.stderr)
    finally:
        server.kill()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{args.n} fetches ({args.client}) of {args.delay * 1000:.0f} ms, "
          f"concurrency {args.concurrency}, "
          f"{args.workers} workers: {took:.1f} s whole `legato run`, "
          f"{args.n / took:.0f} fetches/s, at most {most.value} requests held at once")
    print(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
