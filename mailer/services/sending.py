"""The worker's side of sending: claim a chunk of a run's deliveries, send it over one SMTP
connection, record every result and attempt in bulk, and close the run when nothing is left.

Crash safety: a claimed delivery is `sending` with `claimed_at` and its Message-ID, committed
before any byte goes to the SMTP server. A worker that dies leaves at most its chunk in
`sending`; the reconciler returns it to pending once the lease (SEND_LEASE_SECONDS) expires,
so a crash re-sends at most the chunk that was in flight, and never loses a recipient.
"""
import logging
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import flask_mail
from flask import current_app
from sqlalchemy import bindparam, insert, select, text, update

from mailer.database import is_postgresql
from mailer.extensions import db
from mailer.models import (
    AttemptStatus,
    Client,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingAttempt,
    MailingRun,
    RunStatus,
    UTCDateTime,
    utcnow,
)
from mailer.services import dispatch, schedule
from mailer.services.rendering import MailRenderer, TemplateProblem, make_message_id
from mailer.services.stats import clear_stats_cache_after_commit

log = logging.getLogger(__name__)

# The longest wait between two tries of one delivery, whatever the back-off says.
MAX_RETRY_DELAY = 3600
# "Service not available, closing transmission channel": the connection is over.
CLOSING = 421


