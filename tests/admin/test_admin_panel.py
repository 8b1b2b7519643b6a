import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import g
from sqlalchemy import insert

from mailer.extensions import db
from mailer.models import (
    AttemptStatus,
    Client,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingAttempt,
    MailingRun,
    Message,
    Role,
    RunTrigger,
    User,
)
from mailer.services import mailings as mailing_service
from tests.factories import PASSWORD, make_user
from tests.support import client_ids, login

MODEL_LISTS = ["users", "roles", "clients", "messages", "mailings", "runs", "deliveries", "attempts"]


@pytest.fixture
def records(app):
    """One record of every model, owned by an ordinary user."""
    owner = make_user("owner@example.com")
    client = Client(owner=owner, email="alice@example.com", full_name="Alice")
    message = Message(owner=owner, subject="Hello", body_text="Hi")
    now = datetime.now(UTC)
    mailing = Mailing(
        owner=owner, name="Spring news", message=message, clients=[client], start_at=now, end_at=now + timedelta(days=1)
    )
    run = MailingRun(mailing=mailing, trigger=RunTrigger.MANUAL, scheduled_for=now, total_count=1)
    delivery = Delivery(run=run, client=client, email=client.email, status=DeliveryStatus.SENT)
    db.session.add_all([client, message, mailing, run, delivery])
    db.session.flush()
    db.session.add(
        MailingAttempt(
            mailing=mailing,
            run=run,
            delivery=delivery,
            client=client,
            email=client.email,
            status=AttemptStatus.SUCCESS,
            smtp_code=250,
            smtp_response="2.0.0 Accepted",
        )
    )
    db.session.commit()
    return {"owner": owner, "client": client, "message": message, "mailing": mailing, "run": run, "delivery": delivery}


PANEL_FILE = "/admin/static/bootstrap/bootstrap4/css/bootstrap.min.css"


def hash_method(app) -> str:
    """How a stored password hash starts ("scrypt", "pbkdf2"): no page may show one."""
    return app.config["PASSWORD_HASH_METHOD"].split(":")[0] + ":"


def admin_paths(records) -> list[str]:
    paths = ["/admin/", "/admin", PANEL_FILE]
    for name in MODEL_LISTS:
        paths += [f"/admin/{name}/", f"/admin/{name}/new/", f"/admin/{name}/details/?id=1", f"/admin/{name}/edit/?id=1"]
    return paths


@pytest.mark.parametrize("role", [None, "owner", Role.MANAGER])
def test_the_panel_does_not_exist_for_anyone_but_admins(app, client, records, role):
    if role is not None:
        user = records["owner"] if role == "owner" else make_user("manager@example.com", role=role)
        login(client, user.email)
    for path in admin_paths(records):
        assert client.get(path).status_code == 404, path
    for path in [
        "/admin/clients/new/",
        "/admin/clients/edit/?id=1",
        "/admin/clients/delete/",
        "/admin/users/edit/?id=1",
        "/admin/clients/action/",
    ]:
        assert client.post(path, data={"id": "1", "email": "x@example.com"}).status_code == 404, path
    assert client.get("/admin/users/ajax/lookup/?name=owner&query=a").status_code == 404
    assert db.session.get(Client, records["client"].id).email == "alice@example.com"


def test_the_panels_front_page_counts_thousands_in_the_readers_language(app, client):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    db.session.execute(
        insert(Client), [{"owner_id": admin.id, "email": f"c{n}@example.com", "full_name": "C"} for n in range(1234)]
    )
    db.session.commit()
    login(client, admin.email)
    english = client.get("/admin/", headers={"Accept-Language": "en"})
    assert english.status_code == 200 and ">1,234<" in english.text
    russian = client.get("/admin/", headers={"Accept-Language": "ru"})
    assert russian.status_code == 200 and ">1\xa0234<" in russian.text


def test_admin_opens_the_panel_and_every_model_list(app, client, records):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    login(client, admin.email)
    index = client.get("/admin/")
    assert index.status_code == 200
    page = index.get_data(as_text=True)
    for name in MODEL_LISTS:
        assert f'href="/admin/{name}/"' in page
    for name in MODEL_LISTS:
        response = client.get(f"/admin/{name}/")
        assert response.status_code == 200, name
        assert client.get(f"/admin/{name}/details/?id=1").status_code == 200, name
    with client.get(PANEL_FILE) as panel_file:  # a file response: closed when read
        assert panel_file.status_code == 200
    assert client.get("/admin").location == "/admin/"
    users = client.get("/admin/users/").get_data(as_text=True)
    assert "owner@example.com" in users and hash_method(app) not in users
    assert "Accepted" in client.get("/admin/attempts/").get_data(as_text=True)
    assert "Admin" in client.get("/").get_data(as_text=True)


