"""Mailings: choices, validation, listing, changes, disabling. No request objects here."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import delete, exists, func, insert, literal, select
from sqlalchemy.orm import selectinload

from mailer.database import lock_row
from mailer.extensions import db
from mailer.i18n import lazy_text as _l
from mailer.models import (
    UNFINISHED_RUN_STATUSES,
    Client,
    Delivery,
    Mailing,
    MailingAttempt,
    MailingRun,
    MailingStatus,
    Message,
    Repeat,
    SmtpServer,
    User,
    mailing_clients,
)
from mailer.services import paging, run_control, schedule, senders
from mailer.services.errors import FieldError
from mailer.services.message_templates import readable_subject
from mailer.services.stats import clear_stats_cache_after_commit

NAME_MAX_LENGTH = 200
# The reason a manager gives for disabling a mailing.
REASON_MAX_LENGTH = 500

REPEAT_CHOICES = [
    (Repeat.NONE.value, _l("Once (no repeat)")),
    (Repeat.DAILY.value, _l("Daily")),
    (Repeat.WEEKLY.value, _l("Weekly")),
    (Repeat.MONTHLY.value, _l("Monthly")),
]

# ?status= values of the list page: the three statuses, plus the mailings a manager disabled.
DISABLED_FILTER = "disabled"
STATUS_FILTERS = [status.value for status in MailingStatus] + [DISABLED_FILTER]

# ?sort= values of the list page; a leading "-" sorts in descending order.
# Mailings without a next run (finished) come last whichever way next runs are sorted.
SORT_COLUMNS = {"name": Mailing.name, "start": Mailing.start_at, "next_run": paging.NullsLast(Mailing.next_run_at)}
DEFAULT_SORT = "-start"

# Large id lists are sent to the database in slices, well below every driver's parameter limit.
ID_BATCH = 500

# Above this many clients the form offers no list to tick (a page of 200,000 checkboxes takes
# seconds to build and 25 MB to send): all clients, pasted addresses, or the current list.
CLIENT_LIST_LIMIT = 2000

# Who a mailing goes to, as the form offers it (MailingData.recipients).
CHOSEN_CLIENTS = "chosen"  # the clients whose ids are in client_ids
ALL_CLIENTS = "all"  # every client the owner has when the mailing is saved
CLIENT_ADDRESSES = "addresses"  # the owner's clients with the addresses in client_addresses
KEEP_CLIENTS = "keep"  # an edit that leaves the mailing's clients as they are
# A pasted list of addresses: anything with an @-sign between separators, so that
# "Name <name@example.com>" lines and spreadsheet columns paste as they are.
ADDRESS_PATTERN = re.compile(r"[^\s,;<>\"']+@[^\s,;<>\"']+")
# How many unknown addresses an error names before "and N more".
UNKNOWN_SHOWN = 5


class MailingError(FieldError):
    """A change to a mailing that cannot be made."""


@dataclass
class MailingData:
    """What a person enters for a mailing; times are timezone-aware."""

    name: str
    message_id: int
    client_ids: list[int]
    start_at: datetime
    # Optional for a "Once" mailing (it then ends at its start); a repeating one needs it.
    end_at: datetime | None
    repeat: Repeat
    # None: the owner's first confirmed sender identity, and the default server.
    sender_identity_id: int | None = None
    smtp_server_id: int | None = None
    recipients: str = CHOSEN_CLIENTS
    client_addresses: str = ""


@dataclass(frozen=True)
class ClientOption:
    id: int
    full_name: str
    email: str
    unsubscribed: bool


# What an owner can choose from -----------------------------------------------------------------


def message_choices(owner_id: int) -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(Message.id, Message.subject).where(Message.owner_id == owner_id).order_by(Message.subject, Message.id)
    )
    return [(row.id, readable_subject(row.subject)) for row in rows]


def owner_client_count(owner_id: int) -> int:
    return db.session.scalar(select(func.count(Client.id)).where(Client.owner_id == owner_id))


def client_options(owner_id: int) -> list[ClientOption]:
    """The owner's clients as light rows (no ORM objects) for the form's list, which is shown
    up to CLIENT_LIST_LIMIT clients."""
    rows = db.session.execute(
        select(Client.id, Client.full_name, Client.email, Client.unsubscribed_at)
        .where(Client.owner_id == owner_id)
        .order_by(Client.full_name, Client.email)
    )
    return [ClientOption(row.id, row.full_name, row.email, row.unsubscribed_at is not None) for row in rows]


def has_others_clients(mailing_id: int, owner_id: int | None) -> bool:
    """Whether the mailing's list holds a client of someone other than `owner_id`."""
    return db.session.scalar(
        select(
            exists()
            .where(mailing_clients.c.mailing_id == mailing_id, mailing_clients.c.client_id == Client.id)
            .where(Client.owner_id.is_distinct_from(owner_id))
        )
    )


