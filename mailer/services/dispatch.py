"""Creating runs and handing them to the workers: the scheduled dispatch, "Send now", "Retry
failed", cancelling, and the reconciler that repairs what a crash or a lost Redis job left.

The database is the source of truth: a run and all its Delivery rows are created in one
transaction, and only after the commit is Redis told "work on run N". A job Redis loses is
found again by the reconciler, which looks at the deliveries, never at the queue alone.
"""
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import bindparam, case, func, insert, literal, select, text, update
from sqlalchemy.exc import IntegrityError

from mailer.database import is_postgresql
from mailer.extensions import db, rq
from mailer.models import (
    AttemptStatus,
    Client,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingAttempt,
    MailingRun,
    Repeat,
    RunStatus,
    RunTrigger,
    UNFINISHED_RUN_STATUSES,
    User,
    mailing_clients,
    utcnow,
)
from mailer.services import schedule
from mailer.services.stats import clear_stats_cache_after_commit

log = logging.getLogger(__name__)

SEND_JOB = "mailer.jobs.sending.send_run"
# Every send job's id starts with this and the run's id, so the queue tells which runs have
# work waiting (see `waiting_run_ids`).
JOB_ID_PREFIX = "send-run-"
# A send job stops after this many seconds and queues its continuation at the back of the
# queue, so one long run does not hold a worker for hours, other runs get their turn, and RQ's
# job timeout stays meaningful.
JOB_TIME_BUDGET = 60
JOB_TIMEOUT = 3600
UNSUBSCRIBED = "Unsubscribed"
ACTIVE = (RunStatus.QUEUED, RunStatus.SENDING)


class SendingRefused(Exception):
    """A run cannot be started; the text is meant for the person who asked."""


# Creating runs ----------------------------------------------------------------------------------

def _delivery_status_of(client_table):
    """pending for a subscribed client, skipped (with the reason) for an unsubscribed one."""
    unsubscribed = client_table.unsubscribed_at.is_not(None)
    status = case((unsubscribed, literal(DeliveryStatus.SKIPPED.value)), else_=literal(DeliveryStatus.PENDING.value))
    reason = case((unsubscribed, literal(UNSUBSCRIBED)), else_=None)
    return status, reason


def _insert_deliveries(run: MailingRun, clients: select) -> None:
    """Insert one Delivery per client row of `clients` (id, email, unsubscribed_at) in one statement."""
    sub = clients.subquery()
    status, reason = _delivery_status_of(sub.c)
    rows = select(literal(run.id), sub.c.id, sub.c.email, status, reason, literal(0))
    db.session.execute(
        insert(Delivery).from_select(
            ["run_id", "client_id", "email", "status", "last_response", "attempts"], rows
        )
    )


def _count_new_run(run: MailingRun, now: datetime) -> None:
    counts = delivery_counts(run.id)
    run.total_count = sum(counts.values())
    run.skipped_count = counts.get(DeliveryStatus.SKIPPED, 0)
    if counts.get(DeliveryStatus.PENDING, 0) == 0:
        # Nobody to send to (no clients, or all unsubscribed): the run is over at once.
        run.status = RunStatus.DONE
        run.started_at = run.finished_at = now


def create_run(mailing: Mailing, trigger: RunTrigger, scheduled_for: datetime, now: datetime,
               created_by: User | None = None) -> MailingRun:
    """A run of the mailing with a delivery for each of its clients (not committed)."""
    run = MailingRun(mailing=mailing, trigger=trigger, scheduled_for=scheduled_for,
                     created_by_id=created_by.id if created_by else None, status=RunStatus.QUEUED)
    db.session.add(run)
    db.session.flush()  # the unique (mailing, scheduled_for) is checked here
    clients = (
        select(Client.id, Client.email, Client.unsubscribed_at)
        .join(mailing_clients, mailing_clients.c.client_id == Client.id)
        .where(mailing_clients.c.mailing_id == mailing.id)
    )
    _insert_deliveries(run, clients)
    _count_new_run(run, now)
    return run


def delivery_counts(run_id: int) -> dict[DeliveryStatus, int]:
    rows = db.session.execute(
        select(Delivery.status, func.count()).where(Delivery.run_id == run_id).group_by(Delivery.status)
    )
    return {DeliveryStatus(status): count for status, count in rows}


