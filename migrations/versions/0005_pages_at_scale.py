"""pages at scale: indexes matching each list's filter and sort, trigram search (PostgreSQL),
the mailing's client count, attempt statistics per quarter of an hour

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TRIGRAM_INDEXES = [("ix_clients_email_trgm", "email"), ("ix_clients_full_name_trgm", "full_name")]

# The slot of a time: the start of its quarter of an hour (UTC). SQLite stores times as text
# in SQLAlchemy's format, which the slot must match to the microsecond digits.
SLOT_ON_POSTGRESQL = "to_timestamp(floor(extract(epoch FROM {0}) / 900) * 900)"
SLOT_ON_SQLITE = "strftime('%Y-%m-%d %H:%M:%S.000000', (CAST(strftime('%s', {0}) AS INTEGER) / 900) * 900, 'unixepoch')"


def is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    postgresql = is_postgresql()
    # Plain operations, no batch mode: on SQLite a batch that copies a table drops the old one,
    # and with foreign keys on, that would delete the rows that reference it.
    op.drop_index("ix_clients_owner_id", table_name="clients")
    op.create_index("ix_clients_owner_name", "clients", ["owner_id", "full_name", "id"])
    op.create_index("ix_clients_owner_created", "clients", ["owner_id", "created_at", "id"])
    if postgresql:
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, column in TRIGRAM_INDEXES:
            op.create_index(name, "clients", [column], postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})
    op.drop_index("ix_messages_owner_id", table_name="messages")
    op.create_index("ix_messages_owner_updated", "messages", ["owner_id", "updated_at", "id"])
    op.create_index("ix_users_created", "users", ["created_at", "id"])
    op.add_column("mailings", sa.Column("client_count", sa.Integer(), server_default="0", nullable=False))
    op.drop_index("ix_mailings_owner_id", table_name="mailings")
    op.create_index("ix_mailings_owner_start", "mailings", ["owner_id", "start_at", "id"])
    op.execute(
        "UPDATE mailings SET client_count = "
        "(SELECT count(*) FROM mailing_clients WHERE mailing_clients.mailing_id = mailings.id)"
    )
    op.create_index("ix_mailing_runs_mailing", "mailing_runs", ["mailing_id", "id"])
    op.drop_index("ix_deliveries_run_status", table_name="deliveries")
    op.create_index("ix_deliveries_run_status", "deliveries", ["run_id", "status", "id"])
    op.drop_index("ix_mailing_attempts_run_time", table_name="mailing_attempts")
    op.create_index("ix_mailing_attempts_run_time", "mailing_attempts", ["run_id", "attempted_at", "id"])
    op.create_index(
        "ix_mailing_attempts_run_problems",
        "mailing_attempts",
        ["run_id", "attempted_at", "id"],
        postgresql_where=sa.text("status <> 'success'"),
        sqlite_where=sa.text("status <> 'success'"),
    )

    op.create_table(
        "attempt_stats",
        sa.Column("mailing_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailing_id"], ["mailings.id"], name=op.f("fk_attempt_stats_mailing_id_mailings"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("mailing_id", "slot", name=op.f("pk_attempt_stats")),
    )
    op.create_index("ix_attempt_stats_slot", "attempt_stats", ["slot"])
    # The log written so far, summed once.
    slot = SLOT_ON_POSTGRESQL if postgresql else SLOT_ON_SQLITE
    op.execute(f"""
        INSERT INTO attempt_stats (mailing_id, slot, attempts, successes, failures, sent)
        SELECT mailing_id, slot, sum(attempts), sum(successes), sum(failures), sum(sent)
        FROM (
            SELECT mailing_id, {slot.format("attempted_at")} AS slot, 1 AS attempts,
                   CASE WHEN status = 'success' THEN 1 ELSE 0 END AS successes,
                   CASE WHEN status = 'failure' THEN 1 ELSE 0 END AS failures, 0 AS sent
            FROM mailing_attempts
            UNION ALL
            SELECT r.mailing_id, {slot.format("d.sent_at")}, 0, 0, 0, 1
            FROM deliveries AS d JOIN mailing_runs AS r ON r.id = d.run_id
            WHERE d.status = 'sent' AND d.sent_at IS NOT NULL
        ) AS log
        GROUP BY mailing_id, slot
    """)


def downgrade():
    # Plain operations, no batch mode: on SQLite a batch that copies a table drops the old one,
    # and with foreign keys on, that would delete the rows that reference it.
    op.drop_index("ix_attempt_stats_slot", table_name="attempt_stats")
    op.drop_table("attempt_stats")
    op.drop_index("ix_mailing_attempts_run_problems", table_name="mailing_attempts")
    op.drop_index("ix_mailing_attempts_run_time", table_name="mailing_attempts")
    op.create_index("ix_mailing_attempts_run_time", "mailing_attempts", ["run_id", "attempted_at"])
    op.drop_index("ix_deliveries_run_status", table_name="deliveries")
    op.create_index("ix_deliveries_run_status", "deliveries", ["run_id", "status"])
    op.drop_index("ix_mailing_runs_mailing", table_name="mailing_runs")
    op.drop_index("ix_mailings_owner_start", table_name="mailings")
    op.create_index("ix_mailings_owner_id", "mailings", ["owner_id"])
    op.drop_column("mailings", "client_count")
    op.drop_index("ix_users_created", table_name="users")
    op.drop_index("ix_messages_owner_updated", table_name="messages")
    op.create_index("ix_messages_owner_id", "messages", ["owner_id"])
    if is_postgresql():
        for name, _ in TRIGRAM_INDEXES:
            op.drop_index(name, table_name="clients")
    op.drop_index("ix_clients_owner_created", table_name="clients")
    op.drop_index("ix_clients_owner_name", table_name="clients")
    op.create_index("ix_clients_owner_id", "clients", ["owner_id"])
