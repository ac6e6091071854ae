"""The roles of SPEC's roles table that sign in with a staff account. Pure: no framework, no DB."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    PERMIT_OFFICER = "permit_officer"
    EMPLOYER_STAFF = "employer_staff"
    POLICE_VERIFIER = "police_verifier"


class Scope(StrEnum):
    """What a partner system's credentials may do."""

    PERMITS_VERIFY = "permits:verify"


ROLE_LABELS = {
    Role.ADMIN: "Administrator",
    Role.PERMIT_OFFICER: "Permit officer",
    Role.EMPLOYER_STAFF: "Employer staff",
    Role.POLICE_VERIFIER: "Police verifier",
}
SCOPE_LABELS = {Scope.PERMITS_VERIFY: "Verify work permits"}
