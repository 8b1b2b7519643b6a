"""Fixtures for servers, sender identities, international addresses and DKIM."""
import pytest

from mailer.extensions import db
from mailer.models import SenderIdentity, SmtpServer, utcnow
from mailer.services import secrets
from tests.conftest import login, make_user
from tests.support import SmtpSink


@pytest.fixture
def owner(app):
    return make_user("alice@example.com")


@pytest.fixture
def other_owner(app):
    return make_user("bob@example.com")


@pytest.fixture
def admin(app):
    return make_user("admin@example.com", role="admin")


@pytest.fixture
def as_owner(client, owner):
    login(client, owner.email)
    return client


@pytest.fixture
def as_admin(client, admin):
    login(client, admin.email)
    return client


def add_identity(owner, email="news@alice.example", name="Alice", reply_to=None, confirmed=True) -> SenderIdentity:
    identity = SenderIdentity(owner_id=owner.id, name=name, email=email, reply_to=reply_to,
                              confirmed_at=utcnow() if confirmed else None)
    db.session.add(identity)
    db.session.commit()
    return identity


def add_server(name="Relay", host="127.0.0.1", port=2525, is_default=False, password=None, **fields) -> SmtpServer:
    server = SmtpServer(name=name, host=host, port=port, security=fields.pop("security", "none"),
                        is_default=is_default, password_encrypted=secrets.encrypt(password) if password else None,
                        **fields)
    db.session.add(server)
    db.session.commit()
    return server


@pytest.fixture(scope="session")
def ascii_sink():
    """A second sink that does not offer SMTPUTF8 (aiosmtpd's Controller, like the shared sink,
    offers it unless told otherwise)."""
    sink = SmtpSink(enable_SMTPUTF8=False)
    yield sink
    sink.stop()
