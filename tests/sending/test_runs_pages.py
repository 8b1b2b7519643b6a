"""The run pages: Send now, the live progress, Cancel and Retry failed, who may use them, and
Send now while Redis is down."""

from sqlalchemy import select

from mailer.extensions import db
from mailer.models import Mailing, MailingRun, RunStatus, RunTrigger, utcnow
from mailer.services import dispatch, runs, send_queue
from tests.factories import make_mailing
from tests.support import free_port, reload_run


def runs_of(mailing_id: int) -> list[MailingRun]:
    db.session.expire_all()
    return list(db.session.scalars(select(MailingRun).where(MailingRun.mailing_id == mailing_id)))


def test_send_now_creates_a_manual_run_that_the_worker_sends(app, owner, smtp_sink, work, as_owner):
    mailing_id = make_mailing(owner, clients=3, start_at=utcnow().replace(year=2099)).id

    response = as_owner.post(f"/runs/mailing/{mailing_id}/send", follow_redirects=True)

    [run] = runs_of(mailing_id)
    run_id = run.id
    assert run.trigger == RunTrigger.MANUAL and run.created_by_id == owner.id
    assert f"Run {run_id}" in response.text and "Sending “Newsletter” to 3 clients." in response.text
    assert 'class="progress-bar' in response.text and "Cancel" in response.text
    work()
    assert len(smtp_sink.received) == 3
    assert reload_run(run_id).status == RunStatus.DONE
    # A "Once" mailing sent by hand has had its one run: the scheduled one will not follow.
    assert db.session.get(Mailing, mailing_id).next_run_at is None


def test_the_progress_json_and_the_finished_page(app, owner, smtp_sink, work, as_owner):
    mailing_id = make_mailing(owner, clients=4).id
    smtp_sink.handler.replies.append("550 5.1.1 Unknown user")
    run = runs.start_manual_run(db.session.get(Mailing, mailing_id), owner)
    run_id = run.id
    send_queue.enqueue_run(run_id)

    before = as_owner.get(f"/runs/{run_id}/progress").get_json()
    assert before == {**before, "status": "queued", "active": True, "total": 4, "pending": 4, "done": 0, "percent": 0}
    work()
    after = as_owner.get(f"/runs/{run_id}/progress").get_json()
    assert after == {
        **after,
        "status": "done",
        "active": False,
        "sent": 3,
        "failed": 1,
        "pending": 0,
        "done": 4,
        "percent": 100,
    }

    page = as_owner.get(f"/runs/{run_id}")
    assert page.status_code == 200
    assert "Retry failed (1)" in page.text and ">Cancel<" not in page.text
    assert "550 5.1.1 Unknown user" in page.text
    assert "run_progress.js" in page.text
    failed_only = as_owner.get(f"/runs/{run_id}?status=failed")
    assert failed_only.text.count("<tr>") == 2  # the header and the one failure


def test_send_now_while_redis_is_down_keeps_the_run_and_sends_it_once_redis_is_back(
    app, owner, smtp_sink, work, as_owner
):
    mailing_id = make_mailing(owner, clients=2).id
    redis_url = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app.extensions.pop("rq_redis", None)
    try:
        response = as_owner.post(f"/runs/mailing/{mailing_id}/send", follow_redirects=True)
    finally:
        app.config["REDIS_URL"] = redis_url
        app.extensions.pop("rq_redis", None)

    assert response.status_code == 200
    assert "the sending queue (Redis) cannot be reached right now" in response.text
    assert "It will be sent automatically as soon as the queue is back." in response.text
    [run] = runs_of(mailing_id)
    run_id = run.id
    assert run.status == RunStatus.QUEUED and run.total_count == 2
    work()
    assert smtp_sink.received == []  # nothing was queued

    assert dispatch.reconcile()["enqueued"] == [run_id]  # Redis is back
    work()
    assert len(smtp_sink.received) == 2
    assert reload_run(run_id).status == RunStatus.DONE


