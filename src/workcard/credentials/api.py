"""The credentials API: online verification of a scanned permit code for partner systems, and the two
public documents offline verifiers sync (SPEC P1, W5). Thin routes over ``service``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPBasicCredentials
from sqlalchemy.orm import Session

from workcard import audit, clock
from workcard.credentials import service, verdicts
from workcard.credentials.schemas import VerificationRequest, VerificationResponse, VerifiedPermit
from workcard.iam.models import PartnerClient
from workcard.iam.roles import Scope
from workcard.web.deps import get_db
from workcard.web.partner import ERRORS, PartnerAPIRoute, PartnerRoute, basic, json_answer

router = APIRouter(route_class=PartnerAPIRoute)
MEDIA_TYPE = "application/cose"
# The trust list changes only with the key set and may be cached for an hour; the status list must not be
# served stale by a cache (it could hide a cancellation): clients revalidate, which the ETag makes a 304.
TRUST_LIST_CACHE = "public, max-age=3600"
STATUS_LIST_CACHE = "no-cache"
_DOCUMENT_RESPONSES = {
    200: {
        "content": {MEDIA_TYPE: {}},
        "description": "A COSE_Sign1 message (EdDSA) signed by the trust anchor.",
    },
    304: {"description": "Not modified (the If-None-Match tag is current)."},
}


@dataclass(frozen=True)
class _Checked:
    """One check's answer, read before its group commits; the reason is translated in the request."""

    verdict: str
    reason: str
    params: dict[str, str]
    checked_at: dt.datetime
    permit: VerifiedPermit | None


def _check_one(
    session: Session | audit.Records,
    client: PartnerClient,
    body: VerificationRequest,
    lookups: service.Lookups,
) -> _Checked:
    result = service.verify_text(
        session, actor=f"partner:{client.client_id}", text=body.qr_text, channel="api", lookups=lookups
    )
    matched = None
    if result.permit is not None and result.holder is not None:
        matched = VerifiedPermit(
            permit_number=result.permit.number,
            holder_name=result.holder.passport_name,
            nationality=result.holder.nationality,
            valid_until=result.permit.valid_until,
        )
    return _Checked(result.verdict, result.reason, result.params, result.checked_at, matched)


_check = PartnerRoute(
    Scope.PERMITS_VERIFY,
    prepare=lambda session, bodies: service.Lookups.for_texts(
        session, [service.clean_text(b.qr_text) for b in bodies], clock.now()
    ),
    work=_check_one,
    finish=lambda session, lookups: lookups.write(session),
    read=lambda bodies: service.Lookups.read(
        lambda: [service.clean_text(b.qr_text) for b in bodies], clock.now()
    ),
    writes=lambda lookups: lookups.writes(),
)


@router.post(
    "/verifications",
    response_model=VerificationResponse,
    responses=ERRORS,  # type: ignore[arg-type]
    tags=["credentials"],
    summary="Verify a scanned permit QR code (the e-card's or the notification letter's)",
)
@_check.serves
async def create_verification(
    body: VerificationRequest, request: Request, credentials: HTTPBasicCredentials | None = Depends(basic)
) -> Response:
    """Checks the code's signature and the permit's live status: a permit cancelled after the code was
    made is `cancelled` at once. Any text gets a verdict (`malformed` for text that is not a permit
    code), with 200; only a text over 1024 characters is refused (422). Every check is recorded, and
    every refused call (credentials, scope, rate limit) too; a refused body still counts against the
    rate limit.
    Requires the scope `permits:verify`."""
    checked = await _check(request, credentials, body)
    return json_answer(
        VerificationResponse(
            verdict=checked.verdict,  # type: ignore[arg-type]
            reason=verdicts.reason_text(checked.reason, checked.params),
            checked_at=checked.checked_at,
            permit=checked.permit,
        )
    )


def _not_modified(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: a list of tags (weak comparison) or ``*``."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or etag in (t.removeprefix("W/") for t in tags)


def _document(request: Request, body: bytes, etag: str, cache_control: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if _not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MEDIA_TYPE, headers=headers)


@router.get(
    "/trust-list",
    response_class=Response,
    responses=_DOCUMENT_RESPONSES,  # type: ignore[arg-type]
    tags=["credentials"],
    summary="The keys that sign permit codes (public; for offline verifiers)",
)
def get_trust_list(request: Request, db: Session = Depends(get_db, scope="function")) -> Response:
    """The signing keys verifiers may trust, each with the period it signed in and until when its codes
    may be accepted, signed by the trust anchor (pin its key: `workcard keys anchor`). No authentication."""
    body, etag = service.trust_list(db)
    return _document(request, body, etag, TRUST_LIST_CACHE)


@router.get(
    "/status-list",
    response_class=Response,
    responses=_DOCUMENT_RESPONSES,  # type: ignore[arg-type]
    tags=["credentials"],
    summary="Hashes of cancelled and expired permits (public; for offline verifiers)",
)
def get_status_list(request: Request, db: Session = Depends(get_db, scope="function")) -> Response:
    """Truncated SHA-256 hashes (16 bytes) of `wc-status:` + permit number, for every permit that is
    cancelled or expired while its codes could still be unexpired, signed by the trust anchor. Permit
    numbers themselves are not published. No authentication. Served with `Cache-Control: no-cache`, so
    that no cache hides a cancellation: send the ETag in `If-None-Match` and get a 304 while unchanged."""
    row = service.status_list(db)
    return _document(request, row.body, row.etag, STATUS_LIST_CACHE)
