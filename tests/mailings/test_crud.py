from datetime import timedelta

from sqlalchemy import func, select

from mailer.extensions import db
from mailer.models import (
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingAttempt,
    MailingRun,
    MailingStatus,
    Repeat,
    RunStatus,
    mailing_clients,
    utcnow,
)
from mailer.services import mailings as mailing_service
from mailer.services import stats
from tests.factories import add_clients, add_mailing, add_message, add_run, mailing_form, make_user
from tests.support import client_ids, local_input, login, page_link


def test_create_a_mailing(as_owner, owner, message, clients):
    response = as_owner.post(
        "/mailings/new", data=mailing_form(message, clients[:2], name="  Spring news ", repeat="weekly")
    )
    assert response.status_code == 302
    mailing = db.session.scalar(select(Mailing))
    assert response.location == f"/mailings/{mailing.id}"
    assert mailing.name == "Spring news"
    assert mailing.owner_id == owner.id and mailing.message_id == message.id
    assert client_ids(mailing) == {clients[0].id, clients[1].id}
    assert mailing.repeat == Repeat.WEEKLY
    assert mailing.status == MailingStatus.CREATED
    # The first run is the start; the schedule module sets it.
    assert mailing.next_run_at == mailing.start_at
    page = as_owner.get(response.location)
    assert b"Spring news" in page.data and b"Mailing \xe2\x80\x9cSpring news\xe2\x80\x9d created." in page.data


def test_new_form_offers_only_the_owners_messages_and_clients(as_owner, owner, other_owner, message, clients):
    foreign_message = add_message(other_owner, "Bob's secret subject")
    add_clients(other_owner, 2, prefix="bobclient")
    page = as_owner.get("/mailings/new").get_data(as_text=True)
    assert message.subject in page and clients[0].email in page
    assert "Bob&#39;s secret subject" not in page and "Bob's secret subject" not in page
    assert "bobclient" not in page
    assert f'value="{foreign_message.id}"' not in page.split('name="clients"')[0].split('name="message"')[1]


def test_new_form_without_messages_or_clients_says_what_to_create(as_owner, owner):
    page = as_owner.get("/mailings/new").get_data(as_text=True)
    assert "You need a message and at least one client first" in page
    assert "No messages yet." in page and "No clients yet." in page
    assert 'href="/messages/new"' in page and 'href="/clients/new"' in page
    assert 'name="clients"' not in page
    add_message(owner)
    page = as_owner.get("/mailings/new").get_data(as_text=True)
    assert "No messages yet." not in page and "No clients yet." in page


def test_client_picker_renders_thousands_of_clients_compactly(as_owner, owner, message):
    add_clients(owner, mailing_service.CLIENT_LIST_LIMIT)
    response = as_owner.get("/mailings/new")
    page = response.get_data(as_text=True)
    assert page.count('name="clients"') == mailing_service.CLIENT_LIST_LIMIT
    # One short label per client: the page stays small enough for a phone.
    assert len(response.data) < mailing_service.CLIENT_LIST_LIMIT * 120 + 20_000
    assert "mailings/static/client_picker.js" in page
    assert as_owner.get("/mailings/static/client_picker.js").status_code == 200


def test_a_mailing_with_thousands_of_clients_is_saved_and_edited(as_owner, owner, message):
    many = add_clients(owner, 2500)
    response = as_owner.post("/mailings/new", data=mailing_form(message, many))
    assert response.status_code == 302
    mailing = db.session.scalar(select(Mailing))
    assert len(client_ids(mailing)) == 2500
    response = as_owner.post(f"/mailings/{mailing.id}/edit", data=mailing_form(message, many[1000:]))
    assert response.status_code == 302
    assert client_ids(mailing) == {c.id for c in many[1000:]}


def test_list_shows_the_owners_mailings_with_status(as_owner, owner, other_owner, message, clients):
    add_mailing(owner, message, clients, name="Mine")
    add_mailing(other_owner, add_message(other_owner), add_clients(other_owner, 1, "b"), name="Theirs")
    page = as_owner.get("/mailings/").get_data(as_text=True)
    assert "Mine" in page and "Theirs" not in page
    assert ">Scheduled<" in page
    assert "Owner</th>" not in page


