"""Send now's confirmation and its once-only rule, pausing and resuming runs, and sending to the
clients a cancelled run did not reach: every client receives each mailing exactly once."""

from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from mailer.extensions import db
from mailer.models import Delivery, DeliveryStatus, Mailing, MailingRun, Repeat, Role, RunStatus, RunTrigger, utcnow
from mailer.services import dispatch, run_control, runs, send_queue, sending
from mailer.services import mailings as mailing_service
from mailer.services import users as user_service
from tests.factories import make_mailing, make_user
from tests.support import deliveries, login, reload_run


def runs_of(mailing_id: int) -> list[MailingRun]:
    db.session.expire_all()
    return list(
        db.session.scalars(select(MailingRun).where(MailingRun.mailing_id == mailing_id).order_by(MailingRun.id))
    )


def copies_per_recipient(smtp_sink) -> Counter:
    return Counter(address for mail in smtp_sink.received for address in mail.recipients)


def send_one_chunk(run_id: int) -> None:
    """What a worker does for one chunk before it looks at the run again."""
    sending.work_run(run_id, time_budget=0)
    db.session.remove()


# Send now ---------------------------------------------------------------------------------------


def test_the_confirmation_counts_the_recipients_and_says_when_the_mailing_was_sent(
    app, owner, smtp_sink, work, as_owner
):
    mailing = make_mailing(owner, clients=3)
    mailing.clients[0].unsubscribed_at = utcnow()
    db.session.commit()
    mailing_id = mailing.id

    first = as_owner.get(f"/runs/mailing/{mailing_id}/send").text
    assert "Send to 2 clients now" in first and "1 unsubscribed client is left out" in first
    assert "has not been sent yet" in first and 'name="last_run" type="hidden" value="0"' in first
    assert runs_of(mailing_id) == []  # asking is not sending

    as_owner.post(f"/runs/mailing/{mailing_id}/send", data={"last_run": "0"})
    work()
    [run] = runs_of(mailing_id)
    again = as_owner.get(f"/runs/mailing/{mailing_id}/send").text
    assert "This mailing was sent before." in again and f"run {run.id}</a>" in again
    assert "2 messages went out in all" in again and f'value="{run.id}"' in again


def test_send_now_on_a_once_mailing_is_its_only_run(app, owner, smtp_sink, work, as_owner):
    start = utcnow() + timedelta(days=2)
    mailing_id = make_mailing(owner, clients=3, start_at=start).id
    page = as_owner.get(f"/runs/mailing/{mailing_id}/send").text
    assert "replaces</strong> its scheduled send" in page

    as_owner.post(f"/runs/mailing/{mailing_id}/send", data={"last_run": "0"})
    work()
    # Two days later the scheduler looks for due mailings: this one has had its run.
    assert dispatch.dispatch_due_mailings(start + timedelta(minutes=1)) == []
    work()
    assert copies_per_recipient(smtp_sink) == {f"m{mailing_id}-{n}@example.com": 1 for n in range(3)}
    mailing = db.session.get(Mailing, mailing_id)
    assert mailing.next_run_at is None and mailing.status.value == "finished"


def test_an_edit_of_a_once_mailing_sent_by_hand_does_not_schedule_it_again(app, owner, as_owner):
    start = utcnow() + timedelta(days=2)
    mailing = make_mailing(owner, clients=1, start_at=start)
    runs.start_manual_run(mailing, owner)
    data = mailing_service.MailingData(
        name="Renamed",
        message_id=mailing.message_id,
        client_ids=mailing_service.selected_client_ids(mailing),
        start_at=mailing.start_at,
        end_at=mailing.end_at + timedelta(days=1),
        repeat=Repeat.NONE,
    )
    mailing_service.update_mailing(mailing, data, utcnow())
    db.session.commit()
    assert db.session.get(Mailing, mailing.id).next_run_at is None


def test_send_now_on_a_repeating_mailing_keeps_its_schedule(app, owner, as_owner):
    start = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    mailing_id = make_mailing(owner, clients=1, start_at=start, repeat=Repeat.DAILY).id
    page = as_owner.get(f"/runs/mailing/{mailing_id}/send").text
    assert "The schedule goes on as planned" in page
    as_owner.post(f"/runs/mailing/{mailing_id}/send", data={"last_run": "0"})
    assert db.session.get(Mailing, mailing_id).next_run_at == start


def test_a_double_click_creates_one_run(app, owner, smtp_sink, work, as_owner):
    mailing_id = make_mailing(owner, clients=2).id
    first = as_owner.post(f"/runs/mailing/{mailing_id}/send", data={"last_run": "0"})
    second = as_owner.post(f"/runs/mailing/{mailing_id}/send", data={"last_run": "0"}, follow_redirects=True)
    assert first.status_code == 302
    assert "This mailing is being sent already" in second.text
    work()
    assert len(runs_of(mailing_id)) == 1 and len(smtp_sink.received) == 2


