"""Fixtures: one app for the run with an empty database per test, a real Redis and a real SMTP
sink; the people of a test and test clients logged in as them.

The tests use only their own settings: TEST_DATABASE_URL and TEST_REDIS_URL when set (CI points
them at a PostgreSQL database and a Redis database kept for the tests; both are emptied);
otherwise the run keeps its SQLite file in a temporary folder and starts its own redis-server.
The application's DATABASE_URL and REDIS_URL are removed from the environment before anything
reads them, and no `.env` file is read, by these tests or by the processes they start.
"""

import copy
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
from sqlalchemy import create_engine, make_url, text

from config import database_url
from mailer import create_app
from mailer.extensions import db, limiter, rq
from tests.factories import make_user
from tests.support import Processes, RedisServer, SmtpSink, login, worker_number

CHROMIUM_CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]


def redis_database(url: str, offset: int) -> str:
    """`url` with its database number moved on by `offset`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{int(parts.path.strip('/') or 0) + offset}"))


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        # Parallel workers take the Redis databases that follow TEST_REDIS_URL's, one each.
        url = redis_database(url, worker_number())
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
def database_uri(tmp_path_factory):
    shared = os.environ.get("TEST_DATABASE_URL")
    if not shared:
        yield f"sqlite:///{tmp_path_factory.mktemp('database') / 'test.db'}"
        return
    url = make_url(database_url(shared, ""))
    if worker_number() == 0:
        yield url.render_as_string(hide_password=False)
        return
    # Parallel workers after the first get a database of their own beside TEST_DATABASE_URL's,
    # made for the run.
    own = url.set(database=f"{url.database}_gw{worker_number()}")
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{own.database}"'))
        connection.execute(text(f'CREATE DATABASE "{own.database}"'))
    yield own.render_as_string(hide_password=False)
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{own.database}" WITH (FORCE)'))
    server.dispose()


@pytest.fixture(scope="session")
def empty_database(database_uri, tmp_path_factory):
    """Creates the schema once. On SQLite: the path of an empty database file that each test
    copies; on PostgreSQL (None): the tables, created anew for the run and truncated per test."""
    if database_uri.startswith("sqlite"):
        template = tmp_path_factory.mktemp("template") / "empty.db"
        engine = create_engine(f"sqlite:///{template}")
        db.metadata.create_all(engine)
        engine.dispose()
        return template
    engine = create_engine(database_uri)
    db.metadata.drop_all(engine)
    db.metadata.create_all(engine)
    engine.dispose()
    return None


@pytest.fixture(scope="session")
def run_app(database_uri, redis_url, smtp_sink):
    """The app of the whole run (building one takes a quarter of a second, most of it compiling
    the URL rules), with the settings every test starts from."""
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=database_uri,
        REDIS_URL=redis_url,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp_sink.port,
        EXTERNAL_URL="http://mailer.test",
        SERVER_NAME=None,
    )
    # The test keeps one app context pushed, and Flask reuses it for the requests of the test
    # clients; each request must still find its own user, as it does in a real server.
    app.before_request_funcs.setdefault(None, []).insert(0, forget_loaded_user)
    # Flask-Limiter keeps the storage of the app it was last bound to on its one Limiter object,
    # and a test that builds an app of its own binds it to that one: `app` binds it back.
    app.extensions["limiter_state"] = dict(limiter.__dict__)
    return app


@pytest.fixture
def app(run_app, empty_database, redis_url, smtp_sink, tmp_path):
    """The run's app on an empty database, an empty Redis and an empty SMTP sink, with its own
    instance folder and outbox. The settings and extension state a test changes are put back
    when it ends."""
    app = run_app
    settings = copy.deepcopy(dict(app.config))
    extensions = dict(app.extensions)
    limiter.__dict__.update(app.extensions["limiter_state"])
    app.config["OUTBOX_DIR"] = str(tmp_path / "outbox")
    app.instance_path = str(tmp_path / "instance")
    Redis.from_url(redis_url).flushdb()
    smtp_sink.reset()
    with app.app_context():
        empty_the_database(empty_database)
        yield app
        db.session.remove()
        db.engine.dispose()
    app.config.clear()
    app.config.update(settings)
    app.extensions.clear()
    app.extensions.update(extensions)


def forget_loaded_user() -> None:
    g.pop("_login_user", None)
    g.pop("identity", None)


def empty_the_database(template: Path | None) -> None:
    """SQLite: a copy of the empty file made at the start of the run; PostgreSQL: every table
    truncated."""
    db.session.remove()
    db.engine.dispose()
    if template is None:
        tables = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
        with db.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        return
    path = Path(db.engine.url.database)
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(template, path)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def work(app):
    """Run the queued jobs in this process until none is left, like `python worker.py` does,
    including the scheduled jobs that are due (a burst worker with its scheduler). The jobs
    share the test's session: it ends their transaction, and the test reads everything afresh."""

    def run() -> None:
        SimpleWorker([rq.queue], connection=rq.connection).work(burst=True, with_scheduler=True)
        db.session.rollback()

    return run


@pytest.fixture
def processes(app, database_uri, redis_url, smtp_sink):
    """Real `python worker.py` and `flask scheduler run` processes, stopped when the test ends."""
    started = Processes(app, database_uri, redis_url, smtp_sink.port)
    yield started
    started.stop_all()


# People, and test clients logged in as them ----------------------------------------------------


@pytest.fixture
def user(app):
    return make_user()


@pytest.fixture
def logged_in(client, user):
    login(client, user.email)
    return client


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
def as_user(app):
    """A new test client logged in as the given user."""

    def log_in(user):
        browser = app.test_client()
        assert login(browser, user.email).status_code == 302
        return browser

    return log_in


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
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()
