"""The police verifier's page (SPEC P1, P2): scan a permit QR code with the device camera, upload a
photo of it, or paste its text; the verdict is shown large, with the data that matches the person.
A photo and a text together are refused rather than one of them silently checked; a text longer than
any code (the API's limit, ``service.MAX_TEXT``) is refused too, and neither refusal is recorded."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import segno
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from workcard.credentials import service, verdicts
from workcard.credentials.qrimage import MAX_IMAGE_BYTES, decode_image
from workcard.errors import DomainError, InvalidInput, NotFound
from workcard.iam.models import StaffUser
from workcard.iam.roles import Role
from workcard.iam.service import actor_of
from workcard.permits import rules
from workcard.permits import service as permits
from workcard.web import csrf
from workcard.web.deps import get_db, role
from workcard.web.errors import message_of, problem_of
from workcard.web.forms import attempt, page

router = APIRouter(dependencies=[Depends(csrf.protect)], include_in_schema=False)
verifier = role(Role.POLICE_VERIFIER)


@router.get("/verify")
def verify_form(request: Request, user: StaffUser = Depends(verifier)) -> Response:
    return page(request, "credentials/verify.html", result=None, max_text=service.MAX_TEXT)


@router.post("/verify")
def verify(
    request: Request,
    qr_text: str = Form(""),
    photo: UploadFile | None = File(None),
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(verifier),
) -> Response:
    def action() -> service.Verdict:
        text = qr_text.strip()
        if photo is not None and photo.filename:
            if text:  # two codes to choose from: the officer says which one is checked
                raise InvalidInput("Give either a photo of the code or its text, not both.", field="photo")
            text = decode_image(photo.file.read(MAX_IMAGE_BYTES + 1), field="photo")[0]
        elif len(text) > service.MAX_TEXT:
            raise InvalidInput("This text is too long for a permit QR code (at most {max} characters).",
                               field="qr_text", max=service.MAX_TEXT)  # fmt: skip
        if not text:
            raise InvalidInput("Scan the code, choose a photo of it, or paste its text.", field="qr_text")
        return service.verify_text(db, actor=actor_of(user), text=text, channel="page")

    def show(result: service.Verdict) -> Response:
        nationality = rules.nationality_names(result.holder.nationality) if result.holder else None
        reason = verdicts.reason_text(result.reason, result.params)
        resp = page(request, "credentials/verify.html", result=result, reason=reason, nationality=nationality)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    return attempt(request, db, action, template="credentials/verify.html", on_success=show, result=None,
                   max_text=service.MAX_TEXT)  # fmt: skip


@router.post("/verify/frame")
def read_frame(frame: UploadFile = File(...), user: StaffUser = Depends(verifier)) -> JSONResponse:
    """A camera frame from the page's scanner: the QR text if exactly one code is in it. Nothing is
    recorded: the check itself happens when the page submits the text."""
    try:
        texts = decode_image(frame.file.read(MAX_IMAGE_BYTES + 1), field="frame")
    except DomainError as exc:
        return JSONResponse({"found": False, "message": message_of(exc)})
    return JSONResponse({"found": True, "text": texts[0]})


@router.get("/verify/photo/{foreigner_id}")
def holder_photo(
    foreigner_id: int, db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(verifier)
) -> Response:
    """The holder's photo, for an officer who has just checked one of their codes."""
    photo = service.holder_photo_for_verifier(db, actor=actor_of(user), foreigner_id=foreigner_id)
    if photo is None:
        raise NotFound("No photo.")
    return Response(photo, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


# --- the holder's dynamic code, shown to the employer and the officer until the e-card pages exist ------

code_viewer = role(Role.EMPLOYER_STAFF, Role.PERMIT_OFFICER)


class JsonRoute(APIRoute):
    """A page's JSON endpoint: its domain errors, and its dependencies' (not signed in, not allowed),
    answer problem+json in the user's language, as under /api, rather than an HTML error page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except DomainError as exc:
                return problem_of(exc)

        return route


def _dynamic_code(db: Session, user: StaffUser, permit_id: int) -> dict[str, object]:
    permit = permits.get_permit(db, user, permit_id)  # access check (404 for another employer) and audit
    code = service.ecard_code(db, permit)
    qr = segno.make(code, error="m", micro=False)
    return {
        "permit_number": permit.number,
        "code": code,
        "image": qr.svg_data_uri(scale=6, border=4),
        "qr_version": qr.version,
        "expires_in": int(service.ECARD_LIFETIME.total_seconds()),
    }


@router.get("/employer/permits/{permit_id}/code")
@router.get("/officer/permits/{permit_id}/code")
def dynamic_code_page(
    request: Request, permit_id: int, db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(code_viewer),
) -> Response:  # fmt: skip
    resp = page(request, "credentials/dynamic_code.html", **_dynamic_code(db, user, permit_id))
    resp.headers["Cache-Control"] = "no-store"
    return resp


json_router = APIRouter(route_class=JsonRoute)


@json_router.get("/employer/permits/{permit_id}/code.json")
@json_router.get("/officer/permits/{permit_id}/code.json")
def dynamic_code(
    permit_id: int, db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(code_viewer)
) -> JSONResponse:
    return JSONResponse(_dynamic_code(db, user, permit_id), headers={"Cache-Control": "no-store"})


router.include_router(json_router)
