"""Tables of the e-card: the holder's account, their sessions, the liveness challenges handed out and
every face-recognition attempt (the local face verifier's own record of what it did)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from workcard.db import Base


class EcardAccount(Base):
    """One per person. ``state``: ``face_pending`` until facial recognition (or, after six failures, the
    bank-card check) completes the registration (SPEC E2, E3); then ``active``."""

    __tablename__ = "ecard_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    foreigner_id: Mapped[int] = mapped_column(ForeignKey("foreigner.id"), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    face_failures: Mapped[int] = mapped_column(default=0)  # consecutive; reset by a success
    created_at: Mapped[dt.datetime]
    activated_at: Mapped[dt.datetime | None]
    version: Mapped[int] = mapped_column(default=1)


class EcardSession(Base):
    """A browser's hold on an account. ``purpose`` ``face``: only the face step of a registration is
    open to it; ``holder``: signed in."""

    __tablename__ = "ecard_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ecard_account.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


class LivenessChallenge(Base):
    """The on-screen actions one face attempt must follow, in order; used once, within minutes."""

    __tablename__ = "liveness_challenge"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ecard_account.id", ondelete="CASCADE"), index=True)
    actions: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class FaceAttempt(Base):
    """One facial-recognition attempt and what the face verifier found: ``outcome`` is ``passed`` or
    the reason it failed; ``distance`` the largest distance between a frame and the photo on file."""

    __tablename__ = "face_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ecard_account.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime]
    outcome: Mapped[str] = mapped_column(String(24))
    distance: Mapped[float | None]


class SmsCode(Base):
    """A one-time code sent by text message to the phone the bank keeps, to finish the bank-card check
    (SPEC E3). Only a keyed hash of the code is kept; a few wrong tries use it up."""

    __tablename__ = "sms_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ecard_account.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str] = mapped_column(String(11))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[dt.datetime | None]
