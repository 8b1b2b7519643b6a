"""Accounts: avatars, passwords, e-mail changes, throttles and what the pages reveal."""

import io

import pytest
import werkzeug.security
from PIL import Image
from redis import Redis

from mailer import create_app
from mailer.extensions import db
from mailer.models import user as user_model
from mailer.services import accounts
from tests.factories import PASSWORD, make_user
from tests.support import links_in, local_path, login


def png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def upload(client, data: bytes):
    return client.post(
        "/auth/profile/avatar", data={"avatar": (io.BytesIO(data), "me.png")}, content_type="multipart/form-data"
    )


def test_an_image_of_too_many_pixels_is_refused_before_it_is_decoded(logged_in, user):
    bomb = png((10_000, 10_000), mode="1")  # a few hundred KB that decode to 100 megapixels
    assert len(bomb) < 1024 * 1024
    response = upload(logged_in, bomb)
    assert response.status_code == 400
    assert "at most 16 megapixels" in response.get_data(as_text=True)
    db.session.refresh(user)
    assert user.avatar_filename is None


def test_nobody_fetches_another_users_avatar(app, logged_in, user):
    assert upload(logged_in, png((64, 64))).status_code == 302
    assert logged_in.get(f"/auth/avatar/{user.id}").status_code == 200
    stranger = app.test_client()
    login(stranger, make_user("stranger@example.com").email)
    assert stranger.get(f"/auth/avatar/{user.id}").status_code == 404


def test_the_clients_export_makes_formula_addresses_inert(logged_in, user):
    # A valid address that a spreadsheet would run as a formula.
    logged_in.post("/clients/new", data={"email": "=1+2-x@example.com", "full_name": "Formula"})
    export = logged_in.get("/clients/export.csv").get_data(as_text=True)
    assert "'=1+2-x@example.com" in export.splitlines()[1]


# Throttles --------------------------------------------------------------------------------------


def test_forms_that_send_mail_are_throttled_per_recipient(client, user, smtp_sink, work):
    # Reset, confirmation and registration share one count per recipient address.
    for path in ("/auth/reset", "/auth/confirm", "/auth/reset"):
        assert client.post(path, data={"email": user.email}).status_code == 302
    response = client.post(
        "/auth/register",
        data={
            "email": user.email,
            "password": "a long passphrase",
            "password_again": "a long passphrase",
            "timezone": "UTC",
        },
    )
    assert response.status_code == 429
    assert client.post("/auth/reset", data={"email": user.email}).status_code == 429
    work()
    assert len(smtp_sink.to(user.email)) == 2  # two resets; the account was confirmed already


def test_forms_that_send_mail_are_throttled_per_client_address(app, client):
    app.config["MAIL_LIMIT_PER_ADDRESS"] = "4 per hour"
    for number in range(4):
        assert client.post("/auth/reset", data={"email": f"someone{number}@example.com"}).status_code == 302
    assert client.post("/auth/reset", data={"email": "another@example.com"}).status_code == 429


def test_failed_logins_from_elsewhere_do_not_lock_the_owner_out(app, user):
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for _ in range(5):
        assert login(attacker, user.email, "guessing").status_code == 200
    assert login(attacker, user.email, "guessing").status_code == 429
    owner = app.test_client()
    owner.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert login(owner, user.email).status_code == 302


def test_the_owners_own_logins_do_not_count(app, user):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "2 per minute"
    for _ in range(4):
        browser = app.test_client()
        assert login(browser, user.email).status_code == 302


