"""Sign-in and the administrator's pages for staff accounts and partner systems."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from workcard.errors import TooManyRequests, Unauthorized
from workcard.iam import service as iam
from workcard.iam.models import StaffUser
from workcard.iam.roles import ROLE_LABELS, SCOPE_LABELS, Role
from workcard.permits import service as permits
from workcard.web import csrf
from workcard.web.deps import SESSION_COOKIE, get_db, optional_user, role
from workcard.web.errors import message_of
from workcard.web.forms import attempt, page, parse_int, redirect
from workcard.web.i18n import gettext

router = APIRouter(dependencies=[Depends(csrf.protect)], include_in_schema=False)
admin = role(Role.ADMIN)


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") else "/"


@router.get("/signin")
def signin_form(
    request: Request, next: str = "/", user: StaffUser | None = Depends(optional_user)
) -> Response:
    if user is not None:
        return redirect(_safe_next(next))
    return page(request, "iam/signin.html", next=_safe_next(next))


@router.post("/signin")
def signin(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
    db: Session = Depends(get_db, scope="function"),
) -> Response:
    client_ip = request.client.host if request.client else "-"
    try:
        result = iam.sign_in(db, username=username, password=password, client_ip=client_ip)
    except (Unauthorized, TooManyRequests) as exc:
        db.commit()  # the failed attempt stays counted and audited
        resp = page(
            request,
            "iam/signin.html",
            status_code=exc.status,
            next=_safe_next(next),
            form={"username": username},
            errors={"field": None, "message": message_of(exc)},
        )
        if isinstance(exc, TooManyRequests):
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    resp = redirect(_safe_next(next))
    settings = request.app.state.settings
    resp.set_cookie(
        SESSION_COOKIE, result.token, max_age=settings.session_hours * 3600, httponly=True, samesite="lax",
        secure=settings.secure_cookies(), path="/",
    )  # fmt: skip
    if result.user.locale:
        resp.set_cookie("wc_lang", result.user.locale, max_age=365 * 86400, httponly=True, samesite="lax",
                        secure=settings.secure_cookies())  # fmt: skip
    return resp


@router.post("/signout")
def signout(request: Request, db: Session = Depends(get_db, scope="function")) -> Response:
    iam.sign_out(db, request.cookies.get(SESSION_COOKIE))
    resp = redirect("/")
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


# --- staff accounts --------------------------------------------------------------------------------


def _staff_context(db: Session, user: StaffUser) -> dict[str, object]:
    employers = permits.list_employers(db, user)
    return {
        "staff": iam.list_staff(db),
        "role_labels": {r.value: label for r, label in ROLE_LABELS.items()},
        "role_options": [("", "—")] + [(r.value, gettext(label)) for r, label in ROLE_LABELS.items()],
        "employers": employers,
        "employer_options": [("", "—")] + [(e.id, e.name) for e in employers],
    }


@router.get("/admin/staff")
def staff_list(
    request: Request, db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(admin)
) -> Response:
    return page(request, "iam/staff.html", **_staff_context(db, user))


@router.post("/admin/staff")
def staff_create(
    request: Request,
    username: str = Form(""),
    display_name: str = Form(""),
    password: str = Form(""),
    role_name: str = Form("", alias="role"),
    employer_id: str = Form(""),
    designated: bool = Form(False),
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(admin),
) -> Response:
    def action() -> StaffUser:
        try:
            chosen = Role(role_name)
        except ValueError:
            from workcard.errors import InvalidInput

            raise InvalidInput("Please choose a role.", field="role") from None
        return iam.create_staff(
            db, actor=iam.actor_of(user), username=username, display_name=display_name, password=password,
            role=chosen, employer_id=parse_int(employer_id, field="employer_id") if employer_id else None,
            designated=designated,
        )  # fmt: skip

    return attempt(
        request, db, action, template="iam/staff.html", on_success=lambda _u: redirect("/admin/staff"),
        **_staff_context(db, user),
    )  # fmt: skip


@router.post("/admin/staff/{user_id}")
def staff_update(
    request: Request,
    user_id: int,
    active: bool = Form(False),
    designated: bool = Form(False),
    password: str = Form(""),
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(admin),
) -> Response:
    return attempt(
        request, db,
        lambda: iam.update_staff(db, actor=iam.actor_of(user), user_id=user_id, active=active,
                                 designated=designated, password=password or None),
        template="iam/staff.html", on_success=lambda _u: redirect("/admin/staff"), **_staff_context(db, user),
    )  # fmt: skip


# --- partner systems (SPEC W5) ---------------------------------------------------------------------


def _partner_context(db: Session) -> dict[str, object]:
    return {"partners": iam.list_partners(db), "scopes": list(SCOPE_LABELS.items())}


@router.get("/admin/partners")
def partner_list(
    request: Request, db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(admin)
) -> Response:
    return page(request, "iam/partners.html", **_partner_context(db))


def _show_secret(request: Request, db: Session, issued: iam.IssuedSecret) -> Response:
    resp = page(request, "iam/partners.html", issued=issued, **_partner_context(db))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.post("/admin/partners")
def partner_create(
    request: Request,
    name: str = Form(""),
    scopes: list[str] = Form([]),
    rate: str = Form("600"),
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(admin),
) -> Response:
    return attempt(
        request, db,
        lambda: iam.create_partner(db, actor=iam.actor_of(user), name=name, scopes=scopes,
                                   rate_limit_per_minute=parse_int(rate, field="rate")),
        template="iam/partners.html", on_success=lambda issued: _show_secret(request, db, issued),
        **_partner_context(db),
    )  # fmt: skip


@router.post("/admin/partners/{client_id}")
def partner_update(
    request: Request,
    client_id: str,
    action: str = Form("update"),
    scopes: list[str] = Form([]),
    rate: str = Form(""),
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(admin),
) -> Response:
    actor = iam.actor_of(user)
    ctx = _partner_context(db)
    if action == "rotate":
        return attempt(
            request,
            db,
            lambda: iam.rotate_partner(db, actor=actor, client_id=client_id),
            template="iam/partners.html",
            on_success=lambda i: _show_secret(request, db, i),
            **ctx,
        )
    if action == "revoke":
        return attempt(
            request,
            db,
            lambda: iam.revoke_partner(db, actor=actor, client_id=client_id),
            template="iam/partners.html",
            on_success=lambda _c: redirect("/admin/partners"),
            **ctx,
        )
    return attempt(
        request, db,
        lambda: iam.update_partner(db, actor=actor, client_id=client_id, scopes=scopes,
                                   rate_limit_per_minute=parse_int(rate, field="rate")),
        template="iam/partners.html", on_success=lambda _c: redirect("/admin/partners"), **ctx,
    )  # fmt: skip
