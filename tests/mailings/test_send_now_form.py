"""The new-mailing form: "send as soon as it is saved" or a start date, an end only for repeating
mailings, and the run page right after saving a mailing that starts now."""

import re
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from mailer.extensions import db
from mailer.models import Mailing, MailingRun, MailingStatus, RunTrigger, utcnow
from mailer.services import dispatch
from tests.factories import mailing_form
from tests.support import local_input


def only_mailing() -> Mailing:
    db.session.expire_all()
    return db.session.scalars(select(Mailing)).one()


def test_send_now_creates_the_run_at_once_and_shows_it(as_owner, message, clients, work, smtp_sink):
    addresses = [client.email for client in clients]
    response = as_owner.post("/mailings/new", data=mailing_form(message, clients, when="now", start="", end=""))

    mailing = only_mailing()
    [run] = mailing.runs
    assert response.status_code == 302 and response.location == f"/runs/{run.id}"
    assert run.trigger == RunTrigger.SCHEDULE and mailing.next_run_at is None
    page = as_owner.get(response.location).text
    assert 'data-active="true"' in page and "run_progress.js" in page  # the page follows the run
    work()
    assert Counter(address for mail in smtp_sink.received for address in mail.recipients) == {
        address: 1 for address in addresses
    }
    assert dispatch.dispatch_due_mailings(utcnow() + timedelta(days=1)) == []
    assert only_mailing().status == MailingStatus.FINISHED


def test_a_once_mailing_needs_no_end(as_owner, message, clients):
    start = (utcnow() + timedelta(days=3)).replace(second=0, microsecond=0)
    response = as_owner.post("/mailings/new", data=mailing_form(message, clients, start=local_input(start), end=""))
    mailing = only_mailing()
    assert response.location == f"/mailings/{mailing.id}" and mailing.runs == []
    assert mailing.end_at == mailing.start_at == mailing.next_run_at == start
    edit = as_owner.get(f"/mailings/{mailing.id}/edit").text
    assert re.search(r'name="end_at"[^>]*type="datetime-local" value=""', edit)


def test_a_repeating_mailing_needs_an_end_and_a_scheduled_one_a_start(as_owner, message, clients):
    repeating = as_owner.post("/mailings/new", data=mailing_form(message, clients, end="", repeat="daily"))
    assert repeating.status_code == 400 and "Enter when the mailing stops repeating." in repeating.text
    no_start = as_owner.post("/mailings/new", data=mailing_form(message, clients, when="schedule", start=""))
    assert no_start.status_code == 400 and "Enter when the mailing starts." in no_start.text
    assert db.session.scalars(select(Mailing)).all() == []


def test_a_start_in_the_past_also_goes_to_its_run(as_owner, message, clients):
    start = utcnow() - timedelta(minutes=5)
    response = as_owner.post("/mailings/new", data=mailing_form(message, clients, start=local_input(start), end=""))
    run_id = db.session.scalar(select(MailingRun.id))
    assert response.location == f"/runs/{run_id}"


def test_the_form_offers_both_choices_on_a_new_mailing_only(as_owner, message, clients):
    new = as_owner.get("/mailings/new").text
    assert 'type="radio" value="now"' in new and 'checked class="form-check-input" id="when-1"' in new
    assert 'data-label-now="Save and send now"' in new
    as_owner.post("/mailings/new", data=mailing_form(message, clients))
    edit = as_owner.get(f"/mailings/{only_mailing().id}/edit").text
    assert 'value="now"' not in edit
