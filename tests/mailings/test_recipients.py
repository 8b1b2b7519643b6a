"""Who a mailing goes to: the clients ticked in a list (small accounts), all clients, the
clients with pasted addresses, or, on an edit of a large account, the list as it is."""

import re

import pytest
from sqlalchemy import select

from mailer.extensions import db
from mailer.models import Mailing
from mailer.services import mailings as mailing_service
from tests.factories import add_clients, add_mailing, mailing_form
from tests.support import client_ids

LIMIT = 5


@pytest.fixture
def small_list_limit(monkeypatch):
    """Accounts above five clients count as large: the form offers them no list to tick."""
    monkeypatch.setattr(mailing_service, "CLIENT_LIST_LIMIT", LIMIT)


def recipients_form(message, recipients, addresses="", **extra):
    return mailing_form(message, [], recipients=recipients, client_addresses=addresses, **extra)


def checked_choice(page: str) -> str:
    return re.search(r'<input checked[^>]* name="recipients" type="radio" value="(\w+)"', page).group(1)


def only_mailing() -> Mailing:
    return db.session.scalar(select(Mailing))


def test_a_small_account_ticks_clients_in_a_list(as_owner, owner, message, clients):
    page = as_owner.get("/mailings/new").get_data(as_text=True)
    assert page.count('name="clients"') == 3
    assert checked_choice(page) == "chosen"
    assert "All clients (3)" in page and 'name="client_addresses"' in page
    assert 'value="keep"' not in page


def test_a_large_account_gets_no_list_and_all_clients_by_default(
    small_list_limit, as_owner, owner, other_owner, message
):
    mine = add_clients(owner, LIMIT + 1)
    add_clients(other_owner, 2, prefix="theirs")
    page = as_owner.get("/mailings/new").get_data(as_text=True)
    assert 'name="clients"' not in page and 'value="chosen"' not in page
    assert "All clients (6)" in page
    assert checked_choice(page) == "all"
    assert 'value="keep"' not in page  # a new mailing has no list to keep

    response = as_owner.post("/mailings/new", data=recipients_form(message, "all"))
    assert response.status_code == 302
    mailing = only_mailing()
    assert client_ids(mailing) == {c.id for c in mine}
    assert mailing.client_count == LIMIT + 1


def test_all_clients_needs_at_least_one(as_owner, owner, message):
    response = as_owner.post("/mailings/new", data=recipients_form(message, "all"))
    assert response.status_code == 400
    assert only_mailing() is None


def test_pasted_addresses_choose_those_clients(as_owner, owner, message):
    mine = add_clients(owner, 4)
    pasted = f"Client Zero <{mine[0].email}>\n{mine[1].email.upper()}, {mine[1].email};\t{mine[3].email}\n"
    response = as_owner.post("/mailings/new", data=recipients_form(message, "addresses", pasted))
    assert response.status_code == 302
    mailing = only_mailing()
    assert client_ids(mailing) == {mine[0].id, mine[1].id, mine[3].id}
    assert mailing.client_count == 3


@pytest.mark.parametrize(
    ("pasted", "message_shown"),
    [
        ("", "Paste at least one e-mail address."),
        ("no addresses here", "Paste at least one e-mail address."),
        ("client0@example.com\nnobody@example.com", "Not among your clients: nobody@example.com."),
        (
            "\n".join(f"stranger{n}@example.com" for n in range(8)),
            "stranger0@example.com, stranger1@example.com, stranger2@example.com, "
            "stranger3@example.com, stranger4@example.com and 3 more.",
        ),
    ],
)
def test_pasted_addresses_that_are_not_clients_are_refused(as_owner, owner, message, clients, pasted, message_shown):
    response = as_owner.post("/mailings/new", data=recipients_form(message, "addresses", pasted))
    assert response.status_code == 400
    assert message_shown in response.get_data(as_text=True)
    assert only_mailing() is None


