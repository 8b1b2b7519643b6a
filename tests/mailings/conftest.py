"""The mailings pages' usual objects: a message of the owner's, three clients and a mailing."""

import pytest

from tests.factories import add_clients, add_mailing, add_message


@pytest.fixture
def message(owner):
    return add_message(owner, subject="Spring sale", body_text="Hello {{ name }}")


@pytest.fixture
def clients(owner):
    return add_clients(owner)


@pytest.fixture
def mailing(owner, message, clients):
    return add_mailing(owner, message, clients)