def test_admin_edit_forms_open_and_never_show_password_hashes(app, client, records):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    login(client, admin.email)
    for name in ["users", "roles", "clients", "messages", "mailings"]:
        response = client.get(f"/admin/{name}/edit/?id=1")
        assert response.status_code == 200, name
    user_form = client.get(f"/admin/users/edit/?id={records['owner'].id}").get_data(as_text=True)
    assert "password" not in user_form.lower() and hash_method(app) not in user_form
    # The sending records are read-only.
    for name in ["runs", "deliveries", "attempts"]:
        assert client.get(f"/admin/{name}/edit/?id=1").status_code in (302, 403, 404), name
        assert client.get(f"/admin/{name}/new/").status_code in (302, 403, 404), name
        client.post(f"/admin/{name}/delete/", data={"id": "1"})
    assert db.session.get(MailingAttempt, 1) is not None and db.session.get(Delivery, 1) is not None


def test_admin_edits_a_client_and_the_home_figures_follow(app, client, records):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    owner_client = app.test_client()
    login(owner_client, records["owner"].email)
    assert figure(owner_client, "Unique clients") == 1
    login(client, admin.email)
    response = client.post(
        "/admin/clients/new/",
        data={"owner": str(records["owner"].id), "email": "bob@example.com", "full_name": "Bob", "comment": ""},
    )
    assert response.status_code == 302
    created = db.session.query(Client).filter_by(email="bob@example.com").one()
    assert created.owner_id == records["owner"].id
    assert figure(owner_client, "Unique clients") == 2

    client.post("/admin/clients/delete/", data={"id": str(created.id)})
    assert db.session.get(Client, created.id) is None
    assert figure(owner_client, "Unique clients") == 1


def test_admin_blocking_a_user_ends_their_session(app, client, records):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    owner = records["owner"]
    owner_client = app.test_client()
    login(owner_client, owner.email)
    login(client, admin.email)
    response = client.post(
        f"/admin/users/edit/?id={owner.id}",
        data={
            "email": owner.email,
            "full_name": "Owner",
            "phone": "",
            "country": "",
            "timezone": "UTC",
            "email_confirmed_at": "2026-01-01 10:00:00",
        },
    )  # the unchecked box blocks the user
    assert response.status_code == 302
    db.session.refresh(owner)
    assert not owner.is_active and owner.blocked_at is not None and owner.full_name == "Owner"
    assert owner.email_confirmed_at == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert owner_client.get("/auth/profile").status_code == 302


def test_admin_cannot_block_or_delete_themselves(app, client):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    login(client, admin.email)
    response = client.post(f"/admin/users/edit/?id={admin.id}", data={"email": admin.email, "timezone": "UTC"})
    assert "You cannot remove your own admin role" in response.get_data(as_text=True)
    role_id = str(admin.roles[0].id)
    response = client.post(
        f"/admin/users/edit/?id={admin.id}", data={"email": admin.email, "timezone": "UTC", "roles": role_id}
    )
    assert "You cannot block yourself" in response.get_data(as_text=True)
    client.post("/admin/users/delete/", data={"id": str(admin.id)})
    db.session.expire_all()
    assert db.session.get(User, admin.id).is_active and db.session.get(User, admin.id).is_admin
    assert client.get("/admin/").status_code == 200


def test_admin_message_html_is_sanitised_and_subject_single_line(app, client, records):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    login(client, admin.email)
    message = records["message"]
    client.post(
        f"/admin/messages/edit/?id={message.id}",
        data={
            "owner": str(records["owner"].id),
            "subject": "Hello",
            "body_text": "Hi",
            "body_html": '<p onclick="x()">Hi<script>alert(1)</script><a href="javascript:alert(1)">x</a></p>',
        },
    )
    db.session.refresh(message)
    assert "<p>" in message.body_html
    assert "script" not in message.body_html and "onclick" not in message.body_html
    assert "javascript" not in message.body_html
    client.post(
        f"/admin/messages/edit/?id={message.id}",
        data={"owner": str(records["owner"].id), "subject": "Hello\r\nBcc: x@example.com", "body_text": "Hi"},
    )
    db.session.refresh(message)
    assert message.subject == "Hello"


