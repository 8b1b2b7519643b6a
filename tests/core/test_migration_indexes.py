"""Migration 0005 on a database that already has data: the lists' indexes (and on PostgreSQL
the trigram indexes of the search), the mailings' client counts and the statistics' sums of the
attempts logged so far; and back."""

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from mailer.extensions import db

DATA_AT_0004 = [
    "INSERT INTO users (id, email, password_hash, full_name, phone, country, timezone, is_active, auth_version,"
    " blocked_reason, created_at) VALUES (1, 'o@example.com', 'x', '', '', '', 'UTC', true, 1, '', CURRENT_TIMESTAMP)",
    "INSERT INTO clients (id, owner_id, email, full_name, comment, created_at, updated_at) VALUES"
    " (1, 1, 'a@example.com', 'A', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),"
    " (2, 1, 'b@example.com', 'B', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO messages (id, owner_id, subject, body_text, created_at, updated_at)"
    " VALUES (1, 1, 'S', 'B', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO mailings (id, owner_id, name, message_id, start_at, end_at, repeat, status, disabled_reason,"
    " created_at, updated_at) VALUES (1, 1, 'M', 1, '2026-03-10 09:00:00', '2026-03-10 09:00:00', 'none',"
    " 'finished', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO mailing_clients (mailing_id, client_id) VALUES (1, 1), (1, 2)",
    "INSERT INTO mailing_runs (id, mailing_id, trigger, scheduled_for, status, total_count, sent_count,"
    " failed_count, skipped_count, unknown_count, created_at) VALUES (1, 1, 'manual', '2026-03-10 09:00:00',"
    " 'done', 2, 1, 1, 0, 0, CURRENT_TIMESTAMP)",
    "INSERT INTO deliveries (id, run_id, client_id, email, status, attempts, sent_at) VALUES"
    " (1, 1, 1, 'a@example.com', 'sent', 2, '2026-03-10 09:20:00'),"
    " (2, 1, 2, 'b@example.com', 'failed', 1, NULL)",
    "INSERT INTO mailing_attempts (mailing_id, run_id, delivery_id, client_id, email, attempted_at, status) VALUES"
    " (1, 1, 1, 1, 'a@example.com', '2026-03-10 09:01:00', 'failure'),"
    " (1, 1, 1, 1, 'a@example.com', '2026-03-10 09:20:00', 'success'),"
    " (1, 1, 2, 2, 'b@example.com', '2026-03-10 09:02:00', 'failure')",
]


def test_0005_indexes_counts_and_sums_from_existing_data_and_back(app):
    db.drop_all()
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(revision="0004")
    with db.engine.begin() as connection:
        for statement in DATA_AT_0004:
            connection.execute(text(statement))

    upgrade(revision="0005")

    with db.engine.connect() as connection:
        inspector = inspect(connection)
        postgresql = connection.dialect.name == "postgresql"
        clients = {index["name"]: index["column_names"] for index in inspector.get_indexes("clients")}
        assert clients["ix_clients_owner_name"] == ["owner_id", "full_name", "id"]
        assert clients["ix_clients_owner_created"] == ["owner_id", "created_at", "id"]
        assert ("ix_clients_email_trgm" in clients) == postgresql
        assert ("ix_clients_full_name_trgm" in clients) == postgresql
        assert "ix_clients_owner_id" not in clients
        deliveries = {index["name"]: index["column_names"] for index in inspector.get_indexes("deliveries")}
        assert deliveries["ix_deliveries_run_status"] == ["run_id", "status", "id"]
        attempts = {index["name"]: index["column_names"] for index in inspector.get_indexes("mailing_attempts")}
        assert attempts["ix_mailing_attempts_run_time"] == ["run_id", "attempted_at", "id"]
        assert attempts["ix_mailing_attempts_run_problems"] == ["run_id", "attempted_at", "id"]
        if postgresql:
            # The search is answered by the trigram index.
            connection.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(
                connection.scalars(text("EXPLAIN SELECT id FROM clients WHERE email ILIKE '%' || 'exampl' || '%'"))
            )
            assert "ix_clients_email_trgm" in plan
        assert connection.scalar(text("SELECT client_count FROM mailings WHERE id = 1")) == 2
        sums = connection.execute(
            text("SELECT attempts, successes, failures, sent FROM attempt_stats ORDER BY slot")
        ).all()
        # 09:01 and 09:02 in the 09:00 quarter; 09:20 (a success, and the delivery sent) in 09:15.
        assert [tuple(row) for row in sums] == [(2, 0, 2, 0), (1, 1, 0, 1)]

    downgrade(revision="0004")
    with db.engine.connect() as connection:
        inspector = inspect(connection)
        assert "attempt_stats" not in inspector.get_table_names()
        assert "ix_clients_owner_id" in {index["name"] for index in inspector.get_indexes("clients")}
        assert connection.scalar(text("SELECT count(*) FROM mailing_attempts")) == 3

    # Up again to the head: on PostgreSQL the run keeps one schema for every test that follows.
    upgrade()
    with db.engine.connect() as connection:
        assert "attempt_stats" in inspect(connection).get_table_names()
        clients = {index["name"]: index["column_names"] for index in inspect(connection).get_indexes("clients")}
        if connection.dialect.name == "postgresql":
            # 0007: the search indexes hold the owner beside the trigrams.
            assert clients["ix_clients_owner_email_trgm"] == ["owner_id", "email"]
            assert clients["ix_clients_owner_full_name_trgm"] == ["owner_id", "full_name"]
            assert "ix_clients_email_trgm" not in clients
            # A search over everyone's clients is answered by it too (the table is too small for
            # the planner to choose it without being told to leave the others).
            for scan in ("seqscan", "indexscan", "indexonlyscan"):
                connection.execute(text(f"SET enable_{scan} = off"))
            plan = "\n".join(
                connection.scalars(text("EXPLAIN SELECT id FROM clients WHERE full_name ILIKE '%' || 'exampl' || '%'"))
            )
            assert "ix_clients_owner_full_name_trgm" in plan
        else:
            assert not [name for name in clients if name.endswith("_trgm")]
