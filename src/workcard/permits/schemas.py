"""Pydantic models of the partner API (SPEC W5)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

VerifyResult = Literal["valid", "not_yet_valid", "expired", "cancelled", "not_found"]


class PermitVerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permit_number: str = Field(
        min_length=1, max_length=40, pattern=r"^[0-9A-Za-z ]+$", examples=["1226000000018"],
        description="Letters and digits (spaces are ignored).",
    )  # fmt: skip
    holder_name: str = Field(
        min_length=1, max_length=120, description="Exactly as in the passport.", examples=["Jane Doe"]
    )
    passport_number: str | None = Field(
        default=None, max_length=40, description="Optional; narrows the match."
    )


class MatchedPermit(BaseModel):
    """Only what is needed to match the person and the permit (SPEC P2)."""

    permit_number: str
    holder_name: str
    nationality: str = Field(description="ISO 3166-1 alpha-3")
    date_of_birth: dt.date
    sex: Literal["M", "F"]
    employer_name: str
    valid_from: dt.date
    valid_until: dt.date


class PermitVerifyResponse(BaseModel):
    result: VerifyResult
    checked_at: dt.datetime
    permit: MatchedPermit | None = Field(
        default=None,
        description="Absent when the result is not_found (a wrong name looks like an unknown number).",
    )