def test_admin_mailing_cannot_mix_owners(app, client, records):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    stranger = make_user("stranger@example.com")
    login(client, admin.email)
    mailing = records["mailing"]
    response = client.post(
        f"/admin/mailings/edit/?id={mailing.id}",
        data={
            "owner": str(stranger.id),
            "name": "Moved",
            "message": str(records["message"].id),
            "clients": str(records["client"].id),
            "start_at": "2026-01-01 10:00:00",
            "end_at": "2026-02-01 10:00:00",
            "repeat": "weekly",
            "status": "created",
        },
    )
    assert response.status_code == 200
    assert "must belong to the mailing" in response.get_data(as_text=True)
    db.session.refresh(mailing)
    assert mailing.owner_id == records["owner"].id and mailing.name == "Spring news"

    response = client.post(
        f"/admin/mailings/edit/?id={mailing.id}",
        data={
            "owner": str(records["owner"].id),
            "name": "Renamed",
            "message": str(records["message"].id),
            "clients": str(records["client"].id),
            "start_at": "2026-01-01 10:00:00",
            "end_at": "2026-02-01 10:00:00",
            "repeat": "weekly",
            "status": "running",
        },
    )
    assert response.status_code == 302
    db.session.refresh(mailing)
    assert mailing.name == "Renamed" and mailing.repeat == "weekly" and mailing.status == "running"
    assert mailing.start_at == datetime(2026, 1, 1, 10, tzinfo=UTC)


def test_admin_schedule_edits_recompute_the_next_run(app, client, records):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    login(client, admin.email)
    mailing = records["mailing"]
    start = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    response = client.post(
        f"/admin/mailings/edit/?id={mailing.id}",
        data={
            "owner": str(records["owner"].id),
            "name": "Spring news",
            "message": str(records["message"].id),
            "clients": str(records["client"].id),
            "start_at": f"{start:%Y-%m-%d %H:%M:%S}",
            "end_at": f"{start + timedelta(days=30):%Y-%m-%d %H:%M:%S}",
            "repeat": "daily",
        },
    )
    assert response.status_code == 302
    db.session.refresh(mailing)
    assert mailing.next_run_at == start


TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def test_admin_forms_carry_a_csrf_token_that_is_checked(app, records):
    app.config["WTF_CSRF_ENABLED"] = True
    admin = make_user("admin@example.com", role=Role.ADMIN)
    client = app.test_client()

    def token(path: str) -> str:
        # One app context serves all the test's requests; a server gives each a fresh `g`.
        g.pop("csrf_token", None)
        return TOKEN.search(client.get(path).get_data(as_text=True)).group(1)

    client.post("/auth/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": token("/auth/login")})
    data = {"owner": str(records["owner"].id), "email": "carol@example.com", "full_name": "Carol", "comment": ""}
    assert client.post("/admin/clients/new/", data=data).status_code == 400
    assert db.session.query(Client).filter_by(email="carol@example.com").count() == 0
    form_token = token("/admin/clients/new/")
    assert client.post("/admin/clients/new/", data={**data, "csrf_token": form_token}).status_code == 302
    assert db.session.query(Client).filter_by(email="carol@example.com").count() == 1


def test_every_app_gets_its_own_panel(app):
    from mailer import create_app

    other = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://", REDIS_URL=app.config["REDIS_URL"])
    assert other.extensions["admin"][0] is not app.extensions["admin"][0]
    assert "admin_users.index_view" in other.view_functions


def figure(test_client, label: str) -> int:
    page = test_client.get("/").get_data(as_text=True)
    match = re.search(rf'data-figure="{label}">(\d+)<', page)
    return int(match.group(1))


def test_admin_client_forms_follow_the_sites_rules(app, client, records):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    login(client, admin.email)
    owner_id = str(records["owner"].id)
    bad = client.post("/admin/clients/new/", data={"owner": owner_id, "email": "not an address", "full_name": "X"})
    assert bad.status_code == 200 and "must have an @-sign" in bad.get_data(as_text=True)
    duplicate = client.post(
        "/admin/clients/new/", data={"owner": owner_id, "email": "ALICE@example.com", "full_name": "Alice again"}
    )
    assert duplicate.status_code == 200 and "alert-danger" in duplicate.get_data(as_text=True)
    assert db.session.query(Client).count() == 1
    created = client.post(
        "/admin/clients/new/", data={"owner": owner_id, "email": " Dave@Example.com ", "full_name": "Dave"}
    )
    assert created.status_code == 302
    assert db.session.query(Client).filter_by(email="dave@example.com").one().owner_id == records["owner"].id


def test_admin_deletes_a_user_with_everything_they_own(app, client, records):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    owner = records["owner"]
    owner_client = app.test_client()
    login(owner_client, owner.email)
    manager = make_user("manager@example.com", role=Role.MANAGER)
    manager_client = app.test_client()
    login(manager_client, manager.email)
    assert figure(manager_client, "Mailings") == 1
    login(client, admin.email)
    response = client.post("/admin/users/delete/", data={"id": str(owner.id)})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, owner.id) is None
    for model in (Client, Message, Mailing, MailingRun, Delivery, MailingAttempt):
        assert db.session.query(model).count() == 0, model
    assert figure(manager_client, "Mailings") == 0
    assert owner_client.get("/auth/profile").status_code == 302


