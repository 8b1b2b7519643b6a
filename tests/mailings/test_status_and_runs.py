import re
from datetime import timedelta

from sqlalchemy import select

from mailer.extensions import db
from mailer.models import MailingRun, MailingStatus, RunStatus, utcnow
from mailer.services import schedule
from tests.factories import add_mailing, add_run


def test_status_follows_the_runs_and_shows_on_list_and_page(as_owner, mailing):
    assert ">Scheduled<" in as_owner.get(f"/mailings/{mailing.id}").get_data(as_text=True)

    run = add_run(mailing, status=RunStatus.SENDING)
    schedule.refresh_status(mailing, utcnow())
    db.session.commit()
    assert mailing.status == MailingStatus.RUNNING
    assert ">Active<" in as_owner.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert ">Active<" in as_owner.get("/mailings/?status=running").get_data(as_text=True)

    run.status = RunStatus.DONE
    mailing.next_run_at = None
    schedule.refresh_status(mailing, utcnow())
    db.session.commit()
    page = as_owner.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert ">Finished<" in page
    assert re.search(r"Next run</dt>\s*<dd[^>]*>\s*None", page)


def test_a_new_mailing_shows_its_first_run_time(as_owner, owner, message, clients):
    start = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    mailing = add_mailing(owner, message, clients, start_at=start, end_at=start + timedelta(days=30))
    page = as_owner.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert f"The first one is due {start:%Y-%m-%d %H:%M}" in page


def test_send_now_from_the_mailing_page_sends_to_every_client(as_owner, mailing, clients, work, smtp_sink):
    mailing_id, addresses = mailing.id, sorted(client.email for client in clients)
    page = as_owner.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    send_url = f"/runs/mailing/{mailing.id}/send"
    assert f'href="{send_url}"' in page
    confirmation = as_owner.get(send_url).get_data(as_text=True)
    assert f"Send to {len(addresses)} clients now" in confirmation and "has not been sent yet" in confirmation
    response = as_owner.post(send_url, data={"last_run": "0"})
    assert response.status_code == 302
    work()
    assert sorted(address for mail in smtp_sink.received for address in mail.recipients) == addresses

    run_id = db.session.scalar(select(MailingRun.id).where(MailingRun.mailing_id == mailing_id))
    page = as_owner.get(f"/mailings/{mailing_id}").get_data(as_text=True)
    assert f'href="/runs/{run_id}"' in page
    assert f'href="/reports/mailings/{mailing_id}"' in page
    assert "1 in all" in page


def test_no_send_now_while_disabled(app, as_owner, mailing):
    mailing.disabled_at = utcnow()
    db.session.commit()
    page = as_owner.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert "Send now" not in page and "None while disabled" in page
