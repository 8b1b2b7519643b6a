"""A second SMTP sink, for international addresses."""

import pytest

from tests.support import SmtpSink


@pytest.fixture(scope="session")
def ascii_sink():
    """A second sink that does not offer SMTPUTF8 (aiosmtpd's Controller, like the shared sink,
    offers it unless told otherwise)."""
    sink = SmtpSink(enable_SMTPUTF8=False)
    yield sink
    sink.stop()