def test_a_disabled_mailing_cannot_be_sent_now(app, owner, as_owner):
    mailing = make_mailing(owner, clients=2)
    mailing.disabled_at = utcnow()
    db.session.commit()
    mailing_id = mailing.id

    response = as_owner.post(f"/runs/mailing/{mailing_id}/send", follow_redirects=True)

    assert "This mailing was disabled by a manager; it cannot be sent." in response.text
    assert runs_of(mailing_id) == []


def test_send_now_twice_while_the_first_run_is_queued_is_refused(app, owner, as_owner):
    mailing_id = make_mailing(owner, clients=2).id
    as_owner.post(f"/runs/mailing/{mailing_id}/send")
    response = as_owner.post(f"/runs/mailing/{mailing_id}/send", follow_redirects=True)
    assert "This mailing is being sent already" in response.text
    assert len(runs_of(mailing_id)) == 1


def test_who_may_send_watch_cancel_and_retry(app, owner, other_owner, manager, admin, as_user, client):
    mailing_id = make_mailing(owner, clients=2).id
    run_id = runs.start_manual_run(db.session.get(Mailing, mailing_id), owner).id

    other = as_user(other_owner)
    assert other.post(f"/runs/mailing/{mailing_id}/send").status_code == 404
    assert other.get(f"/runs/{run_id}").status_code == 404
    assert other.get(f"/runs/{run_id}/progress").status_code == 404
    assert other.post(f"/runs/{run_id}/cancel").status_code == 404
    assert other.post(f"/runs/{run_id}/retry").status_code == 404
    assert other.get("/runs/999999").status_code == 404

    managing = as_user(manager)
    assert managing.get(f"/runs/{run_id}").status_code == 200
    assert managing.get(f"/runs/{run_id}/progress").status_code == 200
    assert managing.post(f"/runs/mailing/{mailing_id}/send").status_code == 403
    assert managing.post(f"/runs/{run_id}/cancel").status_code == 403
    assert reload_run(run_id).status == RunStatus.QUEUED

    administering = as_user(admin)
    assert administering.post(f"/runs/{run_id}/cancel").status_code == 302
    assert reload_run(run_id).status == RunStatus.CANCELLED

    assert client.get(f"/runs/{run_id}").status_code == 302  # to the login page


def test_retry_of_a_run_without_failures_is_refused_with_a_message(app, owner, smtp_sink, work, as_owner):
    mailing_id = make_mailing(owner, clients=1).id
    run_id = runs.start_manual_run(db.session.get(Mailing, mailing_id), owner).id
    send_queue.enqueue_run(run_id)
    work()
    response = as_owner.post(f"/runs/{run_id}/retry", follow_redirects=True)
    assert "This run has no failed delivery to retry." in response.text
    assert len(runs_of(mailing_id)) == 1


def test_tries_with_an_unknown_outcome_are_shown_and_retry_failed_says_they_may_have_arrived(
    app, owner, smtp_sink, work, as_owner
):
    from datetime import timedelta

    from mailer.services import sending

    app.config["SEND_RETRY_WINDOW"] = 0  # a try interrupted now is the last one
    mailing_id = make_mailing(owner, clients=3).id
    run_id = runs.start_manual_run(db.session.get(Mailing, mailing_id), owner).id
    # A worker claimed two deliveries and died; its lease is long over.
    long_ago = utcnow() - timedelta(seconds=app.config["SEND_LEASE_SECONDS"] + 1)
    assert len(sending.claim_chunk(run_id, long_ago, 2, sending.new_claim_token())) == 2
    assert dispatch.reconcile()["released"] == 2
    send_queue.enqueue_run(run_id)
    work()

    run = reload_run(run_id)
    assert (run.status, run.sent_count, run.failed_count, run.unknown_count) == (RunStatus.DONE, 1, 2, 2)
    page = " ".join(as_owner.get(f"/runs/{run_id}").text.split())
    assert "tries had an unknown outcome" in page
    assert "Includes 2 that had a try with an unknown outcome" in page
    assert as_owner.get(f"/runs/{run_id}/progress").get_json()["unknown"] == 2
    retried = as_owner.post(f"/runs/{run_id}/retry", follow_redirects=True).text
    assert "2 of them had a try with an unknown outcome and may have received the message already." in retried
