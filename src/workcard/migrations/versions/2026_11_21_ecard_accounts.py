"""the e-card (accounts, sessions, liveness challenges, face attempts, SMS codes), the partner banks' account
records and the SMS outbox (SPEC E1–E5)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 12:09:51.566766
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workcard.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bank_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bank", sa.String(length=60), nullable=False),
        sa.Column("card_number", sa.String(length=19), nullable=False),
        sa.Column("holder_name", sa.String(length=120), nullable=False),
        sa.Column("passport_number", sa.String(length=20), nullable=False),
        sa.Column("phone", sa.String(length=11), nullable=False),
        sa.Column("opened_at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_account")),
        sa.UniqueConstraint("card_number", name=op.f("uq_bank_account_card_number")),
    )
    op.create_table(
        "sms_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sent_at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_message")),
    )
    with op.batch_alter_table("sms_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_message_phone"), ["phone"], unique=False)

    op.create_table(
        "ecard_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("foreigner_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("face_failures", sa.Integer(), nullable=False),
        sa.Column("created_at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activated_at", workcard.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["foreigner_id"], ["foreigner.id"], name=op.f("fk_ecard_account_foreigner_id_foreigner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ecard_account")),
        sa.UniqueConstraint("foreigner_id", name=op.f("uq_ecard_account_foreigner_id")),
    )
    op.create_table(
        "ecard_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("created_at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ecard_account.id"],
            name=op.f("fk_ecard_session_account_id_ecard_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ecard_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_ecard_session_token_hash")),
    )
    with op.batch_alter_table("ecard_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ecard_session_account_id"), ["account_id"], unique=False)

    op.create_table(
        "face_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("distance", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ecard_account.id"],
            name=op.f("fk_face_attempt_account_id_ecard_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_attempt")),
    )
    with op.batch_alter_table("face_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_face_attempt_account_id"), ["account_id"], unique=False)

    op.create_table(
        "liveness_challenge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("created_at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", workcard.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ecard_account.id"],
            name=op.f("fk_liveness_challenge_account_id_ecard_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_liveness_challenge")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_liveness_challenge_token_hash")),
    )
    with op.batch_alter_table("liveness_challenge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_liveness_challenge_account_id"), ["account_id"], unique=False)

    op.create_table(
        "sms_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=11), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", workcard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", workcard.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ecard_account.id"],
            name=op.f("fk_sms_code_account_id_ecard_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_code")),
    )
    with op.batch_alter_table("sms_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_code_account_id"), ["account_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sms_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_code_account_id"))

    op.drop_table("sms_code")
    with op.batch_alter_table("liveness_challenge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_liveness_challenge_account_id"))

    op.drop_table("liveness_challenge")
    with op.batch_alter_table("face_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_face_attempt_account_id"))

    op.drop_table("face_attempt")
    with op.batch_alter_table("ecard_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ecard_session_account_id"))

    op.drop_table("ecard_session")
    op.drop_table("ecard_account")
    with op.batch_alter_table("sms_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_message_phone"))

    op.drop_table("sms_message")
    op.drop_table("bank_account")
