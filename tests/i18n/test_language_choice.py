"""Which language a page speaks: the profile's setting, else the one chosen with the switcher,
else the browser's Accept-Language, else DEFAULT_LOCALE; the CLI stays English."""

from datetime import timedelta

import pytest
from flask_babel import force_locale

from mailer import create_app
from mailer.extensions import db
from mailer.i18n import forget_locale
from mailer.models import User, utcnow
from tests.factories import PASSWORD, make_mailing, make_user
from tests.support import login


def readable(response) -> str:
    """The page with CLDR's non-breaking spaces as plain ones."""
    return response.get_data(as_text=True).replace("\xa0", " ").replace("\u202f", " ")


def html_lang(response) -> str:
    page = response.get_data(as_text=True)
    return page.split('<html lang="', 1)[1].split('"', 1)[0]


def test_english_without_accept_language(client):
    response = client.get("/auth/login")
    assert html_lang(response) == "en" and "Forgot your password?" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("ru", "ru"),
        ("ru-RU,ru;q=0.9,en;q=0.8", "ru"),
        ("de-DE, ru;q=0.5", "ru"),
        ("en-GB,en;q=0.9", "en"),
        ("de, fr", "en"),
        ("*", "en"),
    ],
)
def test_the_browser_chooses(client, header, language):
    assert html_lang(client.get("/auth/login", headers={"Accept-Language": header})) == language


def test_default_locale_when_the_browser_names_nothing_we_have(app, client):
    app.config["DEFAULT_LOCALE"] = "ru"
    assert html_lang(client.get("/auth/login")) == "ru"
    assert html_lang(client.get("/auth/login", headers={"Accept-Language": "de"})) == "ru"
    assert html_lang(client.get("/auth/login", headers={"Accept-Language": "en"})) == "en"


def test_an_unknown_default_locale_is_refused_at_start():
    with pytest.raises(RuntimeError, match="DEFAULT_LOCALE"):
        create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://", DEFAULT_LOCALE="de")


def test_the_switcher_works_before_logging_in_and_returns_to_the_page(client):
    response = client.post(
        "/language", data={"language": "ru", "next": "/auth/register?x=1"}, headers={"Accept-Language": "en"}
    )
    assert response.status_code == 302 and response.location == "/auth/register?x=1"
    assert html_lang(client.get("/auth/login", headers={"Accept-Language": "en"})) == "ru"
    client.post("/language", data={"language": "en", "next": "/"})
    assert html_lang(client.get("/auth/login", headers={"Accept-Language": "ru"})) == "en"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", ""])
def test_the_switcher_goes_back_only_to_this_site(client, target):
    response = client.post("/language", data={"language": "ru", "next": target})
    assert response.status_code == 302 and response.location == "/"


def test_an_unknown_language_changes_nothing(client):
    client.post("/language", data={"language": "xx", "next": "/"})
    assert html_lang(client.get("/auth/login")) == "en"


def test_the_switcher_saves_the_profile_of_a_logged_in_user(app, client, user):
    login(client, user.email)
    client.post("/language", data={"language": "ru", "next": "/"})
    assert db.session.get(User, user.id).locale == "ru"
    # Another browser, asking for English: the account's choice wins once logged in.
    elsewhere = app.test_client()
    assert html_lang(elsewhere.get("/auth/login", headers={"Accept-Language": "en"})) == "en"
    login(elsewhere, user.email)
    assert html_lang(elsewhere.get("/", headers={"Accept-Language": "en"})) == "ru"


