"""audit lanes: the audit trail becomes 16 hash chains, each with its head (docs/decisions/0012)

Every record written so far stays in lane 1, whose head is the existing one; the heads of lanes 2-16
start empty, each at its own genesis hash (``audit.genesis``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 11:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LANES = 16  # audit.LANES when this revision was written


def upgrade() -> None:
    with op.batch_alter_table("audit_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lane", sa.SmallInteger(), server_default="1", nullable=False))
    op.bulk_insert(
        sa.table("audit_head", sa.column("id"), sa.column("count"), sa.column("last_hash")),
        [{"id": lane, "count": 0, "last_hash": f"{lane - 1:064x}"} for lane in range(2, LANES + 1)],
    )


def downgrade() -> None:
    # One chain again: possible only while lanes 2-16 are empty (their records could not be chained).
    bind = op.get_bind()
    used = bind.execute(sa.text("SELECT count(*) FROM audit_record WHERE lane <> 1")).scalar_one()
    if used:
        raise RuntimeError(f"{used} audit records are in lanes 2-{LANES}: the chain cannot be made one again")
    op.execute(sa.text("DELETE FROM audit_head WHERE id <> 1"))
    with op.batch_alter_table("audit_record", schema=None) as batch_op:
        batch_op.drop_column("lane")
