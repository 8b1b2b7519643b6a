"""The dispatcher: which mailings are due, one run per occurrence whoever dispatches, the
schedule moving on, and the periodic jobs registered once with stable ids."""

import threading
from datetime import timedelta

from rq_scheduler import Scheduler
from sqlalchemy import func, select

from mailer.extensions import db, rq
from mailer.jobs.schedule import PERIODIC_JOBS, MailerScheduler, cancel_retired_jobs, register_periodic_jobs
from mailer.models import (
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingRun,
    MailingStatus,
    Repeat,
    RunStatus,
    RunTrigger,
    User,
    utcnow,
)
from mailer.services import dispatch, send_queue
from tests.factories import make_mailing


def run_count() -> int:
    return db.session.scalar(select(func.count()).select_from(MailingRun))


def test_a_due_mailing_gets_one_run_with_a_delivery_per_client_and_is_queued(app, owner):
    mailing = make_mailing(owner, clients=5)
    mailing.clients[0].unsubscribed_at = utcnow()
    db.session.commit()
    mailing_id, scheduled_for = mailing.id, mailing.next_run_at

    [run_id] = dispatch.dispatch_due_mailings()

    run = db.session.get(MailingRun, run_id)
    assert (run.mailing_id, run.trigger, run.scheduled_for, run.status) == (
        mailing_id,
        RunTrigger.SCHEDULE,
        scheduled_for,
        RunStatus.QUEUED,
    )
    assert (run.total_count, run.skipped_count) == (5, 1)
    statuses = db.session.scalars(select(Delivery.status).where(Delivery.run_id == run_id)).all()
    assert sorted(statuses) == [DeliveryStatus.PENDING] * 4 + [DeliveryStatus.SKIPPED]
    mailing = db.session.get(Mailing, mailing_id)
    assert mailing.next_run_at is None and mailing.status == MailingStatus.RUNNING
    assert send_queue.waiting_run_ids() == {run_id}
    assert dispatch.dispatch_due_mailings() == []  # nothing is due any more


def test_a_repeating_mailing_catches_up_once_then_moves_to_the_next_future_occurrence(app, owner):
    now = utcnow()
    start = now - timedelta(days=3, hours=1)
    mailing = make_mailing(owner, clients=1, start_at=start, end_at=now + timedelta(days=30), repeat=Repeat.DAILY)
    mailing_id = mailing.id

    assert len(dispatch.dispatch_due_mailings(now)) == 1
    mailing = db.session.get(Mailing, mailing_id)
    assert mailing.next_run_at == start + timedelta(days=4)  # tomorrow's occurrence, not the missed ones
    assert dispatch.dispatch_due_mailings(now) == []
    assert len(dispatch.dispatch_due_mailings(start + timedelta(days=4))) == 1
    assert run_count() == 2


def test_mailings_not_yet_due_disabled_or_of_a_blocked_owner_are_not_dispatched(app, owner):
    later = make_mailing(owner, clients=1, start_at=utcnow() + timedelta(hours=1))
    disabled = make_mailing(owner, clients=1)
    disabled.disabled_at = utcnow()
    blocked_owner = User(email="blocked@example.com", password_hash="-", is_active=False)
    db.session.add(blocked_owner)
    db.session.commit()
    make_mailing(blocked_owner, clients=1)

    assert dispatch.dispatch_due_mailings() == []
    assert run_count() == 0
    assert later.next_run_at is not None


def test_a_dispatcher_that_lost_the_race_creates_no_duplicate_run(app, owner):
    mailing = make_mailing(owner, clients=3)
    mailing_id, due = mailing.id, mailing.next_run_at
    # Another dispatcher created this occurrence's run a moment ago; this one still reads
    # the old next_run_at and tries the same (mailing, scheduled_for).
    rival = MailingRun(mailing_id=mailing_id, trigger=RunTrigger.SCHEDULE, scheduled_for=due, status=RunStatus.QUEUED)
    db.session.add(rival)
    db.session.commit()

    assert dispatch.dispatch_due_mailings() == []
    assert run_count() == 1
    assert db.session.get(Mailing, mailing_id).next_run_at == due  # left to the winner's commit


