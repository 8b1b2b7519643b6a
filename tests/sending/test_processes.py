"""The whole path with real processes: `flask scheduler run` dispatching on its schedule,
`python worker.py` sending, a worker killed in the middle of a run, `flask mailings send --wait`.
(Several workers on one run, and other faults: test_faults.py.)"""

from collections import Counter

from sqlalchemy import func, select

from mailer.extensions import db
from mailer.models import AttemptStatus, Delivery, DeliveryStatus, MailingRun, RunStatus
from mailer.services import dispatch
from tests.factories import make_mailing
from tests.support import attempts, deliveries, reload_run, wait_until


def run_over(run_id: int) -> MailingRun | None:
    run = reload_run(run_id)
    return run if run is not None and not run.is_active else None


def test_a_mailing_due_now_is_sent_by_the_scheduler_and_a_worker_within_seconds(app, owner, smtp_sink, processes):
    app.config.update(DISPATCH_INTERVAL=1)
    processes.scheduler()
    processes.worker()
    mailing = make_mailing(owner, clients=20)
    emails = sorted(client.email for client in mailing.clients)

    run_id = wait_until(
        lambda: db.session.scalar(select(MailingRun.id)) if not db.session.rollback() else None, timeout=20
    )
    run = wait_until(lambda: run_over(run_id), timeout=20)

    assert run.trigger.value == "schedule" and run.status == RunStatus.DONE and run.sent_count == 20
    assert sorted(address for mail in smtp_sink.received for address in mail.recipients) == emails
    log = attempts(run_id)
    assert len(log) == 20
    assert all((a.status, a.smtp_code, a.smtp_response) == (AttemptStatus.SUCCESS, 250, "2.0.0 Accepted") for a in log)


def test_a_worker_killed_mid_run_loses_nobody_and_repeats_at_most_its_chunk(app, owner, smtp_sink, processes):
    chunk = 50
    app.config.update(SEND_CHUNK_SIZE=chunk, SEND_LEASE_SECONDS=2)
    make_mailing(owner, clients=2000)
    first = processes.worker()
    [run_id] = dispatch.dispatch_due_mailings()

    wait_until(lambda: len(smtp_sink.received) >= 300, timeout=60)
    processes.kill(first)
    received_before = len(smtp_sink.received)
    assert received_before < 2000, "the run ended before the worker was killed"

    # After the lease, the reconciler returns the dead worker's claims; the job the worker queued
    # for a helper (or one the reconciler queues) carries the run on.
    released = []

    def reconciled():
        db.session.rollback()
        released.append(dispatch.reconcile()["released"])
        return db.session.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.SENDING)) == 0

    wait_until(reconciled, timeout=20, interval=0.5)
    assert sum(released) <= chunk + app.config["SEND_CONNECTIONS"]  # the claims it held
    processes.worker()
    run = wait_until(lambda: run_over(run_id), timeout=90, interval=0.2)

    assert run.status == RunStatus.DONE and run.sent_count == 2000
    rows = deliveries(run_id)
    assert Counter(d.status for d in rows) == {DeliveryStatus.SENT: 2000}
    per_address = Counter(address for mail in smtp_sink.received for address in mail.recipients)
    assert set(per_address) == {d.email for d in rows}
    twice = [address for address, count in per_address.items() if count > 1]
    assert max(per_address.values()) <= 2
    assert len(twice) <= chunk
    # The messages sent twice carried the same Message-ID both times.
    for address in twice:
        assert len({mail.message["Message-ID"] for mail in smtp_sink.to(address)}) == 1


def test_flask_mailings_send_wait_shows_progress_and_the_summary(app, owner, smtp_sink, processes):
    mailing_id = make_mailing(owner, clients=30).id
    processes.worker()
    result = app.test_cli_runner().invoke(args=["mailings", "send", str(mailing_id), "--wait", "--poll", "0.1"])

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    run_id = db.session.scalar(select(MailingRun.id))
    assert lines[0].startswith(f"run {run_id}: 30 deliveries")
    import re

    assert re.fullmatch(rf"run {run_id}: 30 sent, 0 failed, 0 skipped in \d+\.\d s \(\d+\.\d msg/s\)", lines[-1])
    assert len(smtp_sink.received) == 30
