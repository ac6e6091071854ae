"""The credentials API: online verification of a scanned permit code for partner systems, and the two
public documents offline verifiers sync (SPEC P1, W5). Thin routes over ``service``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from workcard.credentials import service
from workcard.credentials.schemas import VerificationRequest, VerificationResponse, VerifiedPermit
from workcard.iam.models import PartnerClient
from workcard.iam.roles import Scope
from workcard.web import i18n
from workcard.web.deps import get_db
from workcard.web.partner import ERRORS, partner

router = APIRouter()
MEDIA_TYPE = "application/cose"
CACHE_CONTROL = "public, max-age=3600"
_DOCUMENT_RESPONSES = {
    200: {
        "content": {MEDIA_TYPE: {}},
        "description": "A COSE_Sign1 message (EdDSA) signed by the trust anchor.",
    },
    304: {"description": "Not modified (the If-None-Match tag is current)."},
}


@router.post(
    "/verifications",
    response_model=VerificationResponse,
    responses=ERRORS,  # type: ignore[arg-type]
    tags=["credentials"],
    summary="Verify a scanned permit QR code (the e-card's or the notification letter's)",
)
def create_verification(
    body: VerificationRequest,
    db: Session = Depends(get_db, scope="function"),
    client: PartnerClient = Depends(partner(Scope.PERMITS_VERIFY)),
) -> VerificationResponse:
    """Checks the code's signature and the permit's live status: a permit cancelled after the code was
    made is `cancelled` at once. Any text gets a verdict (`malformed` for text that is not a permit
    code), with 200; only a text over 1024 characters is refused (422). Every call is recorded.
    Requires the scope `permits:verify`."""
    result = service.verify_text(db, actor=f"partner:{client.client_id}", text=body.qr_text, channel="api")
    matched = None
    if result.permit is not None and result.holder is not None:
        matched = VerifiedPermit(
            permit_number=result.permit.number,
            holder_name=result.holder.passport_name,
            nationality=result.holder.nationality,
            valid_until=result.permit.valid_until,
        )
    return VerificationResponse(
        verdict=result.verdict,  # type: ignore[arg-type]
        reason=i18n.gettext(result.reason, **result.params),
        checked_at=result.checked_at,
        permit=matched,
    )


def _not_modified(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: a list of tags (weak comparison) or ``*``."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or etag in (t.removeprefix("W/") for t in tags)


def _document(request: Request, body: bytes, etag: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
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
    return _document(request, body, etag)


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
    numbers themselves are not published. No authentication."""
    row = service.status_list(db)
    return _document(request, row.body, row.etag)
