"""Account mail: a small mailer contract, a console mailer, a test outbox and SMTP.

The flows build :class:`email.message.EmailMessage` objects and hand them to a
:class:`Mailer`. Messages carry one-use tokens, so no mailer here ever logs a message:
the console mailer writes to a stream the developer chose (standard error by default),
and the SMTP mailer logs only failures, without addresses.
"""

from __future__ import annotations

import logging
import sys
from abc import ABC, abstractmethod
from collections import deque
from email.message import EmailMessage
from typing import TextIO

import aiosmtplib

logger = logging.getLogger("fastsecure.password")


class MailDeliveryError(Exception):
    """The mail server refused or could not be reached."""


class Mailer(ABC):
    """Sends one message; raise :class:`MailDeliveryError` when it cannot be sent."""

    @abstractmethod
    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` (``From``, ``To``, ``Subject`` and a text body are set)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release connections; called on application shutdown."""


class OutboxMailer(Mailer):
    """Keeps messages in memory: for an app's tests and a development outbox page.

    Args:
        keep: the newest messages kept; older ones drop out.
    """

    def __init__(self, keep: int = 100) -> None:
        self.messages: deque[EmailMessage] = deque(maxlen=keep)

    async def send(self, message: EmailMessage) -> None:
        self.messages.append(message)

    def to(self, address: str) -> list[EmailMessage]:
        """Messages sent to ``address``, oldest first."""
        return [m for m in self.messages if address in str(m["To"] or "")]

    def last_to(self, address: str) -> EmailMessage:
        """The newest message to ``address``; ``LookupError`` when there is none."""
        found = self.to(address)
        if not found:
            raise LookupError(f"no message to {address}")
        return found[-1]


class ConsoleMailer(OutboxMailer):
    """Prints each message to a stream (standard error) and keeps it: for development.

    The links in the messages are credentials for a while: never use this mailer where
    the output is collected into shared logs.
    """

    def __init__(self, stream: TextIO | None = None, keep: int = 100) -> None:
        super().__init__(keep)
        self._stream = stream

    async def send(self, message: EmailMessage) -> None:
        await super().send(message)
        stream = self._stream or sys.stderr
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        stream.write(f"--- mail to {message['To']}: {message['Subject']}\n{text.rstrip()}\n---\n")
        stream.flush()


class SMTPMailer(Mailer):
    """Sends through an SMTP server with aiosmtplib (a connection per message).

    Args:
        hostname, port: the server; port 587 with ``start_tls`` or 465 with ``use_tls``.
        username, password: SMTP authentication, when the server needs it.
        sender: the ``From`` address set on messages that have none.
        use_tls: TLS from the first byte (port 465).
        start_tls: upgrade with STARTTLS; ``None`` upgrades when the server offers it.
        timeout: seconds for the whole exchange.
        validate_certs: keep ``True`` anywhere real.
    """

    def __init__(
        self,
        hostname: str,
        port: int = 587,
        *,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool | None = None,
        timeout: float = 10.0,
        validate_certs: bool = True,
    ) -> None:
        self.hostname = hostname
        self.port = port
        self.sender = sender
        self._username = username
        self._password = password
        self._use_tls = use_tls
        self._start_tls = start_tls
        self._timeout = timeout
        self._validate_certs = validate_certs

    def __repr__(self) -> str:
        return f"SMTPMailer({self.hostname!r}, {self.port})"

    async def send(self, message: EmailMessage) -> None:
        if message["From"] is None:
            message["From"] = self.sender
        try:
            await aiosmtplib.send(
                message,
                hostname=self.hostname,
                port=self.port,
                username=self._username,
                password=self._password,
                use_tls=self._use_tls,
                start_tls=self._start_tls,
                timeout=self._timeout,
                validate_certs=self._validate_certs,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            logger.warning("fastsecure: mail delivery failed: %s", type(exc).__name__)
            raise MailDeliveryError(f"mail delivery failed ({type(exc).__name__})") from exc


__all__ = [
    "ConsoleMailer",
    "MailDeliveryError",
    "Mailer",
    "OutboxMailer",
    "SMTPMailer",
]
