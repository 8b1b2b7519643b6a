"""Runs of a mailing: creating them with their deliveries ("Send now", "Retry failed", the
schedule), cancelling, counting and closing them.

A run and all its Delivery rows are created in one transaction; only after the commit is Redis
told to work on it (`send_queue.enqueue_run`).
"""

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import Select, case, func, insert, literal, select, update

from mailer.database import lock_row
from mailer.extensions import db, rq
from mailer.models import (
    ACTIVE_RUN_STATUSES,
    UNFINISHED_RUN_STATUSES,
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
    User,
    mailing_clients,
    utcnow,
)
from mailer.services import schedule, throttle
from mailer.services.stats import clear_stats_cache_after_commit
from mailer.words import word

UNSUBSCRIBED = "Unsubscribed"


class SendingRefused(Exception):
    """A run cannot be started; the text is meant for the person who asked."""


# Creating runs ----------------------------------------------------------------------------------


def _delivery_status_of(client_table):
    """pending for a subscribed client, skipped (with the reason) for an unsubscribed one."""
    unsubscribed = client_table.unsubscribed_at.is_not(None)
    status = case((unsubscribed, literal(DeliveryStatus.SKIPPED.value)), else_=literal(DeliveryStatus.PENDING.value))
    reason = case((unsubscribed, literal(UNSUBSCRIBED)), else_=None)
    return status, reason


def add_deliveries(run: MailingRun, clients: Select, now: datetime) -> None:
    """Give the new run one Delivery per client row of `clients` (id, email, unsubscribed_at),
    inserted in one statement, and its counts. A run with nobody to send to is over at once."""
    sub = clients.subquery()
    status, reason = _delivery_status_of(sub.c)
    rows = select(literal(run.id), sub.c.id, sub.c.email, status, reason, literal(0))
    db.session.execute(
        insert(Delivery).from_select(["run_id", "client_id", "email", "status", "last_response", "attempts"], rows)
    )
    counts = delivery_counts(run.id)
    run.total_count = sum(counts.values())
    run.skipped_count = counts.get(DeliveryStatus.SKIPPED, 0)
    if counts.get(DeliveryStatus.PENDING, 0) == 0:
        # Nobody to send to (no clients, or all unsubscribed): the run is over at once.
        run.status = RunStatus.DONE
        run.started_at = run.finished_at = now


def create_run(
    mailing: Mailing, trigger: RunTrigger, scheduled_for: datetime, now: datetime, created_by: User | None = None
) -> MailingRun:
    """A run of the mailing with a delivery for each of its clients (not committed)."""
    run = MailingRun(
        mailing=mailing,
        trigger=trigger,
        scheduled_for=scheduled_for,
        created_by_id=created_by.id if created_by else None,
        status=RunStatus.QUEUED,
    )
    db.session.add(run)
    db.session.flush()  # the unique (mailing, scheduled_for) is checked here
    clients = (
        select(Client.id, Client.email, Client.unsubscribed_at)
        .join(mailing_clients, mailing_clients.c.client_id == Client.id)
        .where(mailing_clients.c.mailing_id == mailing.id)
    )
    add_deliveries(run, clients, now)
    return run


def delivery_counts(run_id: int) -> dict[DeliveryStatus, int]:
    rows = db.session.execute(
        select(Delivery.status, func.count()).where(Delivery.run_id == run_id).group_by(Delivery.status)
    )
    return {DeliveryStatus(status): count for status, count in rows}


def check_sendable(mailing: Mailing) -> None:
    if mailing.is_disabled:
        raise SendingRefused(_("This mailing was disabled by a manager; it cannot be sent."))
    if not mailing.owner.is_active:
        raise SendingRefused(_("The owner of this mailing is blocked; it cannot be sent."))
    unfinished = db.session.execute(
        select(MailingRun.id, MailingRun.status)
        .where(MailingRun.mailing_id == mailing.id, MailingRun.status.in_(UNFINISHED_RUN_STATUSES))
        .limit(1)
    ).first()
    if unfinished is not None and unfinished.status == RunStatus.PAUSED:
        raise SendingRefused(_("Run %(id)s of this mailing is paused; resume it or cancel it first.", id=unfinished.id))
    if unfinished is not None:
        raise SendingRefused(
            _("This mailing is being sent already (run %(id)s); wait for it or cancel it.", id=unfinished.id)
        )


