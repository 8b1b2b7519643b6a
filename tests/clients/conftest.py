import pytest

from mailer.extensions import db
from mailer.models import Client, Message
from tests.conftest import login, make_user


def add_client(owner, email: str, full_name: str = "Some One", comment: str = "") -> Client:
    client = Client(owner_id=owner.id, email=email, full_name=full_name, comment=comment)
    db.session.add(client)
    db.session.commit()
    return client


def add_message(owner, subject: str = "Hello {{ name }}", body_text: str = "Dear {{ name }},\nnews.",
                body_html: str | None = None) -> Message:
    message = Message(owner_id=owner.id, subject=subject, body_text=body_text, body_html=body_html)
    db.session.add(message)
    db.session.commit()
    return message


@pytest.fixture
def other_user(app):
    return make_user("other@example.com", full_name="Other Owner")


@pytest.fixture
def manager(app):
    return make_user("manager@example.com", role="manager")


@pytest.fixture
def admin(app):
    return make_user("admin@example.com", role="admin")


@pytest.fixture
def as_user(app):
    """A new test client logged in as the given user."""

    def log_in(user):
        browser = app.test_client()
        assert login(browser, user.email).status_code == 302
        return browser

    return log_in
