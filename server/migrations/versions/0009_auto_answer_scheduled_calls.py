"""auto-answer of scheduled calls

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('resident', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'auto_answer_scheduled_calls',
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('resident', schema=None) as batch_op:
        batch_op.drop_column('auto_answer_scheduled_calls')
