"""Domain errors mapped once: problem+json (RFC 9457) under /api, a bilingual page for people."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from workcard.errors import DomainError, TooManyRequests
from workcard.web import i18n
from workcard.web.templating import render

log = logging.getLogger(__name__)
TRANSLATED_PARAMS = ("label", "state", "event")


def message_of(exc: DomainError) -> str:
    params: dict[str, Any] = {}
    for key, value in exc.params.items():
        if isinstance(value, list):
            value = ", ".join(i18n.gettext(v) for v in value)
        elif key in TRANSLATED_PARAMS and isinstance(value, str):
            value = i18n.gettext(value)
        params[key] = value
    return i18n.gettext(exc.message, **params)


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"urn:workcard:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Invalid input",
    429: "Too many requests",
    500: "Server error",
}


def _title(status: int) -> str:
    return i18n.gettext(_TITLES.get(status, "Error"))


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def domain_error_response(request: Request, exc: DomainError) -> Response:
    detail = message_of(exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else {}
    if _is_api(request):
        extra = {"field": exc.field} if exc.field else {}
        resp: Response = problem(exc.status, exc.code, _title(exc.status), detail, **extra)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="workcard partner API"'

    else:
        if exc.status == 401 and request.method == "GET":
            return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)
        resp = render(request, "error.html", status_code=exc.status, title=_title(exc.status), detail=detail)
    resp.headers.update(headers)
    return resp


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return domain_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = i18n.gettext("Some fields are missing or not in the expected format.")
        if _is_api(request):
            return problem(422, "invalid_input", _title(422), detail, errors=errors)
        return render(request, "error.html", status_code=422, title=_title(422), detail=detail,
                      errors=errors)  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = (
            i18n.gettext("The page or record does not exist.") if exc.status_code == 404 else str(exc.detail)
        )
        if _is_api(request):
            return problem(exc.status_code, "http_error", _title(exc.status_code), detail)
        return render(request, "error.html", status_code=exc.status_code, title=_title(exc.status_code),
                      detail=detail)  # fmt: skip

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        detail = i18n.gettext("Something went wrong on our side. Nothing was changed; please try again.")
        if _is_api(request):
            return problem(500, "server_error", _title(500), detail)
        return render(request, "error.html", status_code=500, title=_title(500), detail=detail)
