"""sending engine v2: renewable claims, the retry window, tries with an unknown outcome, partial
indexes for claims and leases

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ATTEMPT_STATUS_CHECK = "ck_mailing_attempts_attemptstatus"


def _where(condition: str) -> dict:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade():
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_index("ix_deliveries_status_claimed")
        batch_op.create_index("ix_deliveries_pending", ["run_id", "id"], unique=False, **_where("status = 'pending'"))
        batch_op.create_index("ix_deliveries_sending", ["claimed_at"], unique=False, **_where("status = 'sending'"))
        batch_op.create_index(
            "ix_deliveries_claim_token", ["claim_token"], unique=False, **_where("claim_token IS NOT NULL")
        )
    with op.batch_alter_table("mailing_runs") as batch_op:
        batch_op.add_column(sa.Column("unknown_count", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("mailing_attempts") as batch_op:
        batch_op.drop_constraint(op.f(ATTEMPT_STATUS_CHECK), type_="check")
        batch_op.create_check_constraint("attemptstatus", "status IN ('success', 'failure', 'unknown')")


def downgrade():
    op.execute("UPDATE mailing_attempts SET status = 'failure' WHERE status = 'unknown'")
    with op.batch_alter_table("mailing_attempts") as batch_op:
        batch_op.drop_constraint(op.f(ATTEMPT_STATUS_CHECK), type_="check")
        batch_op.create_check_constraint("attemptstatus", "status IN ('success', 'failure')")
    with op.batch_alter_table("mailing_runs") as batch_op:
        batch_op.drop_column("unknown_count")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_index("ix_deliveries_claim_token")
        batch_op.drop_index("ix_deliveries_sending")
        batch_op.drop_index("ix_deliveries_pending")
        batch_op.create_index("ix_deliveries_status_claimed", ["status", "claimed_at"], unique=False)
        batch_op.drop_column("first_attempt_at")
        batch_op.drop_column("claim_token")
