"""What every new database connection is told: SQLite its pragmas, PostgreSQL its planner settings."""

from sqlalchemy import text

from mailer.extensions import db


def test_every_connection_is_set_up_for_its_engine(app):
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Set outside any transaction: a rollback of the connection's first one keeps them.
            connection.rollback()
            assert connection.scalar(text("SHOW random_page_cost")) == "1.1"
            assert connection.scalar(text("SHOW max_parallel_workers_per_gather")) == "0"
        else:
            assert connection.scalar(text("PRAGMA journal_mode")) == "wal"
            assert connection.scalar(text("PRAGMA foreign_keys")) == 1
            assert connection.scalar(text("SELECT lower('ИВАН')")) == "иван"
