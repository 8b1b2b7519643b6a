"""The sending engine under faults and limits, with real worker and scheduler processes: a server
slower than the lease, SIGTERM, several workers on one run, Redis restarted empty, PostgreSQL
stopped, a server's rate and connection limits. What the SMTP sink received is counted per
recipient."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from rq import Worker
from rq.job import Job
from rq.registry import FinishedJobRegistry
from sqlalchemy import func, select

from config import database_url
from mailer import create_app
from mailer.extensions import db, rq
from mailer.models import AttemptStatus, Delivery, DeliveryStatus, MailingAttempt, MailingRun, RunStatus, utcnow
from mailer.services import dispatch, throttle
from tests.factories import make_mailing, make_user
from tests.fast_sink import FastSink
from tests.support import ROOT, RedisServer, deliveries, free_port, reload_run, wait_until


def run_over(run_id: int) -> MailingRun | None:
    run = reload_run(run_id)
    return run if run is not None and not run.is_active else None


def copies_per_client(smtp_sink) -> Counter:
    return Counter(address for mail in smtp_sink.received for address in mail.recipients)


def counters_match_deliveries(run_id: int) -> bool:
    """The run's counters equal what its deliveries say, read in one statement (one snapshot)."""

    def count(status: DeliveryStatus):
        return select(func.count()).where(Delivery.run_id == run_id, Delivery.status == status).scalar_subquery()

    db.session.rollback()
    row = db.session.execute(
        select(
            MailingRun.sent_count,
            MailingRun.failed_count,
            MailingRun.skipped_count,
            count(DeliveryStatus.SENT),
            count(DeliveryStatus.FAILED),
            count(DeliveryStatus.SKIPPED),
        ).where(MailingRun.id == run_id)
    ).one()
    db.session.rollback()
    return tuple(row[:3]) == tuple(row[3:])


def test_a_server_slower_than_the_lease_gets_each_message_once_and_the_counters_stay_exact(
    app, owner, smtp_sink, processes
):
    # A chunk takes about 10 x 0.25 s / 2 connections = 1.25 s, the lease is 1 s: only the
    # heartbeat keeps the reconciler from handing the chunk to someone else.
    app.config.update(SEND_CHUNK_SIZE=10, SEND_CONNECTIONS=2, SEND_LEASE_SECONDS=1)
    smtp_sink.handler.delay = 0.25
    make_mailing(owner, clients=30)
    processes.worker()
    [run_id] = dispatch.dispatch_due_mailings()

    released, checks = 0, 0
    while run_over(run_id) is None:
        db.session.rollback()
        released += dispatch.reconcile()["released"]  # what the periodic reconciler does
        assert counters_match_deliveries(run_id)
        checks += 1
        time.sleep(0.3)
        assert checks < 200, "the run did not end"

    run = reload_run(run_id)
    assert released == 0 and run.unknown_count == 0
    assert (run.status, run.sent_count, run.total_count) == (RunStatus.DONE, 30, 30)
    assert counters_match_deliveries(run_id)
    assert sorted(copies_per_client(smtp_sink).values()) == [1] * 30
    assert db.session.scalar(select(func.count()).select_from(MailingAttempt)) == 30


def test_sigterm_finishes_the_messages_in_flight_and_leaves_the_rest_to_other_workers(app, owner, smtp_sink, processes):
    app.config.update(SEND_CHUNK_SIZE=20, SEND_CONNECTIONS=4, SEND_STOP_GRACE=5)
    smtp_sink.handler.delay = 0.05
    make_mailing(owner, clients=600)
    worker = processes.worker()
    [run_id] = dispatch.dispatch_due_mailings()
    wait_until(lambda: len(smtp_sink.received) >= 40, timeout=60)

    stopped_at = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=15)
    assert time.monotonic() - stopped_at < 10

    # Nothing is left claimed, and every message the server accepted is recorded as sent.
    rows = deliveries(run_id)
    statuses = Counter(delivery.status for delivery in rows)
    assert statuses[DeliveryStatus.SENDING] == 0
    assert statuses[DeliveryStatus.SENT] == len(smtp_sink.received) > 0
    assert statuses[DeliveryStatus.PENDING] > 0, "the run ended before the worker was stopped"
    assert db.session.scalar(select(func.count()).where(MailingAttempt.status == AttemptStatus.UNKNOWN)) == 0

    smtp_sink.handler.delay = 0
    processes.worker()  # picks up the job the stopping worker queued for the rest
    run = wait_until(lambda: run_over(run_id), timeout=90, interval=0.2)
    assert (run.status, run.sent_count) == (RunStatus.DONE, 600)
    assert sorted(copies_per_client(smtp_sink).values()) == [1] * 600


