"""The foreigner's e-card pages: register (name, permit number, password), facial recognition with
the camera, log in, the card itself and who checked the permit. A browser holds an e-card session in
its own cookie, apart from staff sign-in."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from workcard.ecard import service
from workcard.ecard.models import EcardAccount
from workcard.errors import DomainError, InvalidInput, Unauthorized
from workcard.iam.roles import ROLE_LABELS
from workcard.web import csrf
from workcard.web.deps import get_db
from workcard.web.errors import message_of
from workcard.web.forms import page, redirect

router = APIRouter(dependencies=[Depends(csrf.protect)], include_in_schema=False)
COOKIE = "wc_ecard"


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "-"


def _account(request: Request, db: Session, purpose: str) -> EcardAccount | None:
    return service.account_for_token(db, request.cookies.get(COOKIE), purpose=purpose)


def holder(request: Request, db: Session = Depends(get_db, scope="function")) -> EcardAccount:
    account = _account(request, db, service.HOLDER)
    if account is None:
        raise Unauthorized("Please log in to your e-card.")
    request.state.holder_name = service.card(db, account).holder.passport_name
    return account


def _hold_cookie(request: Request, resp: Response, hold: service.Hold) -> Response:
    settings = request.app.state.settings
    resp.set_cookie(COOKIE, hold.token, max_age=settings.session_hours * 3600, httponly=True, samesite="lax",
                    secure=settings.secure_cookies(), path="/")  # fmt: skip
    return resp


def _settle(db: Session, exc: DomainError) -> dict[str, object]:
    """End a failed call's transaction: kept when the failure must leave a trace (a counted attempt),
    else rolled back. Returns the message for the page."""
    if exc.keep_changes:
        db.commit()
    else:
        db.rollback()
    return {"field": exc.field, "message": message_of(exc)}


def _refused(request: Request, db: Session, exc: DomainError, template: str, **context: object) -> Response:
    """The form again with the message."""
    errors = _settle(db, exc)
    resp = page(request, template, status_code=exc.status, errors=errors, **context)
    if retry := getattr(exc, "retry_after", None):
        resp.headers["Retry-After"] = str(retry)
    return resp


@router.get("/ecard")
def home(request: Request, db: Session = Depends(get_db, scope="function")) -> Response:
    account = _account(request, db, service.HOLDER)
    if account is None:
        return page(request, "ecard/welcome.html")
    card = service.card(db, account)
    request.state.holder_name = card.holder.passport_name
    return page(request, "ecard/card.html", card=card)


@router.get("/ecard/register")
def register_form(request: Request) -> Response:
    return page(request, "ecard/register.html")


@router.post("/ecard/register")
def register(
    request: Request,
    name: str = Form(""),
    permit_number: str = Form(""),
    password: str = Form(""),
    password_again: str = Form(""),
    db: Session = Depends(get_db, scope="function"),
) -> Response:
    form = {"name": name, "permit_number": permit_number}
    try:
        if password != password_again:
            raise InvalidInput("The two passwords are not the same.", field="password_again")
        hold = service.register(db, name=name, permit_number=permit_number, password=password,
                                client_ip=_client_ip(request))  # fmt: skip
    except DomainError as exc:
        return _refused(request, db, exc, "ecard/register.html", form=form)
    return _hold_cookie(request, redirect("/ecard/face"), hold)


def _pending(request: Request, db: Session) -> EcardAccount | None:
    """The registration this browser is completing, while it is still to complete."""
    account = _account(request, db, service.FACE)
    return account if account is not None and account.state == service.PENDING else None


def _face_page(request: Request, db: Session, account: EcardAccount, status_code: int = 200,
               errors: dict[str, object] | None = None) -> Response:  # fmt: skip
    if service.face_tries_left(account) == 0:
        return page(request, "ecard/face.html", status_code=status_code, challenge=None, errors=errors)
    challenge = service.start_face(db, account=account)
    return page(request, "ecard/face.html", status_code=status_code, challenge=challenge, errors=errors,
                tries_left=service.face_tries_left(account))  # fmt: skip


@router.get("/ecard/face")
def face_form(request: Request, db: Session = Depends(get_db, scope="function")) -> Response:
    account = _pending(request, db)
    if account is None:
        return redirect("/ecard/register")
    resp = _face_page(request, db, account)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.post("/ecard/face")
def face(
    request: Request,
    challenge: str = Form(""),
    frame0: UploadFile | None = File(None),
    frame1: UploadFile | None = File(None),
    frame2: UploadFile | None = File(None),
    db: Session = Depends(get_db, scope="function"),
) -> Response:
    account = _pending(request, db)
    if account is None:
        return redirect("/ecard/register")
    uploads = [f for f in (frame0, frame1, frame2) if f is not None and f.filename]
    frames = [f.file.read(service.FRAME_MAX_BYTES + 1) for f in uploads]
    try:
        service.verify_face(db, account=account, challenge=challenge, frames=frames)
    except DomainError as exc:
        errors = _settle(db, exc)
        resp = _face_page(request, db, account, status_code=exc.status, errors=errors)
        db.commit()  # the new challenge the page carries
        return resp
    service.promote(db, request.cookies.get(COOKIE))
    return redirect("/ecard", notice="ecard_registered")


@router.get("/ecard/login")
def login_form(request: Request) -> Response:
    return page(request, "ecard/login.html")


@router.post("/ecard/login")
def login(
    request: Request,
    permit_number: str = Form(""),
    password: str = Form(""),
    db: Session = Depends(get_db, scope="function"),
) -> Response:
    try:
        hold = service.sign_in(
            db, permit_number=permit_number, password=password, client_ip=_client_ip(request)
        )
    except DomainError as exc:
        return _refused(request, db, exc, "ecard/login.html", form={"permit_number": permit_number})
    target = "/ecard" if hold.purpose == service.HOLDER else "/ecard/face"
    return _hold_cookie(request, redirect(target), hold)


@router.post("/ecard/logout")
def logout(request: Request, db: Session = Depends(get_db, scope="function")) -> Response:
    service.sign_out(db, request.cookies.get(COOKIE))
    resp = redirect("/ecard")
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.get("/ecard/checks")
def checks(
    request: Request, db: Session = Depends(get_db, scope="function"), account: EcardAccount = Depends(holder)
) -> Response:
    labels = {r.value: label for r, label in ROLE_LABELS.items()}
    resp = page(request, "ecard/checks.html", checks=service.checks(db, account), role_labels=labels)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.get("/ecard/bank")
def bank_form(request: Request, db: Session = Depends(get_db, scope="function")) -> Response:
    account = _pending(request, db)
    if account is None:
        return redirect("/ecard/register")
    if not service.bank_check_open(account):
        return redirect("/ecard/face")
    return page(request, "ecard/bank.html")


@router.post("/ecard/bank")
def bank(
    request: Request,
    name: str = Form(""),
    passport_number: str = Form(""),
    card_number: str = Form(""),
    phone: str = Form(""),
    db: Session = Depends(get_db, scope="function"),
) -> Response:
    account = _pending(request, db)
    if account is None:
        return redirect("/ecard/register")
    form = {"name": name, "passport_number": passport_number, "card_number": card_number, "phone": phone}
    try:
        masked = service.start_bank_check(db, account=account, name=name, passport_number=passport_number,
                                          card_number=card_number, phone=phone)  # fmt: skip
    except DomainError as exc:
        return _refused(request, db, exc, "ecard/bank.html", form=form)
    return page(request, "ecard/code.html", phone=masked)


@router.post("/ecard/bank/code")
def bank_code(
    request: Request,
    code: str = Form(""),
    phone: str = Form(""),
    db: Session = Depends(get_db, scope="function"),
) -> Response:
    account = _pending(request, db)
    if account is None:
        return redirect("/ecard/register")
    try:
        service.confirm_bank_code(db, account=account, code=code)
    except DomainError as exc:
        return _refused(request, db, exc, "ecard/code.html", phone=phone[:11])
    service.promote(db, request.cookies.get(COOKIE))
    return redirect("/ecard", notice="ecard_registered")
