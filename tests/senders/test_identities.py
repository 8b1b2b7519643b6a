"""Sender identities: added on the owner's pages, usable only once confirmed through the link
sent to the address, chosen by mailings, and the From / Reply-To that a mailing gets."""

import re

import pytest
from flask import g
from sqlalchemy import select

from mailer.extensions import db
from mailer.models import Mailing, SenderIdentity
from mailer.services import senders
from tests.factories import (
    PASSWORD,
    add_clients,
    add_identity,
    add_mailing,
    add_message,
    add_server,
    mailing_form,
    make_user,
)
from tests.support import links_in, local_path, login


def identity_of(owner) -> SenderIdentity:
    return db.session.scalars(select(SenderIdentity).where(SenderIdentity.owner_id == owner.id)).one()


def test_an_owner_adds_an_address_and_confirms_it_through_the_link(app, as_owner, owner, smtp_sink, work):
    response = as_owner.post(
        "/senders/new", data={"name": "Alice's shop", "email": "News@Alice.example", "reply_to": "help@alice.example"}
    )
    assert response.status_code == 302
    identity = identity_of(owner)
    assert (identity.email, identity.reply_to, identity.is_confirmed) == (
        "news@alice.example",
        "help@alice.example",
        False,
    )
    assert "Waiting for confirmation" in as_owner.get("/senders/").get_data(as_text=True)

    work()
    [mail] = smtp_sink.to("news@alice.example")
    assert mail.subject == "Confirm your sender address"
    [link] = [link for link in links_in(mail) if "/senders/confirm/" in link]
    response = as_owner.get(local_path(link), follow_redirects=True)
    assert "news@alice.example is confirmed" in response.get_data(as_text=True)
    db.session.expire_all()
    assert identity.is_confirmed


def confirmation_link(as_owner, owner, smtp_sink, work, email="news@alice.example") -> str:
    as_owner.post("/senders/new", data={"name": "", "email": email})
    work()
    [mail] = smtp_sink.to(email)
    return local_path(next(link for link in links_in(mail) if "/senders/confirm/" in link))


def test_the_link_does_nothing_for_another_account(app, client, owner, smtp_sink, work):
    login(client, owner.email)
    link = confirmation_link(client, owner, smtp_sink, work)
    client.post("/auth/logout")
    login(client, make_user("mallory@example.com").email)
    response = client.get(link, follow_redirects=True)
    assert "This confirmation link is invalid or has expired" in response.get_data(as_text=True)
    assert not identity_of(owner).is_confirmed


def test_a_forged_link_confirms_nothing(app, as_owner, owner, smtp_sink, work):
    link = confirmation_link(as_owner, owner, smtp_sink, work)
    response = as_owner.get(link[:-3] + "xyz", follow_redirects=True)
    assert "This confirmation link is invalid or has expired" in response.get_data(as_text=True)
    assert not identity_of(owner).is_confirmed


def test_the_link_needs_a_login(app, client, owner, smtp_sink, work):
    login(client, owner.email)
    link = confirmation_link(client, owner, smtp_sink, work)
    client.post("/auth/logout")
    response = client.get(link)
    assert response.status_code == 302 and "/auth/login" in response.location
    assert not identity_of(owner).is_confirmed


@pytest.mark.parametrize(
    "email, message",
    [
        ("not-an-address", "An email address must have an @-sign."),
        ("тест@пример.рф", "A sender address must have only Latin letters, digits and punctuation before the @"),
    ],
)
def test_bad_addresses_are_refused_with_a_message(app, as_owner, email, message):
    response = as_owner.post("/senders/new", data={"email": email})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(SenderIdentity.id)) is None


def test_an_international_domain_is_accepted(app, as_owner, owner, smtp_sink, work):
    assert as_owner.post("/senders/new", data={"email": "info@пример.рф"}).status_code == 302
    assert identity_of(owner).email == "info@пример.рф"
    work()
    assert smtp_sink.to("info@xn--e1afmkfd.xn--p1ai")