def selected_client_ids(mailing: Mailing) -> list[int]:
    return list(
        db.session.scalars(select(mailing_clients.c.client_id).where(mailing_clients.c.mailing_id == mailing.id))
    )


# Validation -------------------------------------------------------------------------------------


def check_times(start_at: datetime, end_at: datetime | None, repeat: Repeat, now: datetime) -> None:
    if end_at is None:
        if repeat != Repeat.NONE:
            raise MailingError(_("Enter when the mailing stops repeating."), "end_at")
        return
    if end_at <= start_at:
        raise MailingError(_("The end must be after the start."), "end_at")
    if end_at <= now:
        raise MailingError(_("The end must be in the future."), "end_at")


def end_of(data: MailingData) -> datetime:
    """A "Once" mailing without an end ends at its start: it is sent then, or as soon as the
    scheduler can after it."""
    return data.end_at if data.end_at is not None else data.start_at


def same_minute(a: datetime, b: datetime) -> bool:
    """Times are entered to the minute; a stored time with seconds still counts as unchanged."""
    return a.replace(second=0, microsecond=0) == b.replace(second=0, microsecond=0)


def schedule_unchanged(mailing: Mailing, data: MailingData) -> bool:
    return (
        same_minute(mailing.start_at, data.start_at)
        and same_minute(mailing.end_at, end_of(data))
        and mailing.repeat == data.repeat
    )


def check_owned(owner_id: int, data: MailingData) -> list[int] | None:
    """The message and every client must belong to the mailing's owner. Returns the ids of
    the clients chosen, or None when the mailing goes to all of them or keeps its list."""
    message_owner = db.session.scalar(select(Message.owner_id).where(Message.id == data.message_id))
    if message_owner != owner_id:
        raise MailingError(_("Choose one of your messages."), "message")
    client_ids = chosen_client_ids(owner_id, data)
    try:
        senders.check_for_mailing(owner_id, data.sender_identity_id)
    except senders.IdentityError as error:
        raise MailingError(str(error), "sender_identity") from None
    if data.smtp_server_id is not None and db.session.get(SmtpServer, data.smtp_server_id) is None:
        raise MailingError(_("Choose one of the servers listed."), "smtp_server")
    return client_ids


def chosen_client_ids(owner_id: int, data: MailingData) -> list[int] | None:
    if data.recipients in (ALL_CLIENTS, KEEP_CLIENTS):
        return None  # all: add_all_clients counts them, and refuses an owner without any
    if data.recipients == CLIENT_ADDRESSES:
        return client_ids_for_addresses(owner_id, data.client_addresses)
    if not data.client_ids:
        raise MailingError(_("Choose at least one client."), "clients")
    wanted = sorted(set(data.client_ids))
    owned = 0
    for start in range(0, len(wanted), ID_BATCH):
        owned += db.session.scalar(
            select(func.count(Client.id)).where(
                Client.owner_id == owner_id, Client.id.in_(wanted[start : start + ID_BATCH])
            )
        )
    if owned != len(wanted):
        raise MailingError(_("Choose clients from your own list."), "clients")
    return wanted


