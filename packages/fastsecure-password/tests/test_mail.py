"""The mailers: console, outbox, and SMTP against a real aiosmtpd server on loopback."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from fastsecure_password import ConsoleMailer, MailDeliveryError, OutboxMailer, SMTPMailer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Collect:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Collect]]:
    handler = Collect()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def _message(to: str = "zoe@example.org") -> EmailMessage:
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = "Hello"
    message.set_content("https://app.example/verify?token=abc")
    return message


async def test_smtp_mailer_delivers(smtp_server: tuple[int, Collect]) -> None:
    port, handler = smtp_server
    mailer = SMTPMailer("127.0.0.1", port, sender="no-reply@example.org", start_tls=False)
    await mailer.send(_message())
    [(sender, recipients, content)] = handler.received
    assert sender == "no-reply@example.org" and recipients == ["zoe@example.org"]
    parsed = message_from_bytes(content)
    assert parsed["Subject"] == "Hello" and "token=abc" in parsed.get_payload()


async def test_smtp_mailer_reports_an_unreachable_server(caplog: pytest.LogCaptureFixture) -> None:
    mailer = SMTPMailer("127.0.0.1", _free_port(), sender="a@example.org", timeout=2)
    with pytest.raises(MailDeliveryError):
        await mailer.send(_message())
    assert "zoe@example.org" not in caplog.text and "token" not in caplog.text
    assert "127.0.0.1" in repr(mailer)


async def test_console_and_outbox_mailers() -> None:
    stream = io.StringIO()
    console = ConsoleMailer(stream)
    await console.send(_message())
    assert "mail to zoe@example.org: Hello" in stream.getvalue()
    assert console.last_to("zoe@example.org")["Subject"] == "Hello"
    outbox = OutboxMailer(keep=2)
    for to in ("a@example.org", "b@example.org", "c@example.org"):
        await outbox.send(_message(to))
    assert [m["To"] for m in outbox.messages] == ["b@example.org", "c@example.org"]
    with pytest.raises(LookupError):
        outbox.last_to("a@example.org")