def test_three_workers_all_send_one_run(app, owner, smtp_sink, processes, database_uri):
    if not database_uri.startswith("postgresql"):
        pytest.skip("workers claim in parallel only on PostgreSQL (FOR UPDATE SKIP LOCKED); SQLite has one writer")
    app.config.update(SEND_CHUNK_SIZE=20, SEND_CONNECTIONS=4)
    smtp_sink.handler.delay = 0.02
    make_mailing(owner, clients=900)
    for _ in range(3):
        processes.worker()
    wait_until(lambda: len(Worker.all(connection=rq.connection)) == 3, timeout=30)
    [run_id] = dispatch.dispatch_due_mailings()
    run = wait_until(lambda: run_over(run_id), timeout=120, interval=0.2)

    assert (run.status, run.sent_count) == (RunStatus.DONE, 900)
    assert sorted(copies_per_client(smtp_sink).values()) == [1] * 900
    sent_by_worker = Counter()
    for job_id in FinishedJobRegistry(queue=rq.queue).get_job_ids():
        job = Job.fetch(job_id, connection=rq.connection)
        result = job.return_value()
        if result and result.get("run") == run_id:
            sent_by_worker[job.worker_name] += result["sent"]
    assert len(sent_by_worker) == 3 and all(sent_by_worker.values()), sent_by_worker
    assert sum(sent_by_worker.values()) == 900


@pytest.fixture
def own_redis(app):
    """A Redis of the test's own, which the test may kill and start again (empty) on its port."""
    server = RedisServer()
    app.config["REDIS_URL"] = server.url
    app.extensions.pop("rq_redis", None)
    yield server
    if server.process.poll() is None:
        server.stop()
    app.extensions.pop("rq_redis", None)


def test_a_redis_restarted_empty_mid_run_needs_nobody(app, owner, smtp_sink, processes, own_redis):
    app.config.update(SEND_CHUNK_SIZE=10, SEND_CONNECTIONS=2, DISPATCH_INTERVAL=1, RECONCILE_INTERVAL=1)
    smtp_sink.handler.delay = 0.02
    processes.redis_url = own_redis.url
    processes.worker()
    processes.scheduler()
    mailing = make_mailing(owner, clients=300)
    run_id = wait_until(
        lambda: db.session.scalar(select(MailingRun.id)) if not db.session.rollback() else None, timeout=30
    )
    wait_until(lambda: len(smtp_sink.received) >= 30, timeout=30)

    own_redis.stop()  # everything in it is gone: queued jobs, the periodic jobs, the workers' keys
    time.sleep(3)
    restarted = RedisServer(port=own_redis.port)
    own_redis.process, own_redis.dir = restarted.process, restarted.dir

    run = wait_until(lambda: run_over(run_id), timeout=120, interval=0.3)
    assert (run.status, run.sent_count) == (RunStatus.DONE, 300)
    assert max(copies_per_client(smtp_sink).values()) == 1

    # The scheduler put its periodic jobs back and the worker reconnected: a mailing due now
    # is dispatched and sent, with no process restarted.
    later = make_mailing(owner, clients=5)
    later_emails = {client.email for client in later.clients}
    wait_until(lambda: later_emails <= set(copies_per_client(smtp_sink)), timeout=60, interval=0.3)
    assert mailing.id != later.id


POSTGRESQL_BIN = Path("/usr/lib/postgresql")


def postgresql_tools() -> Path | None:
    versions = sorted(POSTGRESQL_BIN.glob("*/bin/pg_ctl")) if POSTGRESQL_BIN.exists() else []
    return versions[-1].parent if versions and shutil.which("runuser") else None


