"""failed notifications are tried again

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import care

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_at', care.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_notification_retry', ['status', 'retry_at'], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_retry')
        batch_op.drop_column('retry_at')
