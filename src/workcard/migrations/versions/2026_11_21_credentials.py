"""credentials: signing keys (public halves), verifications of permit QR codes, the status list

Generated with autogenerate and reviewed; the check on signing_key.signing was added by hand (it is
True for the one current key and NULL otherwise, so the unique constraint admits one current key).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 05:11:39.322882
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workcard.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=16), nullable=False),
        sa.Column("alg", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("signs_from", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("signs_until", workcard.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verify_until", workcard.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retired_at", workcard.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("signing", sa.Boolean(), nullable=True),
        sa.CheckConstraint("signing IS NULL OR signing", name=op.f("ck_signing_key_signing_true_or_null")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_key")),
        sa.UniqueConstraint("kid", name=op.f("uq_signing_key_kid")),
        sa.UniqueConstraint("signing", name=op.f("uq_signing_key_signing")),
    )
    op.create_table(
        "status_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issued_at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("etag", sa.String(length=66), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_list")),
    )
    op.create_table(
        "verification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("permit_id", sa.Integer(), nullable=True),
        sa.Column("holder_id", sa.Integer(), nullable=True),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("use", sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["foreigner.id"], name=op.f("fk_verification_holder_id_foreigner")
        ),
        sa.ForeignKeyConstraint(["permit_id"], ["permit.id"], name=op.f("fk_verification_permit_id_permit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification")),
    )
    with op.batch_alter_table("verification", schema=None) as batch_op:
        batch_op.create_index("ix_verification_holder_at", ["holder_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_verification_permit_id"), ["permit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("verification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verification_permit_id"))
        batch_op.drop_index("ix_verification_holder_at")

    op.drop_table("verification")
    op.drop_table("status_list")
    op.drop_table("signing_key")
