from datetime import UTC, datetime

from sqlalchemy import select

from mailer.extensions import db
from mailer.models import Mailing
from tests.factories import add_clients, add_message, mailing_form, make_user
from tests.support import login


def test_times_typed_in_the_users_zone_are_stored_in_utc(client):
    owner = make_user("ny@example.com", timezone="America/New_York")
    message, clients = add_message(owner), add_clients(owner, 2)
    login(client, owner.email)
    # 15 January is winter time in New York (UTC-5), 15 July summer time (UTC-4).
    response = client.post(
        "/mailings/new",
        data=mailing_form(message, clients, start="2030-01-15T09:00", end="2030-07-15T09:00", repeat="daily"),
    )
    assert response.status_code == 302
    mailing = db.session.scalar(select(Mailing))
    assert mailing.start_at == datetime(2030, 1, 15, 14, 0, tzinfo=UTC)
    assert mailing.end_at == datetime(2030, 7, 15, 13, 0, tzinfo=UTC)
    assert mailing.next_run_at == mailing.start_at

    # Shown and offered for editing in the same zone they were typed in.
    detail = client.get(response.location).get_data(as_text=True)
    assert "2030-01-15 09:00" in detail and "2030-07-15 09:00" in detail and "America/New_York" in detail
    form = client.get(f"/mailings/{mailing.id}/edit").get_data(as_text=True)
    assert 'value="2030-01-15T09:00"' in form and 'value="2030-07-15T09:00"' in form


def test_a_viewer_in_another_zone_sees_the_same_moment_in_their_own_time(app, client):
    owner = make_user("tokyo@example.com", timezone="Asia/Tokyo")
    message, clients = add_message(owner), add_clients(owner, 1)
    login(client, owner.email)
    client.post("/mailings/new", data=mailing_form(message, clients, start="2030-03-01T08:30", end="2030-03-02T08:30"))
    mailing = db.session.scalar(select(Mailing))
    assert mailing.start_at == datetime(2030, 2, 28, 23, 30, tzinfo=UTC)

    manager = make_user("paris-manager@example.com", role="manager", timezone="Europe/Paris")
    viewer = app.test_client()
    login(viewer, manager.email)
    page = viewer.get(f"/mailings/{mailing.id}").get_data(as_text=True)
    assert "2030-03-01 00:30" in page and "Europe/Paris" in page
