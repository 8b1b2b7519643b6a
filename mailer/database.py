"""Database set-up that depends on the engine: SQLite needs WAL and a busy timeout so that the
web app, the worker and the scheduler can share one file, and a lower() that knows every
alphabet, so that searches ignore case in Russian as they do in English."""
from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "connect")
def configure_sqlite(dbapi_connection, connection_record) -> None:
    if type(dbapi_connection).__module__ != "sqlite3":
        return
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
