"""Reports: what happened to each mailing, run and recipient, and statistics over a period.

Every figure is counted in the database (GROUP BY), never by loading rows into Python, and the
CSV export reads the attempt log in keyset batches so its size does not matter.
No request objects here: the views pass who is asking and what they filtered on.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import Interval, case, func, literal, select
from sqlalchemy.orm import joinedload

from mailer.extensions import db
from mailer.models import (
    AttemptStat,
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingAttempt,
    MailingRun,
    RunStatus,
    User,
    utcnow,
)
from mailer.services import paging
from mailer.services.spreadsheets import CsvChunks, csv_safe

CSV_BATCH_SIZE = 5000
CSV_HEADER = ["time", "run", "recipient", "status", "smtp_code", "smtp_response", "error"]
DEFAULT_PERIOD_DAYS = 30
MAX_PERIOD_DAYS = 366


# Delivery counts ------------------------------------------------------------------------------


@dataclass
class Counts:
    """Deliveries by outcome. `pending` includes those a worker is sending right now."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.failed + self.skipped + self.pending

    def add(self, status: DeliveryStatus, count: int) -> None:
        if status == DeliveryStatus.SENT:
            self.sent += count
        elif status == DeliveryStatus.FAILED:
            self.failed += count
        elif status == DeliveryStatus.SKIPPED:
            self.skipped += count
        else:
            self.pending += count

    @classmethod
    def of_run(cls, run: MailingRun) -> "Counts":
        return cls(run.sent_count, run.failed_count, run.skipped_count, run.pending_count)


def delivery_counts_by_run(run_ids: Iterable[int]) -> dict[int, Counts]:
    """Counts of the deliveries of each run, from the run's counters, which the engine moves
    with every delivery it writes (they always equal the deliveries table)."""
    run_ids = list(run_ids)
    counts = {run_id: Counts() for run_id in run_ids}
    if run_ids:
        for run in db.session.scalars(select(MailingRun).where(MailingRun.id.in_(run_ids))):
            counts[run.id] = Counts.of_run(run)
    return counts


def delivery_counts_by_mailing(mailing_ids: Iterable[int]) -> dict[int, Counts]:
    """Counts of the deliveries of every run of each mailing, from the runs' counters."""
    return {mailing_id: figures.counts for mailing_id, figures in run_totals(mailing_ids).items()}


@dataclass
class RunTotals:
    counts: Counts = field(default_factory=Counts)
    runs: int = 0
    last_run_at: datetime | None = None


def run_totals(mailing_ids: Iterable[int]) -> dict[int, RunTotals]:
    """Per mailing: its runs' counters added up, how many runs and the latest, in one query."""
    mailing_ids = list(mailing_ids)
    totals = {mailing_id: RunTotals() for mailing_id in mailing_ids}
    if not mailing_ids:
        return totals
    rows = db.session.execute(
        select(
            MailingRun.mailing_id,
            func.sum(MailingRun.total_count),
            func.sum(MailingRun.sent_count),
            func.sum(MailingRun.failed_count),
            func.sum(MailingRun.skipped_count),
            func.count(),
            func.max(MailingRun.scheduled_for),
        )
        .where(MailingRun.mailing_id.in_(mailing_ids))
        .group_by(MailingRun.mailing_id)
    )
    for mailing_id, total, sent, failed, skipped, runs, last_run_at in rows:
        total, sent, failed, skipped = int(total or 0), int(sent or 0), int(failed or 0), int(skipped or 0)
        counts = Counts(sent, failed, skipped, max(total - sent - failed - skipped, 0))
        totals[mailing_id] = RunTotals(counts, runs, _as_datetime(last_run_at))
    return totals


def _as_datetime(value) -> datetime | None:
    """max() of a time column: aware on PostgreSQL, stored text or naive UTC on SQLite."""
    if value is None or isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    return value.replace(tzinfo=UTC)


# Mailings and runs ----------------------------------------------------------------------------


@dataclass
class MailingRow:
    mailing: Mailing
    counts: Counts
    runs: int = 0
    last_run_at: datetime | None = None


