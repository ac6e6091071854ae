"""CSRF protection for every form: a random per-browser nonce in an HttpOnly cookie, and in each form
an HMAC of that nonce under the server's secret key. A forged or missing token is refused."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request

from workcard.config import get_settings
from workcard.errors import Forbidden

COOKIE = "wc_csrf"
FIELD = "csrf_token"


def nonce(request: Request) -> str:
    """The browser's nonce, made on first use; the middleware sets the cookie if it is new."""
    value = request.cookies.get(COOKIE) or getattr(request.state, "new_csrf_nonce", None)
    if not value:
        value = secrets.token_urlsafe(24)
        request.state.new_csrf_nonce = value
    return value


def token(request: Request) -> str:
    key = get_settings().resolved_secret_key()
    return hmac.new(key, b"csrf:" + nonce(request).encode(), hashlib.sha256).hexdigest()


async def protect(request: Request) -> None:
    """Router dependency: every unsafe request carries a valid token (form field or header)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get(FIELD)
        sent = value if isinstance(value, str) else None
    cookie = request.cookies.get(COOKIE)
    if not cookie or not sent or not hmac.compare_digest(sent, token(request)):
        raise Forbidden(
            "The form has expired or did not come from this site. Please reload the page and try again."
        )