def test_the_switcher_needs_the_csrf_token(app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/language", data={"language": "ru", "next": "/"})
    assert response.status_code == 400
    assert html_lang(client.get("/auth/login")) == "en"


def test_the_profile_sets_the_language_and_can_give_it_back_to_the_browser(client, user):
    login(client, user.email)
    form = {"full_name": "", "phone": "", "country": "", "timezone": "UTC"}
    client.post("/auth/profile", data={**form, "locale": "ru"})
    assert db.session.get(User, user.id).locale == "ru"
    assert html_lang(client.get("/auth/profile", headers={"Accept-Language": "en"})) == "ru"
    client.post("/auth/profile", data={**form, "locale": ""})
    assert db.session.get(User, user.id).locale is None
    assert html_lang(client.get("/auth/profile", headers={"Accept-Language": "en"})) == "en"
    assert html_lang(client.get("/auth/profile", headers={"Accept-Language": "ru"})) == "ru"
    assert client.post("/auth/profile", data={**form, "locale": "xx"}).status_code == 400


def test_the_language_chosen_before_logging_in_survives_the_login(client, user):
    client.post("/language", data={"language": "ru", "next": "/"})
    login(client, user.email)
    assert html_lang(client.get("/", headers={"Accept-Language": "en"})) == "ru"


def test_logging_out_keeps_the_language_the_user_was_reading(client):
    make_user("reader@example.com", locale="ru")
    login(client, "reader@example.com")
    response = client.post("/auth/logout", follow_redirects=True, headers={"Accept-Language": "en"})
    page = response.get_data(as_text=True)
    assert html_lang(response) == "ru" and "Вы вышли из системы." in page


def test_wtforms_own_messages_are_russian(client):
    page = client.post("/auth/login", data={"email": "", "password": ""}, headers={"Accept-Language": "ru"}).get_data(
        as_text=True
    )
    assert "Обязательное поле." in page and "This field is required." not in page


def test_dates_and_numbers_follow_the_locale_in_the_users_time_zone(app, client):
    from datetime import UTC, datetime

    from mailer.models import Client

    owner = make_user("zone@example.com", timezone="Europe/Moscow")
    db.session.add(
        Client(
            owner=owner, email="c@example.com", full_name="Клиент", created_at=datetime(2030, 1, 15, 21, 30, tzinfo=UTC)
        )
    )
    db.session.commit()
    login(client, owner.email)
    client_id = db.session.query(Client.id).scalar()
    russian, english = (
        readable(client.get(f"/clients/{client_id}", headers={"Accept-Language": language}))
        for language in ("ru", "en")
    )
    # 21:30 UTC is 00:30 the next day in Moscow.
    assert "16 янв. 2030 г., 00:30" in russian
    assert "2030-01-16 00:30" in english


def test_the_cli_stays_english(app):
    app.config["DEFAULT_LOCALE"] = "ru"
    make_user("cli@example.com")
    result = app.test_cli_runner().invoke(args=["users", "create", "cli@example.com", "--password", PASSWORD])
    assert "A user with the e-mail cli@example.com already exists." in result.output


def test_a_mailings_status_words_follow_each_requests_language(as_owner, owner):
    """Jinja keeps a macro file it imported: words fixed at import would stay in the language of
    the first page that used them."""
    make_mailing(owner, clients=1, start_at=utcnow() + timedelta(days=1))
    russian = as_owner.get("/mailings/", headers={"Accept-Language": "ru"}).text
    english = as_owner.get("/mailings/", headers={"Accept-Language": "en"}).text
    assert ">Запланирована<" in russian and "Ещё не отправлялась" in russian
    assert ">Scheduled<" in english and "Not sent yet" in english and "Запланирована" not in english


def test_templates_translate_in_the_language_of_a_forced_block(app):
    """Templates find the request's catalogue once and keep it; a block in another language
    (an e-mail to a user who reads Russian) must still get its own."""
    template = app.jinja_env.from_string(
        "{{ _('Clients') }} / {{ ngettext('%(num)s attempt.', '%(num)s attempts.', 5) }} / {{ gettext('Mailings') }}"
    )
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert template.render() == template.render() == "Clients / 5 attempts. / Mailings"
        with force_locale("ru"):
            assert template.render() == "Клиенты / 5 попыток. / Рассылки"
        assert template.render() == "Clients / 5 attempts. / Mailings"
    with app.test_request_context(headers={"Accept-Language": "ru"}):
        forget_locale()  # as every request starts (the test's app context outlives one request)
        assert template.render() == "Клиенты / 5 попыток. / Рассылки"
