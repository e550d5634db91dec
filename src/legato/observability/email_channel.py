"""The ``email`` channel: a notice as a plain-text and HTML message over SMTP.

TLS is on unless turned off: STARTTLS on the submission port by default, or implicit TLS
(``ssl = true``, port 465). A server that does not offer STARTTLS when it is asked for is a
failure, never a quiet fall back to plain text, since the password would cross in clear.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any

import jinja2

from legato.observability.channels import (
    SEND_TIMEOUT,
    ChannelConfigError,
    DeliveryFailed,
    Notice,
    Reveal,
    SecretRef,
    check_keys,
    option,
    reveal_value,
    setting,
)
from legato.observability.notice_text import facts, headline, item_line, shown_items

#: What every subject starts with, so mail rules can sort alerts.
SUBJECT_PREFIX = "[Legato]"

_KEYS = {"host", "port", "from", "to", "username", "password", "starttls", "ssl", "ca_file"}

_HTML = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html><body style="font-family: sans-serif; color: #1d2939">
<h2 style="margin: 0 0 12px; color: {{ colour }}">{{ headline }}</h2>
{% if error %}<pre style="background: #f2f4f7; padding: 8px; white-space: pre-wrap">\
{{ error }}</pre>{% endif %}
<table style="border-collapse: collapse">
{% for label, value in facts %}<tr><th style="text-align: left; padding: 2px 12px 2px 0">\
{{ label }}</th><td>{{ value }}</td></tr>
{% endfor %}</table>
{% if items %}<ul>{% for item in items %}<li>{% if item.url %}<a href="{{ item.url }}">\
{{ item.line }}</a>{% else %}{{ item.line }}{% endif %}</li>
{% endfor %}</ul>{% if more %}<p>and {{ more }} more</p>{% endif %}{% endif %}
{% if url %}<p><a href="{{ url }}">Open the run page</a></p>{% endif %}
</body></html>
"""
)

_COLOURS = {"resolve": "#067647", "critical": "#912018", "error": "#b42318"}


def parse_email(name: str, table: Mapping[str, Any], reveal: Reveal, base: Path) -> EmailChannel:
    """The email channel a ``[channels.NAME]`` table of kind "email" describes."""
    check_keys(table, _KEYS, name)
    use_ssl = option(table, "ssl", name, bool, False)
    starttls = option(table, "starttls", name, bool, not use_ssl)
    if use_ssl and starttls:
        raise ChannelConfigError(
            f"[channels.{name}] ssl = true is TLS from the start; starttls must not be set"
        )
    port = option(table, "port", name, int, 465 if use_ssl else 587 if starttls else 25)
    if not 0 < port < 65536:
        raise ChannelConfigError(f"[channels.{name}] port must be between 1 and 65535")
    to = table.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(isinstance(a, str) and a for a in to):
        raise ChannelConfigError(f"[channels.{name}] to must be a list of addresses")
    sender = option(table, "from", name, str, required=True)
    for address in (sender, *to):
        if "@" not in parseaddr(address)[1] or "\n" in address or "\r" in address:
            raise ChannelConfigError(f"[channels.{name}] {address!r} is not an email address")
    username = setting(table, "username", name, required=False)
    password = setting(table, "password", name, required=False)
    if (username is None) != (password is None):
        raise ChannelConfigError(f"[channels.{name}] username and password go together")
    ca_file = option(table, "ca_file", name, str)
    return EmailChannel(
        name,
        host=option(table, "host", name, str, required=True),
        port=port,
        sender=sender,
        to=tuple(to),
        reveal=reveal,
        username=username,
        password=password,
        starttls=starttls,
        implicit_tls=use_ssl,
        ca_file=base / ca_file if ca_file else None,
    )


