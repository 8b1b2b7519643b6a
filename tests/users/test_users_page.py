import re
from datetime import UTC, datetime, timedelta

from flask import g

from mailer.extensions import db
from mailer.models import Client, Mailing, Message, Role, User
from mailer.services import accounts
from mailer.services.dispatch import dispatch_due_mailings
from tests.factories import make_user
from tests.support import login, page_link

ROW = re.compile(r'<tr id="user-(\d+)"')


def users_page(client, **query):
    return client.get("/users/", query_string=query)


def test_owners_and_anonymous_visitors_do_not_find_the_page(app, client):
    owner = make_user("owner@example.com")
    target = make_user("target@example.com")
    assert client.get("/users/").status_code == 302
    login(client, owner.email)
    assert client.get("/users/").status_code == 404
    assert client.post(f"/users/{target.id}/block").status_code == 404
    assert client.post(f"/users/{target.id}/unblock").status_code == 404
    db.session.refresh(target)
    assert target.is_active


def test_manager_sees_every_user_with_roles_and_state(app, client):
    manager = make_user("manager@example.com", role=Role.MANAGER, full_name="Mona Manager")
    make_user("admin@example.com", role=Role.ADMIN)
    blocked = make_user("blocked@example.com", full_name="Bea Blocked")
    accounts.set_blocked(blocked, True)
    db.session.commit()
    login(client, manager.email)
    response = users_page(client)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for email in ("manager@example.com", "admin@example.com", "blocked@example.com"):
        assert email in page
    assert "Mona Manager" in page and "Bea Blocked" in page
    assert ">admin</span>" in page and ">manager</span>" in page
    assert "blocked</span>" in page and "since " + blocked.blocked_at.strftime("%Y-%m-%d") in page
    # Buttons only where they can be used: the blocked user, not the admin nor oneself.
    assert f'action="/users/{blocked.id}/unblock"' in page
    assert f"/users/{manager.id}/block" not in page
    admin_row = page.split("admin@example.com")[1].split("</tr>")[0]
    assert "/block" not in admin_row and "/unblock" not in admin_row


def test_navbar_shows_users_to_managers_only(app, client):
    owner = make_user("owner@example.com")
    manager = make_user("manager@example.com", role=Role.MANAGER)
    login(client, owner.email)
    assert 'href="/users/"' not in client.get("/").get_data(as_text=True)
    client.post("/auth/logout")
    login(client, manager.email)
    assert 'href="/users/"' in client.get("/").get_data(as_text=True)


def test_search_and_pagination(app, client):
    manager = make_user("manager@example.com", role=Role.MANAGER)
    for number in range(30):
        make_user(f"person{number:02d}@example.com", full_name=f"Person {number:02d}")
    make_user("zed@example.com", full_name="Zed 100%_Sure")
    login(client, manager.email)

    first_page = users_page(client)
    second_page = client.get(page_link(first_page))
    first, second = first_page.get_data(as_text=True), second_page.get_data(as_text=True)
    rows_first, rows_second = set(ROW.findall(first)), set(ROW.findall(second))
    assert len(rows_first) == 25 and len(rows_second) == 7 and not rows_first & rows_second
    assert 'aria-sort="descending"' in first and re.search(r"\b3\d users\.", first)

    found = users_page(client, q="PERSON0").get_data(as_text=True)
    assert "person05@example.com" in found and "person15@example.com" not in found
    assert "zed@example.com" not in found
    # % and _ are literal characters in a search, not wildcards.
    assert "zed@example.com" in users_page(client, q="100%_").get_data(as_text=True)
    assert "person05@example.com" not in users_page(client, q="%").get_data(as_text=True)
    nothing = users_page(client, q="nobody-like-this").get_data(as_text=True)
    assert "No user" in nothing
    assert users_page(client, after="x").status_code == 200
    assert users_page(client, before="W1siYSJdXQ").status_code == 200


