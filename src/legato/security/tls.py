"""TLS for the web server: checking a certificate and key pair, and making a local CA with a
server certificate signed by it for trying HTTPS on one machine (``legato certs dev``).

Production certificates come from the operator's own CA or ACME; the development CA is only
trusted by whoever is told to trust it (``curl --cacert``, ``SSL_CERT_FILE``).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from legato.security.files import private_dirs, write_private

#: Names every development certificate holds: the loopback names a local browser uses.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: A development CA and its server certificate are valid this long.
DEV_VALIDITY = timedelta(days=825)


class TlsError(Exception):
    """A certificate or key cannot be used; the message is one line for a user."""


@dataclass(frozen=True)
class TlsFiles:
    """A server certificate (PEM, the chain after it) and its private key (PEM)."""

    cert: Path
    key: Path

    def check(self) -> None:
        """Load both files as the server will: TlsError, in one line, when they are missing,
        unreadable, not PEM, or when the key is not the certificate's."""
        for what, path in (("certificate", self.cert), ("key", self.key)):
            if not path.is_file():
                raise TlsError(f"TLS {what} {path} does not exist")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(str(self.cert), str(self.key))
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
            raise TlsError(
                f"cannot use TLS certificate {self.cert} with key {self.key}: {reason}"
            ) from None


@dataclass(frozen=True)
class DevCerts:
    """What ``make_dev_certs`` wrote: the CA (to trust) and the server's pair (to serve)."""

    ca_cert: Path
    ca_key: Path
    server: TlsFiles
    names: tuple[str, ...]


def make_dev_certs(folder: Path, now: datetime, extra_names: tuple[str, ...] = ()) -> DevCerts:
    """Write a new CA (``ca.pem``, ``ca-key.pem``) and a server certificate for the loopback
    names and ``extra_names`` (``server.pem``, ``server-key.pem``), signed by it, to ``folder``
    (made owner-only). Keys are written readable by their owner only. ``now`` starts their
    validity."""
    names = tuple(dict.fromkeys((*LOOPBACK_NAMES, *extra_names)))
    private_dirs(folder)
    start = now - timedelta(minutes=5)  # clocks of the machines that check it may lag
    end = now + DEV_VALIDITY

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Legato development CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    written = DevCerts(
        ca_cert=folder / "ca.pem",
        ca_key=folder / "ca-key.pem",
        server=TlsFiles(cert=folder / "server.pem", key=folder / "server-key.pem"),
        names=names,
    )
    write_private(written.ca_key, _key_pem(ca_key))
    write_private(written.server.key, _key_pem(key))
    _write_public(written.ca_cert, _cert_pem(ca_cert))
    _write_public(written.server.cert, _cert_pem(cert) + _cert_pem(ca_cert))
    return written



def _write_public(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chmod(path, 0o644)


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