def test_another_owners_addresses_are_not_clients(as_owner, owner, other_owner, message, clients):
    theirs = add_clients(other_owner, 1, prefix="theirs")
    response = as_owner.post("/mailings/new", data=recipients_form(message, "addresses", theirs[0].email))
    assert response.status_code == 400
    assert f"Not among your clients: {theirs[0].email}." in response.get_data(as_text=True)


@pytest.mark.parametrize("recipients", ["keep", "everyone", ""])
def test_a_new_mailing_refuses_other_choices(small_list_limit, as_owner, owner, message, recipients):
    add_clients(owner, LIMIT + 1)
    response = as_owner.post("/mailings/new", data=recipients_form(message, recipients))
    assert response.status_code == 400
    assert only_mailing() is None


def test_editing_a_large_mailing_keeps_its_list_or_replaces_it(small_list_limit, as_owner, owner, message):
    many = add_clients(owner, LIMIT + 5)
    mailing = add_mailing(owner, message, many[:8])

    page = as_owner.get(f"/mailings/{mailing.id}/edit").get_data(as_text=True)
    assert 'name="clients"' not in page
    assert checked_choice(page) == "keep" and "Keep the 8 clients chosen" in page

    response = as_owner.post(
        f"/mailings/{mailing.id}/edit", data=recipients_form(message, "keep", name="Renamed", repeat="none")
    )
    assert response.status_code == 302
    db.session.refresh(mailing)
    assert mailing.name == "Renamed" and client_ids(mailing) == {c.id for c in many[:8]}

    pasted = f"{many[0].email}\n{many[9].email}"
    response = as_owner.post(f"/mailings/{mailing.id}/edit", data=recipients_form(message, "addresses", pasted))
    assert response.status_code == 302
    db.session.refresh(mailing)
    assert client_ids(mailing) == {many[0].id, many[9].id} and mailing.client_count == 2

    response = as_owner.post(f"/mailings/{mailing.id}/edit", data=recipients_form(message, "all"))
    assert response.status_code == 302
    db.session.refresh(mailing)
    assert client_ids(mailing) == {c.id for c in many} and mailing.client_count == LIMIT + 5
    # A mailing to every client opens with that choice.
    assert checked_choice(as_owner.get(f"/mailings/{mailing.id}/edit").get_data(as_text=True)) == "all"


def test_a_refused_edit_changes_nothing(small_list_limit, as_owner, owner, message):
    many = add_clients(owner, LIMIT + 1)
    mailing = add_mailing(owner, message, many[:2])
    response = as_owner.post(
        f"/mailings/{mailing.id}/edit", data=recipients_form(message, "addresses", "nobody@example.com")
    )
    assert response.status_code == 400
    db.session.refresh(mailing)
    assert client_ids(mailing) == {many[0].id, many[1].id} and mailing.client_count == 2


def test_an_admin_sends_an_owners_mailing_to_the_owners_clients(small_list_limit, as_admin, admin, owner, message):
    mine = add_clients(owner, LIMIT + 1)
    add_clients(admin, 2, prefix="admins")
    mailing = add_mailing(owner, message, mine[:1])
    response = as_admin.post(f"/mailings/{mailing.id}/edit", data=recipients_form(message, "all"))
    assert response.status_code == 302
    db.session.refresh(mailing)
    assert client_ids(mailing) == {c.id for c in mine}


def test_a_mailing_to_all_clients_reaches_each_of_them_once(
    small_list_limit, app, as_owner, owner, other_owner, message, smtp_sink, work
):
    addresses = sorted(c.email for c in add_clients(owner, LIMIT + 2))
    add_clients(other_owner, 2, prefix="theirs")
    response = as_owner.post("/mailings/new", data=recipients_form(message, "all", when="now", start=""))
    assert response.status_code == 302
    work()
    received = sorted(address for mail in smtp_sink.received for address in mail.recipients)
    assert received == addresses
