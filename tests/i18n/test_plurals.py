"""Russian plural forms (one, few, many) for the numbers that tell them apart, on pages and in
messages; English keeps its two."""

import pytest
from flask_babel import force_locale, ngettext

from mailer.extensions import db
from mailer.models import Client
from tests.support import login

RUSSIAN_CLIENTS = {
    1: "1 клиент.",
    2: "2 клиента.",
    5: "5 клиентов.",
    11: "11 клиентов.",
    21: "21 клиент.",
    22: "22 клиента.",
    111: "111 клиентов.",
}


@pytest.mark.parametrize(("count", "expected"), RUSSIAN_CLIENTS.items())
def test_russian_plural_of_clients(app, count, expected):
    with app.test_request_context(), force_locale("ru"):
        assert ngettext("%(num)s client.", "%(num)s clients.", count) == expected


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, "1 запуск,"), (2, "2 запуска,"), (5, "5 запусков,"), (11, "11 запусков,"), (21, "21 запуск,")],
)
def test_russian_plural_of_runs(app, count, expected):
    with app.test_request_context(), force_locale("ru"):
        assert ngettext("%(num)s run,", "%(num)s runs,", count) == expected


@pytest.mark.parametrize(("count", "expected"), [(1, "1 client."), (2, "2 clients."), (21, "21 clients.")])
def test_english_plural(app, count, expected):
    with app.test_request_context(), force_locale("en"):
        assert ngettext("%(num)s client.", "%(num)s clients.", count) == expected


@pytest.mark.parametrize("count", [1, 2, 5, 11, 21])
def test_the_client_list_counts_in_russian(app, client, user, count):
    db.session.add_all(
        Client(owner=user, email=f"c{number}@example.com", full_name=f"Клиент {number}") for number in range(count)
    )
    db.session.commit()
    login(client, user.email)
    page = client.get("/clients/", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert RUSSIAN_CLIENTS[count] in page