def test_list_search_filter_sort_and_paginate(as_owner, owner, message, clients):
    now = utcnow()
    for n in range(25):
        add_mailing(
            owner,
            message,
            clients,
            name=f"Weekly {n:02d}",
            start_at=now + timedelta(days=n + 1),
            end_at=now + timedelta(days=60),
        )
    add_mailing(owner, message, clients, name="100% off_sale")
    finished = add_mailing(owner, message, clients, name="Old one")
    finished.status = MailingStatus.FINISHED
    db.session.commit()

    page = as_owner.get("/mailings/?q=weekly+1").get_data(as_text=True)
    assert "Weekly 10" in page and "Weekly 19" in page and "Weekly 02" not in page
    # LIKE wildcards typed by a person are searched for literally.
    page = as_owner.get("/mailings/?q=%25+off_").get_data(as_text=True)
    assert "100% off_sale" in page and "Weekly" not in page
    page = as_owner.get("/mailings/?status=finished").get_data(as_text=True)
    assert "Old one" in page and "Weekly" not in page

    first_page = as_owner.get("/mailings/?sort=name")
    first = first_page.get_data(as_text=True)
    assert first.index("100% off_sale") < first.index("Old one") < first.index("Weekly 00")
    assert "Weekly 24" not in first
    second = as_owner.get(page_link(first_page)).get_data(as_text=True)
    assert "Weekly 24" in second
    latest_first = as_owner.get("/mailings/?sort=-start").get_data(as_text=True)
    assert latest_first.index("Weekly 24") < latest_first.index("Weekly 23")
    # Nonsense parameters fall back to the defaults.
    assert as_owner.get("/mailings/?sort=password&status=nope&page=-3").status_code == 200


def test_empty_list_says_what_to_do(as_owner):
    page = as_owner.get("/mailings/").get_data(as_text=True)
    assert "No mailings yet" in page and "/mailings/new" in page
    page = as_owner.get("/mailings/?q=nothing").get_data(as_text=True)
    assert "No mailing matches these filters" in page


def test_detail_shows_message_clients_times_status_and_runs(as_owner, mailing, message, clients):
    add_run(mailing, status=RunStatus.DONE)
    page = as_owner.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert mailing.name in page and message.subject in page
    for client in clients:
        assert client.email in page
    assert ">Scheduled<" in page
    assert "1 in all" in page
    assert "Done" in page
    assert f"/mailings/{mailing.id}/edit" in page and f"/mailings/{mailing.id}/delete" in page
    # Owners do not get the manager's buttons.
    assert f"/mailings/{mailing.id}/disable" not in page


def test_detail_counts_the_runs_and_finds_the_unfinished_one_beyond_the_latest(as_owner, mailing):
    add_run(mailing)
    paused = add_run(mailing, status=RunStatus.PAUSED)
    add_run(mailing)
    page = as_owner.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert "3 in all" in page
    assert f"Run {paused.id}</a> is paused" in page
    # 20 newer runs: the paused one is no longer among the latest shown, and is still found.
    for _ in range(20):
        add_run(mailing)
    page = as_owner.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert "23 in all" in page and "The 20 latest runs are shown." in page
    assert f"Run {paused.id}</a> is paused" in page


def test_detail_paginates_many_clients(as_owner, owner, message):
    many = add_clients(owner, 120)
    mailing = add_mailing(owner, message, many)
    page = as_owner.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert page.count("@example.com&gt;") == 25
    assert ">120<" in page
    response = as_owner.get(f"/mailings/{mailing.id}")
    for _ in range(4):
        response = as_owner.get(page_link(response))
    assert response.get_data(as_text=True).count("@example.com&gt;") == 20
    found = as_owner.get(f"/mailings/{mailing.id}?q=client11").get_data(as_text=True)
    assert found.count("@example.com&gt;") == 11 and "11 clients match." in found


def test_edit_changes_the_mailing_and_recomputes_the_schedule(as_owner, mailing, message, clients):
    other_message = add_message(mailing.owner, "Summer sale")
    page = as_owner.get(f"/mailings/{mailing.id}/edit").get_data(as_text=True)
    assert f'value="{mailing.name}"' in page and "checked" in page
    response = as_owner.post(
        f"/mailings/{mailing.id}/edit",
        data=mailing_form(
            other_message,
            clients[2:],
            name="Renamed",
            start="2031-03-01T10:00",
            end="2031-06-01T10:00",
            repeat="monthly",
        ),
    )
    assert response.status_code == 302
    db.session.refresh(mailing)
    assert mailing.name == "Renamed" and mailing.message_id == other_message.id
    assert client_ids(mailing) == {clients[2].id}
    assert mailing.repeat == Repeat.MONTHLY
    assert local_input(mailing.start_at) == "2031-03-01T10:00"
    assert mailing.next_run_at == mailing.start_at


