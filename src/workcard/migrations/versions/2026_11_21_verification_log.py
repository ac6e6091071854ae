"""the verification log without foreign keys (docs/decisions/0012)

``verification.permit_id`` and ``holder_id`` keep their values and the indexes that find them; only the
foreign keys go, so that writing a check's row never locks or waits for the permit it names.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 12:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("verification", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_verification_holder_id_foreigner"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_verification_permit_id_permit"), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("verification", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_verification_permit_id_permit"), "permit", ["permit_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_verification_holder_id_foreigner"), "foreigner", ["holder_id"], ["id"]
        )
