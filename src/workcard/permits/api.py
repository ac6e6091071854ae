"""The partner API of the Work System (SPEC W5): thin routes over ``service``."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPBasicCredentials
from sqlalchemy.orm import Session

from workcard import audit, clock
from workcard.iam.models import PartnerClient
from workcard.iam.roles import Scope
from workcard.permits import service
from workcard.permits.schemas import MatchedPermit, PermitVerifyRequest, PermitVerifyResponse
from workcard.web.partner import ERRORS, PartnerAPIRoute, PartnerRoute, Statement, basic, json_answer

router = APIRouter(route_class=PartnerAPIRoute)


@router.get("/ping", tags=["service"], summary="Liveness of the API (no authentication)")
def ping() -> dict[str, str]:
    return {"status": "ok"}


def _verify_one(
    session: Session | audit.Records,
    client: PartnerClient,
    body: PermitVerifyRequest,
    found: service.PermitRows,
) -> PermitVerifyResponse:
    outcome = service.verify_permit(
        session, actor=f"partner:{client.client_id}", number=body.permit_number, holder_name=body.holder_name,
        passport_number=body.passport_number, found=found,
    )  # fmt: skip
    matched = None
    if outcome.permit and outcome.holder and outcome.employer:
        matched = MatchedPermit(
            permit_number=outcome.permit.number,
            holder_name=outcome.holder.passport_name,
            nationality=outcome.holder.nationality,
            date_of_birth=outcome.holder.date_of_birth,
            sex=outcome.holder.sex,  # type: ignore[arg-type]
            employer_name=outcome.employer.name,
            valid_from=outcome.permit.valid_from,
            valid_until=outcome.permit.valid_until,
        )
    return PermitVerifyResponse(result=outcome.result, checked_at=clock.now(), permit=matched)  # type: ignore[arg-type]


def _read(bodies: Sequence[PermitVerifyRequest]) -> Generator[Statement, Any, service.PermitRows]:
    rows = yield (
        service.PG_PERMITS_FOR_VERIFICATION,
        {"numbers": service.clean_numbers(b.permit_number for b in bodies)},
    )
    return service.permit_rows(rows)


_verify = PartnerRoute(
    Scope.PERMITS_VERIFY,
    prepare=lambda session, bodies: service.permits_for_verification(
        session, [b.permit_number for b in bodies]
    ),
    work=_verify_one,
    read=_read,
)


@router.post(
    "/permits/verify",
    response_model=PermitVerifyResponse,
    responses=ERRORS,  # type: ignore[arg-type]
    tags=["permits"],
    summary="Verify a work permit by its number and the holder's name",
)
@_verify.serves
async def verify_permit(
    body: PermitVerifyRequest, request: Request, credentials: HTTPBasicCredentials | None = Depends(basic)
) -> Response:
    """Answers valid, not_yet_valid, expired, cancelled or not_found. The holder's name must be exactly
    as in the passport (letters, case, spaces, accents; Unicode NFC), as printed on the notification
    letter; spaces in the permit number are ignored. A wrong name and an unknown number give the same
    not_found answer. Requires the scope `permits:verify`. A 503 (with Retry-After) means the call could
    not be completed just now and may be sent again."""
    return json_answer(await _verify(request, credentials, body))
