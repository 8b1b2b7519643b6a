import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from flask import url_for
from sqlalchemy import event

from mailer import create_app
from mailer.extensions import cache, db
from mailer.models import Client, Mailing, MailingStatus, Message, Role
from mailer.services import clients as client_service
from mailer.services.stats import EVERYONE_KEY, clear_stats_cache, home_figures, owner_key
from tests.factories import make_user
from tests.support import free_port, login

STATS_TABLES = re.compile(r"\b(mailings|clients)\b", re.IGNORECASE)


def figures(test_client) -> dict[str, int]:
    page = test_client.get("/").get_data(as_text=True)
    return {label: int(value) for label, value in re.findall(r'data-figure="([^"]+)">(\d+)<', page)}


@contextmanager
def statements_on(engine):
    """Every SQL statement sent to the database inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def add_mailing(owner, status=MailingStatus.CREATED, clients=()):
    message = Message(owner=owner, subject="Hello", body_text="Hi")
    now = datetime.now(UTC)
    mailing = Mailing(
        owner=owner,
        name="News",
        message=message,
        start_at=now,
        end_at=now + timedelta(days=7),
        status=status,
        clients=list(clients),
    )
    db.session.add(mailing)
    db.session.commit()
    return mailing


def test_anonymous_visitors_see_the_landing_page(client):
    page = client.get("/").get_data(as_text=True)
    assert "Create an account" in page and "data-figure" not in page


def test_a_new_owner_is_told_what_to_do_first(client, user):
    login(client, user.email)
    page = client.get("/").get_data(as_text=True)
    assert "Get started" in page
    assert figures(client) == {"Mailings": 0, "Active mailings": 0, "Unique clients": 0}
    for endpoint in ["clients.create", "messages.create", "mailings.create"]:
        with client.application.test_request_context():
            assert f'href="{url_for(endpoint)}"' in page


def test_owner_sees_own_figures_and_managers_see_everyones(app, client):
    alice = make_user("alice@example.com")
    bob = make_user("bob@example.com")
    manager = make_user("manager@example.com", role=Role.MANAGER)
    shared = [
        Client(owner=alice, email="x@example.com", full_name="X"),
        Client(owner=alice, email="y@example.com", full_name="Y"),
        Client(owner=bob, email="x@example.com", full_name="X again"),
        Client(owner=bob, email="z@example.com", full_name="Z"),
    ]
    db.session.add_all(shared)
    add_mailing(alice, MailingStatus.RUNNING, shared[:2])
    add_mailing(alice, MailingStatus.FINISHED)
    add_mailing(bob, MailingStatus.RUNNING)
    add_mailing(bob, MailingStatus.CREATED)
    add_mailing(bob, MailingStatus.RUNNING)

    login(client, alice.email)
    assert figures(client) == {"Mailings": 2, "Active mailings": 1, "Unique clients": 2}
    assert "Get started" not in client.get("/").get_data(as_text=True)
    bob_client = app.test_client()
    login(bob_client, bob.email)
    assert figures(bob_client) == {"Mailings": 3, "Active mailings": 2, "Unique clients": 2}
    manager_client = app.test_client()
    login(manager_client, manager.email)
    # x@example.com is kept by both owners: one unique client.
    assert figures(manager_client) == {"Mailings": 5, "Active mailings": 3, "Unique clients": 3}
    assert "every user" in manager_client.get("/").get_data(as_text=True)


def test_a_repeat_request_does_not_query_the_statistics(app, client, user):
    add_mailing(user, MailingStatus.RUNNING)
    login(client, user.email)
    with statements_on(db.engine) as first:
        assert figures(client) == {"Mailings": 1, "Active mailings": 1, "Unique clients": 0}
    # The listener sees the three statistics queries of the first request...
    assert len([s for s in first if STATS_TABLES.search(s)]) == 3
    with statements_on(db.engine) as second:
        assert figures(client) == {"Mailings": 1, "Active mailings": 1, "Unique clients": 0}
    # ...and none on the second one, answered from Redis.
    assert [s for s in second if STATS_TABLES.search(s)] == []


def test_a_change_through_a_service_shows_on_the_next_request(app, client, user):
    manager = make_user("manager@example.com", role=Role.MANAGER)
    manager_client = app.test_client()
    login(client, user.email)
    login(manager_client, manager.email)
    assert figures(client)["Unique clients"] == 0
    assert figures(manager_client)["Unique clients"] == 0

    client_service.create_client(user, "new@example.com", "New Person")
    db.session.commit()
    assert figures(client)["Unique clients"] == 1
    assert figures(manager_client)["Unique clients"] == 1

    client_service.delete_client(db.session.query(Client).one())
    db.session.commit()
    assert figures(client)["Unique clients"] == 0
    assert figures(manager_client)["Unique clients"] == 0


def test_clear_stats_cache_clears_the_owner_and_everyone_but_not_other_owners(app, user):
    other = make_user("other@example.com")
    manager = make_user("manager@example.com", role=Role.MANAGER)
    for person in (user, other, manager):
        home_figures(person)
    assert cache.get(owner_key(user.id)) and cache.get(owner_key(other.id)) and cache.get(EVERYONE_KEY)
    clear_stats_cache(user.id)
    assert cache.get(owner_key(user.id)) is None and cache.get(EVERYONE_KEY) is None
    assert cache.get(owner_key(other.id)) is not None


def test_without_redis_the_figures_are_computed_from_the_database(app, database_uri):
    owner = make_user("owner@example.com")
    add_mailing(owner, MailingStatus.RUNNING)
    # Nothing listens on this port: every cache call fails at once.
    offline = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=database_uri,
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        RATELIMIT_ENABLED=False,
    )
    with offline.app_context():
        test_client = offline.test_client()
        test_client.post("/auth/login", data={"email": owner.email, "password": "correct horse battery"})
        response = test_client.get("/")
        assert response.status_code == 200
        assert figures(test_client) == {"Mailings": 1, "Active mailings": 1, "Unique clients": 0}
        clear_stats_cache(owner.id)
        db.session.remove()
