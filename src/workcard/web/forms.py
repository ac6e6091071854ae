"""Helpers for HTML forms: parsing typed values, and showing a domain error next to the field it
concerns while keeping what the person typed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from workcard.config import get_settings
from workcard.errors import DomainError, InvalidInput
from workcard.web.errors import message_of
from workcard.web.templating import NOTICE_COOKIE, render

T = TypeVar("T")


def parse_date(value: str | None, *, field: str, required: bool = True) -> dt.date | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise InvalidInput("Please enter a date (YYYY-MM-DD).", field=field)
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            "“{value}” is not a date; please use YYYY-MM-DD.", field=field, value=value[:20]
        ) from None


def parse_int(value: str | None, *, field: str) -> int:
    try:
        return int((value or "").strip())
    except ValueError:
        raise InvalidInput("Please enter a whole number.", field=field) from None


def redirect(url: str, *, notice: str | None = None) -> RedirectResponse:
    """303 See Other. ``notice``, a key of ``vocabulary.NOTICES``, is said once on the page the redirect
    leads to: a short-lived cookie that ``templating.render`` reads and clears."""
    resp = RedirectResponse(url, status_code=303)
    if notice is not None:
        resp.set_cookie(NOTICE_COOKIE, notice, max_age=60, httponly=True, samesite="lax",
                        secure=get_settings().secure_cookies())  # fmt: skip
    return resp


def attempt(
    request: Request,
    db: Session,
    action: Callable[[], T],
    *,
    template: str,
    on_success: Callable[[T], Any],
    **context: Any,
) -> Any:
    """Run a service call for a form. On a domain error roll back, and show the form again with the
    message next to its field and the person's input kept (status 4xx); 404s go to the error page."""
    try:
        result = action()
    except DomainError as exc:
        if exc.status in (401, 404):
            raise
        db.rollback()
        form = {k: v for k, v in _form_of(request).items() if k != "csrf_token"}
        errors = {"field": exc.field, "message": message_of(exc)}
        return render(request, template, status_code=exc.status, form=form, errors=errors, **context)
    return on_success(result)


def _form_of(request: Request) -> dict[str, Any]:
    form = getattr(request, "_form", None)
    return {k: v for k, v in form.items() if isinstance(v, str)} if form is not None else {}


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("form", {})
    context.setdefault("errors", None)
    return render(request, template, status_code=status_code, **context)
