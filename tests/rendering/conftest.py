import pytest

from mailer.extensions import db
from mailer.models import Client, Message


@pytest.fixture
def add_client(user):
    def add(email: str = "ada@example.com", full_name: str = "Ada Lovelace") -> Client:
        client = Client(owner_id=user.id, email=email, full_name=full_name)
        db.session.add(client)
        db.session.commit()
        return client

    return add


@pytest.fixture
def add_message(user):
    def add(subject: str = "Hello {{ name }}", body_text: str = "Dear {{ name }} ({{ email }}),\nnews.",
            body_html: str | None = "<p>Dear {{ name }} ({{ email }})</p>") -> Message:
        message = Message(owner_id=user.id, subject=subject, body_text=body_text, body_html=body_html)
        db.session.add(message)
        db.session.commit()
        return message

    return add