def client_ids_for_addresses(owner_id: int, text: str) -> list[int]:
    """The owner's clients with the addresses found in a pasted text; an address that is not
    one of them is an error that names it (add it as a client first, or leave it out)."""
    addresses = sorted({address.lower() for address in ADDRESS_PATTERN.findall(text or "")})
    if not addresses:
        raise MailingError(_("Paste at least one e-mail address."), "client_addresses")
    ids_by_address = {}
    for start in range(0, len(addresses), ID_BATCH):
        rows = db.session.execute(
            select(Client.email, Client.id).where(
                Client.owner_id == owner_id, Client.email.in_(addresses[start : start + ID_BATCH])
            )
        )
        ids_by_address.update((row.email, row.id) for row in rows)
    unknown = [address for address in addresses if address not in ids_by_address]
    if unknown:
        named = ", ".join(unknown[:UNKNOWN_SHOWN])
        if len(unknown) > UNKNOWN_SHOWN:
            named = _("%(addresses)s and %(count)s more", addresses=named, count=len(unknown) - UNKNOWN_SHOWN)
        raise MailingError(
            _("Not among your clients: %(addresses)s. Add them as clients first, or leave them out.", addresses=named),
            "client_addresses",
        )
    return sorted(ids_by_address.values())


# Listing ----------------------------------------------------------------------------------------


def list_page(
    owner_id: int | None,
    *,
    search: str = "",
    status: str = "",
    sort: str = DEFAULT_SORT,
    after: tuple | None = None,
    before: tuple | None = None,
    per_page: int = paging.PER_PAGE,
) -> paging.Page:
    """A page of the mailings of one owner (or of everyone when `owner_id` is None), filtered
    by a part of the name and a status (STATUS_FILTERS)."""
    query = select(Mailing).options(
        selectinload(Mailing.owner), selectinload(Mailing.message), selectinload(Mailing.disabled_by)
    )
    if owner_id is not None:
        query = query.where(Mailing.owner_id == owner_id)
    search = (search or "").strip()
    if search:
        query = query.where(Mailing.name.icontains(search, autoescape=True))
    if status == DISABLED_FILTER:
        query = query.where(Mailing.disabled_at.is_not(None))
    elif status in STATUS_FILTERS:
        query = query.where(Mailing.status == MailingStatus(status))
    keys = paging.sort_keys(SORT_COLUMNS, sort, DEFAULT_SORT, Mailing.id)
    return paging.keyset_page(query, keys, per_page, after=after, before=before)


@dataclass(frozen=True)
class DeliveryTotals:
    sent: int
    failed: int


def delivery_totals(mailing_ids: list[int]) -> dict[int, DeliveryTotals]:
    """Messages sent and deliveries failed per mailing, all runs together (from the runs'
    counters, one grouped query for the page)."""
    if not mailing_ids:
        return {}
    rows = db.session.execute(
        select(MailingRun.mailing_id, func.sum(MailingRun.sent_count), func.sum(MailingRun.failed_count))
        .where(MailingRun.mailing_id.in_(mailing_ids))
        .group_by(MailingRun.mailing_id)
    )
    return {mailing_id: DeliveryTotals(int(sent or 0), int(failed or 0)) for mailing_id, sent, failed in rows}


def owners_with_mailings() -> list[User]:
    """Everyone who owns a mailing: the owners a manager may filter mailings and reports by."""
    return list(
        db.session.scalars(select(User).where(User.id.in_(select(Mailing.owner_id).distinct())).order_by(User.email))
    )


CLIENT_SORT = {"name": Client.full_name}


def clients_page(
    mailing: Mailing,
    *,
    search: str = "",
    after: tuple | None = None,
    before: tuple | None = None,
    per_page: int = paging.PER_PAGE,
) -> paging.Page:
    """A page of the mailing's clients by name, or of those whose address or name contains
    `search`; the count of the whole list is the mailing's `client_count`."""
    query = (
        select(Client)
        .join(mailing_clients, mailing_clients.c.client_id == Client.id)
        .where(mailing_clients.c.mailing_id == mailing.id, Client.owner_id == mailing.owner_id)
    )
    search = (search or "").strip()
    if search:
        query = query.where(
            Client.email.icontains(search, autoescape=True) | Client.full_name.icontains(search, autoescape=True)
        )
    keys = paging.sort_keys(CLIENT_SORT, "name", "name", Client.id)
    return paging.keyset_page(query, keys, per_page, after=after, before=before, count=bool(search))


@dataclass
class RecentRuns:
    runs: list[MailingRun]
    count: int
    unfinished: MailingRun | None