# SMTP -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    """What became of one message: the server's reply, or the error that stopped it."""

    code: int | None
    text: str | None = None
    error: str | None = None
    # True when the connection cannot be used any more after this.
    broken: bool = False

    @property
    def accepted(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code is not None and self.code >= 500


class MailConnection(flask_mail.Connection):
    """Flask-Mail's connection, with a socket timeout (Flask-Mail sets none, so a silent server
    would hang the worker) and a send that returns the server's reply, which Flask-Mail drops."""

    def configure_host(self) -> smtplib.SMTP:
        settings, timeout = self.mail, current_app.config["MAIL_TIMEOUT"]
        smtp_class = smtplib.SMTP_SSL if settings.use_ssl else smtplib.SMTP
        host = smtp_class(settings.server, settings.port, timeout=timeout)
        host.set_debuglevel(int(settings.debug))
        if settings.use_tls:
            host.starttls()
        if settings.username and settings.password:
            host.login(settings.username, settings.password)
        return host

    def deliver(self, data: bytes, sender: str, recipient: str) -> Reply:
        """One SMTP transaction for one recipient (envelope addresses as `envelope_address`
        gives them), step by step, so that each step's reply is known: a refused sender or
        recipient, or the final answer to DATA."""
        if self.host is None:  # MAIL_SUPPRESS_SEND
            return Reply(250, "Not sent: MAIL_SUPPRESS_SEND is on")
        host = self.host
        try:
            host.ehlo_or_helo_if_needed()
            code, text = host.mail(sender)
            if code != 250:
                return self._refused(code, f"Sender refused: {_text(text)}")
            code, text = host.rcpt(recipient)
            if code not in (250, 251):
                return self._refused(code, f"Recipient refused: {_text(text)}")
            code, text = host.data(data)
            return Reply(code, _text(text), broken=code == CLOSING)
        except smtplib.SMTPServerDisconnected as error:
            return Reply(None, error=f"Connection lost: {error or 'the server closed it'}", broken=True)
        except smtplib.SMTPResponseException as error:  # e.g. DATA itself refused
            return Reply(error.smtp_code, _text(error.smtp_error), broken=error.smtp_code == CLOSING)
        except (OSError, smtplib.SMTPException) as error:  # timeouts, resets
            return Reply(None, error=f"{type(error).__name__}: {error}", broken=True)

    def _refused(self, code: int, text: str) -> Reply:
        """End the refused transaction so that the connection serves the next message."""
        if code == CLOSING:
            return Reply(code, text, broken=True)
        self.host.rset()
        return Reply(code, text)

    def close(self) -> None:
        if self.host is None:
            return
        try:
            self.host.quit()
        except (OSError, smtplib.SMTPException):
            self.host.close()
        self.host = None


def envelope_address(address: str) -> str:
    """An address for MAIL FROM / RCPT TO; Flask-Mail's sanitising (IDNA domains, encoded
    names) only where it is needed, since it costs more than the rest of a send."""
    return address if address.isascii() else flask_mail.sanitize_address(address)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def open_connection() -> MailConnection:
    """An open connection to the configured SMTP server; raises OSError / SMTPException."""
    connection = MailConnection(current_app.extensions["mail"])
    connection.host = None if connection.mail.suppress else connection.configure_host()
    return connection


def connection_error(error: Exception) -> str:
    config = current_app.config
    detail = str(error) or type(error).__name__
    if isinstance(error, smtplib.SMTPResponseException):
        detail = f"{error.smtp_code} {_text(error.smtp_error)}"
    return f"Cannot connect to the SMTP server {config['MAIL_SERVER']}:{config['MAIL_PORT']}: {detail}"


# Claiming ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Claimed:
    id: int
    client_id: int | None
    email: str
    attempts: int
    message_id: str
    claimed_at: datetime


def claim_chunk(run_id: int, now: datetime, size: int) -> list[Claimed]:
    """Mark up to `size` due pending deliveries of the run as `sending`, with their Message-ID,
    and commit.

    The candidates are chosen first (on PostgreSQL with FOR UPDATE SKIP LOCKED, so workers
    share a run without waiting for one another), then claimed by one UPDATE that checks
    `status = 'pending'` again: a delivery is never claimed twice, even on SQLite where the
    choice is not locked (there the UPDATE runs under the database's single write lock and
    claims only what nobody claimed meanwhile).
    """
    if is_postgresql(db.session):
        # A pause or cancel waits for this claim's commit, so that once it returns, the run's
        # page sees every message a worker still holds (as `sending`) until it is recorded.
        # (An exclusive lock: claims are short, and a shared one would deadlock the workers
        # that mark a new run as sending below.)
        db.session.execute(select(MailingRun.id).where(MailingRun.id == run_id).with_for_update())
    due = (Delivery.retry_at.is_(None)) | (Delivery.retry_at <= now)
    candidates = (
        select(Delivery.id)
        .where(Delivery.run_id == run_id, Delivery.status == DeliveryStatus.PENDING, due)
        .order_by(Delivery.id)
        .limit(size)
    )
    if is_postgresql(db.session):
        candidates = candidates.with_for_update(skip_locked=True)
    for _ in range(3):  # another worker may take the candidates first; then choose again
        ids = list(db.session.scalars(candidates))
        if not ids:
            break
        rows = _mark_sending(ids, now)
        if rows:
            db.session.execute(
                update(MailingRun)
                .where(MailingRun.id == run_id, MailingRun.status == RunStatus.QUEUED)
                .values(status=RunStatus.SENDING, started_at=now)
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
            return sorted(rows, key=lambda claimed: claimed.id)
        db.session.rollback()
    db.session.rollback()
    return []


# One statement for the whole chunk on PostgreSQL: psycopg2 runs an executemany as one round
# trip per row, and SQLAlchemy compiles a long CASE or VALUES list anew for every chunk.
CLAIM_ON_POSTGRESQL = text("""
    UPDATE deliveries AS d
    SET status = 'sending', claimed_at = :now, message_id_header = COALESCE(d.message_id_header, r.header)
    FROM unnest(CAST(:ids AS integer[]), CAST(:headers AS varchar[])) AS r(id, header)
    WHERE d.id = r.id AND d.status = 'pending'
      AND EXISTS (SELECT 1 FROM mailing_runs m WHERE m.id = d.run_id AND m.status IN ('queued', 'sending'))
    RETURNING d.id, d.client_id, d.email, d.attempts, d.message_id_header
""").bindparams(bindparam("now", type_=UTCDateTime()))

RESULTS_ON_POSTGRESQL = text("""
    UPDATE deliveries AS d
    SET status = r.status, attempts = r.attempts, retry_at = r.retry_at, sent_at = r.sent_at,
        last_code = r.code, last_response = r.response, claimed_at = NULL
    FROM unnest(CAST(:ids AS integer[]), CAST(:claimed AS timestamptz[]), CAST(:statuses AS varchar[]),
                CAST(:attempts AS integer[]), CAST(:retry AS timestamptz[]), CAST(:sent AS timestamptz[]),
                CAST(:codes AS integer[]), CAST(:responses AS text[]))
         AS r(id, claimed_at, status, attempts, retry_at, sent_at, code, response)
    WHERE d.id = r.id AND d.status = 'sending' AND d.claimed_at = r.claimed_at
""")


# Claims take nothing from a run paused or cancelled since the worker last read it.
run_still_active = (
    select(MailingRun.id).where(MailingRun.id == Delivery.run_id, MailingRun.status.in_(dispatch.ACTIVE))
    .correlate(Delivery).exists()
)


def _mark_sending(ids: list[int], now: datetime) -> list[Claimed]:
    """Claim those of `ids` that are still pending. The Message-ID is stored before the message
    leaves, and kept across retries, so a message sent twice after a crash carries the same
    Message-ID both times."""
    if is_postgresql(db.session):
        headers = [make_message_id(delivery_id) for delivery_id in ids]
        rows = db.session.execute(CLAIM_ON_POSTGRESQL, {"now": now, "ids": ids, "headers": headers}).all()
        return [Claimed(row.id, row.client_id, row.email, row.attempts, row.message_id_header, now) for row in rows]
    rows = db.session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING, run_still_active)
        .values(status=DeliveryStatus.SENDING, claimed_at=now)
        .returning(Delivery.id, Delivery.client_id, Delivery.email, Delivery.attempts, Delivery.message_id_header)
        .execution_options(synchronize_session=False)
    ).all()
    new_headers = {row.id: make_message_id(row.id) for row in rows if not row.message_id_header}
    if new_headers:
        table = Delivery.__table__
        db.session.execute(
            update(table).where(table.c.id == bindparam("b_id")).values(message_id_header=bindparam("b_header")),
            [{"b_id": delivery_id, "b_header": header} for delivery_id, header in new_headers.items()],
        )
    return [Claimed(row.id, row.client_id, row.email, row.attempts, row.message_id_header or new_headers[row.id], now)
            for row in rows]


