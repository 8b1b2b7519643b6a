"""Workers send a run chunk by chunk over SMTP, classify the server's answers, retry what is
transient and record every attempt. A real Redis queue and a real SMTP sink; the jobs run in
this process (tests/sending/test_processes.py runs real worker processes)."""

import re
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from mailer.extensions import db
from mailer.models import (
    AttemptStat,
    AttemptStatus,
    Client,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingRun,
    MailingStatus,
    RunStatus,
    RunTrigger,
    User,
    utcnow,
)
from mailer.services import dispatch, runs, send_queue, sending
from tests.factories import make_mailing
from tests.support import attempts, deliveries, free_port, reload_run


def only_run(mailing_id: int) -> MailingRun:
    db.session.expire_all()
    runs = db.session.scalars(select(MailingRun).where(MailingRun.mailing_id == mailing_id)).all()
    assert len(runs) == 1
    return runs[0]


def test_a_due_mailing_reaches_every_client_once_with_headers_and_the_servers_reply(app, owner, smtp_sink, work):
    mailing_id = make_mailing(owner, clients=25).id
    [run_id] = dispatch.dispatch_due_mailings()
    work()

    emails = [client.email for client in db.session.get(Mailing, mailing_id).clients]
    assert sorted(address for mail in smtp_sink.received for address in mail.recipients) == sorted(emails)
    run = reload_run(run_id)
    assert (run.status, run.sent_count, run.failed_count, run.skipped_count) == (RunStatus.DONE, 25, 0, 0)
    assert run.started_at is not None and run.finished_at >= run.started_at
    assert db.session.get(Mailing, mailing_id).status == MailingStatus.FINISHED

    received = {mail.recipients[0]: mail for mail in smtp_sink.received}
    for delivery in deliveries(run_id):
        mail = received[delivery.email]
        assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 1
        # The Message-ID was stored before sending, in the configured domain.
        assert mail.message["Message-ID"] == delivery.message_id_header
        assert delivery.message_id_header.endswith("@mailer.localhost>")
        assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "/unsubscribe/" in str(mail.message["List-Unsubscribe"])
        assert mail.subject == f"Hello {delivery.client.full_name}"
    log = attempts(run_id)
    assert len(log) == 25
    assert {(a.status, a.smtp_code, a.smtp_response) for a in log} == {(AttemptStatus.SUCCESS, 250, "2.0.0 Accepted")}


def test_a_transient_answer_is_retried_after_the_back_off_and_then_sent(app, owner, smtp_sink, work):
    mailing_id = make_mailing(owner, clients=1).id
    smtp_sink.handler.replies.append("451 4.3.0 Mailbox busy, try later")
    [run_id] = dispatch.dispatch_due_mailings()
    work()

    [delivery] = deliveries(run_id)
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert delivery.retry_at > utcnow() - timedelta(seconds=1)
    assert smtp_sink.received == []
    assert reload_run(run_id).status == RunStatus.SENDING

    time.sleep((delivery.retry_at - utcnow()).total_seconds() + 0.2)
    work()  # the retry job the worker scheduled for retry_at

    [delivery] = deliveries(run_id)
    assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 2
    assert len(smtp_sink.to(delivery.email)) == 1
    first, second = attempts(run_id)
    assert (first.status, first.smtp_code, first.smtp_response) == (
        AttemptStatus.FAILURE,
        451,
        "4.3.0 Mailbox busy, try later",
    )
    assert (second.status, second.smtp_code) == (AttemptStatus.SUCCESS, 250)
    assert reload_run(run_id).status == RunStatus.DONE
    assert db.session.get(Mailing, mailing_id).status == MailingStatus.FINISHED


def test_a_permanent_answer_fails_the_delivery_with_that_reply(app, owner, smtp_sink, work):
    make_mailing(owner, clients=3)
    smtp_sink.handler.replies.extend(["250 OK", "550 5.1.1 No such user here"])
    [run_id] = dispatch.dispatch_due_mailings()
    work()

    run = reload_run(run_id)
    assert (run.status, run.sent_count, run.failed_count) == (RunStatus.DONE, 2, 1)
    failed = [d for d in deliveries(run_id) if d.status == DeliveryStatus.FAILED]
    assert len(failed) == 1 and failed[0].attempts == 1
    assert (failed[0].last_code, failed[0].last_response) == (550, "5.1.1 No such user here")
    assert [(a.smtp_code, a.smtp_response) for a in attempts(run_id) if a.status == AttemptStatus.FAILURE] == [
        (550, "5.1.1 No such user here")
    ]
    assert len(smtp_sink.received) == 2


