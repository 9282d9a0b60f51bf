"""Create users.

Revision ID: 0001_create_users
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import ExactText, UTCDateTime

revision: str = "0001_create_users"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", ExactText(320), nullable=False),
        sa.Column("hashed_password", ExactText(255), nullable=False),
        sa.Column("full_name", ExactText(100), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_superuser", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_users_email"), "users", ["email"], unique=True)


def downgrade() -> None:
    # Dropping the table drops its indexes (MySQL refuses to drop an FK's index first).
    op.drop_table("users")
