"""The email channel against a real SMTP server (aiosmtpd) on 127.0.0.1: STARTTLS with a
private CA, authentication, what the recipient reads, and which failures are worth a retry."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from legato.observability.channels import (
    Channel,
    ChannelConfigError,
    DeliveryFailed,
    SecretRef,
    parse_channels,
)
from legato.observability.email_channel import EmailChannel
from legato.security.tls import DevCerts
from tests.observability.conftest import FAILED_RUN, MailServer

TO = ["oncall@example.com", "data@example.com"]
PASSWORD = "s3cret pass"


def reveal(ref: SecretRef) -> str:
    return {"smtp_password": PASSWORD, "wrong_password": "guess"}[ref.name]


def email_channel(
    port: int, certs: DevCerts | None, base: Path | None = None, **table: Any
) -> Channel:
    common: dict[str, Any] = {
        "kind": "email",
        "host": "127.0.0.1",
        "port": port,
        "from": "Legato <legato@example.com>",
        "to": TO,
    }
    if certs is not None:
        common["ca_file"] = str(certs.ca_cert)
    return parse_channels({"mail": {**common, **table}}, reveal, base=base)["mail"]


@pytest.fixture
def secured(
    mail_server: Callable[..., MailServer], server_tls: ssl.SSLContext
) -> Iterator[MailServer]:
    """A server that takes mail only after STARTTLS and AUTH with PASSWORD."""
    yield mail_server(
        password=PASSWORD,
        tls_context=server_tls,
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
    )


def login(**extra: Any) -> dict[str, Any]:
    return {"username": "alerts", "password": {"secret": "smtp_password"}, **extra}


def bodies(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def test_an_alert_arrives_over_starttls_after_signing_in(
    secured: MailServer, certs: DevCerts
) -> None:
    email_channel(secured.port, certs, **login()).send(FAILED_RUN)

    ((recipients, message),) = secured.messages
    assert recipients == TO and secured.logins == ["alerts"]
    assert message["To"] == ", ".join(TO)
    assert message["Subject"] == "[Legato] Run failed: daily_sales 2026-12-05"
    plain, html = bodies(message)
    for seen in ("daily_sales", "2026-12-05", "load_sales"):
        assert seen in plain and seen in html
    assert "Error: KeyError: 'amount' <in row 3 & after>" in plain
    assert "KeyError: &#39;amount&#39; &lt;in row 3 &amp; after&gt;" in html
    assert "Open the run page: https://legato.example/runs/r42" in plain
    assert '<a href="https://legato.example/runs/r42">Open the run page</a>' in html


def test_a_wrong_password_is_not_retried(secured: MailServer, certs: DevCerts) -> None:
    channel = email_channel(secured.port, certs, **login(password={"secret": "wrong_password"}))
    with pytest.raises(DeliveryFailed, match="535") as failed:
        channel.send(FAILED_RUN)
    assert not failed.value.retryable and secured.messages == []


def test_a_server_that_is_down_is_retried_later() -> None:
    # A port held but not listened on refuses connections, and nobody else can take it.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        channel = email_channel(held.getsockname()[1], None, starttls=False)
        with pytest.raises(DeliveryFailed, match="Connection refused") as failed:
            channel.send(FAILED_RUN)
    assert failed.value.retryable


def test_a_relative_ca_file_is_found_in_the_project_folder(
    secured: MailServer, certs: DevCerts
) -> None:
    project = certs.ca_cert.parent.parent
    relative = str(certs.ca_cert.relative_to(project))
    email_channel(secured.port, None, base=project, ca_file=relative, **login()).send(FAILED_RUN)
    assert len(secured.messages) == 1


def test_a_certificate_from_an_untrusted_ca_stops_the_delivery(
    secured: MailServer, certs: DevCerts
) -> None:
    channel = email_channel(secured.port, None, **login())  # the system's CAs only
    with pytest.raises(DeliveryFailed, match="certificate not trusted") as failed:
        channel.send(FAILED_RUN)
    assert not failed.value.retryable and secured.messages == [] and secured.logins == []


def test_a_server_without_starttls_gets_no_password_in_clear(
    mail_server: Callable[..., MailServer],
) -> None:
    plain_server = mail_server(auth_require_tls=False)
    channel = email_channel(plain_server.port, None, **login())
    with pytest.raises(DeliveryFailed, match="does not offer STARTTLS") as failed:
        channel.send(FAILED_RUN)
    assert not failed.value.retryable and plain_server.logins == []


def test_a_resolve_over_implicit_tls_threads_with_its_trigger(
    mail_server: Callable[..., MailServer], server_tls: ssl.SSLContext, certs: DevCerts
) -> None:
    server = mail_server(ssl_context=server_tls)
    channel = email_channel(server.port, certs, ssl=True)
    channel.send(FAILED_RUN)
    channel.send(replace(FAILED_RUN, kind="resolve", error=None))

    (_, trigger), (_, resolve) = server.messages
    assert resolve["Subject"] == "[Legato] Resolved: Run failed: daily_sales 2026-12-05"
    assert resolve["References"] == trigger["References"]
    assert resolve["Message-ID"] != trigger["Message-ID"]
    plain, _ = bodies(resolve)
    assert plain.startswith("Resolved: ") and "Severity" not in plain


def test_a_group_lists_its_alerts_with_their_links(
    mail_server: Callable[..., MailServer],
) -> None:
    server = mail_server()
    items = tuple(
        replace(FAILED_RUN, title=f"Run failed: daily_sales {day}", url=f"https://l.example/runs/{day}")
        for day in range(1, 26)
    )
    group = replace(FAILED_RUN, kind="group", title="Backfill failing: daily_sales", items=items)
    email_channel(server.port, None, starttls=False).send(group)

    ((_, message),) = server.messages
    assert message["Subject"] == "[Legato] Backfill failing: daily_sales (25 alerts)"
    plain, html = bodies(message)
    assert "- Run failed: daily_sales 1: KeyError" in plain
    assert "https://l.example/runs/20" in plain and "runs/21" not in plain
    assert "and 5 more" in plain and "and 5 more" in html


def test_a_title_over_two_lines_still_makes_a_one_line_subject(
    mail_server: Callable[..., MailServer],
) -> None:
    server = mail_server()
    notice = replace(FAILED_RUN, title="Run failed: daily_sales\r\nBcc: someone@else")
    email_channel(server.port, None, starttls=False).send(notice)
    ((recipients, message),) = server.messages
    assert message["Subject"] == "[Legato] Run failed: daily_sales Bcc: someone@else"
    assert recipients == TO and message["Bcc"] is None


@pytest.mark.parametrize(
    ("answer", "refuse", "retryable"),
    [
        ("451 4.3.0 Try again later", {}, True),
        ("554 5.6.0 Message refused", {}, False),
        ("250 OK", {TO[0]: "450 4.2.0 Mailbox busy", TO[1]: "550 5.1.1 No such user"}, True),
        ("250 OK", {TO[0]: "550 5.1.1 No such user", TO[1]: "550 5.1.1 No such user"}, False),
    ],
)
def test_a_temporary_refusal_is_retried_and_a_permanent_one_is_not(
    mail_server: Callable[..., MailServer], answer: str, refuse: dict[str, str], retryable: bool
) -> None:
    server = mail_server()
    server.answer, server.refuse = answer, refuse
    with pytest.raises(DeliveryFailed) as failed:
        email_channel(server.port, None, starttls=False).send(FAILED_RUN)
    assert failed.value.retryable is retryable


def test_a_partly_refused_message_is_not_sent_again_to_who_has_it(
    mail_server: Callable[..., MailServer],
) -> None:
    server = mail_server()
    server.refuse = {TO[1]: "450 4.2.0 Mailbox busy"}
    with pytest.raises(DeliveryFailed, match=f"refused for {TO[1]}") as failed:
        email_channel(server.port, None, starttls=False).send(FAILED_RUN)
    assert not failed.value.retryable
    assert [recipients for recipients, _ in server.messages] == [[TO[0]]]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"to": TO, "from": "a@b"}, "needs host"),
        ({"host": "h", "to": TO}, "needs from"),
        ({"host": "h", "from": "a@b"}, "to must be a list"),
        ({"host": "h", "from": "a@b", "to": TO, "port": "25"}, "port must be a whole number"),
        ({"host": "h", "from": "a@b", "to": TO, "port": 70000}, "between 1 and 65535"),
        ({"host": "h", "from": "a@b", "to": TO, "starttls": "no"}, "starttls must be true or"),
        ({"host": "h", "from": "a@b", "to": TO, "ssl": True, "starttls": True}, "ssl = true"),
        ({"host": "h", "from": "a@b", "to": TO, "username": "u"}, "username and password"),
        ({"host": "h", "from": "a@b", "to": TO, "tls": True}, "unknown key 'tls'"),
        ({"host": "h", "from": "a@b", "to": ["oncall"]}, "'oncall' is not an email address"),
        ({"host": "h", "from": "a@b\nBcc: x@y", "to": TO}, "is not an email address"),
    ],
)
def test_a_wrong_email_table_is_refused_with_the_reason(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        parse_channels({"mail": {"kind": "email", **table}}, reveal)


def test_the_port_follows_the_kind_of_tls() -> None:
    table = {"kind": "email", "host": "h", "from": "a@b", "to": "x@y"}
    channels = [
        parse_channels({"m": {**table, **extra}}, reveal)["m"]
        for extra in ({}, {"ssl": True}, {"starttls": False})
    ]
    assert [c.port for c in channels if isinstance(c, EmailChannel)] == [587, 465, 25]
