"""analysis_stats: drop the created_at and ner_version indexes (no query needs them; each costs the app's store
transaction about a millisecond per analysed note)

Revision ID: 0004_monitor_stats_indexes
Revises: 0004_review
Create Date: 2026-12-07 13:00:00

The monitor reads the newest rows by id (``ORDER BY id DESC LIMIT window``, optionally ``WHERE ner_version = ?``,
which walks back from the newest id); no query filters or sorts on ``created_at``. ``analysis_id`` keeps its index
(deleting an analysis sets it to NULL). Measured with the store transaction of ``bench/bench_monitoring.py``.
"""

from __future__ import annotations

from alembic import op

revision = '0004_monitor_stats_indexes'
down_revision = '0004_review'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('analysis_stats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_analysis_stats_ner_version'))
        batch_op.drop_index(batch_op.f('ix_analysis_stats_created_at'))


def downgrade() -> None:
    with op.batch_alter_table('analysis_stats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analysis_stats_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_analysis_stats_ner_version'), ['ner_version'], unique=False)
