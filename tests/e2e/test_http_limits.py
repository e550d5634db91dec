"""`legato web` under large request bodies: what it answers and how much memory it takes.

Four 50 MB webhook calls without the token at once once took the server to 585 MB: each
body was read whole before the token was looked at.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx

from tests.helpers import Daemons, free_port, http_client, make_project, wait_for

CODE = """
from legato import pipeline, task
from legato.triggers import webhook

@task
def hello(name: str) -> str:
    return name

@pipeline(triggers=[webhook("hook")])
def greet(name: str = "world"):
    hello(name)
"""

MB = 1_000_000


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MB
    raise AssertionError("no VmHWM in /proc")


def post_big(port: int, path: str, header: str, size: int) -> tuple[int, int]:
    """POST a body of ``size`` bytes while reading the answer; (status, bytes sent).

    The body is sent from another thread, so an answer that comes before the body is read
    is seen at once; sending stops when the server closes the connection.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n{header}\r\n"
    )
    sent = 0
    chunk = b"x" * 65536

    def send_body() -> None:
        nonlocal sent
        try:
            while sent < size:
                sock.sendall(chunk[: size - sent])
                sent += min(len(chunk), size - sent)
        except OSError:
            pass  # the server answered and closed the connection

    sock.sendall(head.encode())
    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    answer = b""
    while b"\r\n" not in answer:
        got = sock.recv(4096)
        if not got:
            break
        answer += got
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    sender.join(30)
    return int(answer.split(b" ", 2)[1]), sent


def test_large_bodies_are_refused_without_being_held(tmp_path: Path, daemons: Daemons) -> None:
    project = make_project(tmp_path / "proj", CODE, workers=1)
    port = free_port()
    web = daemons.up(project, port=port, command="web")
    base = f"http://127.0.0.1:{port}"
    http = http_client(base, project)

    def answers() -> bool:
        try:
            return http.get("/api/v1/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, timeout=30, what="legato web answering")
    before = peak_rss_mb(web.pid)

    results: list[tuple[int, int]] = []

    def call(header: str) -> None:
        results.append(post_big(port, "/api/v1/hooks/greet/hook", header, 50 * MB))

    callers = [threading.Thread(target=call, args=("X-Legato-Token: wrong\r\n",)) for _ in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(60)
    assert [status for status, _ in results] == [401] * 4
    # The server stopped reading: most of each body was never taken off the socket.
    assert all(sent < 40 * MB for _, sent in results), results

    # Without signing in: 401, without reading the body either.
    status, sent = post_big(port, "/api/v1/pipelines/greet/runs", "", 50 * MB)
    assert status == 401 and sent < 40 * MB
    # A body announced larger than the limit is 413, also without reading it.
    auth = http.headers["authorization"]
    launch = "/api/v1/pipelines/greet/runs"
    status, sent = post_big(port, launch, f"Authorization: {auth}\r\n", 50 * MB)
    assert status == 413 and sent < 40 * MB

    grew = peak_rss_mb(web.pid) - before
    assert grew < 30, f"the server's peak memory grew by {grew:.0f} MB"
    assert http.get("/api/v1/runs").json()["runs"] == []