# Sending a chunk --------------------------------------------------------------------------------

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
    base = current_app.config["SEND_RETRY_BASE_DELAY"]
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), MAX_RETRY_DELAY))


def judge(delivery: Claimed, reply: Reply, at: datetime) -> Outcome:
    """sent for 2xx; failed for 5xx; a retry for 4xx, a lost connection or a timeout, until the
    last allowed attempt, which fails."""
    if reply.accepted:
        return Outcome(delivery, DeliveryStatus.SENT, reply, at)
    tries = delivery.attempts + 1
    if reply.permanent or tries >= current_app.config["SEND_MAX_ATTEMPTS"]:
        return Outcome(delivery, DeliveryStatus.FAILED, reply, at)
    return Outcome(delivery, DeliveryStatus.PENDING, reply, at, retry_at=at + retry_delay(tries))


def send_chunk(mailing: Mailing, chunk: list[Claimed]) -> list[Outcome]:
    """Send the chunk over one SMTP connection, opening a new one if it breaks."""
    client_ids = [delivery.client_id for delivery in chunk if delivery.client_id is not None]
    clients = {client.id: client for client in db.session.scalars(select(Client).where(Client.id.in_(client_ids)))}
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    envelope_sender = envelope_address(flask_mail.parseaddr(sender)[1] or sender)
    renderer, template_problem = None, None
    try:
        renderer = MailRenderer.for_message(mailing.message)
    except TemplateProblem as problem:
        template_problem = str(problem)
    # Nothing is held open in the database while talking to the SMTP server; the clients keep
    # the values they were loaded with.
    for client in clients.values():
        db.session.expunge(client)
    db.session.rollback()

    outcomes: list[Outcome] = []
    connection: MailConnection | None = None
    unreachable: str | None = None
    broken_in_a_row = 0
    try:
        for delivery in chunk:
            now = utcnow()
            client = clients.get(delivery.client_id)
            if client is None:
                outcomes.append(Outcome(delivery, DeliveryStatus.SKIPPED, None, now, note="The client was deleted"))
                continue
            if client.unsubscribed_at is not None:
                outcomes.append(Outcome(delivery, DeliveryStatus.SKIPPED, None, now, note=dispatch.UNSUBSCRIBED))
                continue
            if renderer is None:
                outcomes.append(Outcome(delivery, DeliveryStatus.FAILED, Reply(None, error=template_problem), now))
                continue
            try:
                data = renderer.build(client, delivery.message_id, sender).as_bytes()
            except (TemplateProblem, ValueError) as problem:  # a failed delivery, not a failed chunk
                outcomes.append(Outcome(delivery, DeliveryStatus.FAILED, Reply(None, error=str(problem)), now))
                continue
            if connection is None and unreachable is None:
                try:
                    connection = open_connection()
                except (OSError, smtplib.SMTPException) as error:
                    # The server is unreachable: the rest of the chunk records the same error
                    # rather than waiting for one more timeout each.
                    unreachable = connection_error(error)
            if unreachable is not None:
                outcomes.append(judge(delivery, Reply(None, error=unreachable, broken=True), now))
                continue
            reply = connection.deliver(data, envelope_sender, envelope_address(delivery.email))
            outcomes.append(judge(delivery, reply, utcnow()))
            if reply.broken:
                connection.close()
                connection = None
                broken_in_a_row += 1
                if broken_in_a_row > 1:
                    # Twice in a row: the server is in trouble; the rest of the chunk waits for
                    # its retry instead of a timeout each.
                    unreachable = reply.error or f"{reply.code} {reply.text}"
            else:
                broken_in_a_row = 0
    finally:
        if connection is not None:
            connection.close()
    return outcomes


