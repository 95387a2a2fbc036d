"""dead letters kept per device are capped; the rest are counted on the device

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('dead_letters_dropped', sa.BigInteger(), nullable=False, server_default='0')
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_column('dead_letters_dropped')
