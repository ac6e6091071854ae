"""Pages every person sees: home, language choice."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from workcard.iam.models import StaffUser
from workcard.web import csrf, i18n
from workcard.web.deps import get_db, optional_user
from workcard.web.templating import render

router = APIRouter(dependencies=[Depends(csrf.protect)])

HOME_BY_ROLE = {
    "employer_staff": "/employer/applications",
    "permit_officer": "/officer/queue",
    "admin": "/admin/staff",
    "police_verifier": "/verify",
}


@router.get("/", include_in_schema=False)
def home(request: Request, user: StaffUser | None = Depends(optional_user)) -> Response:
    if user is not None:
        return RedirectResponse(HOME_BY_ROLE.get(user.role, "/"), status_code=303)
    return render(request, "home.html", title=i18n.gettext("Home"))


@router.post("/lang", include_in_schema=False)
def choose_language(
    request: Request,
    locale: str = Form(...),
    next: str = Form("/"),
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser | None = Depends(optional_user),
) -> Response:
    chosen = i18n.normalise(locale) or request.app.state.settings.default_locale
    # back to the same page and query, on this site only ("//host" and "/\\host" lead elsewhere)
    target = next if next.startswith("/") and not next.startswith(("//", "/\\")) else "/"
    resp = RedirectResponse(target, status_code=303)
    secure = request.app.state.settings.secure_cookies()
    resp.set_cookie("wc_lang", chosen, max_age=365 * 86400, httponly=True, samesite="lax", secure=secure)
    if user is not None:
        user.locale = chosen
    return resp