def test_a_refused_recipient_is_a_failure_not_a_success(app, owner, smtp_sink, work):
    mailing = make_mailing(owner, clients=2)
    refused, accepted = (client.email for client in mailing.clients)
    smtp_sink.handler.refused[refused] = "550 5.7.1 Recipient rejected by policy"
    [run_id] = dispatch.dispatch_due_mailings()
    work()

    by_email = {d.email: d for d in deliveries(run_id)}
    assert by_email[refused].status == DeliveryStatus.FAILED
    assert by_email[refused].last_code == 550
    assert "Recipient rejected by policy" in by_email[refused].last_response
    assert smtp_sink.to(refused) == []
    assert [mail.recipients for mail in smtp_sink.received] == [[accepted]]


def test_an_unreachable_server_is_recorded_retried_for_the_window_and_the_run_completes(app, owner, smtp_sink, work):
    app.config.update(MAIL_PORT=free_port(), SEND_RETRY_BASE_DELAY=0, SEND_RETRY_WINDOW=1)  # nothing listens there
    app.extensions["mail"].port = app.config["MAIL_PORT"]
    make_mailing(owner, clients=12)  # two chunks
    [run_id] = dispatch.dispatch_due_mailings()
    work()

    run = reload_run(run_id)
    assert (run.status, run.sent_count, run.failed_count) == (RunStatus.DONE, 0, 12)
    for delivery in deliveries(run_id):
        assert delivery.status == DeliveryStatus.FAILED
        assert delivery.attempts >= 2
        assert "Cannot connect to the SMTP server" in delivery.last_response
        assert "retry window is over" in delivery.last_response
    log = attempts(run_id)
    assert len(log) == sum(delivery.attempts for delivery in deliveries(run_id))
    assert all(a.status == AttemptStatus.FAILURE and a.smtp_code is None and "refused" in a.error.lower() for a in log)


def send_one_chunk(run_id: int) -> None:
    """A send job with no time budget: it sends one chunk (10), queues its continuation, stops."""
    assert sending.work_run(run_id, time_budget=0)["chunks"] == 1


def test_cancel_stops_the_run_between_chunks(app, owner, smtp_sink, work, as_owner):
    make_mailing(owner, clients=30)
    [run_id] = dispatch.dispatch_due_mailings()
    send_one_chunk(run_id)
    response = as_owner.post(f"/runs/{run_id}/cancel")
    assert response.status_code == 302
    work()  # the queued jobs find the run cancelled

    run = reload_run(run_id)
    assert run.status == RunStatus.CANCELLED and run.finished_at is not None
    assert len(smtp_sink.received) == 10
    statuses = [d.status for d in deliveries(run_id)]
    assert statuses.count(DeliveryStatus.SENT) == 10 and statuses.count(DeliveryStatus.PENDING) == 20


def test_a_mailing_disabled_while_sending_stops(app, owner, smtp_sink, work):
    mailing_id = make_mailing(owner, clients=30).id
    [run_id] = dispatch.dispatch_due_mailings()
    send_one_chunk(run_id)
    db.session.get(Mailing, mailing_id).disabled_at = utcnow()
    db.session.commit()
    work()

    assert len(smtp_sink.received) == 10
    assert reload_run(run_id).status == RunStatus.CANCELLED


def test_an_owner_blocked_while_sending_stops(app, owner, smtp_sink, work):
    make_mailing(owner, clients=30)
    [run_id] = dispatch.dispatch_due_mailings()
    send_one_chunk(run_id)
    db.session.get(User, owner.id).is_active = False
    db.session.commit()
    work()

    assert len(smtp_sink.received) == 10
    assert reload_run(run_id).status == RunStatus.CANCELLED