def test_trusted_proxies_give_each_client_its_own_limit(app, database_uri, redis_url):
    app.config["LOGIN_LIMIT_PER_ADDRESS"] = "2 per minute"
    behind_proxy = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=database_uri,
        REDIS_URL=redis_url,
        TRUSTED_PROXIES=1,
        LOGIN_LIMIT_PER_ADDRESS="2 per minute",
    )
    for app_under_test, separate in ((behind_proxy, True), (app, False)):
        Redis.from_url(redis_url).flushdb()
        answers = []
        for client_address in ("192.0.2.1", "192.0.2.1", "192.0.2.2"):
            browser = app_under_test.test_client()
            response = browser.post(
                "/auth/login",
                data={"email": "x@example.com", "password": "wrong password"},
                headers={"X-Forwarded-For": client_address},
            )
            answers.append(response.status_code)
        # Behind one trusted proxy the third try is another client; without, the same one.
        assert answers == ([200, 200, 200] if separate else [200, 200, 429])


# Passwords and e-mail changes ---------------------------------------------------------------------


@pytest.mark.parametrize("password", ["password", "12345678", "Qwertyuiop", "owner@example.com"])
def test_common_passwords_are_refused(logged_in, user, password):
    response = logged_in.post(
        "/auth/profile/password", data={"current_password": PASSWORD, "password": password, "password_again": password}
    )
    assert response.status_code == 400 and "too easy to guess" in response.get_data(as_text=True)
    db.session.refresh(user)
    assert user.check_password(PASSWORD)


def test_the_old_address_is_told_of_a_change(logged_in, user, smtp_sink, work):
    logged_in.post("/auth/profile/email", data={"email": "new@example.com", "password": PASSWORD})
    work()
    link = local_path(
        next(link for link in links_in(smtp_sink.to("new@example.com")[0]) if "/auth/profile/email/" in link)
    )
    logged_in.get(link)
    work()
    [notice] = smtp_sink.to("owner@example.com")
    assert "owner@example.com to new@example.com" in " ".join(notice.text.split())


# Nothing tells whether an address has an account ---------------------------------------------------


def test_changing_to_a_taken_address_answers_as_for_a_free_one(logged_in, user, smtp_sink, work):
    make_user("taken@example.com")
    pages = []
    for address in ("taken@example.com", "free@example.com"):
        answer = logged_in.post("/auth/profile/email", data={"email": address, "password": PASSWORD})
        assert answer.status_code == 302
        pages.append(logged_in.get(answer.location).get_data(as_text=True))
    assert "Follow the link we sent to taken@example.com" in pages[0]
    assert "Follow the link we sent to free@example.com" in pages[1]
    # Only the owner of the taken address, following the link, learns that it is taken.
    work()
    link = local_path(
        next(link for link in links_in(smtp_sink.to("taken@example.com")[0]) if "/auth/profile/email/" in link)
    )
    assert "Another account uses this e-mail address" in logged_in.get(link, follow_redirects=True).get_data(
        as_text=True
    )


@pytest.fixture
def password_hashing(app, monkeypatch):
    """Counts the password hash computations (they take the time), calling the real functions."""
    # The hash that matches nothing is made once per process, at the first unknown address.
    accounts.spend_password_check("warm up")
    calls = []
    for module in (accounts, user_model):
        for name in ("check_password_hash", "generate_password_hash"):
            real = getattr(werkzeug.security, name)

            def counting(*args, real=real, name=name, **kwargs):
                calls.append(name)
                return real(*args, **kwargs)

            if hasattr(module, name):
                monkeypatch.setattr(module, name, counting)
    return calls


def test_an_unknown_address_costs_a_password_check_like_a_wrong_password(client, user, password_hashing):
    login(client, user.email, "wrong password")
    for_wrong_password = list(password_hashing)
    password_hashing.clear()
    login(client, "nobody@example.com", "wrong password")
    assert password_hashing == for_wrong_password == ["check_password_hash"]


def test_registering_a_taken_address_hashes_the_password_like_a_new_one(client, user, password_hashing):
    form = {"password": "a long passphrase", "password_again": "a long passphrase", "timezone": "UTC"}
    assert client.post("/auth/register", data={**form, "email": "fresh@example.com"}).status_code == 302
    for_new_account = list(password_hashing)
    password_hashing.clear()
    assert client.post("/auth/register", data={**form, "email": user.email}).status_code == 302
    assert password_hashing == for_new_account == ["generate_password_hash"]
