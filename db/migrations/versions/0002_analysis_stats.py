"""analysis_stats: per-analysis monitoring statistics without note text (issue 24)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 06:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('analysis_stats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('analysis_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=500), nullable=True),
    sa.Column('ner_version', sa.String(length=200), nullable=True),
    sa.Column('icd_version', sa.String(length=200), nullable=True),
    sa.Column('n_chars', sa.Integer(), nullable=False),
    sa.Column('n_words', sa.Integer(), nullable=False),
    sa.Column('n_entities', sa.Integer(), nullable=False),
    sa.Column('label_diag', sa.Integer(), nullable=False),
    sa.Column('label_proc', sa.Integer(), nullable=False),
    sa.Column('label_med', sa.Integer(), nullable=False),
    sa.Column('label_test', sa.Integer(), nullable=False),
    sa.Column('label_anat', sa.Integer(), nullable=False),
    sa.Column('score_sum', sa.Float(), nullable=False),
    sa.Column('n_scored', sa.Integer(), nullable=False),
    sa.Column('n_low_confidence', sa.Integer(), nullable=False),
    sa.Column('n_coded', sa.Integer(), nullable=False),
    sa.Column('code_score_sum', sa.Float(), nullable=False),
    sa.Column('token_entropy', sa.Float(), nullable=True),
    sa.Column('o_share', sa.Float(), nullable=True),
    sa.Column('n_tokens', sa.Integer(), nullable=True),
    sa.Column('vocab', sa.LargeBinary(), nullable=False),
    sa.Column('profile_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['analysis_id'], ['analyses.id'], name=op.f('fk_analysis_stats_analysis_id_analyses'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analysis_stats'))
    )
    with op.batch_alter_table('analysis_stats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analysis_stats_analysis_id'), ['analysis_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_analysis_stats_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_analysis_stats_ner_version'), ['ner_version'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('analysis_stats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_analysis_stats_ner_version'))
        batch_op.drop_index(batch_op.f('ix_analysis_stats_created_at'))
        batch_op.drop_index(batch_op.f('ix_analysis_stats_analysis_id'))
    op.drop_table('analysis_stats')
