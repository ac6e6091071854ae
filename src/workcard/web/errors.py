"""Errors mapped once: problem+json (RFC 9457) under /api, a page in the reader's language elsewhere.
Domain errors carry their own message; the framework's errors (request validation, unknown address,
unreadable body or form, undecodable credentials) get project messages here, so that no English text of
FastAPI, Starlette or Pydantic reaches a person or a partner system (SPEC X1, X2)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from workcard.errors import DomainError, TooManyRequests, Unauthorized, Unavailable
from workcard.web import i18n
from workcard.web.deps import viewer
from workcard.web.templating import render
from workcard.web.vocabulary import N_

log = logging.getLogger(__name__)
TRANSLATED_PARAMS = ("label", "state", "event")
PARTNER_REALM = 'Basic realm="workcard partner API"'


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
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Server error",
    503: "Service unavailable",
}


_API_TITLES = {401: "Credentials required"}  # a partner system does not sign in


def _title(status: int, api: bool = False) -> str:
    return i18n.gettext((api and _API_TITLES.get(status)) or _TITLES.get(status, "Error"))


def problem_of(exc: DomainError) -> Response:
    """The problem document (RFC 9457) of a domain error, in the request's language."""
    return problem(exc.status, exc.code, _title(exc.status), message_of(exc))


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _respond(
    request: Request, status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """A problem document under /api, else the error page, which shows the signed-in person's header."""
    if _is_api(request):
        resp: Response = problem(status, code, _title(status, api=True), detail, **extra)
    else:
        resp = render(request, "error.html", status_code=status, title=_title(status), detail=detail,
                      user=viewer(request), **extra)  # fmt: skip
    resp.headers.update(headers or {})
    return resp


def domain_error_response(request: Request, exc: DomainError) -> Response:
    if exc.status == 401 and request.method == "GET" and not _is_api(request):
        if request.url.path.startswith("/ecard"):  # a holder logs in to the e-card, not as staff
            return RedirectResponse("/ecard/login", status_code=303)
        return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)
    retry_after = exc.retry_after if isinstance(exc, TooManyRequests | Unavailable) else None
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    extra = {}
    if _is_api(request):
        if exc.status == 401:
            headers["WWW-Authenticate"] = PARTNER_REALM
        if exc.field:
            extra["field"] = exc.field
    return _respond(request, exc.status, exc.code, message_of(exc), headers, **extra)


# --- request validation (Pydantic's error types as project messages) ---------------------------------

_VALUE_MESSAGES = {
    kind: message
    for kinds, message in (
        (("missing",), N_("This field is required.")),
        (("extra_forbidden",), N_("This field is not part of the request.")),
        (("string_type",), N_("Must be text.")),
        (("int_type", "int_parsing", "int_from_float"), N_("Must be a whole number.")),
        (("bool_type", "bool_parsing"), N_("Must be true or false.")),
        (("date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"),
         N_("Must be a date (YYYY-MM-DD).")),
        (("model_attributes_type", "model_type", "dict_type"), N_("Must be a JSON object.")),
    )
    for kind in kinds
}  # fmt: skip
UNEXPECTED_FORMAT = N_("Not in the expected format.")
_BODY_MESSAGES = {
    "missing": N_("The request has no body: send a JSON object."),
    "json_invalid": N_("The request body is not valid JSON (error at character {position})."),
}
NOT_AN_OBJECT = N_("The request body must be a JSON object.")
NOT_JSON = N_("The request body must be JSON, sent with the header Content-Type: application/json.")


def _value_message(kind: str, ctx: dict[str, Any]) -> str:
    if kind == "string_too_short":
        n = ctx["min_length"]
        return i18n.ngettext(
            "Must be at least {n} character long.", "Must be at least {n} characters long.", n
        )
    if kind == "string_too_long":
        n = ctx["max_length"]
        return i18n.ngettext("Must be at most {n} character long.", "Must be at most {n} characters long.", n)
    if kind in ("literal_error", "enum"):
        # Pydantic lists the values as "'a', 'b' or 'c'": the last separator is English.
        expected = ", ".join(str(ctx.get("expected", "")).rsplit(" or ", 1))
        return i18n.gettext("Must be one of: {expected}.", expected=expected)
    return i18n.gettext(_VALUE_MESSAGES.get(kind, UNEXPECTED_FORMAT))


def field_error(error: Any) -> dict[str, str]:
    """One Pydantic validation error as ``{"field", "message"}`` in the reader's language. An error of the
    body as a whole (none, not JSON, not an object) has the field ``""``."""
    loc = tuple(error.get("loc", ()))
    kind = str(error.get("type", ""))
    if loc[:1] == ("body",) and (len(loc) == 1 or kind == "json_invalid"):
        message = _BODY_MESSAGES.get(kind, NOT_AN_OBJECT)
        return {"field": "", "message": i18n.gettext(message, position=loc[-1])}
    field = ".".join(str(p) for p in loc if p != "body")
    return {"field": field, "message": _value_message(kind, error.get("ctx") or {})}


# --- the framework's HTTP errors -----------------------------------------------------------------------

_HTTP_DETAILS = {
    400: N_("The request could not be read. Please check it and try again."),
    404: N_("The page or record does not exist."),
    405: N_("This address does not accept {method} requests."),
    413: N_("The request is too large."),
}


def _http_error(request: Request, exc: StarletteHTTPException) -> tuple[int, str]:
    """The status and the reader's message for an HTTPException raised by FastAPI or Starlette, whose
    own ``detail`` is English."""
    if isinstance(exc.__context__, MultiPartException):  # Starlette's form parser refused the form
        if "exceeded maximum size" in exc.__context__.message:
            return 413, i18n.gettext("A field of the form is too large. Nothing was saved.")
        return 400, i18n.gettext("The form could not be read. Please reload the page and try again.")
    status = exc.status_code
    return status, i18n.gettext(
        _HTTP_DETAILS.get(status, _TITLES.get(status, "Error")), method=request.method
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return domain_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if isinstance(exc.body, bytes):  # FastAPI parses a body as JSON only when its Content-Type says so
            return _respond(request, 415, "unsupported_media_type", i18n.gettext(NOT_JSON))
        detail = i18n.gettext("Some fields are missing or not in the expected format.")
        return _respond(request, 422, "invalid_input", detail, errors=[field_error(e) for e in exc.errors()])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 401 and _is_api(request):
            # FastAPI's HTTPBasic raises this for an Authorization header it cannot decode, even with
            # auto_error=False: answer it as every other credential failure.
            return domain_error_response(
                request, Unauthorized("The partner credentials are missing or wrong.")
            )
        status, detail = _http_error(request, exc)
        return _respond(request, status, "http_error", detail, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        detail = i18n.gettext("Something went wrong on our side. Nothing was changed; please try again.")
        return _respond(request, 500, "server_error", detail)
