"""HTTPS end to end: `legato certs dev`, then `legato up` and `legato web` serving with its
certificate, checked by a client that trusts the development CA; plain HTTP beyond loopback
refused."""

from __future__ import annotations

import re
import ssl
import stat
from pathlib import Path

import httpx
import pytest

from tests.e2e.browser import web_url
from tests.helpers import (
    ONE_TASK,
    DaemonProcess,
    Daemons,
    cli,
    free_port,
    make_project,
    project_token,
)


def make_certs(project: Path) -> Path:
    made = cli("certs", "dev", "--host", "legato.test", project=project)
    assert made.returncode == 0, made.stderr
    folder = project / ".legato" / "certs"
    # What to put in legato.toml, and how to trust the CA.
    assert 'tls_cert = ".legato/certs/server.pem"' in made.stdout
    assert f"--cacert {folder / 'ca.pem'}" in made.stdout
    assert f"SSL_CERT_FILE={folder / 'ca.pem'}" in made.stdout
    for key in ("ca-key.pem", "server-key.pem"):
        assert stat.S_IMODE((folder / key).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    return folder


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@pytest.mark.parametrize("command", ["up", "web"])
def test_https_with_a_development_certificate(
    tmp_path: Path, daemons: Daemons, command: str
) -> None:
    project = make_project(tmp_path / "proj", ONE_TASK, workers=1)
    certs = make_certs(project)
    args = [command, "--project", str(project), "--port", "0"]
    args += ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server-key.pem")]
    daemon = DaemonProcess(args, tmp_path / "daemon.log")
    daemons.started.append(daemon)
    if command == "up":
        base = web_url(daemon)
    else:
        daemon.wait_output("legato web:")
        found = re.search(r"legato web: (\S+?)/ ", daemon.output())
        assert found, daemon.output()
        base = found.group(1)
    assert base.startswith("https://127.0.0.1:")
    port = base.rsplit(":", 1)[1]

    auth = bearer_of(project)
    with httpx.Client(verify=trusting(certs / "ca.pem"), headers=auth) as client:
        r = client.get(f"{base}/api/v1/health")
        assert r.status_code == 200 and r.json()["store"] == "ok"
        assert r.headers["strict-transport-security"] == "max-age=31536000"
        # The certificate is for localhost too, and the server answers to that name.
        page = client.get(f"https://localhost:{port}/runs")
        assert page.status_code == 200 and "strict-transport-security" in page.headers

    # A client that does not trust the development CA refuses the connection.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{base}/api/v1/health")
    # Plain HTTP to the same port gets no answer.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=10)


def bearer_of(project: Path) -> dict[str, str]:
    return {"Authorization": f"Bearer {project_token(project)}"}


def test_https_from_legato_toml(tmp_path: Path, daemons: Daemons) -> None:
    project = make_project(tmp_path / "proj", ONE_TASK, workers=1)
    certs = make_certs(project)
    with open(project / "legato.toml", "a") as fh:
        fh.write('\n[web]\ntls_cert = ".legato/certs/server.pem"\n')
        fh.write('tls_key = ".legato/certs/server-key.pem"\n')
    base = web_url(daemons.up(project))
    assert base.startswith("https://")
    r = httpx.get(
        f"{base}/api/v1/health", verify=trusting(certs / "ca.pem"), headers=bearer_of(project)
    )
    assert r.status_code == 200


def test_plain_http_beyond_loopback_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", ONE_TASK, workers=1)
    for command in ("up", "web"):
        done = cli(command, "--host", "0.0.0.0", "--port", "0", project=project, timeout=60)
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "refusing to serve plain HTTP on 0.0.0.0" in lines[0]
        assert "--insecure-no-tls" in lines[0] and "--tls-cert" in lines[0]


def test_insecure_no_tls_serves_plain_http_beyond_loopback(
    tmp_path: Path, daemons: Daemons
) -> None:
    project = make_project(tmp_path / "proj", ONE_TASK, workers=1)
    args = ["web", "--project", str(project), "--port", "0", "--host", "0.0.0.0"]
    daemon = DaemonProcess([*args, "--insecure-no-tls"], tmp_path / "daemon.log")
    daemons.started.append(daemon)
    daemon.wait_output("legato web:")
    port = re.search(r"legato web: http://0\.0\.0\.0:(\d+)/", daemon.output())
    assert port, daemon.output()
    # Reached by its loopback name (a proxy on this machine would do so).
    r = httpx.get(f"http://127.0.0.1:{port.group(1)}/api/v1/health", headers=bearer_of(project))
    assert r.status_code == 200


def test_unusable_certificate_files_are_one_line(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", ONE_TASK, workers=1)
    certs = make_certs(project)
    missing = cli("web", "--port", "0", "--tls-cert", str(certs / "nope.pem"), "--tls-key",
                  str(certs / "server-key.pem"), project=project)
    assert missing.returncode == 2 and "nope.pem does not exist" in missing.stderr
    swapped = cli("web", "--port", "0", "--tls-cert", str(certs / "server.pem"), "--tls-key",
                  str(certs / "ca-key.pem"), project=project)
    assert swapped.returncode == 2
    assert "cannot use TLS certificate" in swapped.stderr, swapped.stderr
    alone = cli("up", "--port", "0", "--tls-cert", str(certs / "server.pem"), project=project)
    assert alone.returncode == 2 and "go together" in alone.stderr


def test_behind_a_proxy_only_the_public_address_is_answered(
    tmp_path: Path, daemons: Daemons
) -> None:
    public = "https://legato.example.com"
    extra = f'\n[web]\npublic_url = "{public}"\n'
    project = make_project(tmp_path / "proj", ONE_TASK, workers=1, extra=extra)
    port = free_port()
    up = daemons.up(project, port=port)
    assert web_url(up) == public  # the address to open is the proxy's
    local = f"http://127.0.0.1:{port}"
    # The proxy passes the public Host on; the browser's Origin is the public one.
    proxied = {
        "Host": "legato.example.com:443",
        "X-Forwarded-Proto": "https",
        **bearer_of(project),
    }
    assert httpx.get(f"{local}/api/v1/health", headers=proxied).status_code == 200
    launch = f"{local}/api/v1/pipelines/etl/runs"
    own = httpx.post(launch, json={}, headers={**proxied, "Origin": public})
    assert own.status_code == 201, own.text
    other = httpx.post(launch, json={}, headers={**proxied, "Origin": "https://evil.example"})
    assert other.status_code == 403
    # Reached under another name (DNS rebinding, or around the proxy): refused.
    assert httpx.get(f"{local}/api/v1/health").status_code == 400
    rebound = httpx.get(f"{local}/api/v1/health", headers={"Host": f"evil.example:{port}"})
    assert rebound.status_code == 400
