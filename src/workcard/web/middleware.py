"""Pure ASGI middleware: request id, locale, structured access log, security headers, and the CSRF
nonce cookie. Pure ASGI (not BaseHTTPMiddleware) so that context variables reach the routes."""

from __future__ import annotations

import json
import logging
import secrets
import time
from http.cookies import SimpleCookie
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workcard.audit import request_id_var
from workcard.config import Settings
from workcard.web import csrf, i18n

log = logging.getLogger("workcard.access")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        b"media-src 'self' blob:; frame-ancestors 'none'; form-action 'self'",
    ),
]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class RequestContext:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rid = headers.get("x-request-id", "")[:64] or secrets.token_hex(8)
        cookies = SimpleCookie(headers.get("cookie", ""))
        chosen = i18n.normalise(cookies["wc_lang"].value) if "wc_lang" in cookies else None
        locale = chosen or i18n.negotiate(headers.get("accept-language"), self.settings.default_locale)
        scope.setdefault("state", {})["locale_from_cookie"] = chosen is not None
        rid_token = request_id_var.set(rid)
        loc_token = i18n.current_locale.set(locale)
        started = time.perf_counter()
        status = 500
        secure = "; Secure" if self.settings.secure_cookies() else ""
        head = scope["method"] == "HEAD"  # answered as GET without the body (RFC 9110 §9.3.2)
        if head:
            scope = {**scope, "method": "GET"}

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [
                    (b"x-request-id", rid.encode()),
                    (b"content-language", locale.replace("_", "-").encode()),
                ]
                if not scope["path"].startswith("/api/"):
                    extra += SECURITY_HEADERS
                new_nonce = scope["state"].get("new_csrf_nonce")
                if new_nonce and csrf.COOKIE not in cookies:
                    extra.append(
                        (
                            b"set-cookie",
                            f"{csrf.COOKIE}={new_nonce}; Path=/; HttpOnly; SameSite=Lax{secure}".encode(),
                        )
                    )
                message["headers"] = list(message.get("headers", [])) + extra
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            log.info(
                "%s %s %s",
                "HEAD" if head else scope["method"],
                scope["path"],
                status,
                extra={"fields": {
                    "method": "HEAD" if head else scope["method"], "path": scope["path"], "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                }},
            )  # fmt: skip
            request_id_var.reset(rid_token)
            i18n.current_locale.reset(loc_token)