def test_a_finished_mailing_can_be_renamed_without_touching_its_past_times(as_owner, owner, message, clients):
    now = utcnow()
    mailing = add_mailing(owner, message, clients, start_at=now - timedelta(days=10), end_at=now - timedelta(days=3))
    # As the sending engine leaves it once its run is done.
    add_run(mailing, status=RunStatus.DONE)
    mailing.status, mailing.next_run_at = MailingStatus.FINISHED, None
    db.session.commit()
    form = as_owner.get(f"/mailings/{mailing.id}/edit").get_data(as_text=True)
    start = local_input(mailing.start_at)
    assert f'value="{start}"' in form
    response = as_owner.post(
        f"/mailings/{mailing.id}/edit",
        data=mailing_form(message, clients, name="Archived", start=start, end=local_input(mailing.end_at)),
    )
    assert response.status_code == 302
    db.session.refresh(mailing)
    assert mailing.name == "Archived" and mailing.status == MailingStatus.FINISHED


def test_delete_a_mailing_that_never_ran(as_owner, mailing, message, clients):
    page = as_owner.get(f"/mailings/{mailing.id}/delete").get_data(as_text=True)
    assert "never been sent" in page
    response = as_owner.post(f"/mailings/{mailing.id}/delete")
    assert response.status_code == 302 and response.location == "/mailings/"
    assert db.session.get(Mailing, mailing.id) is None
    assert db.session.scalar(select(func.count()).select_from(mailing_clients)) == 0
    # The message and the clients are kept.
    assert db.session.get(type(message), message.id) is not None
    assert all(db.session.get(type(c), c.id) is not None for c in clients)


def test_delete_says_what_history_goes_with_the_mailing(as_owner, mailing, clients):
    run = add_run(mailing)
    for client in clients:
        delivery = Delivery(run_id=run.id, client_id=client.id, email=client.email, status=DeliveryStatus.SENT)
        db.session.add(delivery)
        db.session.flush()
        for _ in range(2):
            db.session.add(
                MailingAttempt(
                    mailing_id=mailing.id,
                    run_id=run.id,
                    delivery_id=delivery.id,
                    client_id=client.id,
                    email=client.email,
                    status=AttemptStatus.SUCCESS,
                    smtp_code=250,
                    smtp_response="OK",
                )
            )
    db.session.commit()
    page = as_owner.get(f"/mailings/{mailing.id}/delete").get_data(as_text=True)
    assert "1 run," in page and "3 deliveries," in page and "6 recorded send attempts" in page
    assert as_owner.post(f"/mailings/{mailing.id}/delete").status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(func.count(MailingRun.id))) == 0
    assert db.session.scalar(select(func.count(Delivery.id))) == 0
    assert db.session.scalar(select(func.count(MailingAttempt.id))) == 0


def test_a_mailing_being_sent_cannot_be_deleted(as_owner, mailing):
    run = add_run(mailing, status=RunStatus.SENDING)
    page = as_owner.get(f"/mailings/{mailing.id}/delete").get_data(as_text=True)
    assert "cannot be deleted" in page and f"run {run.id}" in page
    assert "Delete the mailing" not in page
    response = as_owner.post(f"/mailings/{mailing.id}/delete", follow_redirects=True)
    assert "Cancel its unfinished run first" in response.get_data(as_text=True)
    assert db.session.get(Mailing, mailing.id) is not None


def test_changes_show_at_once_in_the_cached_home_figures(as_owner, owner, message, clients):
    assert stats.home_figures(owner)["mailings"] == 0
    as_owner.post("/mailings/new", data=mailing_form(message, clients))
    assert stats.home_figures(owner)["mailings"] == 1
    mailing = db.session.scalar(select(Mailing))
    as_owner.post(f"/mailings/{mailing.id}/delete")
    assert stats.home_figures(owner)["mailings"] == 0


def test_anonymous_visitors_are_sent_to_login(client, mailing):
    for url in ["/mailings/", "/mailings/new", f"/mailings/{mailing.id}", f"/mailings/{mailing.id}/edit"]:
        response = client.get(url)
        assert response.status_code == 302 and "/auth/login" in response.location


def test_the_navbar_links_to_mailings(app, client):
    user = make_user("someone@example.com")
    login(client, user.email)
    assert 'href="/mailings/"' in client.get("/").get_data(as_text=True)
