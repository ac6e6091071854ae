"""What every domain's partner API shares: HTTP Basic credentials checked with scope and rate limit, the
calls run in groups that commit together (``workcard.groupcommit``), and the problem document that
errors are answered with (RFC 9457)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from workcard import audit
from workcard.errors import DomainError
from workcard.groupcommit import GroupCommit
from workcard.iam import service as iam
from workcard.iam.models import PartnerClient
from workcard.iam.roles import Scope


class _Basic(HTTPBasic):
    """HTTP Basic that hands an undecodable header on as empty credentials, so that the call is refused
    and audited like any other with wrong credentials (the framework's own answer is a bare 401)."""

    async def __call__(self, request: HTTPConnection) -> HTTPBasicCredentials | None:  # type: ignore[override]
        try:
            return await super().__call__(request)
        except HTTPException:
            return HTTPBasicCredentials(username="", password="")


basic = _Basic(
    auto_error=False,
    scheme_name="HTTPBasic",
    description="Client id and secret issued by the platform administrator.",
)

P = TypeVar("P")  # what one call asks
C = TypeVar("C")  # what the domain reads once for a group of calls
R = TypeVar("R")  # one call's answer
E = TypeVar("E", bound=Callable[..., Any])  # a route function


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str


ERRORS = {
    code: {"model": Problem, "content": {"application/problem+json": {}}} for code in (401, 403, 422, 429)
}


_BODY_REFUSED: Any = object()  # the payload of a call whose body was refused before the route ran


@dataclass(frozen=True)
class _Call(Generic[P]):
    partner: iam.PartnerCall
    payload: P


class PartnerRoute(Generic[P, C, R]):
    """The work behind one partner route, run for groups of calls. ``prepare`` reads, once for the
    group, what the admitted calls need (e.g. every permit they name); ``work`` then answers one
    call, in the group's transaction, and may raise a ``DomainError`` for that call alone; ``finish``,
    if given, writes what the calls left in the context (e.g. their rows, in one statement)."""

    def __init__(
        self,
        scope: Scope,
        prepare: Callable[[Session, Sequence[P]], C],
        work: Callable[[Session, PartnerClient, P, C], R],
        finish: Callable[[Session, C], None] | None = None,
    ) -> None:
        self.scope = scope
        self._prepare = prepare
        self._work = work
        self._finish = finish

    def serves(self, endpoint: E) -> E:
        """Mark ``endpoint`` (a route function of a ``PartnerAPIRoute`` router) as answered by this."""
        endpoint.partner_route = self  # type: ignore[attr-defined]
        return endpoint

    def _handle(self, session: Session, calls: Sequence[_Call[P]]) -> list[R | DomainError | None]:
        partners = [c.partner for c in calls]
        admitted = iam.authenticate_partners(session, partners, scope=self.scope)
        context = self._prepare(session, [
            c.payload for c, a in zip(calls, admitted, strict=True)
            if isinstance(a, PartnerClient) and c.payload is not _BODY_REFUSED
        ])  # fmt: skip
        # Counting locks the partners' counter rows until the commit: after the reads, not before them.
        admitted = iam.count_partner_calls(session, partners, admitted, scope=self.scope)
        answers: list[R | DomainError | None] = []
        for call, client in zip(calls, admitted, strict=True):
            if not isinstance(client, PartnerClient):
                answers.append(client)  # refused
                continue
            if call.payload is _BODY_REFUSED:
                answers.append(None)  # admitted and counted; the route answers the body's errors
                continue
            with audit.in_request(call.partner.request_id):
                try:
                    answers.append(self._work(session, client, call.payload, context))
                except DomainError as exc:
                    answers.append(exc)
        if self._finish is not None:
            self._finish(session, context)
        return answers

    async def refused_body(self, request: Request) -> None:
        """A call whose body the framework refused (422, 415): authenticate and count it like any
        other call (a credentials, scope or rate-limit refusal is recorded and raised, and comes before
        the body's errors); it does no work."""
        await self(request, await basic(request), _BODY_REFUSED)  # type: ignore[arg-type]

    async def __call__(self, request: Request, credentials: HTTPBasicCredentials | None, payload: P) -> R:
        """Answer one call: it joins the next group of this route's calls in this server process and
        returns once that group has committed (or raises the call's error)."""
        state: Any = request.app.state
        groups: dict[int, GroupCommit[Any, Any]] | None = getattr(state, "partner_groups", None)
        if groups is None:
            groups = state.partner_groups = {}
        group = groups.get(id(self))
        if group is None:
            group = groups[id(self)] = GroupCommit(state.sessionmaker, self._handle)
        call = iam.PartnerCall(
            client_id=credentials.username if credentials else None,
            secret=credentials.password if credentials else None,
            path=request.url.path,
            request_id=audit.request_id_var.get(),
        )
        return await group.run(_Call(call, payload))  # type: ignore[no-any-return]


class PartnerAPIRoute(APIRoute):
    """The route class of partner API routers: when the framework refuses a call's body before the
    route runs (422, 415, or 400 for a body it cannot read at all), the call is still authenticated,
    counted and recorded (``PartnerRoute.refused_body``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        partner_route: PartnerRoute[Any, Any, Any] | None = getattr(self.endpoint, "partner_route", None)
        if partner_route is None:
            return handler

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except (RequestValidationError, StarletteHTTPException) as exc:
                if isinstance(exc, StarletteHTTPException) and exc.status_code != 400:  # 400: unreadable body
                    raise
                await partner_route.refused_body(request)
                raise

        return route