def recent_runs(mailing: Mailing, limit: int = 20) -> RecentRuns:
    """The mailing's latest runs, newest first, how many runs it has and its unfinished one.

    A mailing with fewer runs than `limit` has them all in the list, which then gives the count
    and the unfinished run without asking the database again.
    """
    runs = list(
        db.session.scalars(
            select(MailingRun).where(MailingRun.mailing_id == mailing.id).order_by(MailingRun.id.desc()).limit(limit)
        )
    )
    if len(runs) < limit:
        unfinished = next((run for run in runs if run.status in UNFINISHED_RUN_STATUSES), None)
        return RecentRuns(runs, len(runs), unfinished)
    return RecentRuns(runs, run_count(mailing), unfinished_run(mailing))


def unfinished_run(mailing: Mailing) -> MailingRun | None:
    """The mailing's run that is queued, sending or paused, if any."""
    return db.session.scalar(
        select(MailingRun)
        .where(MailingRun.mailing_id == mailing.id, MailingRun.status.in_(UNFINISHED_RUN_STATUSES))
        .order_by(MailingRun.id.desc())
        .limit(1)
    )


def run_count(mailing: Mailing) -> int:
    return db.session.scalar(select(func.count(MailingRun.id)).where(MailingRun.mailing_id == mailing.id))


# Changes ----------------------------------------------------------------------------------------


def create_mailing(owner: User, data: MailingData, now: datetime) -> Mailing:
    check_times(data.start_at, data.end_at, data.repeat, now)
    if data.recipients == KEEP_CLIENTS:  # a new mailing has no list to keep
        raise MailingError(_("Choose at least one client."), "clients")
    client_ids = check_owned(owner.id, data)
    mailing = Mailing(
        owner=owner,
        name=data.name.strip(),
        message_id=data.message_id,
        start_at=data.start_at,
        end_at=end_of(data),
        repeat=data.repeat,
        status=MailingStatus.CREATED,
        sender_identity_id=data.sender_identity_id,
        smtp_server_id=data.smtp_server_id,
    )
    db.session.add(mailing)
    db.session.flush()
    set_clients(mailing, client_ids)
    schedule.reset_schedule(mailing, now)
    clear_stats_cache_after_commit(owner.id)
    return mailing


def update_mailing(mailing: Mailing, data: MailingData, now: datetime) -> None:
    """Apply an edit. The disabled mark is not part of it: only a manager lifts it.

    A mailing whose end has passed can still be renamed or pointed at other clients; only a
    change of its schedule needs an end in the future.
    """
    # The dispatcher locks the mailing while it creates a run and moves the next run on: an edit
    # computed from an older copy could otherwise put back an occurrence already sent.
    lock_row(db.session, mailing)
    keep_schedule = schedule_unchanged(mailing, data)
    if not keep_schedule:
        check_times(data.start_at, data.end_at, data.repeat, now)
    client_ids = check_owned(mailing.owner_id, data)
    mailing.name = data.name.strip()
    mailing.message_id = data.message_id
    mailing.sender_identity_id = data.sender_identity_id
    mailing.smtp_server_id = data.smtp_server_id
    if data.recipients != KEEP_CLIENTS:
        set_clients(mailing, client_ids)
    if not keep_schedule:
        mailing.start_at, mailing.end_at, mailing.repeat = data.start_at, end_of(data), data.repeat
        schedule.reset_schedule(mailing, now)
    clear_stats_cache_after_commit(mailing.owner_id)


def set_clients(mailing: Mailing, client_ids: list[int] | None) -> None:
    """Write the mailing's client list as a difference on the link table: a mailing may have
    thousands of clients, and an edit usually changes few of them. None: all the owner's."""
    if client_ids is None:
        add_all_clients(mailing)
        return
    wanted = set(client_ids)
    current = set(selected_client_ids(mailing))
    removed, added = sorted(current - wanted), sorted(wanted - current)
    if len(removed) > len(wanted):  # most of the list goes (a deletion, all → a few): anew
        db.session.execute(delete(mailing_clients).where(mailing_clients.c.mailing_id == mailing.id))
        removed, added = [], sorted(wanted)
    for start in range(0, len(removed), ID_BATCH):
        db.session.execute(
            delete(mailing_clients).where(
                mailing_clients.c.mailing_id == mailing.id,
                mailing_clients.c.client_id.in_(removed[start : start + ID_BATCH]),
            )
        )
    if added:
        db.session.execute(insert(mailing_clients), [{"mailing_id": mailing.id, "client_id": c} for c in added])
    mailing.client_count = len(wanted)
    db.session.expire(mailing, ["clients"])


