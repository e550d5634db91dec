"""The development CA and its server certificate, checked as a TLS client checks them."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from legato.security.tls import TlsError, TlsFiles, make_dev_certs

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_dev_certificate_names_and_modes(tmp_path: Path) -> None:
    old = os.umask(0)  # the keys must be private whatever the umask
    try:
        made = make_dev_certs(tmp_path / "certs", NOW, ("legato.test", "10.0.0.5"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(made.ca_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.server.key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "certs").stat().st_mode) == 0o700
    cert = x509.load_pem_x509_certificate(made.server.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "legato.test"}
    assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "::1",
        "10.0.0.5",
    }
    assert cert.not_valid_before_utc <= NOW < cert.not_valid_after_utc
    made.server.check()


def test_a_client_trusting_the_ca_completes_a_handshake(tmp_path: Path) -> None:
    made = make_dev_certs(tmp_path, datetime.now(UTC))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(made.server.cert, made.server.key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")

        thread = threading.Thread(target=serve)
        thread.start()
        client_ctx = ssl.create_default_context(cafile=str(made.ca_cert))
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.recv(2) == b"ok"
        thread.join(10)


def test_unusable_pairs_are_refused_in_one_line(tmp_path: Path) -> None:
    made = make_dev_certs(tmp_path, NOW)
    with pytest.raises(TlsError, match="does not exist"):
        TlsFiles(tmp_path / "missing.pem", made.server.key).check()
    with pytest.raises(TlsError, match="cannot use TLS certificate"):
        TlsFiles(made.server.cert, made.ca_key).check()  # not the certificate's key
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(TlsError, match="cannot use TLS certificate"):
        TlsFiles(tmp_path / "junk.pem", made.server.key).check()
