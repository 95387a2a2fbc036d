"""FHIR bulk export jobs and their files

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import care

revision: str = '0015'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        'fhir_export_job',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=32), nullable=False),
        sa.Column('team_ids', sa.JSON(), nullable=False),
        sa.Column('level', sa.String(length=16), nullable=False),
        sa.Column('types', sa.JSON(), nullable=False),
        sa.Column('since', care.UTCDateTime(), nullable=True),
        sa.Column('request_url', sa.String(length=2000), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', care.UTCDateTime(), nullable=False),
        sa.Column('started_at', care.UTCDateTime(), nullable=True),
        sa.Column('finished_at', care.UTCDateTime(), nullable=True),
        sa.Column('claimed_until', care.UTCDateTime(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id']),
        sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_fhir_export_job_staff_id', 'fhir_export_job', ['staff_id'])
    op.create_index('ix_fhir_export_job_status', 'fhir_export_job', ['status'])
    op.create_table(
        'fhir_export_file',
        sa.Column('id', care.BigIntId, nullable=False),
        sa.Column('job_id', sa.String(length=32), nullable=False),
        sa.Column('resource_type', sa.String(length=64), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['fhir_export_job.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_fhir_export_file_job_id', 'fhir_export_file', ['job_id'])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index('ix_fhir_export_file_job_id', table_name='fhir_export_file')
    op.drop_table('fhir_export_file')
    op.drop_index('ix_fhir_export_job_status', table_name='fhir_export_job')
    op.drop_index('ix_fhir_export_job_staff_id', table_name='fhir_export_job')
    op.drop_table('fhir_export_job')
