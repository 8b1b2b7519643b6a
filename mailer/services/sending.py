"""The worker's side of sending: claim deliveries of a run, send them over several SMTP
connections at once, record every result and attempt in bulk, and close the run when nothing
is left.

Crash safety. A claimed delivery is `sending`, with a claim token, a lease (`claimed_at`) and
its Message-ID, committed before any byte goes to the SMTP server. The worker renews its leases
while it sends (a heartbeat every third of SEND_LEASE_SECONDS), so only a dead worker's lease
expires; the reconciler then returns those deliveries to pending. A result is written only by
the claim that holds the delivery (or to a delivery that was returned and not claimed again),
and the run's counters move with exactly the rows written.

What a stop repeats. SIGKILL: the messages sent but not yet recorded (results are written every
fraction of a second) are sent again, with the same Message-ID. SIGTERM: the messages in flight
finish (cut after SEND_STOP_GRACE), the rest of the claim goes back to pending untouched.
Database outage: the worker stops handing out messages at the first failed write, keeps its
results and writes them once the database answers.
"""

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from mailer.database import is_postgresql
from mailer.extensions import db
from mailer.models import (
    ACTIVE_RUN_STATUSES,
    AttemptStatus,
    Client,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingAttempt,
    MailingRun,
    UTCDateTime,
    utcnow,
)
from mailer.services import attempt_stats, dkim_signing, runs, send_queue, senders, servers, shutdown
from mailer.services.addresses import AddressError, envelope_address
from mailer.services.message_templates import TemplateProblem
from mailer.services.mime import make_message_id
from mailer.services.rendering import MailRenderer
from mailer.services.secrets import SecretError
from mailer.services.throttle import Limits, Throttle
from mailer.services.transport import NOT_SENT, Reply, SenderPool, SmtpSettings

log = logging.getLogger(__name__)

# A send job leaves the worker after this many seconds and queues its continuation, so that one
# long run does not hold a worker for hours and other runs get their turn.
JOB_TIME_BUDGET = 30
# Results are written at least this often (seconds), so that a crash repeats few messages.
RECORD_EVERY = 0.25
# How long a worker keeps trying to write its results while the database is away.
DATABASE_PATIENCE = 600


# Claiming ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """What a message needs of the client, read when the delivery is claimed."""

    id: int
    email: str
    full_name: str
    unsubscribed_at: datetime | None


@dataclass(frozen=True)
class Claimed:
    id: int
    client: Recipient | None  # None when the client was deleted
    email: str
    attempts: int
    message_id: str
    first_attempt_at: datetime | None
    token: str

    @property
    def client_id(self) -> int | None:
        return self.client.id if self.client else None


def new_claim_token() -> str:
    return secrets.token_hex(16)


def claim_chunk(run_id: int, now: datetime, size: int, token: str) -> list[Claimed]:
    """Mark up to `size` due pending deliveries of the run as `sending` under `token`, with their
    Message-ID, and commit; returns them with their clients' current name and address. Nothing
    is claimed from a run that is no longer queued or sending (cancelled or paused meanwhile).

    On PostgreSQL one statement chooses (FOR UPDATE SKIP LOCKED, so workers share a run without
    waiting for one another), claims and reads them. On SQLite the candidates are chosen, then
    claimed by an UPDATE that checks `status = 'pending'` again under the database's single write
    lock: a delivery is never claimed twice.
    """
    if is_postgresql(db.session):
        rows = db.session.execute(
            CLAIM_ON_POSTGRESQL,
            {
                "run_id": run_id,
                "now": now,
                "size": size,
                "token": token,
                "domain": current_app.config["MAIL_MESSAGE_ID_DOMAIN"],
            },
        ).all()
        db.session.commit()
        return [_claimed(row, token) for row in rows]
    due = (Delivery.retry_at.is_(None)) | (Delivery.retry_at <= now)
    run_active = (
        select(MailingRun.id).where(MailingRun.id == run_id, MailingRun.status.in_(ACTIVE_RUN_STATUSES)).exists()
    )
    candidates = (
        select(Delivery.id)
        .where(Delivery.run_id == run_id, Delivery.status == DeliveryStatus.PENDING, due, run_active)
        .order_by(Delivery.id)
        .limit(size)
    )
    for _ in range(3):  # another worker may take the candidates first; then choose again
        ids = list(db.session.scalars(candidates))
        if not ids:
            break
        claimed = _claim_on_sqlite(ids, now, token)
        if claimed:
            db.session.commit()
            return claimed
        db.session.rollback()
    db.session.rollback()
    return []


