"""The app's own e-mails, the test send and the mailing footer, in both languages: asserted on
what the SMTP sink received."""

import pytest

from mailer.extensions import db
from mailer.models import User
from mailer.services import accounts, dispatch
from tests.factories import PASSWORD, add_client, add_message, make_mailing, make_user
from tests.i18n.test_pages_in_russian import english_left
from tests.support import links_in, local_path, login

RU = {"Accept-Language": "ru"}
EN = {"Accept-Language": "en"}


def register(client, email: str, headers: dict):
    return client.post(
        "/auth/register",
        headers=headers,
        data={"email": email, "password": PASSWORD, "password_again": PASSWORD, "timezone": "Europe/Moscow"},
    )


def no_english(mail) -> None:
    """Neither part of the e-mail has an untranslated entry of the catalogue."""
    for part in (mail.text, mail.html or ""):
        assert not english_left(part.replace("\n", " ")), english_left(part)


def test_registration_in_russian_sends_the_confirmation_in_russian(app, client, work, smtp_sink):
    response = register(client, "olga@example.com", RU)
    assert response.status_code == 302
    page = client.get(response.location, headers=RU).get_data(as_text=True)
    assert "Почти готово: мы отправили ссылку для подтверждения на olga@example.com." in page
    work()
    [mail] = smtp_sink.wait_for(1)
    assert mail.subject == "Подтвердите адрес электронной почты"
    assert "Подтвердите адрес электронной почты для Mailer, открыв эту ссылку:" in mail.text
    assert "Ссылка действует 48 часов." in mail.text
    assert "Подтвердить адрес" in mail.html and 'lang="ru"' in mail.html
    no_english(mail)
    # The page the person read is the language the account keeps.
    assert accounts.find_user("olga@example.com").locale == "ru"


def test_registration_in_english_sends_the_confirmation_in_english(app, client, work, smtp_sink):
    register(client, "ann@example.com", EN)
    work()
    [mail] = smtp_sink.wait_for(1)
    assert mail.subject == "Confirm your e-mail address"
    assert "Confirm your e-mail address for Mailer by opening this link:" in mail.text
    assert "Подтвердите" not in mail.text + mail.html


def test_an_existing_account_is_told_in_its_own_language(app, client, work, smtp_sink):
    make_user("taken@example.com", locale="ru")
    register(client, "taken@example.com", EN)
    work()
    [mail] = smtp_sink.wait_for(1)
    assert mail.subject == "Кто-то пытался зарегистрироваться с вашим адресом"
    no_english(mail)


def test_password_reset_follows_the_users_setting_over_the_browser(app, client, work, smtp_sink):
    make_user("ru-user@example.com", locale="ru")
    make_user("en-user@example.com", locale="en")
    client.post("/auth/reset", headers=EN, data={"email": "ru-user@example.com"})
    client.post("/auth/reset", headers=RU, data={"email": "en-user@example.com"})
    work()
    mails = {mail.recipients[0]: mail for mail in smtp_sink.wait_for(2)}
    assert mails["ru-user@example.com"].subject == "Сброс пароля"
    assert "Ссылка сработает один раз и действует один час." in mails["ru-user@example.com"].text
    no_english(mails["ru-user@example.com"])
    assert mails["en-user@example.com"].subject == "Reset your password"
    assert "The link works once, for one hour." in mails["en-user@example.com"].text


def test_an_e_mail_change_is_confirmed_and_announced_in_russian(app, client, work, smtp_sink):
    make_user("before@example.com", locale="ru", full_name="Олег")
    login(client, "before@example.com")
    client.post("/auth/profile/email", headers=RU, data={"email": "after@example.com", "password": PASSWORD})
    work()
    [confirm] = smtp_sink.wait_for(1)
    assert confirm.subject == "Подтвердите новый адрес электронной почты"
    assert "Здравствуйте, Олег!" in confirm.text
    no_english(confirm)
    [link] = [link for link in links_in(confirm) if "/auth/profile/email/" in link]
    smtp_sink.reset()
    client.get(local_path(link), headers=RU)
    work()
    [changed] = smtp_sink.wait_for(1)
    assert changed.recipients == ["before@example.com"]
    assert changed.subject == "Адрес электронной почты в Mailer изменён"
    assert "изменён с before@example.com на after@example.com" in changed.text
    no_english(changed)


def test_a_sender_address_is_confirmed_in_russian(app, client, work, smtp_sink):
    make_user("owner@example.com", locale="ru")
    login(client, "owner@example.com")
    client.post("/senders/new", headers=RU, data={"name": "Магазин", "email": "shop@example.com"})
    work()
    [mail] = smtp_sink.wait_for(1)
    assert mail.subject == "Подтвердите адрес отправителя"
    assert "хочет отправлять письма из Mailer от имени shop@example.com" in mail.text
    no_english(mail)


@pytest.mark.parametrize(
    ("locale", "subject", "footer"),
    [
        ("ru", "[Тест] Новости для Ады", "Чтобы больше не получать эти письма, отпишитесь здесь:"),
        ("en", "[Test] Новости для Ады", "To stop receiving these e-mails, unsubscribe here:"),
    ],
)
def test_the_test_send_is_in_the_owners_language(app, client, work, smtp_sink, locale, subject, footer):
    owner = make_user("owner@example.com", locale=locale)
    add_client(owner, "ada@example.com", "Ады")
    message = add_message(owner, subject="Новости для {{ name }}", body_text="Текст.", body_html="<p>Текст.</p>")
    login(client, owner.email)
    client.post(f"/messages/{message.id}/test", headers=RU if locale == "en" else EN)
    work()
    [mail] = smtp_sink.wait_for(1)
    assert mail.subject == subject
    assert footer in mail.text


@pytest.mark.parametrize(
    ("locale", "text_footer", "html_link"),
    [
        ("ru", "Вы получили это письмо, потому что подписаны на нашу рассылку.", ">Отпишитесь</a>"),
        ("en", "You receive this e-mail because you are on our mailing list.", ">Unsubscribe</a>"),
    ],
)
def test_a_mailing_ends_with_the_footer_in_the_owners_language(app, work, smtp_sink, locale, text_footer, html_link):
    owner = make_user("sender@example.com", full_name="Sam Sender", locale=locale)
    mailing = make_mailing(owner, clients=2)
    mailing.message.body_html = "<p>Привет, {{ name }}</p>"
    db.session.commit()
    dispatch.dispatch_due_mailings()
    work()
    mails = smtp_sink.wait_for(2)
    assert len(mails) == 2
    for mail in mails:
        assert text_footer in mail.text
        assert html_link in mail.html


def test_the_block_notice_is_in_the_blocked_users_language(app, client, smtp_sink):
    user = make_user("blocked@example.com", locale="ru")
    login(client, user.email)
    accounts.set_blocked(db.session.get(User, user.id), True)
    user.blocked_reason = "спам"
    db.session.commit()
    page = client.get("/", headers=EN, follow_redirects=True).get_data(as_text=True)
    assert "Менеджер заблокировал вашу учётную запись, поэтому сеанс завершён." in page
    assert "Указанная причина: «спам»." in page
    assert not english_left(page)
