"""Searches ignore case in any alphabet, on SQLite as on PostgreSQL."""

import pytest
from sqlalchemy import func, select

from mailer.extensions import db
from mailer.models import Client, Mailing, Message, Repeat, utcnow
from tests.factories import make_user
from tests.support import login

SEARCHES = ["Иван", "иван", "ИВАН", "iVaN"]


@pytest.fixture
def owner_with_russian_names(app, client):
    owner = make_user("owner@example.com", role="manager", full_name="Иван Manager")
    message = Message(owner_id=owner.id, subject="Привет, Иван Ivan", body_text="Hello")
    db.session.add_all(
        [
            Client(owner_id=owner.id, email="ivan@example.com", full_name="Иван Петров Ivan"),
            Client(owner_id=owner.id, email="olga@example.com", full_name="Ольга Смирнова"),
            message,
        ]
    )
    db.session.flush()
    db.session.add(
        Mailing(
            owner=owner, name="Для Ивана Ivan", message=message, start_at=utcnow(), end_at=utcnow(), repeat=Repeat.NONE
        )
    )
    db.session.commit()
    login(client, owner.email)
    return client


@pytest.mark.parametrize("search", SEARCHES)
def test_every_list_finds_cyrillic_names_whatever_their_case(owner_with_russian_names, search):
    browser = owner_with_russian_names
    clients = browser.get("/clients/", query_string={"q": search}).text
    assert "Иван Петров" in clients and "Ольга" not in clients
    assert "Привет, Иван" in browser.get("/messages/", query_string={"q": search}).text
    assert "Для Ивана" in browser.get("/mailings/", query_string={"q": search[:3]}).text
    assert "Иван Manager" in browser.get("/users/", query_string={"q": search}).text


def test_lower_knows_every_alphabet(app):
    assert db.session.scalar(select(func.lower("ИВАН Straße ÆØÅ"))) == "иван straße æøå"
