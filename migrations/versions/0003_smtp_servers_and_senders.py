"""SMTP servers, sender identities, and the server and sender of a mailing

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "smtp_servers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column(
            "security",
            sa.Enum("none", "starttls", "tls", name="security", native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password_encrypted", sa.Text(), nullable=True),
        sa.Column("rate_limit", sa.String(length=255), nullable=True),
        sa.Column("max_connections", sa.Integer(), nullable=True),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("dkim_selector", sa.String(length=63), nullable=True),
        sa.Column("dkim_domain", sa.String(length=253), nullable=True),
        sa.Column("dkim_private_key_encrypted", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smtp_servers")),
        sa.UniqueConstraint("name", name=op.f("uq_smtp_servers_name")),
    )
    with op.batch_alter_table("smtp_servers", schema=None) as batch_op:
        batch_op.create_index(
            "uq_smtp_servers_one_default",
            ["is_default"],
            unique=True,
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        )

    op.create_table(
        "sender_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("reply_to", sa.String(length=254), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_sender_identities_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sender_identities")),
        sa.UniqueConstraint("owner_id", "email", name=op.f("uq_sender_identities_owner_id_email")),
    )
    with op.batch_alter_table("sender_identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sender_identities_owner_id"), ["owner_id"], unique=False)

    with op.batch_alter_table("mailings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sender_identity_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("smtp_server_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_mailings_sender_identity_id"), ["sender_identity_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mailings_smtp_server_id"), ["smtp_server_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_mailings_sender_identity_id_sender_identities"),
            "sender_identities",
            ["sender_identity_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_mailings_smtp_server_id_smtp_servers"),
            "smtp_servers",
            ["smtp_server_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("mailings", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_mailings_smtp_server_id_smtp_servers"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_mailings_sender_identity_id_sender_identities"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_mailings_smtp_server_id"))
        batch_op.drop_index(batch_op.f("ix_mailings_sender_identity_id"))
        batch_op.drop_column("smtp_server_id")
        batch_op.drop_column("sender_identity_id")
    with op.batch_alter_table("sender_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sender_identities_owner_id"))
    op.drop_table("sender_identities")
    with op.batch_alter_table("smtp_servers", schema=None) as batch_op:
        batch_op.drop_index("uq_smtp_servers_one_default")
    op.drop_table("smtp_servers")