def test_block_ends_the_session_at_the_next_request_and_unblock_allows_login(app):
    manager = make_user("manager@example.com", role=Role.MANAGER)
    target = make_user("target@example.com")
    manager_client, target_client = app.test_client(), app.test_client()
    login(manager_client, manager.email)
    login(target_client, target.email)
    assert target_client.get("/auth/profile").status_code == 200

    confirmation = manager_client.get(f"/users/{target.id}/block?next=/users/%3Fq%3Dtarget").text
    assert "Block target@example.com?" in confirmation and 'name="reason"' in confirmation
    db.session.refresh(target)
    assert target.is_active  # asking is not blocking

    response = manager_client.post(
        f"/users/{target.id}/block", data={"next": "/users/?q=target", "reason": "Sent spam to bought lists"}
    )
    assert response.status_code == 302 and response.location == "/users/?q=target"
    db.session.refresh(target)
    assert not target.is_active and target.blocked_at is not None
    assert target.blocked_reason == "Sent spam to bought lists"
    users_page = manager_client.get("/users/").get_data(as_text=True)
    assert "is blocked" in users_page and "“Sent spam to bought lists”" in users_page

    # The blocked user's next click tells them, with the reason, before any password is typed.
    response = target_client.get("/auth/profile")
    assert response.status_code == 302 and "/auth/login" in response.location
    told = target_client.get(response.location).get_data(as_text=True)
    assert "Your account has been blocked by a manager" in told and "Sent spam to bought lists" in told
    assert "Please log in to see this page" not in told
    assert "blocked" in login(target_client, target.email).get_data(as_text=True)

    manager_client.post(f"/users/{target.id}/unblock")
    db.session.refresh(target)
    assert target.is_active and target.blocked_at is None
    assert login(target_client, target.email).status_code == 302
    assert target_client.get("/auth/profile").status_code == 200


def test_admins_and_oneself_cannot_be_blocked(app, client):
    manager = make_user("manager@example.com", role=Role.MANAGER)
    admin = make_user("admin@example.com", role=Role.ADMIN)
    login(client, manager.email)
    response = client.post(f"/users/{admin.id}/block", follow_redirects=True)
    assert "Admins cannot be blocked" in response.get_data(as_text=True)
    response = client.post(f"/users/{manager.id}/block", follow_redirects=True)
    assert "You cannot block or unblock yourself" in response.get_data(as_text=True)
    db.session.refresh(admin)
    db.session.refresh(manager)
    assert admin.is_active and manager.is_active
    assert client.get("/users/").status_code == 200


def test_admin_can_block_a_manager_but_not_another_admin(app, client):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    other_admin = make_user("admin2@example.com", role=Role.ADMIN)
    manager = make_user("manager@example.com", role=Role.MANAGER)
    login(client, admin.email)
    client.post(f"/users/{manager.id}/block")
    client.post(f"/users/{other_admin.id}/block")
    assert not db.session.get(User, manager.id).is_active
    assert db.session.get(User, other_admin.id).is_active


def test_unknown_user_and_wrong_method(app, client):
    manager = make_user("manager@example.com", role=Role.MANAGER)
    login(client, manager.email)
    assert client.post("/users/9999/block").status_code == 404
    assert client.get(f"/users/{manager.id}/unblock").status_code == 405


TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def page_token(client, path: str) -> str:
    # The test keeps one app context for all its requests; a server starts each request with a
    # fresh `g`, where Flask-WTF caches the token.
    g.pop("csrf_token", None)
    return TOKEN.search(client.get(path).get_data(as_text=True)).group(1)


def test_block_needs_a_csrf_token(app):
    app.config["WTF_CSRF_ENABLED"] = True
    manager = make_user("manager@example.com", role=Role.MANAGER)
    target = make_user("target@example.com")
    client = app.test_client()
    client.post(
        "/auth/login",
        data={
            "email": manager.email,
            "password": "correct horse battery",
            "csrf_token": page_token(client, "/auth/login"),
        },
    )
    assert client.post(f"/users/{target.id}/block").status_code == 400
    assert client.post(f"/users/{target.id}/block", data={"csrf_token": "forged"}).status_code == 400
    assert db.session.get(User, target.id).is_active
    token = page_token(client, "/users/")
    assert client.post(f"/users/{target.id}/block", data={"csrf_token": token}).status_code == 302
    db.session.refresh(target)
    assert not target.is_active


def test_a_blocked_users_mailing_is_not_sent_until_unblocked(app, client, work, smtp_sink):
    manager = make_user("manager@example.com", role=Role.MANAGER)
    owner = make_user("owner@example.com")
    now = datetime.now(UTC)
    recipient = Client(owner=owner, email="reader@example.com", full_name="Reader")
    message = Message(owner=owner, subject="Weekly news", body_text="Hello")
    db.session.add(
        Mailing(
            owner=owner,
            name="News",
            message=message,
            clients=[recipient],
            start_at=now - timedelta(minutes=5),
            end_at=now + timedelta(days=1),
            next_run_at=now - timedelta(minutes=1),
        )
    )
    db.session.commit()
    login(client, manager.email)

    client.post(f"/users/{owner.id}/block")
    assert dispatch_due_mailings() == []
    work()
    assert smtp_sink.to("reader@example.com") == []

    client.post(f"/users/{owner.id}/unblock")
    assert len(dispatch_due_mailings()) == 1
    work()
    assert [mail.subject for mail in smtp_sink.wait_for(1)] == ["Weekly news"]
