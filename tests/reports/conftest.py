import pytest

from tests.factories import ReportFactory


@pytest.fixture
def make(app):
    return ReportFactory()