class OwnPostgreSQL:
    """A PostgreSQL cluster of the test's own on a free port, run as the `postgres` user."""

    def __init__(self):
        self.bin = postgresql_tools()
        self.dir = tempfile.mkdtemp(prefix="mailer-pg-")
        shutil.chown(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.as_postgres(self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def as_postgres(self, *command) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, command)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        self.as_postgres(
            self.bin / "pg_ctl",
            "-D",
            self.data,
            "-w",
            "-l",
            os.path.join(self.dir, "log"),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self) -> None:
        self.as_postgres(self.bin / "pg_ctl", "-D", self.data, "-w", "-m", "fast", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def app_on_own_postgresql(app, processes):
    """The test's app, and the processes it starts, on a PostgreSQL of the test's own."""
    if postgresql_tools() is None or os.geteuid() != 0:
        pytest.skip("needs PostgreSQL's server programs and root (to run them as the postgres user)")
    server = OwnPostgreSQL()
    uri = database_url(server.url, "")
    settings = {
        name: app.config[name]
        for name in (*processes.SETTINGS, "REDIS_URL", "MAIL_SERVER", "MAIL_PORT", "OUTBOX_DIR", "EXTERNAL_URL")
    }
    other = create_app("testing", SQLALCHEMY_DATABASE_URI=uri, **settings)
    with other.app_context():
        db.create_all()
        processes.app, processes.database_uri = other, uri
        yield other, server
        db.session.remove()
        db.engine.dispose()
    server.remove()


def test_postgresql_stopped_mid_run_repeats_at_most_the_messages_in_flight(smtp_sink, processes, app_on_own_postgresql):
    app, server = app_on_own_postgresql
    connections = app.config["SEND_CONNECTIONS"]
    smtp_sink.handler.delay = 0.03
    mailing = make_mailing(make_user("pg-owner@example.com"), clients=400, start_at=utcnow() + timedelta(days=1))
    processes.worker()
    # Send now from the command line, watching the run with --wait through the outage.
    watcher = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi.py", "mailings", "send", str(mailing.id), "--wait"],
        cwd=ROOT,
        env=processes.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run_id = wait_until(lambda: db.session.scalar(select(MailingRun.id)) if not db.session.rollback() else None)
    wait_until(lambda: len(smtp_sink.received) >= 40, timeout=60)

    db.session.remove()
    db.engine.dispose()
    server.stop()
    time.sleep(5)  # the worker cannot write: it stops handing out messages and waits
    server.start()

    run = wait_until(lambda: run_over(run_id), timeout=120, interval=0.5)
    assert (run.status, run.sent_count) == (RunStatus.DONE, 400)
    output, _ = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, output
    assert "Traceback" not in output and f"run {run_id}: 400 sent, 0 failed" in output
    copies = copies_per_client(smtp_sink)
    assert len(copies) == 400
    assert len([address for address, count in copies.items() if count > 1]) <= connections


@pytest.fixture
def fast_sink(app, processes):
    """The fast SMTP sink (its own process), which counts connections and messages per second."""
    sink = FastSink()
    app.config["MAIL_PORT"] = sink.port
    app.extensions["mail"].port = sink.port
    processes.smtp_port = sink.port
    yield sink
    sink.stop()


def test_a_servers_rate_and_connection_limits_hold_across_three_workers(app, owner, processes, fast_sink):
    app.config.update(MAIL_RATE_LIMIT="20 per second", MAIL_MAX_CONNECTIONS=2, SEND_CHUNK_SIZE=10)
    make_mailing(owner, clients=80)
    for _ in range(3):
        processes.worker()
    wait_until(lambda: len(Worker.all(connection=rq.connection)) == 3, timeout=30)
    [run_id] = dispatch.dispatch_due_mailings()

    held_back = set()
    while run_over(run_id) is None:
        held_back.add(throttle.held_back(rq.connection, run_id) is not None)
        time.sleep(0.2)

    received = fast_sink.stats()
    assert reload_run(run_id).sent_count == 80
    assert received["messages"] == received["recipients"] == 80 and received["repeated_recipients"] == 0
    assert received["most_connections"] <= 2
    # A moving window of one second lets 20 through; a message's arrival may trail its count by
    # the time it takes to send, hence the small margin.
    assert received["busiest_second"] <= 22
    assert received["seconds"] >= 4  # 80 messages at 20 a second cannot all arrive in fewer
    assert True in held_back  # the run page could say what held it back
