"""Jinja2 templates shared by every domain: each package keeps its own ``templates/<domain>/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from workcard.web import csrf, i18n
from workcard.web.vocabulary import NOTICES

PACKAGE = Path(__file__).resolve().parent.parent
DOMAINS = ("web", "iam", "permits", "credentials", "ecard")
NOTICE_COOKIE = "wc_notice"


def _env() -> Environment:
    loaders = [
        FileSystemLoader(str(PACKAGE / d / "templates"))
        for d in DOMAINS
        if (PACKAGE / d / "templates").is_dir()
    ]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Messages use str.format placeholders ({name}) in templates and in Python alike.
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=False)  # type: ignore[attr-defined]
    env.filters["date"] = i18n.format_date
    env.filters["number"] = i18n.format_number
    return env


ENV = _env()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page, with the signed-in person's header and, once, the notice an action left for it
    (``forms.redirect(url, notice=...)``)."""
    context.setdefault("user", getattr(request.state, "viewer", None))
    notice = NOTICES.get(request.cookies.get(NOTICE_COOKIE, ""))
    html = ENV.get_template(template).render(
        request=request,
        locale=i18n.current_locale.get(),
        csrf_token=csrf.token(request),
        flash=i18n.gettext(notice) if notice else None,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    if NOTICE_COOKIE in request.cookies:
        response.delete_cookie(NOTICE_COOKIE)
    return response
