"""Fixtures: a fresh database per test, a real Redis and a real SMTP sink.

The tests use only their own settings: TEST_DATABASE_URL and TEST_REDIS_URL when set (CI points
them at a PostgreSQL database and a Redis database kept for the tests; both are emptied);
otherwise each test gets its own SQLite file and the session starts its own redis-server. The
application's DATABASE_URL and REDIS_URL are removed from the environment before anything reads
them, and no `.env` file is read, by these tests or by the processes they start.
"""
import os
import re
from urllib.parse import urlsplit

# Before the configuration is imported: nothing below may reach the database or the Redis of a
# developer's shell, and the `flask` processes the tests start must not read a `.env` file.
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)
os.environ.pop("MAILER_CONFIG", None)
os.environ.pop("FLASK_CONFIG", None)
os.environ["FLASK_SKIP_DOTENV"] = "1"

import pytest
from flask import g
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import text

from config import database_url
from mailer import create_app
from mailer.extensions import db, rq
from mailer.models import User
from mailer.services import accounts
from tests.support import RedisServer, SmtpSink

PASSWORD = "correct horse battery"
CHROMIUM_CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        # The tests' own Redis: nothing an earlier run left there (queued jobs, limit counters)
        # may reach this one.
        Redis.from_url(url).flushdb()
        yield url
        return
    server = RedisServer()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def smtp_sink():
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def shared_database_url():
    return os.environ.get("TEST_DATABASE_URL")


@pytest.fixture
def database_uri(shared_database_url, tmp_path):
    if shared_database_url:
        return database_url(shared_database_url, "")
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def app(database_uri, redis_url, smtp_sink, tmp_path):
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=database_uri,
        REDIS_URL=redis_url,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp_sink.port,
        OUTBOX_DIR=str(tmp_path / "outbox"),
        EXTERNAL_URL="http://mailer.test",
        SERVER_NAME=None,
    )
    app.instance_path = str(tmp_path / "instance")
    # The test keeps one app context pushed, and Flask reuses it for the requests of the test
    # clients; each request must still find its own user, as it does in a real server.
    app.before_request_funcs.setdefault(None, []).insert(0, forget_loaded_user)
    Redis.from_url(redis_url).flushdb()
    smtp_sink.reset()
    with app.app_context():
        reset_database()
        yield app
        db.session.remove()
        db.engine.dispose()


def forget_loaded_user() -> None:
    g.pop("_login_user", None)
    g.pop("identity", None)


def reset_database() -> None:
    """An empty schema: created on a new SQLite file, truncated on a shared PostgreSQL."""
    if db.engine.dialect.name == "postgresql":
        db.create_all()
        tables = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
        with db.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    else:
        db.drop_all()
        db.create_all()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def work_queue(app):
    """Run every queued job to completion in this process, as the RQ worker would."""

    def run() -> None:
        SimpleWorker([rq.queue], connection=rq.connection).work(burst=True)

    return run


def make_user(email: str = "owner@example.com", role: str | None = None, **fields) -> User:
    user = accounts.create_user(email, PASSWORD, role=role)
    for name, value in fields.items():
        setattr(user, name, value)
    db.session.commit()
    return user


@pytest.fixture
def user(app):
    return make_user()


def login(client, email: str, password: str = PASSWORD, **extra):
    return client.post("/auth/login", data={"email": email, "password": password, **extra})


@pytest.fixture
def logged_in(client, user):
    login(client, user.email)
    return client


LINK = re.compile(r"https?://\S+")


def links_in(mail) -> list[str]:
    return LINK.findall(mail.text)


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    candidates = [configured] if configured else CHROMIUM_CANDIDATES
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


@pytest.fixture(scope="session")
def browser_executable():
    """Debian's chromium. Browser tests are skipped without it, unless MAILER_E2E_REQUIRED=1
    (set by CI), which turns a missing browser into a failure."""
    path = chromium_path()
    if path is None:
        if os.environ.get("MAILER_E2E_REQUIRED") == "1":
            pytest.fail("MAILER_E2E_REQUIRED=1 but no chromium was found (apt-get install chromium).")
        pytest.skip("no chromium found: install Debian's chromium package to run the browser tests")
    return path


@pytest.fixture(scope="session")
def browser(browser_executable):
    """One Playwright and one headless chromium for the whole session (Playwright's sync API
    cannot be started twice in one process)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()