def check_sendable(mailing: Mailing) -> None:
    if mailing.is_disabled:
        raise SendingRefused("This mailing was disabled by a manager; it cannot be sent.")
    if not mailing.owner.is_active:
        raise SendingRefused("The owner of this mailing is blocked; it cannot be sent.")
    unfinished = db.session.execute(
        select(MailingRun.id, MailingRun.status)
        .where(MailingRun.mailing_id == mailing.id, MailingRun.status.in_(UNFINISHED_RUN_STATUSES)).limit(1)
    ).first()
    if unfinished is not None and unfinished.status == RunStatus.PAUSED:
        raise SendingRefused(f"Run {unfinished.id} of this mailing is paused; resume it or cancel it first.")
    if unfinished is not None:
        raise SendingRefused(f"This mailing is being sent already (run {unfinished.id}); wait for it or cancel it.")


def start_manual_run(mailing: Mailing, user: User | None, now: datetime | None = None,
                     last_run_seen: int | None = None) -> MailingRun:
    """"Send now": a manual run to every client of the mailing, committed (not yet enqueued).

    For a "Once" mailing this is its one run: the scheduled one is taken off in the same
    transaction. `last_run_seen` is the id of the latest run (0 for none) shown to the person who
    confirmed; if another run started since, nothing is sent.
    """
    now = now or utcnow()
    _lock(mailing)
    check_sendable(mailing)
    if last_run_seen is not None:
        latest = db.session.scalar(select(func.max(MailingRun.id)).where(MailingRun.mailing_id == mailing.id))
        if (latest or 0) != last_run_seen:
            raise SendingRefused(f"This mailing was sent meanwhile (run {latest}); check it before sending it again.")
    run = create_run(mailing, RunTrigger.MANUAL, now, now, created_by=user)
    if mailing.repeat == Repeat.NONE:
        mailing.next_run_at = None
    if schedule.refresh_status(mailing, now):
        clear_stats_cache_after_commit(mailing.owner_id)
    db.session.commit()
    return run


def start_retry_run(run: MailingRun, user: User | None, now: datetime | None = None) -> MailingRun:
    """"Retry failed": a new run holding only the failed deliveries of `run`, committed."""
    now = now or utcnow()
    mailing = run.mailing
    _lock(mailing)
    if run.is_active:
        raise SendingRefused("This run is still sending; retry its failures once it is over.")
    check_sendable(mailing)
    failed = (
        select(Client.id, Client.email, Client.unsubscribed_at)
        .join(Delivery, Delivery.client_id == Client.id)
        .where(Delivery.run_id == run.id, Delivery.status == DeliveryStatus.FAILED)
    )
    if db.session.scalar(select(func.count()).select_from(failed.subquery())) == 0:
        raise SendingRefused("This run has no failed delivery to retry.")
    retry = MailingRun(mailing=mailing, trigger=RunTrigger.RETRY, scheduled_for=now, retry_of_id=run.id,
                       created_by_id=user.id if user else None, status=RunStatus.QUEUED)
    db.session.add(retry)
    db.session.flush()
    _insert_deliveries(retry, failed)
    _count_new_run(retry, now)
    if schedule.refresh_status(mailing, now):
        clear_stats_cache_after_commit(mailing.owner_id)
    db.session.commit()
    return retry


