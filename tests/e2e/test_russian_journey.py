"""A Russian-speaking person uses Mailer in Russian from the first page to a sent mailing, and
switches the interface to English and back with the navbar."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.journeys import ADMIN, link_from_outbox, local_input_time, log_in
from tests.i18n.test_pages_in_russian import english_left

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("live-system")]


def assert_russian(page) -> None:
    html = page.content()
    assert '<html lang="ru"' in html
    assert not english_left(html), english_left(html)


def test_a_russian_speaker_registers_and_sends_a_mailing_in_russian(new_page, live_system):
    person = new_page(locale="ru-RU")
    person.goto("/")
    assert_russian(person)
    person.click("text=Зарегистрироваться")
    assert person.locator("label[for=password_again]").inner_text() == "Пароль ещё раз"
    person.fill("input[name=email]", "olga@example.com")
    person.fill("input[name=password]", "olga password 1")
    person.fill("input[name=password_again]", "olga password 2")
    person.fill("input[name=full_name]", "Ольга Петрова")
    person.select_option("select[name=timezone]", "Europe/Moscow")
    person.click("input[type=submit]")
    assert "Пароли не совпадают." in person.content()
    person.fill("input[name=password]", "olga password 1")
    person.fill("input[name=password_again]", "olga password 1")
    person.click("input[type=submit]")
    person.wait_for_url(re.compile(r"/auth/login"))
    assert "Почти готово: мы отправили ссылку для подтверждения на olga@example.com." in person.content()

    # The confirmation e-mail went out in the language she registered in.
    admin = new_page()
    log_in(admin, *ADMIN)
    admin.wait_for_url(re.compile(r"/$"))
    person.goto(link_from_outbox(admin, "olga@example.com", "Подтвердите адрес электронной почты", "/auth/confirm/"))
    assert "Адрес электронной почты подтверждён. Теперь можно войти." in person.content()
    log_in(person, "olga@example.com", "olga password 1")
    person.wait_for_url(re.compile(r"/$"))
    assert "Здравствуйте, Ольга Петрова" in person.content()
    assert_russian(person)

    person.goto("/clients/new")
    person.fill("input[name=email]", "ivan@example.com")
    person.fill("input[name=full_name]", "Иван Иванов")
    person.click("input[type=submit][value='Сохранить клиента']")
    assert "Клиент ivan@example.com добавлен." in person.content()
    person.goto("/clients/")
    assert "1 клиент." in person.content()
    assert_russian(person)

    person.goto("/messages/new")
    person.fill("input[name=subject]", "Весенний каталог для {{ name }}")
    person.fill("textarea[name=body_text]", "Здравствуйте, {{ name }}! Каталог вышел.")
    person.locator("#message-preview-state", has_text="актуально").wait_for()
    person.click("input[type=submit][value='Сохранить сообщение']")
    person.wait_for_url(re.compile(r"/messages/\d+$"))
    assert_russian(person)

    start = datetime.now(UTC) - timedelta(minutes=1)
    person.goto("/mailings/new")
    person.fill("input[name=name]", "Весна")
    person.select_option("select[name=message]", label="Весенний каталог для [name]")
    person.click("button[data-select=all]")
    assert person.locator("[data-count]").inner_text() == "Выбрано: 1 из 1"
    person.fill("input[name=start_at]", local_input_time(start))
    person.fill("input[name=end_at]", local_input_time(start + timedelta(days=7)))
    person.click("input[type=submit][value='Сохранить рассылку']")
    person.wait_for_url(re.compile(r"/runs/\d+$"))
    person.locator("#run-status", has_text="Завершён").wait_for(timeout=30_000)
    assert person.locator("[data-count=sent]").inner_text() == "1"
    assert_russian(person)

    # The mailing itself ends with the unsubscribe footer in her language.
    admin.goto("/outbox")
    admin.locator("tr", has_text="ivan@example.com").first.locator("a").click()
    assert "Чтобы больше не получать эти письма, отпишитесь здесь:" in admin.content()

    # The navbar's switcher: English for the rest of her visit (and saved in her profile), and back.
    person.click("nav button[value=en]")
    person.wait_for_url(re.compile(r"/runs/\d+$"))
    assert '<html lang="en"' in person.content() and "Done" in person.locator("#run-status").inner_text()
    person.click("nav button[value=ru]")
    assert "Завершён" in person.locator("#run-status").inner_text()