def test_the_same_address_twice_is_refused(app, as_owner, owner):
    add_identity(owner)
    response = as_owner.post("/senders/new", data={"email": "news@alice.example"})
    assert response.status_code == 400
    assert "You already have this sender address." in response.get_data(as_text=True)


def test_the_list_shows_only_ones_own_addresses(app, as_owner, owner, other_owner):
    add_identity(owner, email="mine@alice.example")
    add_identity(other_owner, email="theirs@bob.example")
    html = as_owner.get("/senders/").get_data(as_text=True)
    assert "mine@alice.example" in html and "theirs@bob.example" not in html


def test_editing_changes_the_name_and_reply_to_but_not_the_address(app, as_owner, owner):
    identity = add_identity(owner)
    response = as_owner.post(
        f"/senders/{identity.id}/edit", data={"name": "New name", "reply_to": "", "email": "evil@example.com"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert (identity.name, identity.reply_to, identity.email) == ("New name", None, "news@alice.example")


# Mailings -------------------------------------------------------------------------------------


@pytest.fixture
def content(owner):
    return add_message(owner), add_clients(owner, 2)


def test_a_mailing_takes_a_confirmed_identity_and_a_server(app, as_owner, owner, content):
    identity = add_identity(owner)
    server = add_server()
    response = as_owner.post(
        "/mailings/new", data=mailing_form(*content, sender_identity=str(identity.id), smtp_server=str(server.id))
    )
    assert response.status_code == 302
    mailing = db.session.scalars(select(Mailing)).one()
    assert (mailing.sender_identity_id, mailing.smtp_server_id) == (identity.id, server.id)
    page = as_owner.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert "Alice &lt;news@alice.example&gt;" in page and "Relay" in page


@pytest.mark.parametrize(
    "whose, confirmed, message",
    [
        ("own", False, "news@alice.example is not confirmed yet: follow the link we sent to it"),
        ("other", True, "Choose one of your own sender addresses."),
    ],
)
def test_unconfirmed_or_foreign_identities_are_refused(
    app, as_owner, owner, other_owner, content, whose, confirmed, message
):
    identity = add_identity(owner if whose == "own" else other_owner, confirmed=confirmed)
    response = as_owner.post("/mailings/new", data=mailing_form(*content, sender_identity=str(identity.id)))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(Mailing.id)) is None


def test_the_form_offers_only_confirmed_identities(app, as_owner, owner, content):
    add_identity(owner, email="ready@alice.example")
    add_identity(owner, email="waiting@alice.example", confirmed=False)
    html = as_owner.get("/mailings/new").get_data(as_text=True)
    assert "ready@alice.example" in html and "waiting@alice.example" not in html


def test_an_unknown_server_is_refused(app, as_owner, content):
    response = as_owner.post("/mailings/new", data=mailing_form(*content, smtp_server="999"))
    assert response.status_code == 400
    assert "Choose one of the servers listed." in response.get_data(as_text=True)


def test_from_and_reply_to_of_a_mailing_and_their_fallbacks(app, owner, content):
    app.config["MAIL_DEFAULT_SENDER"] = "Mailer <mailer@mailer.example>"
    mailing = add_mailing(owner, *content)
    assert senders.sender_for_mailing(mailing) == senders.SenderHeaders(
        "Mailer <mailer@mailer.example>", None, "mailer@mailer.example", "Mailer <mailer@mailer.example>"
    )

    add_identity(owner, email="waiting@alice.example", confirmed=False)
    add_identity(owner, name="Алиса", email="first@пример.рф", reply_to="help@пример.рф")
    headers = senders.sender_for_mailing(mailing)
    assert headers.from_header == "=?utf-8?b?0JDQu9C40YHQsA==?= <first@xn--e1afmkfd.xn--p1ai>"
    assert headers.reply_to == "help@xn--e1afmkfd.xn--p1ai"
    assert headers.envelope_from == "first@xn--e1afmkfd.xn--p1ai"

    chosen = add_identity(owner, name="Shop", email="shop@alice.example")
    mailing.sender_identity_id = chosen.id
    db.session.commit()
    assert senders.sender_for_mailing(mailing).from_header == "Shop <shop@alice.example>"

    # Deleting the chosen identity: the mailing falls back to the first confirmed one.
    db.session.delete(chosen)
    db.session.commit()
    db.session.expire_all()
    assert mailing.sender_identity_id is None
    assert senders.sender_for_mailing(mailing).envelope_from == "first@xn--e1afmkfd.xn--p1ai"


def test_deleting_an_identity_asks_first_and_names_the_mailings(app, as_owner, owner, content):
    identity = add_identity(owner)
    mailing = add_mailing(owner, *content, name="Spring news")
    mailing.sender_identity_id = identity.id
    db.session.commit()
    assert "Spring news" in as_owner.get(f"/senders/{identity.id}/delete").get_data(as_text=True)
    assert as_owner.post(f"/senders/{identity.id}/delete").status_code == 302
    assert db.session.get(SenderIdentity, identity.id) is None


def test_confirmation_emails_are_limited_per_user(app, as_owner, owner):
    app.config["SENDER_CONFIRM_LIMIT"] = "2 per hour"
    assert as_owner.post("/senders/new", data={"email": "one@alice.example"}).status_code == 302
    identity = identity_of(owner)
    assert as_owner.post(f"/senders/{identity.id}/resend").status_code == 302
    assert as_owner.post(f"/senders/{identity.id}/resend").status_code == 429
    assert as_owner.post("/senders/new", data={"email": "two@alice.example"}).status_code == 429
    assert db.session.scalars(select(SenderIdentity.email)).all() == ["one@alice.example"]


def test_the_admin_panel_keeps_the_same_rules(app, client, owner, other_owner, content):
    login(client, make_user("admin@example.com", role="admin").email)
    identity = add_identity(owner)
    response = client.post(
        f"/admin/sender-identities/edit/?id={identity.id}",
        data={"name": "Alice", "reply_to": "not an address"},
        follow_redirects=True,
    )
    assert "An email address must have an @-sign." in response.get_data(as_text=True)
    db.session.expire_all()
    assert identity.reply_to is None

    foreign = add_identity(other_owner, email="bob@bob.example")
    mailing = add_mailing(owner, *content)
    response = client.post(
        f"/admin/mailings/edit/?id={mailing.id}",
        data={
            "owner": str(owner.id),
            "name": "Newsletter",
            "message": str(content[0].id),
            "clients": [str(c.id) for c in content[1]],
            "start_at": "2030-01-01 09:00:00",
            "end_at": "2030-02-01 09:00:00",
            "repeat": "none",
            "status": "created",
            "sender_identity": str(foreign.id),
        },
        follow_redirects=True,
    )
    assert "Choose one of your own sender addresses." in response.get_data(as_text=True)
    db.session.expire_all()
    assert mailing.sender_identity_id is None


CSRF_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def test_the_sender_forms_check_the_csrf_token(app, owner):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()

    def token(path: str) -> str:
        g.pop("csrf_token", None)  # one app context serves the test's requests
        return CSRF_TOKEN.search(client.get(path).get_data(as_text=True)).group(1)

    client.post("/auth/login", data={"email": owner.email, "password": PASSWORD, "csrf_token": token("/auth/login")})
    assert client.post("/senders/new", data={"email": "news@alice.example"}).status_code == 400
    assert db.session.scalar(select(SenderIdentity.id)) is None
    response = client.post("/senders/new", data={"email": "news@alice.example", "csrf_token": token("/senders/new")})
    assert response.status_code == 302
    identity = identity_of(owner)
    assert client.post(f"/senders/{identity.id}/delete").status_code == 400
    assert db.session.get(SenderIdentity, identity.id) is not None
