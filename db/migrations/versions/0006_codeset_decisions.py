"""codeset_decisions: a coder's accept / remove / move / add decisions on an encounter's code set (issue 19)

Revision ID: 0004_codeset
Revises: 0004_monitor_stats_indexes
Create Date: 2026-12-07 13:00:00

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_codeset'
down_revision = '0004_monitor_stats_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('codeset_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('analysis_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('to_sequence', sa.Integer(), nullable=True),
    sa.Column('setting', sa.String(length=16), nullable=False),
    sa.Column('suggested', sa.JSON(), nullable=False),
    sa.Column('final', sa.JSON(), nullable=False),
    sa.Column('reviewer', sa.String(length=200), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('model_version', sa.String(length=200), nullable=True),
    sa.Column('conventions', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['analysis_id'], ['analyses.id'],
                            name=op.f('fk_codeset_decisions_analysis_id_analyses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_codeset_decisions'))
    )
    with op.batch_alter_table('codeset_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_codeset_decisions_analysis_id_id', ['analysis_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_codeset_decisions_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_codeset_decisions_reviewer'), ['reviewer'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('codeset_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_codeset_decisions_reviewer'))
        batch_op.drop_index(batch_op.f('ix_codeset_decisions_created_at'))
        batch_op.drop_index('ix_codeset_decisions_analysis_id_id')
    op.drop_table('codeset_decisions')