def add_all_clients(mailing: Mailing) -> None:
    """Link every client of the owner not linked yet, in one INSERT ... SELECT (the list holds
    only the owner's clients, so then it holds all of them)."""
    linked = exists().where(mailing_clients.c.mailing_id == mailing.id, mailing_clients.c.client_id == Client.id)
    missing = select(literal(mailing.id), Client.id).where(Client.owner_id == mailing.owner_id, ~linked)
    db.session.execute(insert(mailing_clients).from_select(["mailing_id", "client_id"], missing))
    mailing.client_count = owner_client_count(mailing.owner_id)
    if not mailing.client_count:  # the caller rolls the change back
        raise MailingError(_("Choose at least one client."), "clients")
    db.session.expire(mailing, ["clients"])


@dataclass
class DeletionImpact:
    runs: int
    deliveries: int
    attempts: int
    unfinished_runs: list[MailingRun]


def deletion_impact(mailing: Mailing) -> DeletionImpact:
    """What deleting the mailing removes with it, and the runs that forbid it for now."""
    run_ids = select(MailingRun.id).where(MailingRun.mailing_id == mailing.id).scalar_subquery()
    return DeletionImpact(
        runs=run_count(mailing),
        deliveries=db.session.scalar(select(func.count(Delivery.id)).where(Delivery.run_id.in_(run_ids))),
        attempts=db.session.scalar(
            select(func.count(MailingAttempt.id)).where(MailingAttempt.mailing_id == mailing.id)
        ),
        unfinished_runs=list(
            db.session.scalars(
                select(MailingRun)
                .where(MailingRun.mailing_id == mailing.id, MailingRun.status.in_(UNFINISHED_RUN_STATUSES))
                .order_by(MailingRun.id)
            )
        ),
    )


def delete_mailing(mailing: Mailing) -> None:
    """Delete a mailing with its runs, deliveries and attempts (the database cascades them).

    A run that is queued, sending or paused must be cancelled first: workers may be working on it.
    """
    lock_row(db.session, mailing)
    if schedule.has_unfinished_run(mailing):
        raise MailingError(_("This mailing is being sent or paused. Cancel its unfinished run first, then delete it."))
    owner_id = mailing.owner_id
    # The link rows go in one statement rather than through the loaded client list.
    set_clients(mailing, [])
    db.session.delete(mailing)
    clear_stats_cache_after_commit(owner_id)


def disable_mailing(mailing: Mailing, manager: User, now: datetime, reason: str = "") -> bool:
    """Mark the mailing disabled: the dispatcher skips it, and a run in progress is paused
    (workers stop at their next chunk; the owner may resume it once a manager enables the
    mailing). `reason` is shown to the owner.

    Returns False when it was already disabled (the first manager's mark is kept).
    """
    if mailing.disabled_at is not None:
        return False
    mailing.disabled_at = now
    mailing.disabled_by_id = manager.id
    mailing.disabled_reason = (reason or "").strip()[:REASON_MAX_LENGTH]
    run_control.pause_runs_of_mailings([mailing.id])
    clear_stats_cache_after_commit(mailing.owner_id)
    return True


def enable_mailing(mailing: Mailing, now: datetime) -> bool:
    """Lift the disabled mark. Occurrences missed meanwhile are not replayed: the schedule
    moves on to its next run, as after any change of schedule."""
    lock_row(db.session, mailing)
    if mailing.disabled_at is None:
        return False
    mailing.disabled_at = None
    mailing.disabled_by_id = None
    mailing.disabled_reason = ""
    schedule.reset_schedule(mailing, now)
    clear_stats_cache_after_commit(mailing.owner_id)
    return True


def default_start(now: datetime) -> datetime:
    """Suggested start of a mailing scheduled for later: the next full hour."""
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def is_due(mailing: Mailing, now: datetime) -> bool:
    """The mailing's next run is due now: it was saved to start now or in the past."""
    return mailing.next_run_at is not None and mailing.next_run_at <= now and not mailing.is_disabled
