from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from mailer.extensions import db
from mailer.models import Client, Delivery, Mailing, MailingRun, RunTrigger, mailing_clients, utcnow
from mailer.services import stats
from tests.factories import add_client, add_message


def count_clients(owner_id: int | None = None) -> int:
    query = select(func.count(Client.id))
    if owner_id is not None:
        query = query.where(Client.owner_id == owner_id)
    return db.session.scalar(query)


def test_empty_list_says_what_to_do(logged_in):
    page = logged_in.get("/clients/")
    assert page.status_code == 200
    assert b"You have no clients yet" in page.data
    assert b'href="/clients/new"' in page.data and b'href="/clients/import"' in page.data


def test_create_stores_a_normalised_address(logged_in, user):
    response = logged_in.post(
        "/clients/new",
        data={"email": "  Ada.Lovelace@Example.COM ", "full_name": " Ada Lovelace ", "comment": "met at the fair"},
    )
    assert response.status_code == 302
    client = db.session.scalar(select(Client))
    assert (client.owner_id, client.email, client.full_name, client.comment) == (
        user.id,
        "ada.lovelace@example.com",
        "Ada Lovelace",
        "met at the fair",
    )
    assert response.location == f"/clients/{client.id}"
    page = logged_in.get(response.location)
    assert b"ada.lovelace@example.com" in page.data and b"met at the fair" in page.data


@pytest.mark.parametrize(
    "email, message",
    [
        ("not-an-address", b"must have an @-sign"),
        ("two@@example.com", b"invalid characters"),
        ("ada@example", b"It should have a period"),
        ("", b"Enter an e-mail address."),
        ("a" * 250 + "@example.com", b"254"),
    ],
)
def test_malformed_email_is_a_field_error(logged_in, email, message):
    response = logged_in.post("/clients/new", data={"email": email, "full_name": "Ada"})
    assert response.status_code == 400
    assert message in response.data
    assert b'class="invalid-feedback' in response.data
    assert count_clients() == 0


def test_full_name_is_required(logged_in):
    response = logged_in.post("/clients/new", data={"email": "ada@example.com", "full_name": "   "})
    assert response.status_code == 400
    assert b"Enter the client&#39;s full name." in response.data
    assert count_clients() == 0


def test_duplicate_email_of_the_same_owner_is_refused_whatever_its_case(logged_in, user):
    add_client(user, "ada@example.com")
    response = logged_in.post("/clients/new", data={"email": "ADA@example.com", "full_name": "Ada again"})
    assert response.status_code == 400
    assert b"You already have a client with this e-mail address." in response.data
    assert count_clients() == 1


def test_two_owners_may_have_the_same_address(logged_in, other_owner):
    add_client(other_owner, "ada@example.com")
    response = logged_in.post("/clients/new", data={"email": "ada@example.com", "full_name": "Ada"})
    assert response.status_code == 302
    assert count_clients() == 2


def test_a_concurrent_duplicate_is_caught_by_the_unique_constraint(app, user):
    from mailer.services import clients as client_service

    add_client(user, "ada@example.com")
    # Another request inserted the address after this one looked for it.
    original = client_service.find_by_email
    client_service.find_by_email = lambda owner_id, email: None
    try:
        with pytest.raises(client_service.ClientError) as raised:
            client_service.create_client(user, "ada@example.com", "Ada")
    finally:
        client_service.find_by_email = original
    assert raised.value.field == "email"
    db.session.commit()  # the session is still usable
    assert count_clients() == 1


def test_edit_changes_the_client_and_refuses_a_duplicate(logged_in, user):
    ada = add_client(user, "ada@example.com", "Ada")
    add_client(user, "alan@example.com", "Alan")
    response = logged_in.post(f"/clients/{ada.id}/edit", data={"email": "alan@example.com", "full_name": "Ada"})
    assert response.status_code == 400
    assert b"You already have a client with this e-mail address." in response.data
    response = logged_in.post(
        f"/clients/{ada.id}/edit", data={"email": "Countess@Example.com", "full_name": "Ada King", "comment": ""}
    )
    assert response.status_code == 302
    db.session.refresh(ada)
    assert (ada.email, ada.full_name) == ("countess@example.com", "Ada King")


