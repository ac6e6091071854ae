"""Pydantic models of the credentials API."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from workcard.credentials.service import MAX_TEXT

VerdictWord = Literal[
    "valid", "expired", "cancelled", "not_yet_valid", "bad_signature", "unknown_key", "malformed"
]


class VerificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    qr_text: str = Field(
        max_length=MAX_TEXT,
        description="The text of the scanned QR code, exactly as read (it starts with `WC3:`, or `WC2:` or `WC1:`).",
        examples=["WC3:RRQXO8P600GK.C99OCTF6..."],
    )


class VerifiedPermit(BaseModel):
    """Enough to match the person with the permit, and nothing more (SPEC P2). From the live record."""

    permit_number: str
    holder_name: str = Field(description="As in the passport.")
    nationality: str = Field(description="ISO 3166-1 alpha-3")
    valid_until: dt.date


class VerificationResponse(BaseModel):
    verdict: VerdictWord = Field(
        description="valid; expired, cancelled or not_yet_valid (the permit, or for expired also the code); "
        "bad_signature (altered or forged), unknown_key (signed with a key not trusted), malformed "
        "(not a permit code, damaged, or a foreign algorithm)."
    )
    reason: str = Field(
        description="The verdict explained for people, in the request's language (Accept-Language), dates "
        "included; the other fields are for machines (ISO dates)."
    )
    checked_at: dt.datetime
    permit: VerifiedPermit | None = Field(
        default=None,
        description="The permit the code names, when the code is authentic and the permit exists.",
    )