def test_dispatchers_running_at_the_same_time_create_each_run_once(app, owner):
    mailing_ids = [make_mailing(owner, clients=2).id for _ in range(6)]
    barrier = threading.Barrier(3)
    errors = []

    def dispatcher():
        with app.app_context():
            try:
                barrier.wait()
                dispatch.dispatch_due_mailings()
            except Exception as error:  # reported below; a thread cannot fail the test itself
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=dispatcher) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    runs = db.session.execute(select(MailingRun.mailing_id, func.count()).group_by(MailingRun.mailing_id)).all()
    assert sorted(runs) == [(mailing_id, 1) for mailing_id in mailing_ids]
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 12


def test_a_run_with_nobody_to_send_to_is_done_at_once(app, owner):
    mailing = make_mailing(owner, clients=0)
    mailing_id = mailing.id
    [run_id] = dispatch.dispatch_due_mailings()
    run = db.session.get(MailingRun, run_id)
    assert run.status == RunStatus.DONE and run.total_count == 0
    assert db.session.get(Mailing, mailing_id).status == MailingStatus.FINISHED


def test_the_periodic_jobs_are_registered_once_with_stable_ids(app):
    scheduler = Scheduler(queue_name=app.config["RQ_QUEUE"], connection=rq.connection)
    register_periodic_jobs(scheduler)
    app.config["DISPATCH_INTERVAL"] = 7
    register_periodic_jobs(scheduler)  # a restart, or a second scheduler process

    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {job_id for job_id, _, _ in PERIODIC_JOBS}
    assert jobs["mailer-dispatch-due-mailings"].func_name == "mailer.jobs.sending.dispatch_due_mailings"
    assert jobs["mailer-dispatch-due-mailings"].meta["interval"] == 7
    assert jobs["mailer-reconcile-sending"].meta["interval"] == app.config["RECONCILE_INTERVAL"]


def test_the_scheduler_puts_back_lost_periodic_jobs_and_cancels_retired_ones(app):
    scheduler = MailerScheduler(queue_name=app.config["RQ_QUEUE"], connection=rq.connection)
    scheduler.schedule(
        scheduled_time=utcnow(),
        func="mailer.jobs.sending.reconcile",
        interval=60,
        repeat=None,
        id="mailer-retired-job",
        queue_name=app.config["RQ_QUEUE"],
    )
    register_periodic_jobs(scheduler)
    assert "mailer-retired-job" not in scheduler

    rq.connection.flushdb()  # Redis restarted empty
    assert list(scheduler.get_jobs()) == []
    scheduler.enqueue_jobs()  # the scheduler's next pass

    assert {job.id for job in scheduler.get_jobs()} | set(rq.queue.get_job_ids()) >= {
        job_id for job_id, _, _ in PERIODIC_JOBS
    }


def test_a_retired_periodic_job_waiting_in_the_queue_is_removed_and_deleted(app):
    scheduler = MailerScheduler(queue_name=app.config["RQ_QUEUE"], connection=rq.connection)
    # A job of an earlier version, due when the scheduler stopped: its copy waits in the queue.
    rq.queue.enqueue("mailer.jobs.sending.reconcile", job_id="mailer-retired-job")
    rq.queue.enqueue("mailer.jobs.sending.send_run", 1, job_id="send-run-1-waiting")

    assert cancel_retired_jobs(scheduler) == ["mailer-retired-job"]

    assert rq.queue.get_job_ids() == ["send-run-1-waiting"]
    assert rq.queue.fetch_job("mailer-retired-job") is None
    register_periodic_jobs(scheduler)
    scheduler.enqueue_jobs()
    assert "mailer-retired-job" not in set(rq.queue.get_job_ids()) | {job.id for job in scheduler.get_jobs()}
    assert cancel_retired_jobs(scheduler) == []


def test_a_periodic_job_goes_ahead_of_waiting_send_jobs(app):
    rq.queue.enqueue("mailer.jobs.sending.send_run", 1, job_id="send-run-1-waiting")
    scheduler = Scheduler(queue_name=app.config["RQ_QUEUE"], connection=rq.connection)
    register_periodic_jobs(scheduler)
    scheduler.enqueue_jobs()  # what `flask scheduler run` does when they are due

    job_ids = rq.queue.get_job_ids()
    assert set(job_ids[:2]) == {job_id for job_id, _, _ in PERIODIC_JOBS}
    assert job_ids[2:] == ["send-run-1-waiting"]