@dataclass(frozen=True)
class EmailChannel:
    """Sends each notice as one email to every address of ``to``."""

    name: str
    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    reveal: Reveal
    username: str | SecretRef | None = None
    password: str | SecretRef | None = None
    starttls: bool = True
    implicit_tls: bool = False  # TLS from the first byte (ssl = true), port 465
    ca_file: Path | None = None  # trust this CA instead of the system's
    timeout: float = SEND_TIMEOUT
    kind: str = "email"

    def send(self, notice: Notice) -> None:
        message = compose(notice, self.sender, self.to)
        login = None
        if self.username is not None and self.password is not None:
            login = (
                reveal_value(self.username, self.reveal, self.name),
                reveal_value(self.password, self.reveal, self.name),
            )
        context = self._tls_context() if self.implicit_tls or self.starttls else None
        try:
            if self.implicit_tls:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=context
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.starttls and not self.implicit_tls:
                    client.starttls(context=context)
                if login:
                    client.login(*login)
                refused = client.send_message(message)
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryFailed(self._unsupported(exc), retryable=False) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise _refused(exc.recipients, delivered=False) from None
        except smtplib.SMTPResponseException as exc:
            raise _answer(exc.smtp_code, exc.smtp_error) from None
        except ssl.SSLCertVerificationError as exc:
            # The server is not who it says, or its CA is not trusted: retrying cannot help.
            raise DeliveryFailed(
                f"{self.host}:{self.port}: certificate not trusted: {exc.verify_message}",
                retryable=False,
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(
                f"{self.host}:{self.port}: {type(exc).__name__}: {exc}", retryable=True
            ) from None
        if refused:
            # Some addresses have it: trying again would send it to them twice.
            raise _refused(refused, delivered=True)

    def _tls_context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryFailed(
                f"channel {self.name!r}: cannot use ca_file {self.ca_file}: {exc}",
                retryable=False,
            ) from None

    def _unsupported(self, exc: smtplib.SMTPNotSupportedError) -> str:
        if self.starttls and "STARTTLS" in str(exc):
            return (
                f"{self.host}:{self.port} does not offer STARTTLS "
                "(set starttls = false only for a server on a trusted network)"
            )
        return f"{self.host}:{self.port}: {exc}"


def _answer(code: int, text: bytes | str) -> DeliveryFailed:
    # 4xx: "not now" (a full mailbox, greylisting, a busy server); 5xx: refused for good,
    # wrong credentials (535) among them.
    said = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return DeliveryFailed(f"SMTP {code} {said}".strip(), retryable=400 <= code < 500)


def _refused(
    recipients: Mapping[str, tuple[int, bytes]], *, delivered: bool
) -> DeliveryFailed:
    said = "; ".join(
        f"{address}: {code} {text.decode(errors='replace')}"
        for address, (code, text) in recipients.items()
    )
    if delivered:
        return DeliveryFailed(f"sent, but refused for {said}", retryable=False)
    later = any(400 <= code < 500 for code, _ in recipients.values())
    return DeliveryFailed(f"every recipient refused: {said}", retryable=later)


def subject(notice: Notice) -> str:
    """The subject line: the prefix, then the headline; a group says how many alerts."""
    # A header holds one line: a title with a line break in it would not be sent at all.
    line = " ".join(headline(notice).split())
    if notice.kind == "group" and notice.items and str(len(notice.items)) not in line:
        line = f"{line} ({len(notice.items)} alerts)"
    return f"{SUBJECT_PREFIX} {line}"


def compose(notice: Notice, sender: str, to: tuple[str, ...]) -> EmailMessage:
    """The message for ``notice``: a plain-text body with an HTML alternative. Every message
    about one alert refers to the same id, so mail programs thread a resolve with its
    trigger."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject(notice)
    message["Date"] = format_datetime(notice.at)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "legato.invalid"
    # The fully qualified name make_msgid would look up can take seconds to resolve.
    message["Message-ID"] = make_msgid("legato", domain=domain)
    thread = f"<alert.{hashlib.sha256(notice.dedup_key.encode()).hexdigest()[:32]}@{domain}>"
    message["References"] = thread
    message["In-Reply-To"] = thread
    message["X-Legato-Dedup-Key"] = notice.dedup_key
    message.set_content(plain_text(notice))
    message.add_alternative(html_text(notice), subtype="html")
    return message


def plain_text(notice: Notice) -> str:
    """The plain-text body: headline, error, facts, the group's items, the run page."""
    lines = [headline(notice), ""]
    if notice.error:
        lines += [f"Error: {notice.error}", ""]
    pairs = facts(notice)
    width = max(len(label) for label, _ in pairs) + 2
    lines += [f"{label + ':':<{width}}{value}" for label, value in pairs]
    items, more = shown_items(notice)
    if items:
        lines.append("")
        lines += [f"- {item_line(i)}" + (f"\n  {i.url}" if i.url else "") for i in items]
        if more:
            lines.append(f"and {more} more")
    if notice.url:
        lines += ["", f"Open the run page: {notice.url}"]
    return "\n".join(lines) + "\n"


def html_text(notice: Notice) -> str:
    """The HTML body: the same as the plain text, with the run page as a link."""
    items, more = shown_items(notice)
    colour = _COLOURS.get(notice.kind) or _COLOURS.get(notice.severity, "#1d2939")
    return _HTML.render(
        colour=colour,
        headline=headline(notice),
        error=notice.error,
        facts=facts(notice),
        items=[{"line": item_line(i), "url": i.url} for i in items],
        more=more,
        url=notice.url,
    )