def test_edit_form_is_filled_with_the_client(logged_in, user):
    ada = add_client(user, "ada@example.com", "Ada Lovelace", "a comment")
    page = logged_in.get(f"/clients/{ada.id}/edit")
    assert page.status_code == 200
    assert b'value="ada@example.com"' in page.data and b"a comment" in page.data


def test_unsubscribed_client_is_shown_as_such(logged_in, user):
    add_client(user, "ada@example.com", "Ada")
    gone = add_client(user, "alan@example.com", "Alan")
    gone.unsubscribed_at = utcnow()
    db.session.commit()
    page = logged_in.get("/clients/").get_data(as_text=True)
    assert page.count("Unsubscribed</span>") == 1
    assert "Unsubscribed</span>" in logged_in.get(f"/clients/{gone.id}").get_data(as_text=True)
    # Editing keeps the client unsubscribed: only the recipient decides.
    logged_in.post(f"/clients/{gone.id}/edit", data={"email": "alan@example.com", "full_name": "Alan T"})
    db.session.refresh(gone)
    assert gone.is_unsubscribed


def test_delete_asks_for_confirmation_then_deletes(logged_in, user):
    ada = add_client(user, "ada@example.com", "Ada")
    page = logged_in.get(f"/clients/{ada.id}/delete")
    assert page.status_code == 200
    assert b"This cannot be undone" in page.data
    assert count_clients() == 1
    response = logged_in.post(f"/clients/{ada.id}/delete")
    assert response.status_code == 302
    assert count_clients() == 0
    assert logged_in.get(f"/clients/{ada.id}").status_code == 404


def make_mailing(owner, clients, name="Spring news") -> Mailing:
    now = datetime.now(UTC)
    mailing = Mailing(
        owner_id=owner.id,
        name=name,
        message_id=add_message(owner).id,
        start_at=now,
        end_at=now + timedelta(days=1),
        clients=list(clients),
    )
    db.session.add(mailing)
    db.session.commit()
    return mailing


def test_deleting_a_client_a_mailing_uses_names_the_mailing_and_removes_it_from_it(logged_in, user):
    ada = add_client(user, "ada@example.com", "Ada")
    alan = add_client(user, "alan@example.com", "Alan")
    mailing = make_mailing(user, [ada, alan])
    run = MailingRun(mailing_id=mailing.id, trigger=RunTrigger.MANUAL, scheduled_for=utcnow())
    db.session.add(run)
    db.session.flush()
    db.session.add(Delivery(run_id=run.id, client_id=ada.id, email=ada.email))
    db.session.commit()

    page = logged_in.get(f"/clients/{ada.id}/delete").get_data(as_text=True)
    assert "1 mailing uses this client" in page
    assert "Spring news" in page
    assert "removes the client from it" in page
    assert "Delete and remove from the mailings" in page

    response = logged_in.post(f"/clients/{ada.id}/delete")
    assert response.status_code == 302
    db.session.expire_all()
    members = db.session.scalars(
        select(mailing_clients.c.client_id).where(mailing_clients.c.mailing_id == mailing.id)
    ).all()
    assert members == [alan.id]
    delivery = db.session.scalar(select(Delivery))
    assert (delivery.client_id, delivery.email) == (None, "ada@example.com")


def test_detail_lists_the_mailings_of_the_client(logged_in, user):
    ada = add_client(user, "ada@example.com", "Ada")
    make_mailing(user, [ada], name="Autumn letter")
    assert b"Autumn letter" in logged_in.get(f"/clients/{ada.id}").data


def test_changes_clear_the_owners_home_figures(logged_in, user):
    assert stats.home_figures(user)["unique_clients"] == 0
    logged_in.post("/clients/new", data={"email": "ada@example.com", "full_name": "Ada"})
    assert stats.home_figures(user)["unique_clients"] == 1
    client = db.session.scalar(select(Client))
    logged_in.post(f"/clients/{client.id}/delete")
    assert stats.home_figures(user)["unique_clients"] == 0


def test_a_failed_change_leaves_the_cached_figures_alone(logged_in, user):
    add_client(user, "ada@example.com")
    figures = stats.home_figures(user)
    logged_in.post("/clients/new", data={"email": "ada@example.com", "full_name": "Ada"})
    assert stats._cache_get(stats.owner_key(user.id)) == {k: v for k, v in figures.items() if k != "scope"}
