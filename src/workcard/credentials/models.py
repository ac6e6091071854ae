"""Tables of the signed permit QR codes: the signing keys (public halves only), every verification,
and the current status list. Private keys are files, never rows (``keys.py``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from workcard.db import Base


class SigningKey(Base):
    """A key that signs permit tokens. Its private half is ``var/keys/<kid>.pem``.

    * ``signs_from`` – ``signs_until``: the window in which it signs new tokens; ``signs_until`` is
      NULL while it is the current key (``signing`` is then True; NULL otherwise, so the unique
      constraint admits exactly one current key, whichever process races to make one).
    * ``verify_until``: verifiers accept its tokens until then (NULL while current); set when the
      signing window closes, to the latest expiry any token it signed can have.
    * ``retired_at``: withdrawn (compromise); no longer trusted at all."""

    __tablename__ = "signing_key"
    __table_args__ = (CheckConstraint("signing IS NULL OR signing", name="signing_true_or_null"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(16), unique=True)
    alg: Mapped[int]  # COSE algorithm: -8 EdDSA (Ed25519)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # raw: 32 bytes for Ed25519
    created_at: Mapped[dt.datetime]
    signs_from: Mapped[dt.datetime]
    signs_until: Mapped[dt.datetime | None]
    verify_until: Mapped[dt.datetime | None]
    retired_at: Mapped[dt.datetime | None]
    signing: Mapped[bool | None] = mapped_column(unique=True)


class Verification(Base):
    """One check of a permit QR code, whatever its verdict (SPEC P1, X5). Shown to the holder (who
    checked my permit), never to the employer. A log, like the audit trail: ``permit_id`` and
    ``holder_id`` name the permit and person checked without foreign keys, so that writing the log
    never locks or waits for them (docs/decisions/0012-audit-lanes.md)."""

    __tablename__ = "verification"
    __table_args__ = (Index("ix_verification_holder_at", "holder_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(8))  # api, page, cli
    verdict: Mapped[str] = mapped_column(String(16))
    permit_id: Mapped[int | None] = mapped_column(index=True)
    holder_id: Mapped[int | None]
    key_id: Mapped[str | None] = mapped_column(String(16))
    use: Mapped[str | None] = mapped_column(String(8))  # ecard or letter, when the token was authentic


class StatusList(Base):
    """The current anchor-signed status list (one row, id 1), rebuilt by ``jobs.rebuild_status_list``.
    ``digest`` covers the entries only, so an unchanged list keeps its bytes, ETag and issue time."""

    __tablename__ = "status_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    issued_at: Mapped[dt.datetime]
    etag: Mapped[str] = mapped_column(String(66))
    digest: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int]
    body: Mapped[bytes] = mapped_column(LargeBinary)
