"""the interface's language of each user

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, no batch copy: on SQLite a copy of `users` with foreign keys on would
# cascade-delete every row that refers to a user.
def upgrade():
    op.add_column("users", sa.Column("locale", sa.String(length=8), nullable=True))


def downgrade():
    op.drop_column("users", "locale")
