"""HTTP extract benchmark: 1,000,000 rows in pages from a local API, written to Parquet.

Starts a paginating JSON API (a real HTTP server in its own process, on 127.0.0.1), then
extracts every row in a fresh process per case and reports that process's peak resident
memory (ru_maxrss), so each figure counts only the extracting process: Python, its imports
and the pages in flight. The issue's target is a peak under 300 MB for the Parquet case.
For contrast, "all pages in memory" gathers every record in a list and writes once, as code
without a page sink would. Usage:

    .venv/bin/python bench/http_extract.py [--rows 1000000] [--page-size 10000]

Prints one Markdown row per case; exits non-zero when a streamed case peaks at 300 MB or
more.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

LIMIT_MB = 300
CASES = ("parquet", "jsonl", "all pages in memory")


def _serve(port_file: str, rows: int) -> None:
    """The API: ``/orders?cursor=N&limit=L`` -> ``{"data": [...], "next": N2 or null}``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as APIs answer

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            q = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            start, limit = int(q.get("cursor", "0")), int(q.get("limit", "1000"))
            end = min(start + limit, rows)
            data = [
                {
                    "id": i,
                    "customer": f"c{i % 9973}",
                    "amount": round(i * 0.37 % 1000, 2),
                    "currency": ("EUR", "USD", "GBP")[i % 3],
                    "created_at": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                    "paid": i % 5 != 0,
                }
                for i in range(start, end)
            ]
            body = json.dumps({"data": data, "next": end if end < rows else None}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as fh:
        fh.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


def _extract(case: str, base_url: str, out: str, page_size: int) -> None:
    """One case, in this process; prints a JSON line of its figures."""
    import httpx

    from legato.connectors import http

    paginate = http.Cursor(next="next")
    params = {"limit": page_size}
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, timeout=60) as client:
        if case == "all pages in memory":
            import pyarrow as pa
            import pyarrow.parquet as pq

            records = [
                r
                for page in http.iter_pages(
                    client, "/orders", paginate=paginate, records="data", params=params
                )
                for r in page.records
            ]
            pq.write_table(pa.Table.from_pylist(records), out)
            rows, pages = len(records), -1
        else:
            summary = http.extract(
                client, "/orders", out, paginate=paginate, records="data", params=params
            )
            rows, pages = summary.rows, summary.pages
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "pages": pages, "seconds": seconds, "peak_mb": peak_kb / 1024,
                      "bytes": os.path.getsize(out)}))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--page-size", type=int, default=10_000)
    ap.add_argument("--serve", metavar="PORT_FILE", help=argparse.SUPPRESS)
    ap.add_argument("--extract", nargs=3, metavar=("CASE", "URL", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        _serve(args.serve, args.rows)
        return
    if args.extract:
        _extract(*args.extract, page_size=args.page_size)
        return

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, rows={args.rows:,}, page size={args.page_size:,}"
    )
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", port_file, "--rows", str(args.rows)]
        )
        try:
            deadline = time.monotonic() + 60
            while not os.path.exists(port_file):  # the server writes it once listening
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the API did not start")
                time.sleep(0.05)
            with open(port_file) as fh:
                base_url = f"http://127.0.0.1:{fh.read()}"
            print("\n| case | rows | pages | seconds | rows/s | file MB | peak RSS MB |")
            print("|---|---|---|---|---|---|---|")
            for case in CASES:
                out = os.path.join(tmp, "orders." + ("jsonl" if case == "jsonl" else "parquet"))
                done = subprocess.run(
                    [sys.executable, __file__, "--extract", case, base_url, out,
                     "--page-size", str(args.page_size)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                f = json.loads(done.stdout.strip().splitlines()[-1])
                pages = "-" if f["pages"] < 0 else f"{f['pages']:,}"
                print(f"| {case} | {f['rows']:,} | {pages} | {f['seconds']:.1f} | "
                      f"{f['rows'] / f['seconds']:,.0f} | {f['bytes'] / 2**20:.1f} | "
                      f"{f['peak_mb']:.0f} |", flush=True)  # fmt: skip
                if case != "all pages in memory" and f["peak_mb"] >= LIMIT_MB:
                    failed = True
        finally:
            server.terminate()
            server.wait()
    if failed:
        raise SystemExit(f"a streamed extract peaked at {LIMIT_MB} MB or more")


if __name__ == "__main__":
    main()
