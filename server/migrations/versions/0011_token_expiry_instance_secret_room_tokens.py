"""API token expiry, the instance secret, encrypted TOTP secrets, used room tokens

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import base64
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import care
from care import (
    ENCRYPTED_PREFIX,
    MASTER,
    new_master_value,
    open_totp_secret,
    seal_totp_secret,
    totp_key,
)

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_secrets = sa.table(
    'instance_secret',
    sa.column('name', sa.String),
    sa.column('value', sa.String),
    sa.column('created_at', care.UTCDateTime()),
)
_staff = sa.table('staff_user', sa.column('id', sa.Integer), sa.column('totp_secret', sa.String))


def _master(connection: sa.Connection) -> bytes:
    """The stored instance secret, written now when absent."""
    value = connection.execute(
        sa.select(_secrets.c.value).where(_secrets.c.name == MASTER)
    ).scalar()
    if value is None:
        value = new_master_value()
        connection.execute(
            sa.insert(_secrets).values(name=MASTER, value=value, created_at=care.utcnow())
        )
    return base64.urlsafe_b64decode(value)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('instance_secret',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('created_at', care.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('room_token_use',
    sa.Column('nonce', sa.String(length=32), nullable=False),
    sa.Column('consultation_id', sa.BigInteger(), nullable=False),
    sa.Column('participant', sa.String(length=64), nullable=False),
    sa.Column('used_at', care.UTCDateTime(), nullable=False),
    sa.Column('expires_at', care.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('nonce')
    )
    with op.batch_alter_table('room_token_use', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_room_token_use_expires_at'), ['expires_at'], unique=False)

    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', care.UTCDateTime(), nullable=True))
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.alter_column(
            'totp_secret', existing_type=sa.String(length=64), type_=sa.String(length=255)
        )

    # Second factors written in clear before now are encrypted under the instance secret.
    connection = op.get_bind()
    key = totp_key(_master(connection))
    rows = connection.execute(
        sa.select(_staff.c.id, _staff.c.totp_secret).where(_staff.c.totp_secret.is_not(None))
    ).all()
    for staff_id, secret in rows:
        if not secret.startswith(ENCRYPTED_PREFIX):
            connection.execute(
                sa.update(_staff)
                .where(_staff.c.id == staff_id)
                .values(totp_secret=seal_totp_secret(key, secret))
            )


def downgrade() -> None:
    """Revert this revision (second factors go back to clear text)."""
    connection = op.get_bind()
    value = connection.execute(
        sa.select(_secrets.c.value).where(_secrets.c.name == MASTER)
    ).scalar()
    if value is not None:
        key = totp_key(base64.urlsafe_b64decode(value))
        rows = connection.execute(
            sa.select(_staff.c.id, _staff.c.totp_secret).where(_staff.c.totp_secret.is_not(None))
        ).all()
        for staff_id, stored in rows:
            connection.execute(
                sa.update(_staff)
                .where(_staff.c.id == staff_id)
                .values(totp_secret=open_totp_secret(key, stored))
            )
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.alter_column(
            'totp_secret', existing_type=sa.String(length=255), type_=sa.String(length=64)
        )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_column('expires_at')

    with op.batch_alter_table('room_token_use', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_room_token_use_expires_at'))

    op.drop_table('room_token_use')
    op.drop_table('instance_secret')