def test_a_delivery_whose_worker_died_is_sent_again_after_its_lease(app, owner, smtp_sink, work):
    make_mailing(owner, clients=15)
    [run_id] = dispatch.dispatch_due_mailings()
    # A worker claimed a chunk and died before recording anything.
    claimed = sending.claim_chunk(
        run_id, utcnow() - timedelta(seconds=app.config["SEND_LEASE_SECONDS"] + 1), 10, sending.new_claim_token()
    )
    assert len(claimed) == 10
    rq_jobs_lost = send_queue.waiting_run_ids()
    from mailer.extensions import rq

    rq.queue.empty()  # and Redis lost the queued jobs
    assert run_id in rq_jobs_lost

    result = dispatch.reconcile()
    assert result["released"] == 10 and result["enqueued"] == [run_id]
    assert dispatch.reconcile()["enqueued"] == []  # a job is waiting now: no pile-up
    work()

    run = reload_run(run_id)
    assert (run.status, run.sent_count) == (RunStatus.DONE, 15)
    assert sorted(len(smtp_sink.to(d.email)) for d in deliveries(run_id)) == [1] * 15
    interrupted = [a for a in attempts(run_id) if a.status == AttemptStatus.UNKNOWN]
    assert len(interrupted) == 10 and all("may or may not have been delivered" in a.error for a in interrupted)
    assert reload_run(run_id).unknown_count == 10


