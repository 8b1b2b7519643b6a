"""Fixtures for the sending tests: an owner with clients, a message and mailings, in-process
and real worker processes."""
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from mailer.extensions import db
from mailer.models import (
    Client,
    Delivery,
    Mailing,
    MailingAttempt,
    MailingRun,
    Message,
    Repeat,
    mailing_clients,
    utcnow,
)
from mailer.services import schedule
from tests.conftest import make_user

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(app):
    app.config.update(SEND_CHUNK_SIZE=10, SEND_CONNECTIONS=4, SEND_RETRY_BASE_DELAY=1, SEND_RETRY_WINDOW=2,
                      MAIL_TIMEOUT=5)
    return app


@pytest.fixture
def owner(app):
    return make_user("sender@example.com", full_name="Sam Sender")


def add_clients(owner, count: int, prefix: str = "client") -> list[int]:
    if count == 0:
        return []
    db.session.execute(insert(Client), [
        {"owner_id": owner.id, "email": f"{prefix}{number}@example.com", "full_name": f"Client {number}",
         "comment": ""}
        for number in range(count)
    ])
    db.session.commit()
    return list(db.session.scalars(
        select(Client.id).where(Client.owner_id == owner.id, Client.email.like(f"{prefix}%")).order_by(Client.id)))


def make_mailing(owner, clients: int = 3, *, start_at=None, end_at=None, repeat=Repeat.NONE,
                 subject="Hello {{ name }}", body="Dear {{ name }}, news for {{ email }}.") -> Mailing:
    """A saved mailing to `clients` new clients, scheduled like the mailings form does it."""
    now = utcnow()
    message = Message(owner=owner, subject=subject, body_text=body)
    start_at = start_at or now
    mailing = Mailing(owner=owner, name="Newsletter", message=message, start_at=start_at,
                      end_at=end_at or start_at + timedelta(days=30), repeat=repeat)
    db.session.add(mailing)
    db.session.flush()
    client_ids = add_clients(owner, clients, prefix=f"m{mailing.id}-")
    if client_ids:
        db.session.execute(insert(mailing_clients),
                           [{"mailing_id": mailing.id, "client_id": cid} for cid in client_ids])
    schedule.reset_schedule(mailing, now)
    db.session.commit()
    return mailing


def deliveries(run_id: int) -> list[Delivery]:
    db.session.expire_all()
    return list(db.session.scalars(select(Delivery).where(Delivery.run_id == run_id).order_by(Delivery.id)))


def attempts(run_id: int) -> list[MailingAttempt]:
    db.session.expire_all()
    return list(db.session.scalars(
        select(MailingAttempt).where(MailingAttempt.run_id == run_id).order_by(MailingAttempt.id)))


def reload_run(run_id: int) -> MailingRun:
    db.session.expire_all()
    return db.session.get(MailingRun, run_id)


@pytest.fixture
def work(app):
    """Run the queued jobs in this process until none is left, like `python worker.py` does,
    including the scheduled jobs that are due (a burst worker with its scheduler)."""
    from rq import SimpleWorker

    from mailer.extensions import rq

    def run() -> None:
        SimpleWorker([rq.queue], connection=rq.connection).work(burst=True, with_scheduler=True)
        db.session.remove()

    return run


@pytest.fixture
def logged_in_owner(client, owner):
    from tests.conftest import login

    login(client, owner.email)
    return client


class Processes:
    """Real `python worker.py` and `flask scheduler run` processes on the test's database, Redis
    and SMTP sink, stopped at the end of the test."""

    SETTINGS = ("SEND_CHUNK_SIZE", "SEND_CONNECTIONS", "SEND_RETRY_BASE_DELAY", "SEND_RETRY_MAX_DELAY",
                "SEND_RETRY_WINDOW", "SEND_LEASE_SECONDS", "SEND_DELIVERY_TIMEOUT", "SEND_STOP_GRACE",
                "DISPATCH_INTERVAL", "RECONCILE_INTERVAL", "MAIL_TIMEOUT", "MAIL_RATE_LIMIT", "MAIL_MAX_CONNECTIONS")

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
            [sys.executable, *command], cwd=ROOT, env=self.environment(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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


@pytest.fixture
def processes(app, database_uri, redis_url, smtp_sink):
    started = Processes(app, database_uri, redis_url, smtp_sink.port)
    yield started
    started.stop_all()


def wait_until(condition, timeout: float = 30.0, interval: float = 0.05):
    """Poll `condition` until it returns something true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"gave up waiting after {timeout} s")