# Recording --------------------------------------------------------------------------------------

def record_outcomes(run_id: int, mailing_id: int, outcomes: list[Outcome]) -> None:
    """Write every delivery's result and every attempt in bulk, then the run's counters.

    A result is written only if the delivery is still held by this claim: if the lease expired
    and the reconciler gave the delivery to another worker meanwhile, that worker's result wins.
    """
    results, attempts = [], []
    for outcome in outcomes:
        delivery, reply = outcome.delivery, outcome.reply
        tried = reply is not None
        response = reply.text if tried and reply.error is None else (reply.error if tried else outcome.note)
        results.append({
            "b_id": delivery.id,
            "b_claimed_at": delivery.claimed_at,
            "b_status": outcome.status.value,
            "b_attempts": delivery.attempts + (1 if tried else 0),
            "b_retry_at": outcome.retry_at,
            "b_sent_at": outcome.attempted_at if outcome.status == DeliveryStatus.SENT else None,
            "b_code": reply.code if tried else None,
            "b_response": response,
        })
        if tried:
            attempts.append({
                "mailing_id": mailing_id,
                "run_id": run_id,
                "delivery_id": delivery.id,
                "client_id": delivery.client_id,
                "email": delivery.email,
                "attempted_at": outcome.attempted_at,
                "status": AttemptStatus.SUCCESS if reply.accepted else AttemptStatus.FAILURE,
                "smtp_code": reply.code,
                "smtp_response": reply.text,
                "error": reply.error,
            })
    if results:
        write_results(results)
    if attempts:
        db.session.execute(insert(MailingAttempt.__table__), attempts)
    add_to_counters(run_id, outcomes)
    db.session.commit()


def write_results(results: list[dict]) -> None:
    """Update each delivery still held by its claim (see RESULTS_ON_POSTGRESQL)."""
    if is_postgresql(db.session):
        db.session.execute(RESULTS_ON_POSTGRESQL, {
            "ids": [result["b_id"] for result in results],
            "claimed": [result["b_claimed_at"] for result in results],
            "statuses": [result["b_status"] for result in results],
            "attempts": [result["b_attempts"] for result in results],
            "retry": [result["b_retry_at"] for result in results],
            "sent": [result["b_sent_at"] for result in results],
            "codes": [result["b_code"] for result in results],
            "responses": [result["b_response"] for result in results],
        })
        return
    table = Delivery.__table__
    db.session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.status == DeliveryStatus.SENDING.value,
               table.c.claimed_at == bindparam("b_claimed_at"))
        .values(status=bindparam("b_status"), attempts=bindparam("b_attempts"), retry_at=bindparam("b_retry_at"),
                sent_at=bindparam("b_sent_at"), last_code=bindparam("b_code"),
                last_response=bindparam("b_response"), claimed_at=None),
        results,
    )


def add_to_counters(run_id: int, outcomes: list[Outcome]) -> None:
    """Add a chunk's results to the run's counters, in the database (several workers may add at
    once). `finish_run` counts them again from the deliveries, exactly."""
    totals = {status: sum(1 for outcome in outcomes if outcome.status == status)
              for status in (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED)}
    if not any(totals.values()):
        return
    db.session.execute(
        update(MailingRun)
        .where(MailingRun.id == run_id)
        .values(
            sent_count=MailingRun.sent_count + totals[DeliveryStatus.SENT],
            failed_count=MailingRun.failed_count + totals[DeliveryStatus.FAILED],
            skipped_count=MailingRun.skipped_count + totals[DeliveryStatus.SKIPPED],
        )
        .execution_options(synchronize_session=False)
    )


