"""analyses.reviewed_by/reviewed_at and decisions.role: the "fully reviewed" mark and adjudication (issue 17)

Revision ID: 0004_review
Revises: 0003
Create Date: 2026-12-07 13:00:00

A note (as one analysis shows it) becomes gold for exports only once a reviewer marks it fully reviewed; every
decision records the capacity it was made in (``reviewer`` or ``adjudicator``), so an adjudicator's decision
resolves a conflict between reviewers whatever the settings say later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_review'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('analyses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reviewed_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_analyses_reviewed_at'), ['reviewed_at'], unique=False)
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=16), nullable=False, server_default='reviewer'))


def downgrade() -> None:
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_column('role')
    with op.batch_alter_table('analyses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_analyses_reviewed_at'))
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by')
