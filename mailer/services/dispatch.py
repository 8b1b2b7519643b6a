"""The periodic side of sending: the scheduled dispatch of due mailings, and the reconciler that
repairs what a crash or a lost Redis job left.

The database is the source of truth: the reconciler looks at the deliveries, never at the queue
alone, so a job Redis loses is found again, and a dead worker's claims are taken back once its
lease (which a live worker renews) has expired.
"""

import logging
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from mailer.database import is_postgresql
from mailer.extensions import db
from mailer.models import (
    ACTIVE_RUN_STATUSES,
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingAttempt,
    MailingRun,
    RunTrigger,
    User,
    utcnow,
)
from mailer.services import attempt_stats, runs, schedule, send_queue
from mailer.services.stats import clear_stats_cache_after_commit

log = logging.getLogger(__name__)

INTERRUPTED = (
    "The try was interrupted (the worker stopped or lost the database while sending); "
    "the message may or may not have been delivered."
)


# The scheduled dispatch -------------------------------------------------------------------------


def due_mailing_ids(now: datetime) -> list[int]:
    """Enabled mailings of active owners whose next run is due and inside [start, end]."""
    return list(
        db.session.scalars(
            select(Mailing.id)
            .join(User, User.id == Mailing.owner_id)
            .where(
                Mailing.disabled_at.is_(None),
                User.is_active.is_(True),
                Mailing.next_run_at <= now,
                Mailing.next_run_at >= Mailing.start_at,
                Mailing.next_run_at <= Mailing.end_at,
            )
            .order_by(Mailing.next_run_at)
        )
    )


