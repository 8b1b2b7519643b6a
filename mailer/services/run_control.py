"""Controlling runs after they start: pause, resume, and sending to the clients a stopped run
never reached; and what the Send now confirmation tells before a run starts.

The workers re-read a run before each chunk and stop when it is no longer queued or sending,
so pausing is only a change of status: the chunk a worker holds finishes, the rest waits.
Resuming puts the run back in the queue (status queued, then `send_queue.enqueue_run` after the
commit).
"""

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select, update

from mailer.database import lock_row
from mailer.extensions import db
from mailer.i18n import lazy_text as _l
from mailer.models import (
    ACTIVE_RUN_STATUSES,
    Client,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingRun,
    Repeat,
    RunStatus,
    RunTrigger,
    User,
    mailing_clients,
    utcnow,
)
from mailer.services import runs
from mailer.services.runs import SendingRefused

# Said when a run is saved but the queue (Redis) cannot be told; the reconciler queues it later.
QUEUE_DOWN = _l(
    "The run is saved, but the sending queue (Redis) cannot be reached right now. "
    "It will be sent automatically as soon as the queue is back."
)

# Send now ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendNowSummary:
    """What the person confirming Send now needs to know."""

    recipients: int  # subscribed clients: each receives one message
    unsubscribed: int  # clients who will be skipped
    last_run: MailingRun | None
    sent_before: int  # messages this mailing sent so far, all runs together
    once: bool
    # The scheduled run this one replaces (a "Once" mailing) or leaves in place (a repeating one).
    next_run_at: datetime | None

    @property
    def last_run_id(self) -> int:
        return self.last_run.id if self.last_run else 0


def send_now_summary(mailing: Mailing) -> SendNowSummary:
    subscribed = db.session.execute(
        select(func.count().filter(Client.unsubscribed_at.is_(None)), func.count())
        .select_from(mailing_clients)
        .join(Client, Client.id == mailing_clients.c.client_id)
        .where(mailing_clients.c.mailing_id == mailing.id)
    ).one()
    last_run = db.session.scalar(
        select(MailingRun).where(MailingRun.mailing_id == mailing.id).order_by(MailingRun.id.desc()).limit(1)
    )
    sent_before = db.session.scalar(
        select(func.coalesce(func.sum(MailingRun.sent_count), 0)).where(MailingRun.mailing_id == mailing.id)
    )
    return SendNowSummary(
        recipients=subscribed[0],
        unsubscribed=subscribed[1] - subscribed[0],
        last_run=last_run,
        sent_before=sent_before,
        once=mailing.repeat == Repeat.NONE,
        next_run_at=mailing.next_run_at,
    )


# Pause and resume -------------------------------------------------------------------------------


def pause_run(run: MailingRun) -> bool:
    """Pause a queued or sending run, committed. False when it was not queued or sending."""
    paused = _pause(MailingRun.id == run.id)
    db.session.commit()
    db.session.refresh(run)
    return paused > 0


def pause_runs_of_mailings(mailing_ids) -> int:
    """Pause the runs in progress of these mailings (a manager disabled them, or blocked their
    owner), in the caller's transaction. Returns how many were paused."""
    return _pause(MailingRun.mailing_id.in_(mailing_ids))


def _pause(which) -> int:
    result = db.session.execute(
        update(MailingRun)
        .where(which, MailingRun.status.in_(ACTIVE_RUN_STATUSES))
        .values(status=RunStatus.PAUSED)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def resume_run(run: MailingRun) -> None:
    """Put a paused run back in the queue, committed; the caller enqueues it after this.

    Raises SendingRefused when the run is not paused, or its mailing may not be sent now.
    """
    mailing = run.mailing
    if mailing.is_disabled:
        raise SendingRefused(_("This mailing was disabled by a manager; it can be resumed once a manager enables it."))
    if not mailing.owner.is_active:
        raise SendingRefused(_("The owner of this mailing is blocked; the run cannot be resumed."))
    result = db.session.execute(
        update(MailingRun)
        .where(MailingRun.id == run.id, MailingRun.status == RunStatus.PAUSED)
        .values(status=RunStatus.QUEUED)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        db.session.rollback()
        raise SendingRefused(_("Run %(id)s is not paused.", id=run.id))
    db.session.commit()
    db.session.refresh(run)


# Sending to the rest ----------------------------------------------------------------------------


def unreached_count(run: MailingRun) -> int:
    """Deliveries of the run that were never tried to the end: still pending.

    Failed deliveries are not part of them: they were tried, and "Retry failed" is for them.
    """
    return db.session.scalar(
        select(func.count()).where(Delivery.run_id == run.id, Delivery.status == DeliveryStatus.PENDING)
    )


def rest_run_of(run: MailingRun) -> MailingRun | None:
    return db.session.scalar(
        select(MailingRun)
        .where(MailingRun.retry_of_id == run.id, MailingRun.trigger == RunTrigger.REST)
        .order_by(MailingRun.id.desc())
        .limit(1)
    )


def start_rest_run(run: MailingRun, user: User | None, now: datetime | None = None) -> MailingRun:
    """A new run holding only the clients a cancelled run never reached (its pending
    deliveries), committed; the caller enqueues it. Nobody reached by `run` is in it."""
    now = now or utcnow()
    mailing = run.mailing
    lock_row(db.session, mailing)
    db.session.refresh(run)
    if run.status != RunStatus.CANCELLED:
        raise SendingRefused(
            _(
                "Only a cancelled run can be continued for the clients it did not reach; "
                "pause and resume a run that is in progress."
            )
        )
    runs.check_sendable(mailing)
    sending = db.session.scalar(
        select(func.count()).where(Delivery.run_id == run.id, Delivery.status == DeliveryStatus.SENDING)
    )
    if sending:
        raise SendingRefused(
            ngettext(
                "%(num)s message of this run is still being handed to the SMTP server; "
                "try again in a moment, once its result is known.",
                "%(num)s messages of this run are still being handed to the SMTP server; "
                "try again in a moment, once their result is known.",
                sending,
            )
        )
    earlier = rest_run_of(run)
    if earlier is not None:
        raise SendingRefused(_("The clients this run did not reach were sent to in run %(id)s already.", id=earlier.id))
    unreached = (
        select(Client.id, Client.email, Client.unsubscribed_at)
        .join(Delivery, Delivery.client_id == Client.id)
        .where(Delivery.run_id == run.id, Delivery.status == DeliveryStatus.PENDING)
    )
    if db.session.scalar(select(func.count()).select_from(unreached.subquery())) == 0:
        raise SendingRefused(_("This run reached every client it could; nobody is left to send to."))
    return runs.start_follow_up_run(run, RunTrigger.REST, unreached, user, now)
