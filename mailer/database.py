"""Database set-up that depends on the engine: SQLite needs WAL and a busy timeout so that the
web app, the worker and the scheduler can share one file, and a lower() that knows every
alphabet, so that searches ignore case in Russian as they do in English. PostgreSQL gets the
planner settings of POSTGRESQL_SESSION_SETTINGS."""

from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine

# Mailer's queries are short and their rows are in memory: an index probe costs about what a
# sequential read does (the default 4 × made a mailing's clients searched join all 200,000 of
# them by hashing, 36 ms, instead of probing 1,111, 4 ms), and a parallel plan spends a second
# process on a query of a few milliseconds while other requests wait for the cores.
POSTGRESQL_SESSION_SETTINGS = "SET random_page_cost = 1.1; SET max_parallel_workers_per_gather = 0"


@event.listens_for(Engine, "connect")
def configure_connection(dbapi_connection, connection_record) -> None:
    module = type(dbapi_connection).__module__
    if module.startswith("psycopg2"):
        configure_postgresql(dbapi_connection)
    elif module == "sqlite3":
        configure_sqlite(dbapi_connection)


def configure_postgresql(dbapi_connection) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(POSTGRESQL_SESSION_SETTINGS)
    cursor.close()
    dbapi_connection.commit()  # a SET in a transaction that is rolled back is undone


def configure_sqlite(dbapi_connection) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # SQLite's own lower() changes only A-Z; case-insensitive searches (SQLAlchemy's ilike and
    # icontains) compare lower() of both sides. PostgreSQL's lower() follows the database's
    # locale and is left alone, with its indexes.
    dbapi_connection.create_function("lower", 1, unicode_lower, deterministic=True)


def unicode_lower(value):
    return value.lower() if isinstance(value, str) else value


def is_postgresql(session_or_engine) -> bool:
    bind = session_or_engine.get_bind() if hasattr(session_or_engine, "get_bind") else session_or_engine
    return bind.dialect.name == "postgresql"


def lock_row(session, instance) -> None:
    """Lock the row of `instance` until the transaction ends, then reload it, so that the checks
    and changes that follow start from the latest commit and no other transaction interleaves.

    PostgreSQL locks the row (SELECT ... FOR UPDATE). SQLite has one writer: a write that changes
    nothing takes its lock and starts the transaction.
    """
    table = type(instance).__table__
    if is_postgresql(session):
        session.execute(select(table.c.id).where(table.c.id == instance.id).with_for_update())
    else:
        # Plain SQL: an ORM or Core UPDATE would also set the `onupdate` columns (updated_at).
        session.execute(text(f"UPDATE {table.name} SET id = id WHERE id = :id"), {"id": instance.id})
    session.refresh(instance)