def update_counters(run_id: int) -> None:
    """The run's counters, counted from its deliveries (so they stay exact whoever writes)."""
    counts = dispatch.delivery_counts(run_id)
    db.session.execute(
        update(MailingRun)
        .where(MailingRun.id == run_id)
        .values(
            total_count=sum(counts.values()),
            sent_count=counts.get(DeliveryStatus.SENT, 0),
            failed_count=counts.get(DeliveryStatus.FAILED, 0),
            skipped_count=counts.get(DeliveryStatus.SKIPPED, 0),
        )
        .execution_options(synchronize_session=False)
    )


def finish_run(run_id: int, now: datetime | None = None) -> bool:
    """Close a run that has nothing pending or sending: done, finished_at, mailing status."""
    now = now or utcnow()
    update_counters(run_id)
    result = db.session.execute(
        update(MailingRun)
        .where(MailingRun.id == run_id, MailingRun.status.in_(dispatch.ACTIVE))
        .values(status=RunStatus.DONE, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    run = db.session.get(MailingRun, run_id, populate_existing=True)
    if run is not None:
        schedule.refresh_status(run.mailing, now)
        clear_stats_cache_after_commit(run.mailing.owner_id)
    db.session.commit()
    return result.rowcount > 0


def stop_run(run: MailingRun, reason: str, now: datetime) -> None:
    """The mailing was disabled or its owner blocked while it was sending: the run ends."""
    log.warning("run %s stopped: %s", run.id, reason)
    dispatch.cancel_run(run, now)


# The job ----------------------------------------------------------------------------------------

def reason_to_stop(run: MailingRun | None) -> str | None:
    if run is None:
        return "deleted"
    if run.status not in dispatch.ACTIVE:
        return run.status.value
    if run.mailing.is_disabled:
        return "the mailing was disabled"
    if not run.mailing.owner.is_active:
        return "the owner is blocked"
    return None


def work_run(run_id: int, time_budget: float | None = None) -> dict:
    """Send a run's pending deliveries, chunk after chunk, until none is due.

    Before each chunk the run is read again: cancelled, mailing disabled or owner blocked →
    stop. When only retries due later remain, a job is scheduled for the earliest of them;
    when nothing is left, the run is closed.
    """
    config = current_app.config
    budget = dispatch.JOB_TIME_BUDGET if time_budget is None else time_budget
    started = time.monotonic()
    sent = chunks = 0
    while True:
        now = utcnow()
        run = db.session.get(MailingRun, run_id, populate_existing=True)
        reason = reason_to_stop(run)
        if reason is not None:
            if run is not None and run.status in dispatch.ACTIVE:
                stop_run(run, reason, now)
            db.session.rollback()
            return {"run": run_id, "chunks": chunks, "sent": sent, "stopped": reason}
        mailing_id = run.mailing_id
        chunk = claim_chunk(run_id, now, config["SEND_CHUNK_SIZE"])
        if not chunk:
            return {"run": run_id, "chunks": chunks, "sent": sent, "stopped": settle_run(run_id)}
        outcomes = send_chunk(db.session.get(Mailing, mailing_id), chunk)
        record_outcomes(run_id, mailing_id, outcomes)
        chunks += 1
        sent += sum(1 for outcome in outcomes if outcome.status == DeliveryStatus.SENT)
        if time.monotonic() - started > budget:
            # Leave the worker to other runs for a moment; a new job carries on with this one.
            dispatch.enqueue_run(run_id, jobs=1)
            return {"run": run_id, "chunks": chunks, "sent": sent, "stopped": "time budget"}


def settle_run(run_id: int) -> str:
    """Nothing could be claimed: close the run, or come back for its retries, or leave it to
    the worker that holds its last chunk."""
    now = utcnow()
    state = dispatch.run_work_state(run_id, now)
    db.session.rollback()
    if state.sending:
        return "other workers are sending"
    if state.pending == 0:
        finish_run(run_id, now)
        return "done"
    if state.next_retry_at is not None:
        dispatch.enqueue_run_later(run_id, state.next_retry_at)
        return "waiting for retries"
    return "nothing due"