def test_unsubscribing_with_the_one_click_post_skips_the_client_in_the_next_run(app, owner, smtp_sink, work, client):
    mailing_id = make_mailing(owner, clients=3).id
    [first_run] = dispatch.dispatch_due_mailings()
    work()
    leaving = smtp_sink.received[0]
    url = re.search(r"<(https?://[^>]+)>", str(leaving.message["List-Unsubscribe"]).replace("\n", "").replace(" ", ""))
    path = url.group(1).split("mailer.test", 1)[1]
    response = client.post(path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200

    smtp_sink.reset()
    run_id = runs.start_manual_run(db.session.get(Mailing, mailing_id), None).id
    send_queue.enqueue_run(run_id)
    work()

    address = leaving.recipients[0]
    assert smtp_sink.to(address) == []
    assert len(smtp_sink.received) == 2
    skipped = [d for d in deliveries(run_id) if d.status == DeliveryStatus.SKIPPED]
    assert [(d.email, d.last_response) for d in skipped] == [(address, "Unsubscribed")]
    assert reload_run(run_id).skipped_count == 1
    assert db.session.scalar(select(Client.unsubscribed_at).where(Client.email == address)) is not None
    assert first_run != run_id


def test_retry_failed_sends_only_the_failed_deliveries_again(app, owner, smtp_sink, work, as_owner):
    mailing_id = make_mailing(owner, clients=4).id
    smtp_sink.handler.replies.extend(["550 5.2.2 Mailbox full", "250 OK", "554 5.7.1 Rejected", "250 OK"])
    [run_id] = dispatch.dispatch_due_mailings()
    work()
    failed = sorted(d.email for d in deliveries(run_id) if d.status == DeliveryStatus.FAILED)
    assert len(failed) == 2

    smtp_sink.reset()
    response = as_owner.post(f"/runs/{run_id}/retry")
    retry = db.session.scalars(select(MailingRun).where(MailingRun.retry_of_id == run_id)).one()
    retry_id = retry.id
    assert response.headers["Location"].endswith(f"/runs/{retry_id}")
    assert retry.trigger == RunTrigger.RETRY and retry.total_count == 2
    work()

    assert sorted(address for mail in smtp_sink.received for address in mail.recipients) == failed
    assert reload_run(retry_id).sent_count == 2
    assert db.session.get(Mailing, mailing_id).status == MailingStatus.FINISHED


def test_the_reconciler_queues_released_deliveries_even_when_a_later_retry_is_scheduled(app, owner, smtp_sink, work):
    app.config.update(SEND_RETRY_BASE_DELAY=600, SEND_RETRY_WINDOW=3600)
    make_mailing(owner, clients=3)
    smtp_sink.handler.replies.append("451 4.7.1 Greylisted")
    [run_id] = dispatch.dispatch_due_mailings()
    work()
    rows = deliveries(run_id)  # the messages go out in parallel: any one of them may be greylisted
    [waiting] = [delivery for delivery in rows if delivery.status == DeliveryStatus.PENDING]
    stuck = next(delivery for delivery in rows if delivery.status == DeliveryStatus.SENT)
    assert waiting.status == DeliveryStatus.PENDING and waiting.retry_at > utcnow() + timedelta(minutes=9)
    assert send_queue.waiting_run_ids() == {run_id}  # the job scheduled for the retry
    # A worker that claimed `stuck` again died (simulated): its lease has run out.
    stuck_id = stuck.id
    stuck.status, stuck.claimed_at = DeliveryStatus.SENDING, utcnow() - timedelta(hours=1)
    db.session.commit()

    assert dispatch.reconcile() == {"released": 1, "enqueued": [run_id], "finished": []}
    work()

    db.session.expire_all()
    assert db.session.get(Delivery, stuck_id).status == DeliveryStatus.SENT
    assert reload_run(run_id).status == RunStatus.SENDING  # the greylisted one still waits for its retry
    assert dispatch.reconcile()["enqueued"] == []


def test_a_server_closing_the_channel_is_a_transient_failure_and_the_next_message_reconnects(
    app, owner, smtp_sink, work
):
    app.config["SEND_RETRY_BASE_DELAY"] = 0
    make_mailing(owner, clients=2)
    smtp_sink.handler.replies.append("421 4.3.2 Service shutting down")
    [run_id] = dispatch.dispatch_due_mailings()
    work()

    first, second = sorted(deliveries(run_id), key=lambda delivery: -delivery.attempts)
    assert (first.status, first.attempts, second.status, second.attempts) == (
        DeliveryStatus.SENT,
        2,
        DeliveryStatus.SENT,
        1,
    )
    assert [(a.smtp_code, a.smtp_response) for a in attempts(run_id) if a.status == AttemptStatus.FAILURE] == [
        (421, "4.3.2 Service shutting down")
    ]
    assert sorted(address for mail in smtp_sink.received for address in mail.recipients) == sorted(
        [first.email, second.email]
    )


def test_a_server_offering_pipelining_gets_pipelined_transactions_with_each_reply_known(app, owner, smtp_sink, work):
    smtp_sink.handler.pipelining = True
    mailing = make_mailing(owner, clients=4)
    refused = mailing.clients[0].email
    smtp_sink.handler.refused[refused] = "550 5.7.1 Recipient rejected by policy"
    smtp_sink.handler.replies.append("554 5.7.1 Message rejected")
    [run_id] = dispatch.dispatch_due_mailings()
    work()

    rows = {delivery.email: delivery for delivery in deliveries(run_id)}
    assert (rows[refused].status, rows[refused].last_code) == (DeliveryStatus.FAILED, 550)
    assert rows[refused].last_response == "Recipient refused: 5.7.1 Recipient rejected by policy"
    others = [delivery for email, delivery in rows.items() if email != refused]
    assert Counter((d.status, d.last_code) for d in others) == {
        (DeliveryStatus.SENT, 250): 2,
        (DeliveryStatus.FAILED, 554): 1,
    }
    # The connection went on after each refusal: the two others arrived, each once.
    assert sorted(address for mail in smtp_sink.received for address in mail.recipients) == sorted(
        d.email for d in others if d.status == DeliveryStatus.SENT
    )


def test_the_statistics_sums_are_written_with_the_attempts(app, owner, smtp_sink, work):
    """Every attempt and every message sent is added to its quarter of an hour as it is
    written, in the same transaction: the sums equal the log."""
    mailing_id = make_mailing(owner, clients=4).id
    smtp_sink.handler.replies.extend(["451 4.3.0 Try later", "250 OK", "550 5.1.1 No such user here"])
    [run_id] = dispatch.dispatch_due_mailings()
    work()
    retry_at = min(d.retry_at for d in deliveries(run_id) if d.retry_at)
    time.sleep(max((retry_at - utcnow()).total_seconds(), 0) + 0.2)
    work()

    log = attempts(run_id)
    sent = [d for d in deliveries(run_id) if d.status == DeliveryStatus.SENT]
    stats = db.session.scalars(select(AttemptStat).where(AttemptStat.mailing_id == mailing_id)).all()
    assert sum(s.attempts for s in stats) == len(log) == 5
    assert sum(s.successes for s in stats) == Counter(a.status for a in log)[AttemptStatus.SUCCESS] == 3
    assert sum(s.failures for s in stats) == 2
    assert sum(s.sent for s in stats) == len(sent) == 3
    for stat in stats:  # each sum sits in the quarter of an hour of its attempts
        assert stat.slot.minute % 15 == 0 and stat.slot.second == 0
        in_slot = [a for a in log if stat.slot <= a.attempted_at < stat.slot + timedelta(minutes=15)]
        assert stat.attempts == len(in_slot)