def mailings_page(
    owner_id: int | None, *, after: tuple | None = None, before: tuple | None = None, per_page: int = paging.PER_PAGE
) -> paging.Page:
    """The mailings of one owner, or everyone's when `owner_id` is None; newest first."""
    query = select(Mailing).options(joinedload(Mailing.owner))
    if owner_id is not None:
        query = query.where(Mailing.owner_id == owner_id)
    keys = [paging.Key(Mailing.created_at, True), paging.Key(Mailing.id, True)]
    return paging.keyset_page(query, keys, per_page, after=after, before=before)


def mailing_rows(mailings: list[Mailing]) -> list[MailingRow]:
    """The mailings of one page of the list with their totals, in one grouped query."""
    totals = run_totals(mailing.id for mailing in mailings)
    return [
        MailingRow(mailing, totals[mailing.id].counts, totals[mailing.id].runs, totals[mailing.id].last_run_at)
        for mailing in mailings
    ]


@dataclass
class RunRow:
    run: MailingRun
    counts: Counts

    @property
    def duration(self) -> timedelta | None:
        """How long the run took, or has taken so far while it sends."""
        return run_duration(self.run)


def run_duration(run: MailingRun, now: datetime | None = None) -> timedelta | None:
    if run.started_at is None:
        return None
    end = run.finished_at
    if end is None:
        if run.status in (RunStatus.DONE, RunStatus.CANCELLED):
            return None
        end = now or utcnow()
    return max(end - run.started_at, timedelta(0))


def runs_page(
    mailing: Mailing, *, after: tuple | None = None, before: tuple | None = None, per_page: int = paging.PER_PAGE
) -> paging.Page:
    query = select(MailingRun).where(MailingRun.mailing_id == mailing.id)
    return paging.keyset_page(query, [paging.Key(MailingRun.id, True)], per_page, after=after, before=before)


def run_rows(runs: list[MailingRun]) -> list[RunRow]:
    return [RunRow(run, Counts.of_run(run)) for run in runs]


def find_run(mailing: Mailing, run_id: int) -> MailingRun | None:
    """A run is reached through its mailing, whose access the caller has checked."""
    run = db.session.get(MailingRun, run_id)
    return run if run is not None and run.mailing_id == mailing.id else None


# The attempt log and the deliveries of a run ----------------------------------------------------


@dataclass
class AttemptFilter:
    """What the attempt log is narrowed to; `until` is exclusive. Times are UTC."""

    status: AttemptStatus | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list:
        conditions = []
        if self.status is not None:
            conditions.append(MailingAttempt.status == self.status)
        if self.since is not None:
            conditions.append(MailingAttempt.attempted_at >= self.since)
        if self.until is not None:
            conditions.append(MailingAttempt.attempted_at < self.until)
        return conditions


def day_bounds(first: date | None, last: date | None, zone: tzinfo) -> tuple[datetime | None, datetime | None]:
    """From the start of `first` to the end of `last`, as days in the user's time zone, in UTC."""
    return (
        local_midnight(first, zone) if first else None,
        local_midnight(last + timedelta(days=1), zone) if last else None,
    )


def local_midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def attempts_page(
    attempt_filter: AttemptFilter,
    *,
    run_id: int,
    after: tuple | None = None,
    before: tuple | None = None,
    per_page: int = paging.PER_PAGE,
) -> paging.Page:
    """The attempts of one run (reached through its mailing, see `find_run`), newest first:
    from the run's index alone, without reading the rows until the page's own."""
    query = select(MailingAttempt).where(MailingAttempt.run_id == run_id, *attempt_filter.conditions())
    if attempt_filter.status not in (None, AttemptStatus.SUCCESS):
        # Said outright, so that the planner takes the small index of the tries that failed.
        query = query.where(MailingAttempt.status != AttemptStatus.SUCCESS)
    keys = [paging.Key(MailingAttempt.attempted_at, True), paging.Key(MailingAttempt.id, True)]
    return paging.keyset_page(query, keys, per_page, after=after, before=before)


