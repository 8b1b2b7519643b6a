from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mailer.extensions import db
from mailer.models import Mailing, utcnow
from tests.factories import add_clients, add_message, mailing_form
from tests.support import client_ids, local_input


def mailing_count() -> int:
    return db.session.scalar(select(func.count(Mailing.id)))


def assert_refused(response, message: str) -> None:
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    # Shown on its field (Bootstrap's invalid-feedback) or under the client list.
    assert "invalid-feedback" in page or "text-danger small" in page


def test_start_after_end_is_refused(as_owner, message, clients):
    response = as_owner.post(
        "/mailings/new", data=mailing_form(message, clients, start="2030-02-01T09:00", end="2030-01-01T09:00")
    )
    assert_refused(response, "The end must be after the start.")
    assert mailing_count() == 0


def test_start_equal_to_end_is_refused(as_owner, message, clients):
    response = as_owner.post(
        "/mailings/new", data=mailing_form(message, clients, start="2030-02-01T09:00", end="2030-02-01T09:00")
    )
    assert_refused(response, "The end must be after the start.")


def test_end_in_the_past_is_refused(as_owner, message, clients):
    now = utcnow()
    response = as_owner.post(
        "/mailings/new",
        data=mailing_form(
            message, clients, start=local_input(now - timedelta(days=3)), end=local_input(now - timedelta(hours=1))
        ),
    )
    assert_refused(response, "The end must be in the future.")
    assert mailing_count() == 0


def test_another_owners_message_is_a_field_error(as_owner, other_owner, clients):
    foreign = add_message(other_owner, "Not yours")
    add_message(clients[0].owner)
    response = as_owner.post("/mailings/new", data=mailing_form(foreign, clients))
    assert_refused(response, "Choose one of your messages.")
    assert mailing_count() == 0


def test_another_owners_client_is_a_field_error(as_owner, other_owner, message, clients):
    foreign = add_clients(other_owner, 1, prefix="foreign")
    response = as_owner.post("/mailings/new", data=mailing_form(message, clients + foreign))
    assert_refused(response, "Choose clients from your own list.")
    assert mailing_count() == 0


def test_no_clients_is_refused(as_owner, message, clients):
    response = as_owner.post("/mailings/new", data=mailing_form(message, []))
    assert_refused(response, "Choose at least one client.")
    assert mailing_count() == 0


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("name", "", "Give the mailing a name."),
        ("name", "x" * 201, "Field cannot be longer than 200 characters."),
        ("message", "", "Choose a message."),
        ("message", "abc", "Invalid Choice: could not coerce."),
        ("message", "999999", "Choose one of your messages."),
        ("clients", ["1", "nope"], "could not be coerced"),
        ("clients", ["999999"], "Choose clients from your own list."),
        ("start_at", "", "Enter when the mailing starts."),
        ("start_at", "tomorrow", "Enter a date and time."),
        ("end_at", "2030-13-45T99:00", "Enter a date and time."),
        ("start_at", "0001-01-01T00:00", "Enter a date between 1970 and 2999."),
        ("end_at", "9999-12-31T23:59", "Enter a date between 1970 and 2999."),
        ("repeat", "hourly", "Not a valid choice."),
    ],
)
def test_bad_input_is_shown_on_its_field(as_owner, message, clients, field, value, error):
    response = as_owner.post("/mailings/new", data={**mailing_form(message, clients), field: value})
    assert response.status_code == 400
    assert error in response.get_data(as_text=True)
    assert mailing_count() == 0


def test_a_forged_edit_changes_nothing(as_owner, other_owner, mailing, clients):
    foreign = add_clients(other_owner, 1, prefix="foreign")
    before = (mailing.name, mailing.message_id, client_ids(mailing))
    response = as_owner.post(
        f"/mailings/{mailing.id}/edit", data=mailing_form(mailing.message, clients + foreign, name="Changed")
    )
    assert_refused(response, "Choose clients from your own list.")
    db.session.expire_all()
    assert (mailing.name, mailing.message_id, client_ids(mailing)) == before


def test_editing_the_schedule_needs_an_end_in_the_future(as_owner, mailing, clients):
    now = utcnow()
    response = as_owner.post(
        f"/mailings/{mailing.id}/edit",
        data=mailing_form(
            mailing.message,
            clients,
            start=local_input(now - timedelta(days=5)),
            end=local_input(now - timedelta(days=1)),
        ),
    )
    assert_refused(response, "The end must be in the future.")
