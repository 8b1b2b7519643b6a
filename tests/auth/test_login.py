import pytest

from mailer import create_app
from mailer.extensions import db
from mailer.services import accounts
from tests.factories import PASSWORD, make_user
from tests.support import login


def test_unknown_email_and_wrong_password_get_the_same_answer(client, user):
    unknown = login(client, "nobody@example.com")
    wrong = login(client, user.email, "wrong password")
    assert unknown.status_code == wrong.status_code == 200
    assert b"Invalid e-mail or password." in unknown.data
    assert unknown.data.replace(b"nobody@example.com", b"X") == wrong.data.replace(user.email.encode(), b"X")


def test_blocked_user_cannot_log_in(client, user):
    accounts.set_blocked(user, True)
    db.session.commit()
    response = login(client, user.email)
    assert response.status_code == 200
    assert b"blocked" in response.data
    assert client.get("/auth/profile").status_code == 302


def test_blocked_users_open_session_ends_at_next_request(client, user):
    assert login(client, user.email).status_code == 302
    assert client.get("/auth/profile").status_code == 200
    accounts.set_blocked(user, True)
    db.session.commit()
    response = client.get("/auth/profile")
    assert response.status_code == 302
    assert "/auth/login" in response.location


def test_password_change_ends_other_sessions(app, user):
    first, second = app.test_client(), app.test_client()
    login(first, user.email)
    login(second, user.email)
    response = first.post(
        "/auth/profile/password",
        data={"current_password": PASSWORD, "password": "a brand new secret", "password_again": "a brand new secret"},
    )
    assert response.status_code == 302
    assert first.get("/auth/profile").status_code == 200
    assert second.get("/auth/profile").status_code == 302


def test_remember_me_sets_an_http_only_cookie(client, user):
    response = login(client, user.email, remember="y")
    cookies = [value for name, value in response.headers.items() if name == "Set-Cookie"]
    remember = [c for c in cookies if c.startswith("remember_token=")]
    assert remember and "HttpOnly" in remember[0] and "SameSite=Lax" in remember[0]


def test_logout_needs_post(client, user):
    login(client, user.email)
    assert client.get("/auth/logout").status_code == 405
    client.post("/auth/logout")
    assert client.get("/auth/profile").status_code == 302


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/%09/evil.example",
        "http:/evil.example",
    ],
)
def test_next_only_leads_to_paths_of_this_site(client, user, target):
    response = client.post("/auth/login?next=" + target, data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.location == "/"


def test_next_to_a_local_path_is_followed(client, user):
    response = client.post("/auth/login?next=/auth/profile", data={"email": user.email, "password": PASSWORD})
    assert response.location == "/auth/profile"


def test_login_is_throttled_per_account(client, user):
    for _ in range(5):
        assert login(client, user.email, "wrong password").status_code == 200
    response = login(client, user.email, "wrong password")
    assert response.status_code == 429
    assert b"Too many attempts" in response.data
    # The form stays, with the address, for the try after the wait.
    assert f'name="email" required type="email" value="{user.email}"'.encode() in response.data
    assert b'name="password"' in response.data
    # Another account from the same address is not yet blocked.
    other = make_user("other@example.com")
    assert login(client, other.email).status_code == 302


def test_login_is_throttled_per_address(app, client, user):
    app.config["LOGIN_LIMIT_PER_ADDRESS"] = "3 per minute"
    for n in range(3):
        assert login(client, f"someone{n}@example.com").status_code == 200
    assert login(client, "yet-another@example.com").status_code == 429


def test_post_without_csrf_token_is_refused(app, user):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    response = login(client, user.email)
    assert response.status_code == 400
    assert b"The form expired" in response.data
    assert client.get("/auth/profile").status_code == 302


def test_session_cookie_flags(app):
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


@pytest.mark.parametrize("secret", [None, "", "dev-secret-key-change-me", "short"])
def test_production_refuses_to_start_without_a_real_secret_key(secret):
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("production", SECRET_KEY=secret)


def test_production_starts_with_a_real_secret_key():
    app = create_app("production", SECRET_KEY="x" * 40)
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]


def test_the_login_form_after_a_confirmation_has_the_address(client):
    from mailer.extensions import db
    from mailer.services import tokens

    user = make_user("fresh@example.com", email_confirmed_at=None)
    token = tokens.make_token(tokens.CONFIRM, {"uid": user.id, "email": user.email})
    response = client.get(f"/auth/confirm/{token}", follow_redirects=True)
    assert "Your e-mail address is confirmed." in response.text
    assert 'name="email" required type="email" value="fresh@example.com"' in response.text
    db.session.refresh(user)
    assert user.is_confirmed
