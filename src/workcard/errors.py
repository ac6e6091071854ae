"""Domain errors. Each carries a stable code, an HTTP status and a translatable message; ``app.py``
maps them once to problem+json for the API and to a bilingual page for people."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """``keep_changes``: the request's transaction is committed even though it fails — for the few
    failures that must leave a trace (a counted failed sign-in, its audit record)."""

    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, field: str | None = None, keep_changes: bool = False, **params: Any
    ) -> None:
        super().__init__(message)
        self.message = message  # an English msgid, translated when shown
        self.field = field
        self.keep_changes = keep_changes
        self.params = params


class InvalidInput(DomainError):
    status = 422
    code = "invalid_input"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, current: Any, event: Any) -> None:
        super().__init__(
            "This action is not possible: the record is {state} and cannot be {event}.",
            state=str(current),
            event=str(event),
        )
        self.current = current
        self.event = event


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, **params: Any) -> None:
        super().__init__(message, retry_after=retry_after, **params)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """The call could not be done just now (the database could not be reached); the same call may be sent
    again after ``retry_after`` seconds."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int, **params: Any) -> None:
        super().__init__(message, retry_after=retry_after, **params)
        self.retry_after = retry_after
