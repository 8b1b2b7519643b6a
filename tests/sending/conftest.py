"""The sending tests' settings: small chunks, a few connections, retries within seconds."""

import pytest


@pytest.fixture
def app(app):
    app.config.update(
        SEND_CHUNK_SIZE=10, SEND_CONNECTIONS=4, SEND_RETRY_BASE_DELAY=1, SEND_RETRY_WINDOW=2, MAIL_TIMEOUT=5
    )
    return app
