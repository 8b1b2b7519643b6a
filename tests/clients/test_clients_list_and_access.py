import re

import pytest
from sqlalchemy import func, select

from mailer.extensions import db
from mailer.models import Client
from tests.factories import add_client
from tests.support import page_link


def names_on(page) -> list[str]:
    return re.findall(r'<a href="/clients/\d+">([^<]+)</a>', page.get_data(as_text=True))


@pytest.fixture
def three_clients(user):
    return [
        add_client(user, "carol@example.com", "Carol Bright"),
        add_client(user, "alice@sample.org", "Alice Zed"),
        add_client(user, "bob@example.com", "Bob Young"),
    ]


def test_list_shows_only_the_owners_clients(logged_in, user, other_owner, three_clients):
    add_client(other_owner, "secret@example.com", "Someone Else")
    page = logged_in.get("/clients/")
    assert names_on(page) == ["Alice Zed", "Bob Young", "Carol Bright"]
    assert b"secret@example.com" not in page.data
    assert b"Owner</th>" not in page.data


def test_search_by_email_or_name(logged_in, three_clients):
    assert names_on(logged_in.get("/clients/?q=SAMPLE.org")) == ["Alice Zed"]
    assert names_on(logged_in.get("/clients/?q=young")) == ["Bob Young"]
    assert names_on(logged_in.get("/clients/?q=example")) == ["Bob Young", "Carol Bright"]
    empty = logged_in.get("/clients/?q=nobody")
    assert b"No client matches this search" in empty.data


def test_search_treats_wildcards_as_text(logged_in, user, three_clients):
    add_client(user, "percent@example.com", "100% Real")
    assert names_on(logged_in.get("/clients/?q=%25")) == ["100% Real"]
    assert names_on(logged_in.get("/clients/?q=_")) == []


def test_sort_by_name_email_and_date(logged_in, three_clients):
    assert names_on(logged_in.get("/clients/?sort=-name")) == ["Carol Bright", "Bob Young", "Alice Zed"]
    assert names_on(logged_in.get("/clients/?sort=email")) == ["Alice Zed", "Bob Young", "Carol Bright"]
    assert names_on(logged_in.get("/clients/?sort=created")) == ["Carol Bright", "Alice Zed", "Bob Young"]
    assert names_on(logged_in.get("/clients/?sort=-created")) == ["Bob Young", "Alice Zed", "Carol Bright"]
    # An unknown sort falls back to the name.
    assert names_on(logged_in.get("/clients/?sort=password")) == ["Alice Zed", "Bob Young", "Carol Bright"]


def test_pages_follow_each_other_and_keep_search_and_sort(logged_in, user):
    for number in range(60):
        add_client(user, f"c{number:02}@example.com", f"Client {number:02}")
    first = logged_in.get("/clients/?q=example&sort=-email")
    assert len(names_on(first)) == 25
    assert names_on(first)[0] == "Client 59"
    assert page_link(first, "prev") is None and "60 clients." in first.get_data(as_text=True)
    second_url = page_link(first)
    assert "q=example" in second_url and "sort=-email" in second_url
    second = logged_in.get(second_url)
    third = logged_in.get(page_link(second))
    assert names_on(third) == [f"Client {n:02}" for n in range(9, -1, -1)]
    assert page_link(third) is None
    # Back from the third page: the second again.
    assert names_on(logged_in.get(page_link(third, "prev"))) == names_on(second)
    # A cursor that is no cursor shows the first page.
    assert names_on(logged_in.get("/clients/?after=abc&sort=-email"))[0] == "Client 59"
    assert logged_in.get("/clients/?page=abc&before=zz").status_code == 200


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/clients/{id}"),
        ("get", "/clients/{id}/edit"),
        ("post", "/clients/{id}/edit"),
        ("get", "/clients/{id}/delete"),
        ("post", "/clients/{id}/delete"),
    ],
)
def test_another_owners_client_answers_404(logged_in, other_owner, method, path):
    theirs = add_client(other_owner, "theirs@example.com", "Theirs")
    response = getattr(logged_in, method)(
        path.format(id=theirs.id), data={"email": "mine@example.com", "full_name": "Mine"}
    )
    assert response.status_code == 404
    db.session.refresh(theirs)
    assert theirs.email == "theirs@example.com"
    assert db.session.scalar(select(func.count(Client.id))) == 1


def test_anonymous_visitors_are_sent_to_login(client, user):
    ada = add_client(user, "ada@example.com")
    for path in ["/clients/", f"/clients/{ada.id}", "/clients/new", "/clients/import", "/clients/export.csv"]:
        response = client.get(path)
        assert response.status_code == 302 and "/auth/login" in response.location


def test_manager_sees_everyones_clients_with_owner_and_filter_but_edits_none(as_user, manager, user, other_owner):
    ada = add_client(user, "ada@example.com", "Ada")
    add_client(other_owner, "bob@example.com", "Bob")
    browser = as_user(manager)
    page = browser.get("/clients/")
    text = page.get_data(as_text=True)
    assert names_on(page) == ["Ada", "Bob"]
    assert "Owner</th>" in text and other_owner.email in text and "owner@example.com" in text
    assert f"/clients/{ada.id}/edit" not in text and f"/clients/{ada.id}/delete" not in text
    assert f'<option value="{other_owner.id}"' in text
    assert names_on(browser.get(f"/clients/?owner={other_owner.id}")) == ["Bob"]

    detail = browser.get(f"/clients/{ada.id}")
    assert detail.status_code == 200 and b"/edit" not in detail.data
    assert browser.get(f"/clients/{ada.id}/edit").status_code == 403
    assert browser.post(f"/clients/{ada.id}/edit", data={"email": "x@example.com", "full_name": "X"}).status_code == 403
    assert browser.post(f"/clients/{ada.id}/delete").status_code == 403
    db.session.refresh(ada)
    assert ada.email == "ada@example.com"


def test_owner_filter_is_ignored_for_owners(logged_in, user, other_owner):
    add_client(user, "ada@example.com", "Ada")
    add_client(other_owner, "bob@example.com", "Bob")
    assert names_on(logged_in.get(f"/clients/?owner={other_owner.id}")) == ["Ada"]


def test_admin_edits_and_deletes_anyones_client(as_user, admin, user):
    ada = add_client(user, "ada@example.com", "Ada")
    browser = as_user(admin)
    assert f"/clients/{ada.id}/edit".encode() in browser.get("/clients/").data
    response = browser.post(f"/clients/{ada.id}/edit", data={"email": "ada@example.com", "full_name": "Ada King"})
    assert response.status_code == 302
    db.session.refresh(ada)
    assert ada.full_name == "Ada King" and ada.owner_id == user.id
    assert browser.post(f"/clients/{ada.id}/delete").status_code == 302
    assert db.session.scalar(select(func.count(Client.id))) == 0
