"""Every page, as each role sees it with `Accept-Language: ru`, has no English left from the
catalogue: the pages of the access-control matrix (built from the URL map, so a new page cannot
escape) are opened as a visitor, an owner, a manager and an admin, and the visible text of each
(text, titles, placeholders, labels of buttons) is searched for the English of every entry.

A short entry ("Sent", "Owner") counts only where it makes a whole text or attribute of its own;
a longer one also inside a sentence, by its longest literal piece (placeholders and tags cut
out). Entries that read the same in both languages ("HTML", "TLS") are not searched for.
"""

import re
from html.parser import HTMLParser

import pytest
from babel.messages.pofile import read_po

from mailer.extensions import db
from mailer.models import Client, Role, Security, SmtpServer, User
from mailer.services import unsubscribe
from tests.access.test_matrix import ROUTES, Route, is_hidden, make_objects
from tests.factories import make_user
from tests.i18n.test_catalogue import CATALOGUE
from tests.support import login

RU = {"Accept-Language": "ru"}
# Pages that are not the site's own: rq-dashboard has no translations and stays English.
NOT_OURS = ("rq_dashboard",)
# Role names are identifiers stored in the database (`flask users create --role admin`); the
# admin panel's table of roles shows them as they are.
DATA_ON_ADMIN_PAGES = {"admin", "manager"}
# Attributes whose text a person reads (or hears, with a screen reader).
READ_ATTRIBUTES = {
    "title",
    "placeholder",
    "aria-label",
    "alt",
    "data-template",
    "data-updating",
    "data-updated",
    "data-failed",
    "data-label-now",
    "data-label-later",
}
SHORT = 24  # characters: shorter entries must match a whole text


class VisibleText(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        attributes = dict(attrs)
        for name, value in attributes.items():
            if value and (
                name in READ_ATTRIBUTES or (name == "value" and attributes.get("type") in ("submit", "button"))
            ):
                self.pieces.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.pieces.append(data)


def visible_pieces(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return [" ".join(piece.split()) for piece in parser.pieces]


def english_probes() -> tuple[set[str], set[str]]:
    """(whole texts, pieces of sentences) whose presence means an untranslated entry."""
    with CATALOGUE.open("rb") as file:
        catalogue = read_po(file)
    whole, pieces = set(), set()
    for message in catalogue:
        if not message.id:
            continue
        originals = [message.id] if isinstance(message.id, str) else list(message.id)
        translations = [message.string] if isinstance(message.string, str) else list(message.string)
        for original in originals:
            if original in translations:
                continue
            literal = re.split(r"%\(\w+\)s|<[^>]+>|&lt;|&gt;", original)
            longest = max((" ".join(part.split()) for part in literal), key=len)
            if "%(" not in original and "<" not in original:
                whole.add(" ".join(original.split()))
            if len(longest) >= SHORT and longest not in translations:
                pieces.add(longest)
    return whole, pieces


WHOLE, PIECES = english_probes()


def english_left(html: str) -> list[str]:
    texts = visible_pieces(html)
    page = " ".join(texts)
    found = {text for text in texts if text in WHOLE}
    found |= {piece for piece in PIECES if piece in page}
    return sorted(found)


@pytest.fixture
def people(app):
    owner = make_user("owner-a@example.com", full_name="Анна Владелец")
    manager = make_user("manager@example.com", role=Role.MANAGER)
    admin = make_user("admin@example.com", role=Role.ADMIN)
    ids = make_objects(owner)
    server = SmtpServer(name="Relay", host="127.0.0.1", port=2525, security=Security.NONE)
    db.session.add(server)
    db.session.commit()
    ids["server"] = server.id
    return {"owner": owner, "manager": manager, "admin": admin}, ids


def path_for(route: Route, ids: dict[str, int]) -> str:
    objects = {
        "client_id": "client",
        "message_id": "message",
        "mailing_id": "mailing",
        "run_id": "run",
        "delivery_id": "delivery",
        "attempt_id": "attempt",
        "user_id": "user",
        "identity_id": "identity",
        "server_id": "server",
    }
    values = {name: ids[objects[name]] if converter == "int" else "x" for name, converter in route.arguments.items()}
    return route.path(values)


def pages_for(role: str) -> list[Route]:
    routes = [route for route in ROUTES if "GET" in route.methods and not route.endpoint.startswith(NOT_OURS)]
    if role == "admin":
        return routes
    routes = [route for route in routes if not is_hidden(route)]
    if role == "owner":
        return [route for route in routes if route.blueprint != "users"]
    return routes


def walk(client, routes, ids) -> tuple[list[str], int]:
    failures, checked = [], 0
    for route in routes:
        path = path_for(route, ids)
        response = client.get(path, headers=RU)
        if response.status_code in (301, 302, 303):
            response = client.get(response.location, headers=RU)
        if not response.mimetype == "text/html":
            continue
        checked += 1
        left = english_left(response.get_data(as_text=True))
        if route.endpoint.startswith("admin"):
            left = [text for text in left if text not in DATA_ON_ADMIN_PAGES]
        if left:
            failures.append(f"{path} ({route.endpoint}, {response.status_code}): {left}")
    return failures, checked


@pytest.mark.parametrize("role", ["owner", "manager", "admin"])
def test_every_page_is_russian_for_each_role(app, client, people, role):
    users, ids = people
    login(client, users[role].email)
    failures, checked = walk(client, pages_for(role), ids)
    assert checked >= 20
    assert not failures, "English left on Russian pages:\n" + "\n".join(failures)


def test_public_pages_are_russian(app, client, people):
    users, ids = people
    public = [
        route for route in ROUTES if "GET" in route.methods and route.blueprint in ("auth", "main", "unsubscribe")
    ]
    failures, checked = walk(client, public, ids)
    assert checked >= 5
    assert not failures, "English left on Russian pages:\n" + "\n".join(failures)


def test_the_unsubscribe_page_speaks_the_owners_language(app, client, people):
    users, ids = people
    owner = users["owner"]
    owner.locale = "ru"
    db.session.commit()
    token = unsubscribe.unsubscribe_token(db.session.get(Client, ids["client"]))
    # The visitor's browser asks for English; the mailing came from a Russian owner.
    page = client.get(f"/unsubscribe/{token}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Отписаться" in page and not english_left(page)
    done = client.post(f"/unsubscribe/{token}").get_data(as_text=True)
    assert "Вы отписались" in done and not english_left(done)
    owner.locale = "en"
    db.session.commit()
    assert "Unsubscribe" in client.get(f"/unsubscribe/{token}", headers=RU).get_data(as_text=True)


def test_the_probes_find_english(app, client, people):
    """A guard against a walk that cannot fail: the same pages in English are full of it."""
    users, ids = people
    login(client, users["owner"].email)
    page = client.get("/mailings/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert {"Mailings", "New mailing"} <= set(english_left(page))
    assert User.query.count() == 3