def cancel_run(run: MailingRun, now: datetime | None = None) -> bool:
    """Stop a queued, sending or paused run. Workers finish the chunk they hold and stop;
    deliveries not sent yet stay pending. False when the run was over already."""
    now = now or utcnow()
    result = db.session.execute(
        update(MailingRun)
        .where(MailingRun.id == run.id, MailingRun.status.in_(UNFINISHED_RUN_STATUSES))
        .values(status=RunStatus.CANCELLED, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        db.session.rollback()
        return False
    db.session.refresh(run)
    if schedule.refresh_status(run.mailing, now):
        clear_stats_cache_after_commit(run.mailing.owner_id)
    db.session.commit()
    return True


def _lock(mailing: Mailing) -> None:
    """Serialise the creation of runs of one mailing (Send now, Retry failed), then reload it.

    PostgreSQL locks the row. SQLite has one writer: a write that changes nothing takes its
    lock and starts the transaction, so the checks that follow read the latest commit.
    """
    if is_postgresql(db.session):
        db.session.execute(select(Mailing.id).where(Mailing.id == mailing.id).with_for_update())
    else:
        db.session.execute(text("UPDATE mailings SET id = id WHERE id = :id"), {"id": mailing.id})
    db.session.refresh(mailing)


# The scheduled dispatch -------------------------------------------------------------------------

def due_mailing_ids(now: datetime) -> list[int]:
    """Enabled mailings of active owners whose next run is due and inside [start, end]."""
    return list(db.session.scalars(
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
    ))


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
        mailing is not None and mailing.disabled_at is None and mailing.owner.is_active
        and mailing.next_run_at is not None and mailing.start_at <= mailing.next_run_at <= now
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
        update(Mailing).where(Mailing.id == mailing.id, Mailing.next_run_at == scheduled_for)
        .values(next_run_at=next_run_at).execution_options(synchronize_session=False)
    )
    if taken.rowcount == 0:
        db.session.rollback()
        return None
    mailing.next_run_at = next_run_at
    try:
        run = create_run(mailing, RunTrigger.SCHEDULE, scheduled_for, now)
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
        enqueue_run(run_id)
    return run_ids


# The queue --------------------------------------------------------------------------------------

def send_job_id(run_id: int) -> str:
    return f"{JOB_ID_PREFIX}{run_id}-{secrets.token_hex(4)}"


def run_id_of_job(job_id: str) -> int | None:
    if not job_id.startswith(JOB_ID_PREFIX):
        return None
    number = job_id[len(JOB_ID_PREFIX):].split("-", 1)[0]
    return int(number) if number.isdigit() else None


def enqueue_run(run_id: int, jobs: int | None = None) -> bool:
    """Queue the send jobs of a run (after its commit). Several jobs let several workers share
    one run. False when Redis is unreachable: the run stays queued in the database and the
    reconciler enqueues it once Redis answers again."""
    if jobs is None:
        pending = db.session.scalar(
            select(func.count()).where(Delivery.run_id == run_id, Delivery.status == DeliveryStatus.PENDING)
        )
        chunks = math.ceil(pending / current_app.config["SEND_CHUNK_SIZE"])
        jobs = max(1, min(current_app.config["SEND_JOBS_PER_RUN"], chunks))
    try:
        for _ in range(jobs):
            rq.queue.enqueue(SEND_JOB, run_id, **_job_options(run_id))
    except RedisError as error:
        log.warning("run %s: could not reach Redis to queue its sending (%s); the reconciler will", run_id, error)
        return False
    return True


def enqueue_run_later(run_id: int, at: datetime) -> bool:
    """Queue a send job for `at` (the next retry), unless one is already scheduled for the run."""
    try:
        registry = rq.queue.scheduled_job_registry
        if any(run_id_of_job(job_id) == run_id for job_id in registry.get_job_ids()):
            return True
        rq.queue.enqueue_at(at, SEND_JOB, run_id, **_job_options(run_id))
    except RedisError as error:
        log.warning("run %s: could not schedule its retries (%s); the reconciler will", run_id, error)
        return False
    return True


def _job_options(run_id: int) -> dict:
    return {
        "job_id": send_job_id(run_id),
        "job_timeout": JOB_TIMEOUT,
        "result_ttl": 600,
        "failure_ttl": 7 * 24 * 3600,
        "description": f"send run {run_id}",
    }


def waiting_run_ids(scheduled: bool = True) -> set[int]:
    """Runs that have a send job waiting in the queue (or, with `scheduled`, for a later time)."""
    queue = rq.queue
    job_ids = queue.get_job_ids() + (queue.scheduled_job_registry.get_job_ids() if scheduled else [])
    return {run_id for run_id in map(run_id_of_job, job_ids) if run_id is not None}


# The reconciler ---------------------------------------------------------------------------------

def release_expired_leases(now: datetime) -> int:
    """Deliveries stuck in `sending` past their lease (their worker died) go back to pending.

    The interrupted try counts as an attempt and is logged as such: the message may or may not
    have reached the server. After the last allowed attempt the delivery fails instead, so a
    message that kills every worker cannot loop for ever.
    """
    config = current_app.config
    cutoff = now - timedelta(seconds=config["SEND_LEASE_SECONDS"])
    query = (
        select(Delivery.id, Delivery.run_id, Delivery.client_id, Delivery.email, Delivery.attempts,
               Delivery.claimed_at, MailingRun.mailing_id)
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
    error = "The worker stopped while sending; the message may or may not have been delivered."
    updates, attempts = [], []
    for row in stuck:
        tries = row.attempts + 1
        give_up = tries >= config["SEND_MAX_ATTEMPTS"]
        updates.append({
            "b_id": row.id, "b_claimed_at": row.claimed_at, "b_attempts": tries,
            "b_status": DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING,
            "b_response": error,
        })
        attempts.append({
            "mailing_id": row.mailing_id, "run_id": row.run_id, "delivery_id": row.id,
            "client_id": row.client_id, "email": row.email, "attempted_at": row.claimed_at,
            "status": AttemptStatus.FAILURE, "error": error,
        })
    table = Delivery.__table__
    db.session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.status == DeliveryStatus.SENDING.value,
               table.c.claimed_at == bindparam("b_claimed_at"))
        .values(status=bindparam("b_status"), attempts=bindparam("b_attempts"), claimed_at=None, retry_at=None,
                last_code=None, last_response=bindparam("b_response")),
        updates,
    )
    db.session.execute(insert(MailingAttempt), attempts)
    db.session.commit()
    log.warning("returned %d deliveries whose worker stopped to the pending list", len(stuck))
    return len(stuck)


