from datetime import timedelta

from freezegun import freeze_time

from mailer.extensions import db
from mailer.models import User, utcnow
from mailer.services import tokens
from tests.factories import PASSWORD
from tests.support import links_in, local_path, login


def register(client, email="new@example.com", password=PASSWORD, again=None, **extra):
    data = {"email": email, "password": password, "password_again": again or password, "timezone": "UTC", **extra}
    return client.post("/auth/register", data=data)


def confirmation_link(sink, address):
    mails = sink.to(address)
    assert len(mails) == 1, [m.subject for m in sink.received]
    assert mails[0].html is not None and mails[0].text
    return local_path(next(link for link in links_in(mails[0]) if "/auth/confirm/" in link))


def test_register_confirm_through_mail_then_login(client, smtp_sink, work):
    response = register(client, "Alice@Example.com", full_name="Alice", country="FR", phone="+33 1 23 45 67 89")
    assert response.status_code == 302
    # Sent by the worker, never inside the request.
    assert smtp_sink.received == []
    work()
    link = confirmation_link(smtp_sink, "alice@example.com")

    response = login(client, "alice@example.com")
    assert b"Confirm your e-mail address first" in response.data

    response = client.get(link)
    assert response.status_code == 302
    user = db.session.scalar(db.select(User).where(User.email == "alice@example.com"))
    assert user.is_confirmed and user.country == "FR" and user.full_name == "Alice"

    response = login(client, "ALICE@example.com")
    assert response.status_code == 302
    assert client.get("/auth/profile").status_code == 200


def test_registration_does_not_reveal_existing_accounts(client, user, smtp_sink, work):
    first = register(client, "someone@example.com")
    second = register(client, user.email)
    assert first.status_code == second.status_code == 302
    work()
    # The owner of the existing address is told, and no second account is created.
    assert smtp_sink.to(user.email)[0].subject == "Someone tried to register with your address"
    assert db.session.scalar(db.select(db.func.count(User.id)).where(User.email == user.email)) == 1


def test_registration_form_errors_change_nothing(client):
    cases = [
        {"email": "not-an-email"},
        {"email": "x@example.com", "password": "short", "again": "short"},
        {"email": "x@example.com", "again": "something else"},
        {"email": "x@example.com", "phone": "call me<script>"},
        {"email": "x@example.com", "country": "ZZ"},
    ]
    for case in cases:
        response = register(client, **case)
        assert response.status_code == 200, case
        assert b"is-invalid" in response.data, case
    assert db.session.scalar(db.select(db.func.count(User.id))) == 0


def test_forged_expired_and_reused_confirmation_tokens_are_refused(client, smtp_sink, work):
    register(client, "bob@example.com")
    work()
    link = confirmation_link(smtp_sink, "bob@example.com")
    user = db.session.scalar(db.select(User).where(User.email == "bob@example.com"))

    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    client.get(forged)
    db.session.refresh(user)
    assert not user.is_confirmed

    with freeze_time(utcnow() + timedelta(days=3)):
        response = client.get(link, follow_redirects=True)
        assert b"invalid or has expired" in response.data
    db.session.refresh(user)
    assert not user.is_confirmed

    client.get(link)
    db.session.refresh(user)
    assert user.is_confirmed
    response = client.get(link, follow_redirects=True)
    assert b"already been used" in response.data


def test_a_token_for_one_purpose_is_refused_for_another(client, user):
    token = tokens.make_token(tokens.CONFIRM, {"uid": user.id, "pw": user.password_hash[-16:]})
    response = client.get(f"/auth/reset/{token}", follow_redirects=True)
    assert b"invalid, has expired or was already used" in response.data


def test_unconfirmed_user_can_ask_for_a_new_link(client, smtp_sink, work):
    register(client, "carol@example.com")
    work()
    smtp_sink.reset()
    response = client.post("/auth/confirm", data={"email": "carol@example.com"})
    assert response.status_code == 302
    work()
    link = confirmation_link(smtp_sink, "carol@example.com")
    client.get(link)
    assert login(client, "carol@example.com").status_code == 302
