"""runs can be paused and continued for the clients not reached; reasons for disabling and blocking

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

RUN_STATUSES_BEFORE = ("queued", "sending", "done", "cancelled")
RUN_STATUSES_AFTER = ("queued", "sending", "paused", "done", "cancelled")
RUN_TRIGGERS_BEFORE = ("schedule", "manual", "retry")
RUN_TRIGGERS_AFTER = ("schedule", "manual", "retry", "rest")


def in_list(column: str, values: tuple[str, ...]) -> str:
    members = ", ".join(f"'{value}'" for value in values)
    return f'"{column}" IN ({members})'


def set_run_checks(statuses: tuple[str, ...], triggers: tuple[str, ...]) -> None:
    # The enums are VARCHAR columns with a CHECK constraint; a new member is a new CHECK.
    # (SQLite can only change a constraint by copying the table, which batch mode does.)
    with op.batch_alter_table("mailing_runs") as batch_op:
        batch_op.drop_constraint(op.f("ck_mailing_runs_runstatus"), type_="check")
        batch_op.drop_constraint(op.f("ck_mailing_runs_runtrigger"), type_="check")
        batch_op.create_check_constraint("runstatus", in_list("status", statuses))
        batch_op.create_check_constraint("runtrigger", in_list("trigger", triggers))


def upgrade():
    set_run_checks(RUN_STATUSES_AFTER, RUN_TRIGGERS_AFTER)
    with op.batch_alter_table("mailings") as batch_op:
        batch_op.add_column(sa.Column("disabled_reason", sa.Text(), server_default="", nullable=False))
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("blocked_reason", sa.Text(), server_default="", nullable=False))


def downgrade():
    op.execute("UPDATE mailing_runs SET status = 'cancelled' WHERE status = 'paused'")
    op.execute("UPDATE mailing_runs SET \"trigger\" = 'retry' WHERE \"trigger\" = 'rest'")
    set_run_checks(RUN_STATUSES_BEFORE, RUN_TRIGGERS_BEFORE)
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("blocked_reason")
    with op.batch_alter_table("mailings") as batch_op:
        batch_op.drop_column("disabled_reason")