def start_manual_run(
    mailing: Mailing, user: User | None, now: datetime | None = None, last_run_seen: int | None = None
) -> MailingRun:
    """ "Send now": a manual run to every client of the mailing, committed (not yet enqueued).

    For a "Once" mailing this is its one run: the scheduled one is taken off in the same
    transaction. `last_run_seen` is the id of the latest run (0 for none) shown to the person who
    confirmed; if another run started since, nothing is sent.
    """
    now = now or utcnow()
    lock_row(db.session, mailing)  # one new run of a mailing at a time
    check_sendable(mailing)
    if last_run_seen is not None:
        latest = db.session.scalar(select(func.max(MailingRun.id)).where(MailingRun.mailing_id == mailing.id))
        if (latest or 0) != last_run_seen:
            raise SendingRefused(
                _("This mailing was sent meanwhile (run %(latest)s); check it before sending it again.", latest=latest)
            )
    run = create_run(mailing, RunTrigger.MANUAL, now, now, created_by=user)
    if mailing.repeat == Repeat.NONE:
        mailing.next_run_at = None
    if schedule.refresh_status(mailing, now):
        clear_stats_cache_after_commit(mailing.owner_id)
    db.session.commit()
    return run


def retry_candidates(run: MailingRun):
    """The failed deliveries of `run`, as client rows for `add_deliveries`."""
    return (
        select(Client.id, Client.email, Client.unsubscribed_at)
        .join(Delivery, Delivery.client_id == Client.id)
        .where(Delivery.run_id == run.id, Delivery.status == DeliveryStatus.FAILED)
    )


def failed_with_unknown_outcome(run: MailingRun) -> int:
    """Failed deliveries of `run` that had a try with an unknown outcome: they may have been
    delivered, so a retry may give those clients a second copy."""
    return (
        db.session.scalar(
            select(func.count(func.distinct(Delivery.id)))
            .join(MailingAttempt, MailingAttempt.delivery_id == Delivery.id)
            .where(
                Delivery.run_id == run.id,
                Delivery.status == DeliveryStatus.FAILED,
                MailingAttempt.status == AttemptStatus.UNKNOWN,
            )
        )
        or 0
    )


def start_retry_run(run: MailingRun, user: User | None, now: datetime | None = None) -> MailingRun:
    """ "Retry failed": a new run holding only the failed deliveries of `run`, committed."""
    now = now or utcnow()
    mailing = run.mailing
    lock_row(db.session, mailing)  # one new run of a mailing at a time
    if run.is_active:
        raise SendingRefused(_("This run is still sending; retry its failures once it is over."))
    check_sendable(mailing)
    failed = retry_candidates(run)
    if db.session.scalar(select(func.count()).select_from(failed.subquery())) == 0:
        raise SendingRefused(_("This run has no failed delivery to retry."))
    return start_follow_up_run(run, RunTrigger.RETRY, failed, user, now)


def start_follow_up_run(
    run: MailingRun, trigger: RunTrigger, clients: Select, user: User | None, now: datetime
) -> MailingRun:
    """A new run of `run`'s mailing for `clients` only (Retry failed, Send to the rest), committed;
    the caller enqueues it."""
    mailing = run.mailing
    follow_up = MailingRun(
        mailing=mailing,
        trigger=trigger,
        scheduled_for=now,
        retry_of_id=run.id,
        created_by_id=user.id if user else None,
        status=RunStatus.QUEUED,
    )
    db.session.add(follow_up)
    db.session.flush()
    add_deliveries(follow_up, clients, now)
    if schedule.refresh_status(mailing, now):
        clear_stats_cache_after_commit(mailing.owner_id)
    db.session.commit()
    return follow_up


# Ending runs ------------------------------------------------------------------------------------


def cancel_run(run: MailingRun, now: datetime | None = None) -> bool:
    """Stop a queued, sending or paused run. Workers finish the messages in flight and stop;
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


def update_counters(run_id: int) -> None:
    """The run's counters, counted from its deliveries and attempts (exact whoever writes)."""
    counts = delivery_counts(run_id)
    unknown = db.session.scalar(
        select(func.count()).where(MailingAttempt.run_id == run_id, MailingAttempt.status == AttemptStatus.UNKNOWN)
    )
    db.session.execute(
        update(MailingRun)
        .where(MailingRun.id == run_id)
        .values(
            total_count=sum(counts.values()),
            sent_count=counts.get(DeliveryStatus.SENT, 0),
            failed_count=counts.get(DeliveryStatus.FAILED, 0),
            skipped_count=counts.get(DeliveryStatus.SKIPPED, 0),
            unknown_count=unknown,
        )
        .execution_options(synchronize_session=False)
    )