# Choose, claim and read in one round trip. The Message-ID is made here for a first claim and
# kept for every later one (see make_message_id for its form).
#
# The run's row is locked too, and must still be queued or sending: a claim takes nothing from a
# run paused or cancelled since the worker last read it, and a pause waits for a claim under way
# to commit, so that the run's page then sees those messages as `sending` until they are recorded.
ACTIVE_IN_SQL = ", ".join(f"'{status.value}'" for status in ACTIVE_RUN_STATUSES)
CLAIM_ON_POSTGRESQL = (
    text(f"""
    WITH run AS (
        SELECT id FROM mailing_runs WHERE id = :run_id AND status IN ({ACTIVE_IN_SQL}) FOR UPDATE
    ), candidates AS (
        SELECT id FROM deliveries
        WHERE run_id = :run_id AND status = 'pending' AND (retry_at IS NULL OR retry_at <= :now)
          AND EXISTS (SELECT 1 FROM run)
        ORDER BY id LIMIT :size
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE deliveries AS d
        SET status = 'sending', claimed_at = :now, claim_token = :token,
            message_id_header = COALESCE(d.message_id_header, '<mailing.' || d.id || '.'
                                         || substr(md5(random()::text || d.id::text), 1, 16) || '@' || :domain || '>')
        FROM candidates WHERE d.id = candidates.id
        RETURNING d.id, d.client_id, d.email, d.attempts, d.message_id_header, d.first_attempt_at
    )
    SELECT claimed.*, c.email AS client_email, c.full_name, c.unsubscribed_at
    FROM claimed LEFT JOIN clients AS c ON c.id = claimed.client_id
    ORDER BY claimed.id
""")
    .bindparams(bindparam("now", type_=UTCDateTime()))
    .columns(first_attempt_at=UTCDateTime(), unsubscribed_at=UTCDateTime())
)


def _claimed(row, token: str) -> Claimed:
    client = (
        Recipient(row.client_id, row.client_email, row.full_name, row.unsubscribed_at)
        if row.client_email is not None
        else None
    )
    return Claimed(row.id, client, row.email, row.attempts, row.message_id_header, row.first_attempt_at, token)


# Checked again by the claiming UPDATE itself, under SQLite's write lock: a pause or cancel that
# committed after the candidates were chosen still stops the claim.
run_still_active = (
    select(MailingRun.id)
    .where(MailingRun.id == Delivery.run_id, MailingRun.status.in_(ACTIVE_RUN_STATUSES))
    .correlate(Delivery)
    .exists()
)


def _claim_on_sqlite(ids: list[int], now: datetime, token: str) -> list[Claimed]:
    rows = (
        db.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING, run_still_active)
            .values(status=DeliveryStatus.SENDING, claimed_at=now, claim_token=token)
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    if not rows:
        return []
    table = Delivery.__table__
    db.session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.message_id_header.is_(None))
        .values(message_id_header=bindparam("b_header")),
        [{"b_id": delivery_id, "b_header": make_message_id(delivery_id)} for delivery_id in rows],
    )
    claimed = db.session.execute(
        select(
            Delivery.id,
            Delivery.client_id,
            Delivery.email,
            Delivery.attempts,
            Delivery.message_id_header,
            Delivery.first_attempt_at,
            Client.email.label("client_email"),
            Client.full_name,
            Client.unsubscribed_at,
        )
        .outerjoin(Client, Client.id == Delivery.client_id)
        .where(Delivery.id.in_(rows))
        .order_by(Delivery.id)
    ).all()
    return [_claimed(row, token) for row in claimed]