def deliveries_page(
    run: MailingRun,
    status: DeliveryStatus | None = None,
    *,
    after: tuple | None = None,
    before: tuple | None = None,
    per_page: int = paging.PER_PAGE,
    count: bool = True,
) -> paging.Page:
    """The deliveries of a run, of one status or all of them grouped by status (failed ones
    first), in the order they were created: the order of the run's index."""
    query = select(Delivery).where(Delivery.run_id == run.id)
    if status is not None:
        query = query.where(Delivery.status == status)
    keys = [paging.Key(Delivery.status), paging.Key(Delivery.id)]
    return paging.keyset_page(query, keys, per_page, after=after, before=before, count=count)


# CSV export -----------------------------------------------------------------------------------


def attempts_csv(
    attempt_filter: AttemptFilter,
    zone: tzinfo,
    *,
    mailing_id: int,
    run_id: int | None = None,
    batch_size: int = CSV_BATCH_SIZE,
) -> Iterator[str]:
    """The attempt log as CSV text, produced batch by batch.

    Reads plain columns (no ORM objects piling up in the session) in keyset batches on the
    primary key, so memory stays flat whether the log has ten rows or millions, and no
    batch costs more than the first (unlike OFFSET).
    """
    columns = (
        MailingAttempt.id,
        MailingAttempt.attempted_at,
        MailingAttempt.run_id,
        MailingAttempt.email,
        MailingAttempt.status,
        MailingAttempt.smtp_code,
        MailingAttempt.smtp_response,
        MailingAttempt.error,
    )
    conditions = [MailingAttempt.mailing_id == mailing_id, *attempt_filter.conditions()]
    if run_id is not None:
        conditions.append(MailingAttempt.run_id == run_id)

    writer = CsvChunks()
    writer.writerow(CSV_HEADER)
    yield writer.take()

    # Core rows through the session's connection: the same transaction, without the ORM's
    # per-row bookkeeping.
    connection = db.session.connection()
    last_id = 0
    while True:
        rows = connection.execute(
            select(*columns)
            .where(*conditions, MailingAttempt.id > last_id)
            .order_by(MailingAttempt.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return
        for row in rows:
            writer.writerow(
                [
                    row.attempted_at.astimezone(zone).isoformat(timespec="seconds"),
                    row.run_id,
                    csv_safe(row.email),
                    row.status.value,
                    row.smtp_code if row.smtp_code is not None else "",
                    csv_safe(row.smtp_response or ""),
                    csv_safe(row.error or ""),
                ]
            )
        yield writer.take()
        last_id = rows[-1].id


# Statistics over a period ---------------------------------------------------------------------


@dataclass
class Period:
    """Whole days in the user's time zone, `first` to `last` included."""

    first: date
    last: date
    zone: tzinfo

    @classmethod
    def last_days(cls, zone: tzinfo, days: int = DEFAULT_PERIOD_DAYS, now: datetime | None = None) -> "Period":
        today = (now or utcnow()).astimezone(zone).date()
        return cls(today - timedelta(days=days - 1), today, zone)

    @property
    def since(self) -> datetime:
        return local_midnight(self.first, self.zone)

    @property
    def until(self) -> datetime:
        return local_midnight(self.last + timedelta(days=1), self.zone)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


@dataclass
class Figures:
    attempts: int = 0
    successes: int = 0
    failures: int = 0
    sent: int = 0


@dataclass
class MailingFigures(Figures):
    mailing_id: int = 0
    name: str = ""
    owner_email: str = ""


@dataclass
class DayFigures:
    day: date
    successes: int = 0
    failures: int = 0


@dataclass
class Statistics:
    period: Period
    totals: Figures
    per_mailing: list[MailingFigures] = field(default_factory=list)
    per_day: list[DayFigures] = field(default_factory=list)


def statistics(period: Period, owner_id: int | None) -> Statistics:
    """Attempts, successes, failures and messages sent in the period, in total, per mailing and
    per day; for one owner, or for everyone when `owner_id` is None.

    Read from the sums per quarter of an hour (AttemptStat), never from the attempt log: the
    period's bounds are local midnights, which fall on quarter hours in every time zone.
    """
    in_period = [AttemptStat.slot >= period.since, AttemptStat.slot < period.until]
    owned = [Mailing.owner_id == owner_id] if owner_id is not None else []

    rows = db.session.execute(
        select(
            Mailing.id,
            Mailing.name,
            User.email,
            func.sum(AttemptStat.attempts),
            func.sum(AttemptStat.successes),
            func.sum(AttemptStat.failures),
            func.sum(AttemptStat.sent),
        )
        .select_from(AttemptStat)
        .join(Mailing, Mailing.id == AttemptStat.mailing_id)
        .join(User, User.id == Mailing.owner_id)
        .where(*in_period, *owned)
        .group_by(Mailing.id, Mailing.name, User.email)
    )
    mailings = [
        MailingFigures(
            attempts=int(attempts or 0),
            successes=int(successes or 0),
            failures=int(failures or 0),
            sent=int(sent or 0),
            mailing_id=mailing_id,
            name=name,
            owner_email=owner_email,
        )
        for mailing_id, name, owner_email, attempts, successes, failures, sent in rows
    ]

    per_day = {day: DayFigures(day) for day in period.days}
    day = local_day(AttemptStat.slot, period).label("day")
    day_query = (
        select(day, func.sum(AttemptStat.successes), func.sum(AttemptStat.failures))
        .select_from(AttemptStat)
        .where(*in_period)
        .group_by(day)
    )
    if owned:
        day_query = day_query.join(Mailing, Mailing.id == AttemptStat.mailing_id).where(*owned)
    for value, success_count, failure_count in db.session.execute(day_query):
        entry = per_day.get(_as_date(value))
        if entry is not None:
            entry.successes, entry.failures = int(success_count or 0), int(failure_count or 0)

    mailings.sort(key=lambda m: (-m.attempts, -m.sent, m.name.lower(), m.mailing_id))
    totals = Figures(
        attempts=sum(m.attempts for m in mailings),
        successes=sum(m.successes for m in mailings),
        failures=sum(m.failures for m in mailings),
        sent=sum(m.sent for m in mailings),
    )
    return Statistics(period, totals, mailings, list(per_day.values()))


def local_day(column, period: Period):
    """SQL for the calendar day of a UTC timestamp in the period's time zone.

    Neither SQLite nor every PostgreSQL knows the same zone names, so the timestamp is shifted
    by the zone's UTC offset, which is constant between two daylight-saving changes: one
    expression per stretch of the period, chosen with CASE on the timestamp.
    """
    dialect = db.session.get_bind().dialect.name

    def shifted_date(offset: timedelta):
        if dialect == "postgresql":
            # AT TIME ZONE with an interval: the wall-clock time at that offset from UTC.
            return func.date(func.timezone(literal(offset, Interval()), column))
        minutes = int(offset.total_seconds() // 60)
        return func.date(column, f"{minutes:+d} minutes")

    stretches = offset_stretches(period.zone, period.since, period.until)
    if len(stretches) == 1:
        return shifted_date(stretches[0][1])
    return case(
        *[(column < ends_at, shifted_date(offset)) for ends_at, offset in stretches[:-1]],
        else_=shifted_date(stretches[-1][1]),
    )


def offset_stretches(zone: tzinfo, since: datetime, until: datetime) -> list[tuple[datetime, timedelta]]:
    """[(end, UTC offset)] for each stretch of [since, until) in which the zone's offset holds.

    Walks a day at a time (a year is 366 steps), then finds a change's hour and minute within
    its day; no zone changes its offset twice in one day.
    """

    def offset_at(moment: datetime) -> timedelta:
        return moment.astimezone(zone).utcoffset()

    stretches = []
    offset = offset_at(since)
    moment = since
    while moment < until:
        following = min(moment + timedelta(days=1), until)
        if offset_at(following) != offset:
            change = moment
            while offset_at(change + timedelta(hours=1)) == offset:
                change += timedelta(hours=1)
            change += timedelta(minutes=1)
            while offset_at(change) == offset:
                change += timedelta(minutes=1)
            stretches.append((change, offset))
            offset = offset_at(change)
            following = change
        moment = following
    stretches.append((until, offset))
    return stretches


def _as_date(value) -> date | None:
    """DATE() gives a date on PostgreSQL and 'YYYY-MM-DD' text on SQLite."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