def add_to_counters(run_id: int, sent: int = 0, failed: int = 0, skipped: int = 0, unknown: int = 0) -> None:
    """Add results to the run's counters in the database (several workers may add at once)."""
    if not (sent or failed or skipped or unknown):
        return
    db.session.execute(
        update(MailingRun)
        .where(MailingRun.id == run_id)
        .values(
            sent_count=MailingRun.sent_count + sent,
            failed_count=MailingRun.failed_count + failed,
            skipped_count=MailingRun.skipped_count + skipped,
            unknown_count=MailingRun.unknown_count + unknown,
        )
        .execution_options(synchronize_session=False)
    )


def finish_run(run_id: int, now: datetime | None = None) -> bool:
    """Close a run that has nothing pending or sending: done, finished_at, mailing status."""
    now = now or utcnow()
    update_counters(run_id)
    result = db.session.execute(
        update(MailingRun)
        .where(MailingRun.id == run_id, MailingRun.status.in_(ACTIVE_RUN_STATUSES))
        .values(status=RunStatus.DONE, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    run = db.session.get(MailingRun, run_id, populate_existing=True)
    if run is not None:
        schedule.refresh_status(run.mailing, now)
        clear_stats_cache_after_commit(run.mailing.owner_id)
    db.session.commit()
    return result.rowcount > 0


def stop_reason(run_id: int) -> str | None:
    """Why a worker must not send more of this run (deleted, over, paused, cancelled, mailing
    disabled, owner blocked), or None. One query: it is asked before every chunk."""
    row = db.session.execute(
        select(MailingRun.status, Mailing.disabled_at, User.is_active)
        .join(Mailing, Mailing.id == MailingRun.mailing_id)
        .join(User, User.id == Mailing.owner_id)
        .where(MailingRun.id == run_id)
    ).one_or_none()
    if row is None:
        return "deleted"
    if row.status not in ACTIVE_RUN_STATUSES:
        return RunStatus(row.status).value
    if row.disabled_at is not None:
        return "the mailing was disabled"
    if not row.is_active:
        return "the owner is blocked"
    return None


def mark_started(run_id: int, now: datetime) -> None:
    """queued → sending, with the time of the first claim."""
    db.session.execute(
        update(MailingRun)
        .where(MailingRun.id == run_id, MailingRun.status == RunStatus.QUEUED)
        .values(status=RunStatus.SENDING, started_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


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
            func.count().filter(
                Delivery.status == DeliveryStatus.PENDING, (Delivery.retry_at.is_(None)) | (Delivery.retry_at <= now)
            ),
            func.min(Delivery.retry_at).filter(Delivery.status == DeliveryStatus.PENDING),
        ).where(Delivery.run_id == run_id)
    ).one()
    pending, sending, due, earliest = row
    return WorkState(pending, sending, None if due else earliest)


# What the run page shows ------------------------------------------------------------------------


def held_back_by(run: MailingRun) -> str | None:
    """The server limit the run is waiting for right now, in words, or None."""
    if not run.is_active:
        return None
    note = throttle.held_back(rq.connection, run.id)
    return _("the SMTP server's limit of %(limit)s", limit=note["limit"]) if note else None


def progress(run: MailingRun) -> dict:
    """The run's figures for its page and its live updates, from its counters and the count
    of the deliveries a worker holds right now (a few rows of the run's status index)."""
    sending = (
        db.session.scalar(
            select(func.count()).where(Delivery.run_id == run.id, Delivery.status == DeliveryStatus.SENDING)
        )
        or 0
    )
    # The run's counters, read after the deliveries: the run was loaded earlier in the request,
    # and a worker may have recorded results since; the page must not freeze a stale figure.
    db.session.refresh(run)
    done = run.sent_count + run.failed_count + run.skipped_count
    return {
        "id": run.id,
        "status": run.status.value,
        "status_word": str(word(run.status)),
        "active": run.is_active,
        # The page keeps polling while a worker still holds messages of the run, even once it
        # was paused or cancelled: their results are still to come.
        "live": run.is_active or sending > 0,
        "total": run.total_count,
        "sent": run.sent_count,
        "failed": run.failed_count,
        "skipped": run.skipped_count,
        "unknown": run.unknown_count,
        "held_back": held_back_by(run),
        "pending": max(run.pending_count - sending, 0),
        "sending": sending,
        "done": done,
        "percent": round(100 * done / run.total_count) if run.total_count else 100,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
