"""Lists by keyset: following the pages forward and back shows every row once, in a stable
order, however many rows share a sort value."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from mailer.extensions import db
from mailer.listing import decode_cursor, encode_cursor
from mailer.models import Client, Mailing, Message
from mailer.services import clients as client_service
from mailer.services import mailings as mailing_service
from mailer.services import paging
from tests.factories import make_user
from tests.support import login, page_link

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def owner(app):
    return make_user("owner@example.com")


def add_clients(owner, count: int) -> None:
    # Only five names and three creation times: most rows share their sort value with others.
    db.session.execute(
        insert(Client),
        [
            {
                "owner_id": owner.id,
                "email": f"c{n:03d}@example.com",
                "full_name": f"Name {n % 5}",
                "comment": "",
                "created_at": T0 + timedelta(hours=n % 3),
            }
            for n in range(count)
        ],
    )
    db.session.commit()


def walk(sort: str, owner, per_page: int = 7) -> tuple[list[int], list[int]]:
    """The ids of every page forward, then of every page back from the last."""
    forward, pages = [], []
    page = client_service.list_page(owner, sort=sort, per_page=per_page)
    while True:
        pages.append(page)
        forward += [client.id for client in page.items]
        if page.next is None:
            break
        page = client_service.list_page(
            owner, sort=sort, per_page=per_page, after=decode_cursor(encode_cursor(page.next))
        )
    backward = [client.id for client in page.items]
    while page.previous is not None:
        page = client_service.list_page(
            owner, sort=sort, per_page=per_page, before=decode_cursor(encode_cursor(page.previous))
        )
        backward = [client.id for client in page.items] + backward
    return forward, backward


@pytest.mark.parametrize("sort", ["name", "-name", "email", "-email", "created", "-created"])
def test_every_row_once_in_a_stable_order_both_ways(owner, sort):
    add_clients(owner, 40)
    column = client_service.SORT_COLUMNS[sort.lstrip("-")]
    order = (column.desc(), Client.id.desc()) if sort.startswith("-") else (column, Client.id)
    expected = list(db.session.scalars(select(Client.id).where(Client.owner_id == owner.id).order_by(*order)))

    forward, backward = walk(sort, owner)

    assert forward == expected and backward == expected
    assert len(set(forward)) == 40


def test_rows_added_meanwhile_neither_shift_nor_repeat_a_page(owner):
    add_clients(owner, 20)
    first = client_service.list_page(owner, sort="email", per_page=10)
    # New rows sorting before the cursor do not push rows of the first page onto the second.
    db.session.execute(
        insert(Client),
        [{"owner_id": owner.id, "email": f"a{n}@example.com", "full_name": "A", "comment": ""} for n in range(5)],
    )
    db.session.commit()
    second = client_service.list_page(owner, sort="email", per_page=10, after=first.next)
    assert [c.email for c in second.items] == [f"c{n:03d}@example.com" for n in range(10, 20)]
    assert second.next is None


def test_a_date_that_may_be_empty_sorts_the_empty_ones_last_both_ways(owner):
    message = Message(owner_id=owner.id, subject="S", body_text="B")
    db.session.add(message)
    db.session.flush()
    for n in range(9):
        next_run = T0 + timedelta(days=n % 3) if n % 2 else None
        db.session.add(
            Mailing(
                owner_id=owner.id, name=f"M{n}", message_id=message.id, start_at=T0, end_at=T0, next_run_at=next_run
            )
        )
    db.session.commit()

    for sort in ("next_run", "-next_run"):
        names, page = [], mailing_service.list_page(owner.id, sort=sort, per_page=2)
        while True:
            names += [m.name for m in page.items]
            if page.next is None:
                break
            page = mailing_service.list_page(
                owner.id, sort=sort, per_page=2, after=decode_cursor(encode_cursor(page.next))
            )
        mailings = {m.name: m for m in db.session.scalars(select(Mailing))}
        dated = [name for name in names if mailings[name].next_run_at is not None]
        assert names[: len(dated)] == dated and len(names) == 9 and len(set(names)) == 9
        assert [mailings[n].next_run_at for n in dated] == sorted(
            (mailings[n].next_run_at for n in dated), reverse=sort.startswith("-")
        )


@pytest.mark.parametrize(
    "cursor", [("x",), (1, 2, 3), ("Name", "not an id"), ("a\x00", 1), (2**70, 1), (True, 1), None]
)
def test_a_cursor_of_the_wrong_shape_shows_the_first_page(owner, cursor):
    add_clients(owner, 10)
    keys = paging.sort_keys(client_service.SORT_COLUMNS, "name", "name", Client.id)
    assert paging.checked_cursor(keys, cursor) is None
    page = client_service.list_page(owner, sort="name", per_page=4, after=cursor)
    assert page.previous is None and len(page.items) == 4


def test_the_pages_links_walk_the_list(app, owner):
    add_clients(owner, 30)
    client = app.test_client()
    login(client, owner.email)
    seen, url = [], "/clients/?sort=-created"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += response.get_data(as_text=True).count("@example.com</td>") * [url]
        url = page_link(response)
    assert len(seen) == 30
    assert "More than" not in client.get("/clients/").get_data(as_text=True)
