"""When a mailing runs: its occurrences, its next run and its status.

Occurrences are computed in the owner's time zone from the anchor `start_at`: the n-th
occurrence is start + n steps (days, weeks or months), always counted from the anchor, so a
monthly mailing anchored on 31 January runs on the last day of February and again on
31 March, and a daily 09:00 mailing stays at 09:00 local time across daylight-saving changes.
Missed occurrences (scheduler down) are not replayed: one run catches up, then the schedule
moves on to the next future occurrence.
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select

from mailer.extensions import db
from mailer.models import UNFINISHED_RUN_STATUSES, Mailing, MailingRun, MailingStatus, Repeat, RunTrigger
from mailer.timezones import zone

STEPS = {
    Repeat.DAILY: relativedelta(days=1),
    Repeat.WEEKLY: relativedelta(weeks=1),
    Repeat.MONTHLY: relativedelta(months=1),
}


def owner_zone(mailing: Mailing) -> ZoneInfo:
    return zone(mailing.owner.timezone if mailing.owner is not None else None)


def occurrence(start_at: datetime, repeat: Repeat, index: int, tz: ZoneInfo) -> datetime:
    """The index-th occurrence (0 = the start itself), in UTC."""
    if index == 0 or repeat == Repeat.NONE:
        return start_at.astimezone(UTC)
    local_start = start_at.astimezone(tz).replace(tzinfo=None)
    local = local_start + STEPS[repeat] * index
    # A wall-clock time that does not exist (spring forward) resolves to the hour after the gap;
    # an ambiguous one (fall back) to its first occurrence.
    return local.replace(tzinfo=tz).astimezone(UTC)


def _index_estimate(start_at: datetime, after: datetime, repeat: Repeat, tz: ZoneInfo) -> int:
    """A lower bound for the index of the first occurrence after `after`."""
    start_local, after_local = start_at.astimezone(tz), after.astimezone(tz)
    if repeat == Repeat.MONTHLY:
        months = (after_local.year - start_local.year) * 12 + after_local.month - start_local.month
        return max(months - 1, 0)
    days = (after_local.date() - start_local.date()).days
    if repeat == Repeat.WEEKLY:
        days //= 7
    return max(days - 1, 0)


def occurrences(mailing: Mailing, limit: int | None = None) -> list[datetime]:
    """The occurrences of a mailing from its start until its end (at most `limit` of them)."""
    tz = owner_zone(mailing)
    result: list[datetime] = []
    index = 0
    while limit is None or len(result) < limit:
        when = occurrence(mailing.start_at, mailing.repeat, index, tz)
        if when > mailing.end_at:
            break
        result.append(when)
        if mailing.repeat == Repeat.NONE:
            break
        index += 1
    return result


def next_run_time(mailing: Mailing, after: datetime | None) -> datetime | None:
    """The first occurrence strictly after `after` (the start itself when `after` is None),
    or None when there is none before the end."""
    start_at = mailing.start_at.astimezone(UTC)
    if after is None or start_at > after:
        return start_at if start_at <= mailing.end_at else None
    if mailing.repeat == Repeat.NONE:
        return None
    tz = owner_zone(mailing)
    index = _index_estimate(start_at, after, mailing.repeat, tz)
    while True:
        when = occurrence(start_at, mailing.repeat, index, tz)
        if when > mailing.end_at:
            return None
        if when > after:
            return when
        index += 1


def last_scheduled_run_time(mailing: Mailing) -> datetime | None:
    if mailing.id is None:
        return None
    latest = db.session.scalar(
        select(func.max(MailingRun.scheduled_for)).where(
            MailingRun.mailing_id == mailing.id, MailingRun.trigger == RunTrigger.SCHEDULE
        )
    )
    # SQLite hands back a naive value from an aggregate; it is stored in UTC.
    if latest is not None and latest.tzinfo is None:
        latest = latest.replace(tzinfo=UTC)
    return latest


def reset_schedule(mailing: Mailing, now: datetime) -> None:
    """Recompute the next run after the mailing was created or its schedule edited.

    Before the first scheduled run the next run is the start, even a start in the past (it is
    then due at once); afterwards it is the next occurrence after the last scheduled run and
    after now, so an edit never replays past occurrences.
    """
    last = last_scheduled_run_time(mailing)
    if mailing.repeat == Repeat.NONE and was_sent(mailing):
        # A "Once" mailing is sent once, by its schedule or by Send now; an edit never sends it
        # again (Send now does, after saying that it was sent before).
        mailing.next_run_at = None
    elif last is None:
        mailing.next_run_at = next_run_time(mailing, None)
    else:
        mailing.next_run_at = next_run_time(mailing, max(last, now))
    refresh_status(mailing, now)


def has_unfinished_run(mailing: Mailing) -> bool:
    """A run of the mailing is queued, sending or paused."""
    if mailing.id is None:
        return False
    return (
        db.session.scalar(
            select(func.count(MailingRun.id)).where(
                MailingRun.mailing_id == mailing.id, MailingRun.status.in_(UNFINISHED_RUN_STATUSES)
            )
        )
        > 0
    )


def was_sent(mailing: Mailing) -> bool:
    """The mailing had a scheduled or a manual run (retries and rests only follow those)."""
    if mailing.id is None:
        return False
    return (
        db.session.scalar(
            select(func.count(MailingRun.id)).where(
                MailingRun.mailing_id == mailing.id, MailingRun.trigger.in_([RunTrigger.SCHEDULE, RunTrigger.MANUAL])
            )
        )
        > 0
    )


def has_runs(mailing: Mailing) -> bool:
    if mailing.id is None:
        return False
    return db.session.scalar(select(func.count(MailingRun.id)).where(MailingRun.mailing_id == mailing.id)) > 0


def refresh_status(mailing: Mailing, now: datetime | None = None) -> bool:
    """created → running (a first run was dispatched) → finished (nothing left to send: no next
    run before the end and no run in progress or paused).

    Returns True when the status changed; the caller clears the statistics cache then.
    """
    active = has_unfinished_run(mailing)
    # next_run_at never lies past the end (next_run_time stops there), so "past the end"
    # shows as no next run.
    nothing_left = mailing.next_run_at is None or mailing.next_run_at > mailing.end_at
    if not active and nothing_left:
        status = MailingStatus.FINISHED
    elif active or has_runs(mailing):
        status = MailingStatus.RUNNING
    else:
        status = MailingStatus.CREATED
    changed = mailing.status != status
    mailing.status = status
    return changed
