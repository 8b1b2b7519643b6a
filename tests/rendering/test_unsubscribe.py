import re

from mailer.extensions import cache, db, mail
from mailer.services import tokens
from mailer.services.mime import make_message_id
from mailer.services.rendering import build_mail
from mailer.services.stats import owner_key
from mailer.services.unsubscribe import client_for_unsubscribe_token, unsubscribe_token, unsubscribe_url
from tests.factories import add_client, add_message
from tests.support import local_path

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def test_the_link_is_absolute_on_the_external_address(user):
    client = add_client(user)
    url = unsubscribe_url(client)
    assert url.startswith("http://mailer.test/unsubscribe/")
    assert client_for_unsubscribe_token(url.rsplit("/", 1)[1]) == client


def test_get_shows_a_confirmation_button_and_changes_nothing(app, client, user):
    app.config["WTF_CSRF_ENABLED"] = True
    ada = add_client(user)
    response = client.get(f"/unsubscribe/{unsubscribe_token(ada)}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "ada@example.com" in page
    assert re.search(r'<form[^>]+method="post"', page)
    assert 'name="csrf_token"' in page
    assert re.search(r'<input[^>]+type="submit"[^>]+value="Unsubscribe"', page)
    db.session.refresh(ada)
    assert ada.unsubscribed_at is None


def test_one_click_post_without_a_csrf_token_unsubscribes_and_repeats_harmlessly(app, client, user):
    app.config["WTF_CSRF_ENABLED"] = True
    ada, bob = add_client(user), add_client(user, "bob@example.com", "Bob")
    link = f"/unsubscribe/{unsubscribe_token(ada)}"

    response = client.post(link, data=ONE_CLICK)
    assert response.status_code == 200
    assert b"You are unsubscribed" in response.data
    db.session.refresh(ada)
    first_time = ada.unsubscribed_at
    assert first_time is not None

    again = client.post(link, data=ONE_CLICK)
    assert again.status_code == 200
    db.session.refresh(ada)
    assert ada.unsubscribed_at == first_time
    db.session.refresh(bob)
    assert bob.unsubscribed_at is None

    page = client.get(link)
    assert page.status_code == 200 and b"already unsubscribed" in page.data and b'type="submit"' not in page.data


def test_the_button_on_the_page_unsubscribes(app, client, user):
    app.config["WTF_CSRF_ENABLED"] = True
    ada = add_client(user)
    link = f"/unsubscribe/{unsubscribe_token(ada)}"
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get(link).get_data(as_text=True))
    response = client.post(link, data={"csrf_token": csrf.group(1), "submit": "Unsubscribe"})
    assert response.status_code == 200
    db.session.refresh(ada)
    assert ada.is_unsubscribed


def test_one_click_through_the_header_of_a_received_mail(app, client, smtp_sink, user):
    app.config["WTF_CSRF_ENABLED"] = True
    ada = add_client(user)
    mail.send(build_mail(add_message(user), ada, message_id=make_message_id(1)))
    header = smtp_sink.wait_for(1)[0].message["List-Unsubscribe"]
    url = re.fullmatch(r"<(http://mailer\.test/\S+)>", header).group(1)
    # What a mail program does for List-Unsubscribe-Post (RFC 8058): a bare form POST.
    response = client.post(
        local_path(url), data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    db.session.refresh(ada)
    assert ada.is_unsubscribed


def test_unsubscribing_clears_the_owners_cached_statistics(client, user):
    ada = add_client(user)
    cache.set(owner_key(user.id), {"clients": 1})
    client.post(f"/unsubscribe/{unsubscribe_token(ada)}", data=ONE_CLICK)
    assert cache.get(owner_key(user.id)) is None


def test_bad_links_answer_a_readable_404(app, client, user):
    ada = add_client(user)
    good = unsubscribe_token(ada)
    wrong_purpose = tokens.make_token(tokens.CONFIRM, [ada.id, ada.email])
    bad_tokens = [
        "nonsense",
        good[:-3] + "abc",  # a damaged signature
        good[: len(good) // 2],  # cut when copied
        wrong_purpose,  # a token made for something else
        tokens.make_token(tokens.UNSUBSCRIBE, {"id": 1}),  # signed, but not a client's token
        tokens.make_token(tokens.UNSUBSCRIBE, [999, "ghost@example.com"]),
        "x" * 3000,
    ]
    for token in bad_tokens:
        for method in (client.get, client.post):
            response = method(f"/unsubscribe/{token}", data=ONE_CLICK)
            assert response.status_code == 404, token
            assert b"This unsubscribe link does not work" in response.data
    db.session.refresh(ada)
    assert ada.unsubscribed_at is None


def test_a_link_stays_bound_to_the_address_it_was_sent_to(client, user):
    ada = add_client(user)
    old_link = f"/unsubscribe/{unsubscribe_token(ada)}"
    ada.email = "someone.else@example.com"
    db.session.commit()
    assert client.post(old_link, data=ONE_CLICK).status_code == 404
    db.session.refresh(ada)
    assert ada.unsubscribed_at is None