def renew_leases(tokens: set[str], now: datetime) -> None:
    """The heartbeat: this worker is alive and still holds these claims."""
    if not tokens:
        return
    db.session.execute(
        update(Delivery)
        .where(Delivery.claim_token.in_(sorted(tokens)), Delivery.status == DeliveryStatus.SENDING)
        .values(claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def release(deliveries: list[Claimed]) -> None:
    """Give claimed deliveries that were never handed to the SMTP server back, untouched."""
    table = Delivery.__table__
    db.session.execute(
        table.update()
        .where(
            table.c.id == bindparam("b_id"),
            table.c.claim_token == bindparam("b_token"),
            table.c.status == DeliveryStatus.SENDING.value,
        )
        .values(status=DeliveryStatus.PENDING.value, claimed_at=None, claim_token=None),
        [{"b_id": delivery.id, "b_token": delivery.token} for delivery in deliveries],
    )
    db.session.commit()


# Judging a reply --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    delivery: Claimed
    status: DeliveryStatus  # sent, failed, skipped, or pending again (a retry)
    reply: Reply | None  # None when no SMTP attempt was made (skipped)
    attempted_at: datetime
    retry_at: datetime | None = None
    note: str | None = None


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the attempts-th failed try: base, 2 x base, 4 x base, ..., capped."""
    config = current_app.config
    base = config["SEND_RETRY_BASE_DELAY"]
    return timedelta(seconds=min(base * 2 ** min(max(attempts - 1, 0), 30), config["SEND_RETRY_MAX_DELAY"]))


def judge(delivery: Claimed, reply: Reply, at: datetime) -> Outcome:
    """sent for 2xx; failed for 5xx; for 4xx, a lost connection, a timeout or an unknown outcome
    a retry with back-off, until SEND_RETRY_WINDOW after the first try, when it fails."""
    if reply.accepted:
        return Outcome(delivery, DeliveryStatus.SENT, reply, at)
    if reply.permanent:
        return Outcome(delivery, DeliveryStatus.FAILED, reply, at)
    window_ends = (delivery.first_attempt_at or at) + timedelta(seconds=current_app.config["SEND_RETRY_WINDOW"])
    if at >= window_ends:
        return Outcome(delivery, DeliveryStatus.FAILED, reply, at, note="gave up: the retry window is over")
    retry_at = min(at + retry_delay(delivery.attempts + 1), window_ends)
    return Outcome(delivery, DeliveryStatus.PENDING, reply, at, retry_at=retry_at)


# Recording --------------------------------------------------------------------------------------

# A result is written by the claim that holds the delivery, or to a delivery the reconciler
# returned to pending (this worker was cut off from the database for longer than its lease)
# that nobody claimed again: the message did go out, and its result must not be lost.
RESULTS_ON_POSTGRESQL = text(
    """
    WITH written AS (
        UPDATE deliveries AS d
        SET status = r.status, attempts = d.attempts + r.tried, retry_at = r.retry_at, sent_at = r.sent_at,
            first_attempt_at = COALESCE(d.first_attempt_at, r.first_attempt_at),
            last_code = r.code, last_response = r.response, claimed_at = NULL, claim_token = NULL
        FROM unnest(CAST(:ids AS integer[]), CAST(:tokens AS varchar[]), CAST(:statuses AS varchar[]),
                    CAST(:tried AS integer[]), CAST(:retry AS timestamptz[]), CAST(:sent AS timestamptz[]),
                    CAST(:first AS timestamptz[]), CAST(:codes AS integer[]), CAST(:responses AS text[]))
             AS r(id, token, status, tried, retry_at, sent_at, first_attempt_at, code, response)
        WHERE d.id = r.id
          AND ((d.status = 'sending' AND d.claim_token = r.token) OR (d.status = 'pending' AND d.claim_token IS NULL))
        RETURNING d.status, d.sent_at
    ), logged AS (
        INSERT INTO mailing_attempts (mailing_id, run_id, delivery_id, client_id, email, attempted_at, status,
                                      smtp_code, smtp_response, error)
        SELECT :mailing_id, :run_id, a.delivery_id, a.client_id, a.email, a.attempted_at, a.status, a.code,
               a.response, a.error
        FROM unnest(CAST(:a_deliveries AS integer[]), CAST(:a_clients AS integer[]), CAST(:a_emails AS varchar[]),
                    CAST(:a_times AS timestamptz[]), CAST(:a_statuses AS varchar[]), CAST(:a_codes AS integer[]),
                    CAST(:a_responses AS text[]), CAST(:a_errors AS text[]))
             AS a(delivery_id, client_id, email, attempted_at, status, code, response, error)
        RETURNING attempted_at, status
    ), counted AS (
        -- The statistics' sums per quarter of an hour (see attempt_stats), in slot order so that
        -- workers adding to the same slots lock them in the same order.
        INSERT INTO attempt_stats AS s (mailing_id, slot, attempts, successes, failures, sent)
        SELECT :mailing_id, slot, sum(attempts), sum(successes), sum(failures), sum(sent)
        FROM (
            SELECT SLOT(attempted_at) AS slot, 1 AS attempts,
                   CASE WHEN status = 'success' THEN 1 ELSE 0 END AS successes,
                   CASE WHEN status = 'failure' THEN 1 ELSE 0 END AS failures, 0 AS sent
            FROM logged
            UNION ALL
            SELECT SLOT(sent_at), 0, 0, 0, 1 FROM written WHERE status = 'sent'
        ) AS log
        GROUP BY slot
        ORDER BY slot
        ON CONFLICT (mailing_id, slot) DO UPDATE
        SET attempts = s.attempts + EXCLUDED.attempts, successes = s.successes + EXCLUDED.successes,
            failures = s.failures + EXCLUDED.failures, sent = s.sent + EXCLUDED.sent
    )
    UPDATE mailing_runs
    SET sent_count = sent_count + (SELECT count(*) FROM written WHERE status = 'sent'),
        failed_count = failed_count + (SELECT count(*) FROM written WHERE status = 'failed'),
        skipped_count = skipped_count + (SELECT count(*) FROM written WHERE status = 'skipped'),
        unknown_count = unknown_count + :unknown
    WHERE id = :run_id
""".replace("SLOT(attempted_at)", attempt_stats.SLOT_ON_POSTGRESQL.format("attempted_at")).replace(
        "SLOT(sent_at)", attempt_stats.SLOT_ON_POSTGRESQL.format("sent_at")
    )
)
RESULTS_ON_SQLITE = text("""
    UPDATE deliveries
    SET status = :status, attempts = attempts + :tried, retry_at = :retry_at, sent_at = :sent_at,
        first_attempt_at = COALESCE(first_attempt_at, :first_attempt_at),
        last_code = :code, last_response = :response, claimed_at = NULL, claim_token = NULL
    WHERE id = :id AND ((status = 'sending' AND claim_token = :token) OR (status = 'pending' AND claim_token IS NULL))
""").bindparams(
    bindparam("retry_at", type_=UTCDateTime()),
    bindparam("sent_at", type_=UTCDateTime()),
    bindparam("first_attempt_at", type_=UTCDateTime()),
)


def attempt_status(reply: Reply) -> AttemptStatus:
    if reply.accepted:
        return AttemptStatus.SUCCESS
    return AttemptStatus.UNKNOWN if reply.unknown else AttemptStatus.FAILURE


def record_outcomes(run_id: int, mailing_id: int, outcomes: list[Outcome]) -> None:
    """Write every delivery's result, every attempt and the run's counters in one transaction
    (one statement on PostgreSQL).

    The counters move by the rows actually written, so they always equal what the deliveries
    table says. Every attempt is logged, even one whose delivery was meanwhile given to another
    worker: it happened, and the report shows that client may have got two copies.
    """
    results, attempts = [], []
    for outcome in outcomes:
        delivery, reply = outcome.delivery, outcome.reply
        tried = reply is not None
        response = outcome.note if not tried else (reply.text if reply.error is None else reply.error)
        if tried and outcome.note:
            response = f"{response} ({outcome.note})"
        results.append(
            {
                "id": delivery.id,
                "token": delivery.token,
                "status": outcome.status.value,
                "tried": 1 if tried else 0,
                "retry_at": outcome.retry_at,
                "sent_at": outcome.attempted_at if outcome.status == DeliveryStatus.SENT else None,
                "first_attempt_at": outcome.attempted_at if tried else None,
                "code": reply.code if tried else None,
                "response": response,
            }
        )
        if tried:
            attempts.append(
                {
                    "mailing_id": mailing_id,
                    "run_id": run_id,
                    "delivery_id": delivery.id,
                    "client_id": delivery.client_id,
                    "email": delivery.email,
                    "attempted_at": outcome.attempted_at,
                    "status": attempt_status(reply),
                    "smtp_code": reply.code,
                    "smtp_response": reply.text if reply.error is None else None,
                    "error": reply.error,
                }
            )
    unknown = sum(1 for attempt in attempts if attempt["status"] == AttemptStatus.UNKNOWN)
    if is_postgresql(db.session):
        db.session.execute(RESULTS_ON_POSTGRESQL, _as_arrays(results, attempts, run_id, mailing_id, unknown))
        db.session.commit()
        return
    changed = db.session.execute(RESULTS_ON_SQLITE, results).rowcount if results else 0
    if attempts:
        db.session.execute(insert(MailingAttempt.__table__), attempts)
    sent = [result for result in results if result["status"] == DeliveryStatus.SENT.value]
    if changed == len(results):
        statuses = [result["status"] for result in results]
        runs.add_to_counters(
            run_id,
            sent=len(sent),
            failed=statuses.count(DeliveryStatus.FAILED.value),
            skipped=statuses.count(DeliveryStatus.SKIPPED.value),
            unknown=unknown,
        )
    else:  # some results were not this worker's to write any more; SQLite does not say which
        runs.update_counters(run_id)
        sent = [result for result in sent if written_as_sent(result)]
    attempt_stats.add(
        mailing_id,
        [(attempt["attempted_at"], attempt["status"]) for attempt in attempts],
        [result["sent_at"] for result in sent],
    )
    db.session.commit()


def written_as_sent(result: dict) -> bool:
    """Whether this result is the one the delivery holds (SQLite, after a partial write)."""
    row = db.session.execute(select(Delivery.status, Delivery.sent_at).where(Delivery.id == result["id"])).one()
    return row.status == DeliveryStatus.SENT and row.sent_at == result["sent_at"]


def _as_arrays(results: list[dict], attempts: list[dict], run_id: int, mailing_id: int, unknown: int) -> dict:
    """The parameters of RESULTS_ON_POSTGRESQL: one array per column (psycopg2 runs an
    executemany as one round trip per row)."""

    def column(rows: list[dict], name: str) -> list:
        return [row[name] for row in rows]

    return {
        "run_id": run_id,
        "mailing_id": mailing_id,
        "unknown": unknown,
        "ids": column(results, "id"),
        "tokens": column(results, "token"),
        "statuses": column(results, "status"),
        "tried": column(results, "tried"),
        "retry": column(results, "retry_at"),
        "sent": column(results, "sent_at"),
        "first": column(results, "first_attempt_at"),
        "codes": column(results, "code"),
        "responses": column(results, "response"),
        "a_deliveries": column(attempts, "delivery_id"),
        "a_clients": column(attempts, "client_id"),
        "a_emails": column(attempts, "email"),
        "a_times": column(attempts, "attempted_at"),
        "a_statuses": [attempt["status"].value for attempt in attempts],
        "a_codes": column(attempts, "smtp_code"),
        "a_responses": column(attempts, "smtp_response"),
        "a_errors": column(attempts, "error"),
    }


# The work on one run ----------------------------------------------------------------------------


class RunSender:
    """One send job's work on one run: claims chunks while the SMTP connections have room,
    renders in this thread while the pool's threads wait for the server, writes results often,
    renews its leases, and stops cleanly when asked to."""

    def __init__(self, run_id: int, time_budget: float):
        config = current_app.config
        self.run_id = run_id
        self.config = config
        self.deadline = time.monotonic() + time_budget
        self.connections = max(config["SEND_CONNECTIONS"], 1)
        self.pool: SenderPool | None = None  # made by `prepare`, for the mailing's server
        # Handed to the pool and not answered yet, by delivery id.
        self.in_flight: dict[int, Claimed] = {}
        self.results: list[Outcome] = []
        self.unsent: list[Claimed] = []  # claimed, never handed over: to give back
        self.held_tokens: set[str] = set()
        self.stopped: str | None = None
        self.last_record = self.last_heartbeat = time.monotonic()
        self.grace_ends: float | None = None
        self.mailing_id: int | None = None
        self.renderer: MailRenderer | None = None
        self.template_problem: str | None = None
        self.sender: senders.SenderHeaders | None = None
        self.server: servers.ServerSettings | None = None
        self.setup_problem: str | None = None
        self.sent = self.chunks = 0
        self.asked_for_help = False

    # The loop -----------------------------------------------------------------------------------

    def work(self) -> dict:
        try:
            while True:
                if shutdown.requested() and self.grace_ends is None:
                    self.stop_now()
                if self.stopped is None and self.chunks and time.monotonic() > self.deadline:
                    self.stopped = "time budget"
                if self.stopped is None and len(self.in_flight) < self.connections:
                    self.claim_more()
                if not self.in_flight and self.stopped is not None:
                    break
                self.collect(timeout=0.05 if self.stopped is None and len(self.in_flight) < self.connections else 0.25)
                self.write_if_due()
                self.keep_alive()
                if self.pool is not None:
                    self.pool.cut_stalled(self.config["SEND_DELIVERY_TIMEOUT"])
                    if self.grace_ends is not None and time.monotonic() > self.grace_ends:
                        self.pool.cut_all()
        finally:
            if self.pool is not None:
                self.pool.close()
        self.write_remaining()
        return {"run": self.run_id, "chunks": self.chunks, "sent": self.sent, "stopped": self.settle()}

    def stop_now(self) -> None:
        """SIGTERM: what has not reached a connection goes back; the rest gets a grace period."""
        log.info("run %s: the worker is stopping; the messages in flight finish", self.run_id)
        self.stopped = "worker stopping"
        self.stop_handing_out()
        self.grace_ends = time.monotonic() + self.config["SEND_STOP_GRACE"]

    def claim_more(self) -> None:
        if self.results and not self.write():  # so that a retry due now is seen as pending
            return
        try:
            now = utcnow()
            reason = runs.stop_reason(self.run_id)
            if reason is not None:
                self.stop_run(reason, now)
                return
            if self.mailing_id is None:
                self.prepare(db.session.get(MailingRun, self.run_id).mailing)
            token = new_claim_token()
            chunk = claim_chunk(self.run_id, now, self.config["SEND_CHUNK_SIZE"], token)
            if not chunk:
                self.stopped = "nothing due"
                return
            if not self.chunks:
                runs.mark_started(self.run_id, now)
        except SQLAlchemyError as error:
            self.database_lost(error)
            return
        self.held_tokens.add(token)
        self.chunks += 1
        for delivery in chunk:
            self.hand_over(delivery)
        if not self.asked_for_help:
            # More work than this job holds: one more job in the queue, so that an idle worker
            # joins in (and, when it starts, asks for the next one).
            self.asked_for_help = True
            if self.more_due():
                send_queue.enqueue_run(self.run_id)

    def stop_run(self, reason: str, now: datetime) -> None:
        """The run must not go on: a disabled mailing or a blocked owner ends it."""
        self.stopped = reason
        if reason in ("the mailing was disabled", "the owner is blocked"):
            run = db.session.get(MailingRun, self.run_id)
            log.warning("run %s stopped: %s", self.run_id, reason)
            runs.cancel_run(run, now)
        db.session.rollback()

    def prepare(self, mailing: Mailing) -> None:
        """What every message of the run shares: the compiled templates, the sender and the
        server (with its limits and DKIM key)."""
        self.mailing_id = mailing.id
        try:
            self.renderer = MailRenderer.for_message(mailing.message)
        except TemplateProblem as problem:
            self.template_problem = str(problem)
        try:
            self.sender = senders.sender_for_mailing(mailing)
            self.server = servers.server_for_mailing(mailing)
        except (servers.ServerError, SecretError, AddressError) as problem:
            # A setting an admin must fix: every message waits for its retry meanwhile.
            self.setup_problem = f"The mailing's server or sender cannot be used: {problem}"
            log.error("run %s: %s", self.run_id, self.setup_problem)
        else:
            self.open_pool(
                SmtpSettings.for_server(self.server),
                Limits(self.server.key, self.server.rate_limits, self.server.max_connections),
            )
        db.session.rollback()

    def open_pool(self, settings: SmtpSettings, limits: Limits) -> None:
        """The sending threads for this server: no more than its connection limit allows."""
        throttle = None
        if limits.any:
            throttle = Throttle(
                limits, self.config["REDIS_URL"], self.run_id, slot_seconds=self.config["SEND_DELIVERY_TIMEOUT"] + 30
            )
        if limits.max_connections:
            self.connections = min(self.connections, limits.max_connections)
        self.pool = SenderPool(settings, self.connections, throttle)

    def more_due(self) -> bool:
        now = utcnow()
        found = db.session.scalar(
            select(Delivery.id)
            .where(
                Delivery.run_id == self.run_id,
                Delivery.status == DeliveryStatus.PENDING,
                (Delivery.retry_at.is_(None)) | (Delivery.retry_at <= now),
            )
            .limit(1)
        )
        db.session.rollback()
        return found is not None

    def hand_over(self, delivery: Claimed) -> None:
        """Render the delivery's message and give it to a connection, or judge it at once."""
        now, client = utcnow(), delivery.client
        if client is None:
            self.results.append(Outcome(delivery, DeliveryStatus.SKIPPED, None, now, note="The client was deleted"))
            return
        if client.unsubscribed_at is not None:
            self.results.append(Outcome(delivery, DeliveryStatus.SKIPPED, None, now, note=runs.UNSUBSCRIBED))
            return
        if self.renderer is None:
            failure = Reply(None, error=self.template_problem)
            self.results.append(Outcome(delivery, DeliveryStatus.FAILED, failure, now))
            return
        if self.setup_problem is not None:
            self.results.append(judge(delivery, Reply(None, error=self.setup_problem), now))
            return
        try:
            recipient = envelope_address(delivery.email)
            data = self.renderer.build(
                client, delivery.message_id, self.sender.from_header, self.sender.reply_to
            ).as_bytes()
        except (TemplateProblem, AddressError, ValueError) as problem:  # this delivery fails, not the chunk
            self.results.append(Outcome(delivery, DeliveryStatus.FAILED, Reply(None, error=str(problem)), now))
            return
        if self.server.dkim is not None:
            data = dkim_signing.sign(data, self.server.dkim)
        smtputf8 = recipient.needs_smtputf8 or not self.sender.envelope_from.split("@")[0].isascii()
        self.pool.submit(delivery.id, data, self.sender.envelope_from, recipient.address, smtputf8)
        self.in_flight[delivery.id] = delivery

    def collect(self, timeout: float) -> None:
        if not self.in_flight:
            return
        replies = self.pool.collect(timeout)
        now = utcnow()
        for delivery_id, reply in replies:
            if reply is NOT_SENT:
                self.unsent.append(self.in_flight.pop(delivery_id))
                continue
            outcome = judge(self.in_flight.pop(delivery_id), reply, now)
            self.results.append(outcome)
            self.sent += outcome.status == DeliveryStatus.SENT
        if self.pool.unreachable is not None and self.stopped is None:
            self.stopped = "SMTP server unreachable"

    # Writing ------------------------------------------------------------------------------------

    def write_if_due(self) -> None:
        # Sent but unwritten results plus the messages in flight are what a SIGKILL repeats:
        # keep them within one chunk.
        enough = max(self.config["SEND_CHUNK_SIZE"] - self.connections, 1)
        due = len(self.results) >= enough or (self.results and time.monotonic() - self.last_record >= RECORD_EVERY)
        if due and self.stopped != "database unreachable":
            self.write()

    def write(self) -> bool:
        try:
            record_outcomes(self.run_id, self.mailing_id, self.results)
            if self.unsent:
                release(self.unsent)
        except SQLAlchemyError as error:
            self.database_lost(error)
            return False
        self.results, self.unsent = [], []
        self.last_record = time.monotonic()
        return True

    def database_lost(self, error: SQLAlchemyError) -> None:
        """Stop handing out messages: a result that cannot be written would be sent again."""
        log.warning(
            "run %s: the database is unreachable (%s); sending stops", self.run_id, getattr(error, "orig", error)
        )
        _rollback_quietly()
        if self.stopped is None or self.stopped == "nothing due":
            self.stopped = "database unreachable"
        self.stop_handing_out()

    def stop_handing_out(self) -> None:
        if self.pool is None:
            return
        for delivery_id in self.pool.take_back():
            self.unsent.append(self.in_flight.pop(delivery_id))

    def write_remaining(self) -> None:
        """Write what is left; while the database is away, keep trying (with back-off)."""
        give_up, delay = time.monotonic() + DATABASE_PATIENCE, 0.5
        while self.results or self.unsent:
            if self.write():
                return
            if time.monotonic() > give_up or shutdown.requested():
                log.error(
                    "run %s: %d results could not be written; the reconciler will return them",
                    self.run_id,
                    len(self.results),
                )
                return
            time.sleep(delay)
            delay = min(delay * 2, 10)

    def keep_alive(self) -> None:
        """Renew the leases of the claims still in flight (every third of the lease)."""
        if time.monotonic() - self.last_heartbeat < self.config["SEND_LEASE_SECONDS"] / 3:
            return
        self.last_heartbeat = time.monotonic()
        open_tokens = {delivery.token for delivery in self.in_flight.values()}
        open_tokens |= {outcome.delivery.token for outcome in self.results}
        self.held_tokens &= open_tokens
        try:
            renew_leases(self.held_tokens, utcnow())
        except SQLAlchemyError as error:
            self.database_lost(error)

    # After the loop -----------------------------------------------------------------------------

    def settle(self) -> str:
        """Close the run, come back for its retries, or leave it to another job."""
        if self.results or self.unsent:
            return "database unreachable"
        reason = self.stopped or "done"
        try:
            if reason in ("time budget", "worker stopping", "database unreachable"):
                # Someone must carry on: a job for the rest of the run waits in the queue.
                send_queue.enqueue_run(self.run_id)
            elif reason in ("nothing due", "SMTP server unreachable"):
                settle_run(self.run_id)
        except SQLAlchemyError as error:
            _rollback_quietly()
            log.warning("run %s: could not settle (%s); the reconciler will", self.run_id, error)
        return reason


def _rollback_quietly() -> None:
    try:
        db.session.rollback()
    except (SQLAlchemyError, DBAPIError):
        db.session.close()


def work_run(run_id: int, time_budget: float | None = None) -> dict:
    """Send a run's due deliveries until none is left, the time budget is spent, the run is
    stopped (cancelled, disabled, owner blocked) or the worker is asked to stop."""
    return RunSender(run_id, JOB_TIME_BUDGET if time_budget is None else time_budget).work()


def settle_run(run_id: int) -> str:
    """Nothing could be claimed: close the run, or come back for its retries, or leave it to
    the workers that hold its last deliveries."""
    now = utcnow()
    state = runs.run_work_state(run_id, now)
    db.session.rollback()
    if state.sending:
        return "other workers are sending"
    if state.pending == 0:
        runs.finish_run(run_id, now)
        return "done"
    if state.next_retry_at is not None:
        send_queue.enqueue_run_later(run_id, state.next_retry_at)
        return "waiting for retries"
    send_queue.enqueue_run(run_id)  # retries due already
    return "more due"
