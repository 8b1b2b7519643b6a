"""Fixtures for the mailings pages: two owners with their own messages and clients."""
from datetime import datetime, timedelta

import pytest

from mailer.extensions import db
from mailer.models import Client, Mailing, MailingRun, Message, Repeat, RunStatus, RunTrigger, mailing_clients, utcnow
from mailer.services import schedule
from tests.conftest import login, make_user


def add_message(owner, subject="Spring sale") -> Message:
    message = Message(owner_id=owner.id, subject=subject, body_text="Hello {{ name }}")
    db.session.add(message)
    db.session.commit()
    return message


def add_clients(owner, count=3, prefix="client") -> list[Client]:
    clients = [Client(owner_id=owner.id, email=f"{prefix}{n}@example.com", full_name=f"{prefix.title()} {n}")
               for n in range(count)]
    db.session.add_all(clients)
    db.session.commit()
    return clients


def add_mailing(owner, message, clients, name="Newsletter", start_at=None, end_at=None,
                repeat=Repeat.NONE) -> Mailing:
    now = utcnow()
    mailing = Mailing(owner=owner, name=name, message_id=message.id,
                      start_at=start_at or now + timedelta(days=1), end_at=end_at or now + timedelta(days=8),
                      repeat=repeat)
    mailing.clients = list(clients)
    db.session.add(mailing)
    db.session.flush()
    schedule.reset_schedule(mailing, now)
    db.session.commit()
    return mailing


def add_run(mailing, status=RunStatus.DONE, trigger=RunTrigger.MANUAL) -> MailingRun:
    run = MailingRun(mailing_id=mailing.id, trigger=trigger, status=status, scheduled_for=utcnow())
    db.session.add(run)
    db.session.commit()
    return run


def local_input(value: datetime) -> str:
    """How a browser sends a datetime-local value."""
    return value.strftime("%Y-%m-%dT%H:%M")


def form_data(message, clients, name="Newsletter", start="2030-01-15T09:00", end="2030-02-15T09:00",
              repeat="none", **extra) -> dict:
    return {"name": name, "message": str(message.id), "clients": [str(c.id) for c in clients],
            "start_at": start, "end_at": end, "repeat": repeat, **extra}


def client_ids(mailing) -> set[int]:
    return set(db.session.scalars(
        db.select(mailing_clients.c.client_id).where(mailing_clients.c.mailing_id == mailing.id)))


@pytest.fixture
def owner(app):
    return make_user("alice@example.com")


@pytest.fixture
def other_owner(app):
    return make_user("bob@example.com")


@pytest.fixture
def manager(app):
    return make_user("manager@example.com", role="manager")


@pytest.fixture
def admin(app):
    return make_user("admin@example.com", role="admin")


@pytest.fixture
def message(owner):
    return add_message(owner)


@pytest.fixture
def clients(owner):
    return add_clients(owner)


@pytest.fixture
def mailing(owner, message, clients):
    return add_mailing(owner, message, clients)


@pytest.fixture
def as_owner(client, owner):
    login(client, owner.email)
    return client


@pytest.fixture
def as_other(client, other_owner):
    login(client, other_owner.email)
    return client


@pytest.fixture
def as_manager(client, manager):
    login(client, manager.email)
    return client


@pytest.fixture
def as_admin(client, admin):
    login(client, admin.email)
    return client