def test_admin_filters_by_status_value(app, client, records):
    admin = make_user("admin@example.com", role=Role.ADMIN)
    login(client, admin.email)
    # The first filter of the mailings list is the status.
    assert "Spring news" in client.get("/admin/mailings/?flt0_0=created").get_data(as_text=True)
    assert "Spring news" not in client.get("/admin/mailings/?flt0_0=running").get_data(as_text=True)
    for value in ["RUNNING", "nope", ""]:
        assert client.get(f"/admin/mailings/?flt0_0={value}").status_code == 200
    assert "alice@example.com" in client.get("/admin/deliveries/?flt0_0=sent").get_data(as_text=True)
    assert "alice@example.com" in client.get("/admin/attempts/?flt0_0=success").get_data(as_text=True)
    assert "alice@example.com" not in client.get("/admin/attempts/?flt0_0=failure").get_data(as_text=True)


def test_the_front_page_estimates_a_large_table_instead_of_counting_it(app):
    from mailer.admin import row_count

    assert row_count(MailingAttempt, {"mailing_attempts": 12_345_678.0}) == (12_345_678, True)
    assert row_count(MailingAttempt, {"mailing_attempts": 10.0}) == (0, False)


def test_a_rows_buttons_lead_to_it_and_delete_it(app, records):
    app.config["WTF_CSRF_ENABLED"] = True
    admin = make_user("admin@example.com", role=Role.ADMIN)
    client = app.test_client()
    g.pop("csrf_token", None)
    login_token = TOKEN.search(client.get("/auth/login").get_data(as_text=True)).group(1)
    client.post("/auth/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": login_token})
    g.pop("csrf_token", None)
    page = client.get("/admin/clients/?sort=0").get_data(as_text=True)
    alice = db.session.query(Client).filter_by(email="alice@example.com").one()
    form = re.search(
        r'<form class="icon" method="POST" action="([^"]+)">(.*?)</form>',
        page[page.index(f'name="id" value="{alice.id}"') - 200 :],
        re.S,
    )
    # What a browser posts: the attribute values with their HTML entities read.
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(2))
    }
    assert set(fields) == {"id", "url", "csrf_token"}
    for view in ("details", "edit"):
        link = re.search(rf'href="(/admin/clients/{view}/\?id={alice.id}&amp;url=[^"]+)"', page).group(1)
        shown = client.get(html.unescape(link))
        assert shown.status_code == 200 and "alice@example.com" in shown.get_data(as_text=True)
        assert "/admin/clients/?sort=0" in shown.get_data(as_text=True)  # the way back to the list

    assert client.post(form.group(1), data={**fields, "csrf_token": "forged"}).status_code == 400
    assert db.session.get(Client, alice.id) is not None
    response = client.post(form.group(1), data=fields)
    assert response.status_code == 302 and response.headers["Location"] == fields["url"]
    db.session.expire_all()
    assert db.session.get(Client, alice.id) is None


def test_a_mailing_with_a_long_client_list_is_edited_without_it(app, client, records, monkeypatch):
    """Above the site form's list limit the panel leaves the client list off the form (it would
    write every client into the page); the owner check then asks the database."""
    monkeypatch.setattr(mailing_service, "CLIENT_LIST_LIMIT", 0)
    admin = make_user("admin@example.com", role=Role.ADMIN)
    stranger = make_user("stranger@example.com")
    login(client, admin.email)
    mailing = records["mailing"]
    page = client.get(f"/admin/mailings/edit/?id={mailing.id}").get_data(as_text=True)
    assert 'name="name"' in page and 'name="clients"' not in page
    assert "This mailing has 1 client: too many to list here." in page
    assert f'href="/mailings/{mailing.id}/edit"' in page

    form = {
        "name": "Renamed",
        "message": str(records["message"].id),
        "start_at": "2026-01-01 10:00:00",
        "end_at": "2026-02-01 10:00:00",
        "repeat": "weekly",
    }
    response = client.post(f"/admin/mailings/edit/?id={mailing.id}", data={**form, "owner": str(stranger.id)})
    assert "must belong to the mailing" in response.get_data(as_text=True)
    db.session.refresh(mailing)
    assert mailing.owner_id == records["owner"].id and mailing.name == "Spring news"

    response = client.post(f"/admin/mailings/edit/?id={mailing.id}", data={**form, "owner": str(records["owner"].id)})
    assert response.status_code == 302
    db.session.refresh(mailing)
    assert mailing.name == "Renamed" and client_ids(mailing) == {records["client"].id}