def test_a_confirmation_older_than_the_latest_run_sends_nothing(app, owner, smtp_sink, work, as_owner):
    mailing_id = make_mailing(owner, clients=2).id
    as_owner.post(f"/runs/mailing/{mailing_id}/send", data={"last_run": "0"})
    work()
    # A second tab still shows the confirmation from before that run.
    response = as_owner.post(f"/runs/mailing/{mailing_id}/send", data={"last_run": "0"}, follow_redirects=True)
    assert "This mailing was sent meanwhile" in response.text
    work()
    assert len(runs_of(mailing_id)) == 1 and len(smtp_sink.received) == 2


# Pause and resume -------------------------------------------------------------------------------


def test_pause_stops_the_run_after_the_chunk_in_hand_and_resume_sends_the_rest_once(
    app, owner, smtp_sink, work, as_owner
):
    mailing_id = make_mailing(owner, clients=25).id  # chunks of 10
    as_owner.post(f"/runs/mailing/{mailing_id}/send", data={"last_run": "0"})
    [run] = runs_of(mailing_id)
    run_id = run.id
    send_one_chunk(run_id)

    response = as_owner.post(f"/runs/{run_id}/pause", follow_redirects=True)
    assert f"Run {run_id} paused." in response.text and ">Resume<" in response.text
    work()  # the job the worker queued to carry on finds the run paused
    assert len(smtp_sink.received) == 10
    progress = as_owner.get(f"/runs/{run_id}/progress").get_json()
    assert progress == {**progress, "status": "paused", "active": False, "live": False, "sent": 10, "pending": 15}
    assert dispatch.reconcile()["enqueued"] == []  # the reconciler leaves a paused run alone
    assert f"Run {run_id}</a> is paused" in as_owner.get(f"/mailings/{mailing_id}").text
    # While it is paused, the mailing cannot be sent again.
    refused = as_owner.post(f"/runs/mailing/{mailing_id}/send", follow_redirects=True)
    assert f"Run {run_id} of this mailing is paused" in refused.text

    response = as_owner.post(f"/runs/{run_id}/resume", follow_redirects=True)
    assert f"Run {run_id} resumed." in response.text
    work()
    assert copies_per_recipient(smtp_sink) == {f"m{mailing_id}-{n}@example.com": 1 for n in range(25)}
    assert reload_run(run_id).status == RunStatus.DONE


def test_pause_and_resume_answer_with_a_message_when_they_do_not_apply(app, owner, work, as_owner):
    mailing_id = make_mailing(owner, clients=1).id
    run_id = runs.start_manual_run(db.session.get(Mailing, mailing_id), owner).id
    response = as_owner.post(f"/runs/{run_id}/resume", follow_redirects=True)
    assert f"Run {run_id} is not paused." in response.text
    send_queue.enqueue_run(run_id)
    work()
    response = as_owner.post(f"/runs/{run_id}/pause", follow_redirects=True)
    assert "cannot be paused" in response.text and reload_run(run_id).status == RunStatus.DONE


def test_a_managers_disable_pauses_the_run_and_it_resumes_once_enabled(app, owner, smtp_sink, work, client):
    mailing = make_mailing(owner, clients=25)
    mailing_id, owner_email = mailing.id, owner.email
    run_id = runs.start_manual_run(mailing, owner).id
    send_one_chunk(run_id)
    make_user("manager@example.com", role=Role.MANAGER)
    login(client, "manager@example.com")
    client.post(f"/mailings/{mailing_id}/disable", data={"reason": "Wrong price in the text"})
    client.post("/auth/logout")
    work()
    assert reload_run(run_id).status == RunStatus.PAUSED and len(smtp_sink.received) == 10

    login(client, owner_email)
    page = client.get(f"/mailings/{mailing_id}").text
    assert "Wrong price in the text" in page
    refused = client.post(f"/runs/{run_id}/resume", follow_redirects=True)
    assert "it can be resumed once a manager enables it" in refused.text
    mailing_service.enable_mailing(db.session.get(Mailing, mailing_id), utcnow())
    db.session.commit()
    client.post(f"/runs/{run_id}/resume")
    work()
    assert copies_per_recipient(smtp_sink) == {f"m{mailing_id}-{n}@example.com": 1 for n in range(25)}


def test_blocking_the_owner_pauses_their_runs(app, owner, smtp_sink, work):
    mailing = make_mailing(owner, clients=2)
    run_id = runs.start_manual_run(mailing, owner).id
    manager = make_user("manager@example.com", role=Role.MANAGER)
    user_service.block(manager, owner, "Spam complaints")
    db.session.commit()
    send_queue.enqueue_run(run_id)
    work()
    assert reload_run(run_id).status == RunStatus.PAUSED and smtp_sink.received == []