def reconcile(now: datetime | None = None) -> dict:
    """Repair after crashes and lost jobs: expired leases, runs nobody works on, runs left over."""
    from mailer.services.sending import finish_run

    now = now or utcnow()
    released = release_expired_leases(now)
    active_runs = list(db.session.scalars(
        select(MailingRun.id).where(MailingRun.status.in_(ACTIVE)).order_by(MailingRun.id)
    ))
    db.session.rollback()
    if not active_runs:
        return {"released": released, "enqueued": [], "finished": []}
    try:
        queued, waiting = waiting_run_ids(scheduled=False), waiting_run_ids()
    except RedisError as error:
        log.warning("reconciler: Redis unreachable (%s)", error)
        return {"released": released, "enqueued": [], "finished": []}
    enqueued, finished = [], []
    for run_id in active_runs:
        state = run_work_state(run_id, now)
        if state.pending == 0 and state.sending == 0:
            if finish_run(run_id, now):
                finished.append(run_id)
        elif state.sending == 0:
            # Pending work, nobody holding any of it and no job in the queue: Redis lost the
            # job, or it could not be queued when the run was created. (A job scheduled for a
            # later retry does not serve deliveries that are due now.)
            if state.next_retry_at is None:
                if run_id not in queued and enqueue_run(run_id):
                    enqueued.append(run_id)
            elif run_id not in waiting and enqueue_run_later(run_id, state.next_retry_at):
                enqueued.append(run_id)
    if enqueued:
        log.info("reconciler: queued runs %s", enqueued)
    return {"released": released, "enqueued": enqueued, "finished": finished}


@dataclass(frozen=True)
class WorkState:
    pending: int
    sending: int
    # When the earliest pending delivery may be tried; None when one may be tried now.
    next_retry_at: datetime | None


def run_work_state(run_id: int, now: datetime) -> WorkState:
    row = db.session.execute(
        select(
            func.count().filter(Delivery.status == DeliveryStatus.PENDING),
            func.count().filter(Delivery.status == DeliveryStatus.SENDING),
            func.count().filter(Delivery.status == DeliveryStatus.PENDING,
                                (Delivery.retry_at.is_(None)) | (Delivery.retry_at <= now)),
            func.min(Delivery.retry_at).filter(Delivery.status == DeliveryStatus.PENDING),
        ).where(Delivery.run_id == run_id)
    ).one()
    pending, sending, due, earliest = row
    return WorkState(pending, sending, None if due else earliest)