def dispatch_mailing(mailing_id: int, now: datetime) -> MailingRun | None:
    """Create the due run of one mailing and advance its schedule, in one transaction.

    A second dispatcher working at the same time either skips the mailing (PostgreSQL: the row
    is locked) or fails on the unique (mailing, scheduled_for) and rolls back: no run is created
    twice.
    """
    query = select(Mailing).where(Mailing.id == mailing_id).execution_options(populate_existing=True)
    if is_postgresql(db.session):
        query = query.with_for_update(skip_locked=True, of=Mailing)
    mailing = db.session.scalar(query)
    due = (
        mailing is not None
        and mailing.disabled_at is None
        and mailing.owner.is_active
        and mailing.next_run_at is not None
        and mailing.start_at <= mailing.next_run_at <= now
        and mailing.next_run_at <= mailing.end_at
    )
    if not due:
        db.session.rollback()
        return None
    scheduled_for = mailing.next_run_at
    # Missed occurrences are not replayed: this run catches up, the next one is in the future.
    next_run_at = schedule.next_run_time(mailing, max(scheduled_for, now))
    # Take the occurrence only if it is still the next run: Send now on a "Once" mailing takes it
    # too, and on SQLite the row above was read without a lock.
    taken = db.session.execute(
        update(Mailing)
        .where(Mailing.id == mailing.id, Mailing.next_run_at == scheduled_for)
        .values(next_run_at=next_run_at)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount == 0:
        db.session.rollback()
        return None
    mailing.next_run_at = next_run_at
    try:
        run = runs.create_run(mailing, RunTrigger.SCHEDULE, scheduled_for, now)
        if schedule.refresh_status(mailing, now):
            clear_stats_cache_after_commit(mailing.owner_id)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        log.info("mailing %s: the run for %s exists already (another dispatcher)", mailing_id, scheduled_for)
        return None
    return run


def dispatch_due_mailings(now: datetime | None = None) -> list[int]:
    """One dispatch pass: create every due run, then enqueue their sending. Returns the run ids."""
    now = now or utcnow()
    run_ids = []
    for mailing_id in due_mailing_ids(now):
        run = dispatch_mailing(mailing_id, now)
        if run is not None:
            run_ids.append(run.id)
            log.info("mailing %s: run %s created for %s", mailing_id, run.id, run.scheduled_for)
    for run_id in run_ids:
        send_queue.enqueue_run(run_id)
    return run_ids


# The reconciler ---------------------------------------------------------------------------------


def release_expired_leases(now: datetime) -> int:
    """Deliveries whose lease expired (their worker died, or could not reach the database for
    longer than SEND_LEASE_SECONDS) go back to pending, to be tried again at once.

    The interrupted try is logged with an unknown outcome: the message may or may not have reached
    the server. Past the retry window the delivery fails instead, so a message that kills every
    worker cannot loop for ever.
    """
    config = current_app.config
    cutoff = now - timedelta(seconds=config["SEND_LEASE_SECONDS"])
    window = timedelta(seconds=config["SEND_RETRY_WINDOW"])
    query = (
        select(
            Delivery.id,
            Delivery.run_id,
            Delivery.client_id,
            Delivery.email,
            Delivery.attempts,
            Delivery.claimed_at,
            Delivery.claim_token,
            Delivery.first_attempt_at,
            MailingRun.mailing_id,
        )
        .join(MailingRun, MailingRun.id == Delivery.run_id)
        .where(Delivery.status == DeliveryStatus.SENDING, Delivery.claimed_at < cutoff)
        .order_by(Delivery.id)
        .limit(1000)
    )
    if is_postgresql(db.session):
        query = query.with_for_update(skip_locked=True, of=Delivery)
    stuck = db.session.execute(query).all()
    if not stuck:
        db.session.rollback()
        return 0
    updates, attempts = [], []
    for row in stuck:
        # An interrupted first try starts the window now.
        first = row.first_attempt_at or now
        give_up = now - first >= window
        updates.append(
            {
                "b_id": row.id,
                "b_token": row.claim_token,
                "b_attempts": row.attempts + 1,
                "b_first": first,
                "b_status": DeliveryStatus.FAILED.value if give_up else DeliveryStatus.PENDING.value,
            }
        )
        attempts.append(
            {
                "mailing_id": row.mailing_id,
                "run_id": row.run_id,
                "delivery_id": row.id,
                "client_id": row.client_id,
                "email": row.email,
                "attempted_at": row.claimed_at,
                "status": AttemptStatus.UNKNOWN,
                "error": INTERRUPTED,
            }
        )
    table = Delivery.__table__
    db.session.execute(
        table.update()
        .where(
            table.c.id == bindparam("b_id"),
            table.c.status == DeliveryStatus.SENDING.value,
            table.c.claim_token.is_not_distinct_from(bindparam("b_token")),
        )
        .values(
            status=bindparam("b_status"),
            attempts=bindparam("b_attempts"),
            claimed_at=None,
            claim_token=None,
            first_attempt_at=bindparam("b_first"),
            retry_at=None,
            last_code=None,
            last_response=INTERRUPTED,
        ),
        updates,
    )
    db.session.execute(insert(MailingAttempt), attempts)
    for mailing_id in sorted({row.mailing_id for row in stuck}):
        attempt_stats.add(
            mailing_id,
            [
                (attempt["attempted_at"], AttemptStatus.UNKNOWN)
                for attempt in attempts
                if attempt["mailing_id"] == mailing_id
            ],
            [],
        )
    for run_id in sorted({row.run_id for row in stuck}):
        runs.update_counters(run_id)
    db.session.commit()
    log.warning("returned %d deliveries whose worker stopped to the pending list", len(stuck))
    return len(stuck)


def reconcile(now: datetime | None = None) -> dict:
    """Repair after crashes and lost jobs: expired leases, runs nobody works on, runs left over."""
    now = now or utcnow()
    released = release_expired_leases(now)
    active_runs = list(
        db.session.scalars(
            select(MailingRun.id).where(MailingRun.status.in_(ACTIVE_RUN_STATUSES)).order_by(MailingRun.id)
        )
    )
    db.session.rollback()
    if not active_runs:
        return {"released": released, "enqueued": [], "finished": []}
    try:
        queued, waiting = send_queue.waiting_run_ids(scheduled=False), send_queue.waiting_run_ids()
    except RedisError as error:
        log.warning("reconciler: Redis unreachable (%s)", error)
        return {"released": released, "enqueued": [], "finished": []}
    enqueued, finished = [], []
    for run_id in active_runs:
        state = runs.run_work_state(run_id, now)
        if state.pending == 0 and state.sending == 0:
            if runs.finish_run(run_id, now):
                finished.append(run_id)
        elif state.pending and state.next_retry_at is None:
            # Work due now and no job waiting for it: Redis lost the job, or it could not be
            # queued. (Workers holding part of the run do not serve the rest.)
            if run_id not in queued and send_queue.enqueue_run(run_id):
                enqueued.append(run_id)
        elif state.pending and state.sending == 0 and run_id not in waiting:
            if send_queue.enqueue_run_later(run_id, state.next_retry_at):
                enqueued.append(run_id)
    if enqueued:
        log.info("reconciler: queued runs %s", enqueued)
    return {"released": released, "enqueued": enqueued, "finished": finished}