# Cancel and send to the rest --------------------------------------------------------------------


def test_after_a_cancel_send_to_the_rest_reaches_only_the_clients_not_reached(app, owner, smtp_sink, work, as_owner):
    mailing_id = make_mailing(owner, clients=25).id
    smtp_sink.handler.replies.append("550 5.1.1 Unknown user")  # the first client fails
    run_id = runs.start_manual_run(db.session.get(Mailing, mailing_id), owner).id
    send_one_chunk(run_id)
    as_owner.post(f"/runs/{run_id}/cancel")
    work()
    page = as_owner.get(f"/runs/{run_id}").text
    assert "Send to the rest (15)" in page and "Retry failed (1)" in page

    response = as_owner.post(f"/runs/{run_id}/rest", follow_redirects=True)
    rest = runs_of(mailing_id)[-1]
    rest_id = rest.id
    assert rest.trigger == RunTrigger.REST and rest.retry_of_id == run_id and rest.total_count == 15
    assert f"Sending to the 15 clients run {run_id} did not reach." in response.text
    work()
    received = copies_per_recipient(smtp_sink)
    # The messages go out in parallel: any one client may have met the 550. It is not retried.
    [failed] = [d.email for d in deliveries(run_id) if d.status == DeliveryStatus.FAILED]
    everyone = {f"m{mailing_id}-{n}@example.com" for n in range(25)}
    assert received == {email: 1 for email in everyone - {failed}}
    assert reload_run(rest_id).status == RunStatus.DONE

    again = as_owner.post(f"/runs/{run_id}/rest", follow_redirects=True)
    assert f"were sent to in run {rest_id} already" in again.text
    assert len(runs_of(mailing_id)) == 2


def test_send_to_the_rest_waits_for_messages_still_in_a_workers_hands(app, owner, as_owner):
    mailing_id = make_mailing(owner, clients=3).id
    run_id = runs.start_manual_run(db.session.get(Mailing, mailing_id), owner).id
    db.session.execute(
        Delivery.__table__.update()
        .where(Delivery.run_id == run_id)
        .values(status=DeliveryStatus.SENDING, claimed_at=utcnow())
    )
    db.session.commit()
    as_owner.post(f"/runs/{run_id}/cancel")
    # The page goes on following the run while its messages' results are still to come.
    progress = as_owner.get(f"/runs/{run_id}/progress").get_json()
    assert progress == {**progress, "status": "cancelled", "active": False, "live": True, "sending": 3}
    assert 'data-active="true"' in as_owner.get(f"/runs/{run_id}").text

    response = as_owner.post(f"/runs/{run_id}/rest", follow_redirects=True)
    assert "still being handed to the SMTP server" in response.text
    assert len(runs_of(mailing_id)) == 1


def test_only_a_cancelled_run_is_continued_for_the_rest(app, owner, as_owner):
    mailing_id = make_mailing(owner, clients=2).id
    run_id = runs.start_manual_run(db.session.get(Mailing, mailing_id), owner).id
    response = as_owner.post(f"/runs/{run_id}/rest", follow_redirects=True)
    assert "Only a cancelled run can be continued" in response.text
    assert len(runs_of(mailing_id)) == 1


def test_who_may_pause_resume_and_send_to_the_rest(app, owner, other_owner, manager, admin, as_user):
    mailing_id = make_mailing(owner, clients=2).id
    run_id = runs.start_manual_run(db.session.get(Mailing, mailing_id), owner).id

    other = as_user(other_owner)
    assert other.get(f"/runs/mailing/{mailing_id}/send").status_code == 404
    for action in ("pause", "resume", "rest"):
        assert other.post(f"/runs/{run_id}/{action}").status_code == 404

    managing = as_user(manager)
    assert managing.get(f"/runs/mailing/{mailing_id}/send").status_code == 403
    for action in ("pause", "resume", "rest"):
        assert managing.post(f"/runs/{run_id}/{action}").status_code == 403

    administering = as_user(admin)
    assert administering.post(f"/runs/{run_id}/pause").status_code == 302
    assert reload_run(run_id).status == RunStatus.PAUSED
    assert administering.post(f"/runs/{run_id}/resume").status_code == 302
    assert reload_run(run_id).status == RunStatus.QUEUED


def test_a_worker_that_read_the_run_before_the_pause_claims_nothing(app, owner, smtp_sink):
    mailing = make_mailing(owner, clients=3)
    run = runs.start_manual_run(mailing, owner)
    run_id = run.id
    run_control.pause_run(run)
    # The worker's next step after its look at the run: the claim itself checks the run again.
    assert sending.claim_chunk(run_id, utcnow(), 10, sending.new_claim_token()) == []
    assert all(
        delivery.status == DeliveryStatus.PENDING
        for delivery in db.session.scalars(select(Delivery).where(Delivery.run_id == run_id))
    )
