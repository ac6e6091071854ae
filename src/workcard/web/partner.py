"""What every domain's partner API shares: HTTP Basic credentials checked with scope and rate limit, the
calls run in groups that commit together (``workcard.groupcommit``), and the problem document that
errors are answered with (RFC 9457).

A group runs one of two ways, with the same domain functions deciding each call's answer and audit
records: through a Session in a thread (``GroupCommit``; SQLite), or, on PostgreSQL, on the driver in
the event loop (``AsyncGroupCommit``), in three round trips: (1) the partners and the domain's first
read; (2) the partners' counters, in a short transaction of their own, then the group's transaction:
the domain's second read if it has one, and the head of an audit lane no other transaction holds
(locked); (3) the audit records, the lane's head, the domain's rows and the commit. See decisions 0011
and 0012."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_type_hints

import psycopg
from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from psycopg.types.json import Json
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from workcard import audit, sqltext
from workcard.errors import DomainError, Unavailable
from workcard.groupcommit import AsyncGroupCommit, CommitUnknown, GroupCommit
from workcard.iam import limits
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


class FieldProblem(BaseModel):
    field: str = Field(description='The field, dotted ("permit_number"); "" for the body as a whole.')
    message: str = Field(description="What is wrong with it, in the reader's language.")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (`application/problem+json`), in the reader's language."""

    type: str = Field(description="A URN naming the kind of error, e.g. urn:workcard:problem:invalid_input.")
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = Field(default=None, description="422: each field's problem.")
    field: str | None = Field(default=None, description="The field a domain error is about, if any.")


ERRORS = {
    code: {"model": Problem, "description": description}
    for code, description in (
        (400, "The body could not be read at all (not UTF-8, or nested too deep)."),
        (401, "The partner credentials are missing or wrong (WWW-Authenticate: Basic)."),
        (403, "The credentials lack the route's scope."),
        (415, "The body is not JSON (Content-Type: application/json)."),
        (422, "The body is not as described: `errors` says which field and why."),
        (429, "The partner's calls a minute are used up; Retry-After says when to call again."),
        (500, "An error on the platform's side."),
        (503, "The call could not be completed just now; send it again after Retry-After seconds."),
    )
}


def problem_content(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document ``schema`` with its error answers under `application/problem+json`, the media
    type they are sent with (the framework files a response model under `application/json`)."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if code[:1] in ("4", "5") and "application/json" in content:
                    content["application/problem+json"] = content.pop("application/json")
    return schema


_BODY_REFUSED: Any = object()  # the payload of a call whose body was refused before the route ran


def _out_of_reach(exc: BaseException) -> bool:
    """Whether a group failed for want of the database (not reachable, locked, the connection lost, a
    deadlock or timeout): answered 503 with Retry-After, as ordinary answers that keep the connection
    open; so is a database that takes no writes just now (a standby after a failover, or one set
    read-only for maintenance). Anything else (a table missing, a statement the database refuses, a bug)
    stays a server error."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    if isinstance(orig, psycopg.errors.ReadOnlySqlTransaction):
        return True
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError | sa_exc.InterfaceError):
        return True
    if isinstance(exc, sa_exc.OperationalError):
        return (
            exc.connection_invalidated or isinstance(orig, psycopg.OperationalError) or "locked" in str(orig)
        )
    return False


CHECK_LOCK_TIMEOUT = "10s"  # how long a commit of unknown outcome may wait to be looked up
RETRY_AFTER = 5  # seconds

# One statement for the driver (PostgreSQL): SQL with ``%(name)s`` parameters, and its parameters.
Statement = tuple[str, dict[str, Any]]


@dataclass(slots=True)
class _Call(Generic[P]):
    partner: iam.PartnerCall
    payload: P
    # on the driver: the call's place in its partner's window once counted (its counter is committed
    # before the group's transaction, so a group run again after a failure does not count it again)
    counted: iam.Place | None = None


class PartnerRoute(Generic[P, C, R]):
    """The work behind one partner route, run for groups of calls. ``prepare`` reads, once for the
    group, what the admitted calls need (e.g. every permit they name); ``work`` then answers one
    call, in the group's transaction, and may raise a ``DomainError`` for that call alone; ``finish``,
    if given, writes what the calls left in the context (e.g. their rows, in one statement).

    The same on the driver (PostgreSQL): ``read`` yields each read as a ``Statement``, is sent its rows
    (named tuples) and returns the context; ``work`` is given an ``audit.Records`` for its session;
    ``writes`` gives the statements that write what the calls left in the context, each with its rows."""

    def __init__(
        self,
        scope: Scope,
        prepare: Callable[[Session, Sequence[P]], C],
        work: Callable[[Any, Any, P, C], R],
        finish: Callable[[Session, C], None] | None = None,
        *,
        read: Callable[[Sequence[P]], Generator[Statement, Any, C]],
        writes: Callable[[C], list[tuple[str, list[dict[str, Any]]]]] | None = None,
    ) -> None:
        self.scope = scope
        self._prepare = prepare
        self._work = work
        self._finish = finish
        self._read = read
        self._writes = writes  # each statement an INSERT of one row's VALUES, and the rows it writes

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
        answers = self._answer(session, calls, admitted, context)
        if self._finish is not None:
            self._finish(session, context)
        return answers

    def _answer(
        self, session: Session | audit.Records, calls: Sequence[_Call[P]], admitted: Sequence[Any], context: C
    ) -> list[R | DomainError | None]:
        """Each call's answer: its refusal, or its work's answer or error."""
        answers: list[R | DomainError | None] = []
        for call, client in zip(calls, admitted, strict=True):
            if isinstance(client, DomainError):
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
        return answers

    async def _handle_pg(
        self, conn: psycopg.AsyncConnection[Any], calls: Sequence[_Call[P]]
    ) -> list[R | DomainError | None]:
        """``_handle`` on the driver, in three round trips (see the module's documentation). Each round
        trip is one query of several statements, their parameters written in as literals
        (``workcard.sqltext``), so that the statements travel together in one message each way.

        The counters are updated in a transaction of their own, committed without waiting for the disk
        (a counter is not a record: after a crash of the database server it may have missed the last
        moment's calls), so that a partner's counter row is locked for one statement, not until the
        group commits. The group's transaction locks one row, the head of an audit lane nobody else
        holds, so it waits for no other group; only when every lane is held does it wait for lane 1,
        where staff pages and jobs write (decision 0012). A call keeps its place once counted, so a
        group run again counts it once; a group whose second round trip fails after the counters'
        commit counts its calls again (early refusals, never late)."""
        records = audit.Records()
        partners = [c.partner for c in calls]
        bodies = [c.payload for c in calls if c.payload is not _BODY_REFUSED]
        steps = self._read(bodies)  # its first read is for every call; the rest only for the admitted
        read, context = _step(steps, None)
        cursor: Any = conn.cursor()
        partner_rows, *rows = await _round_trip(
            cursor, [(iam.PG_PARTNERS_BY_ID, {"ids": iam.partner_ids(partners)}), *_some(read)]
        )
        admitted = iam.admit(records, {r.client_id: r for r in partner_rows}, partners, scope=self.scope)
        bodies[:] = [
            c.payload for c, a in zip(calls, admitted, strict=True)
            if not isinstance(a, DomainError) and c.payload is not _BODY_REFUSED
        ]  # fmt: skip
        if read is not None:
            read, context = _step(steps, rows[0])
        uncounted = [a if c.counted is None else None for c, a in zip(calls, admitted, strict=True)]
        per_client = iam.calls_per_partner(uncounted)
        start, remaining = limits.window(60)
        counting: list[Statement | str] = [
            (limits.PG_UPSERT, {"key": iam.partner_key(cid), "start": start, "n": n})
            for cid, n in per_client.items()
        ]
        if counting:
            counting = ["BEGIN", "SET LOCAL synchronous_commit = off", *counting, "COMMIT"]
        results = await _round_trip(cursor, [*counting, "BEGIN", *_some(read), audit.PG_LOCK_FREE_LANE])
        if per_client:
            counted = dict(zip(per_client, ((r[0].count, remaining) for r in results), strict=False))
            for call, place in zip(calls, iam.places(uncounted, per_client, counted), strict=True):
                call.counted = call.counted or place
        if read is not None:
            read, context = _step(steps, results[len(per_client)])
            if read is not None:
                raise RuntimeError("a partner route's read has at most two steps")
        admitted = iam.refuse_over_limit(
            records, partners, admitted, [c.counted for c in calls], scope=self.scope
        )
        answers = self._answer(records, calls, admitted, context)
        heads = results[-1] or (await _round_trip(cursor, [audit.PG_LOCK_HEAD]))[-1]  # every lane held: wait
        lane, count, last = heads[0]
        last = audit.chain(records.pending, last)
        for row in records.pending:
            row["before"], row["after"], row["lane"] = Json(row["before"]), Json(row["after"]), lane
        writes = [
            *(self._writes(context) if self._writes else []),
            (audit.PG_INSERT_RECORDS, records.pending),
        ]
        moved = (
            audit.PG_MOVE_HEAD,
            {"new_count": count + len(records.pending), "new_hash": last, "lane": lane},
        )
        try:  # an error of a statement skips the COMMIT; an error of the connection leaves it unknown
            await _round_trip(
                cursor,
                [
                    *(_insert(cursor, sql, rows) for sql, rows in writes if rows),
                    *([moved] if records.pending else []),
                    "COMMIT",
                ],
            )
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            check = _written(lane, last) if records.pending else None
            raise CommitUnknown(str(exc), written=check, answers=answers) from exc
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
        groups: dict[int, Any] | None = getattr(state, "partner_groups", None)
        if groups is None:
            groups = state.partner_groups = {}
        group = groups.get(id(self))
        if group is None:
            bind = state.sessionmaker.kw["bind"]
            # on the driver when the sessions are bound to PostgreSQL's engine; through the sessions when
            # they are bound to one connection (the tests' rolled-back transaction) or on SQLite
            if isinstance(bind, Engine) and bind.url.get_backend_name() == "postgresql":
                group = AsyncGroupCommit(_conninfo(bind.url), self._handle_pg)
            else:
                group = GroupCommit(state.sessionmaker, self._handle)
            groups[id(self)] = group
        call = iam.PartnerCall(
            client_id=credentials.username if credentials else None,
            secret=credentials.password if credentials else None,
            path=request.scope["path"],  # as request.url.path, without building the URL
            request_id=audit.request_id_var.get(),
        )
        try:
            return await group.run(_Call(call, payload))  # type: ignore[no-any-return]
        except Exception as exc:
            if not _out_of_reach(exc):
                raise
            # logged where the group failed; the partner may send the call again
            raise Unavailable(
                "The call could not be completed just now because of a problem with the database. "
                "Send it again in a few seconds.",
                retry_after=RETRY_AFTER,
            ) from exc


def _step(steps: Generator[Statement, Any, C], rows: Any) -> tuple[Statement | None, C | None]:
    """Send a domain's ``read`` the rows of its last read: its next read, or its context."""
    try:
        return steps.send(rows), None
    except StopIteration as done:
        return None, done.value


def _some(read: Statement | None) -> list[Statement]:
    return [] if read is None else [read]


async def _round_trip(cursor: Any, statements: list[Statement | str]) -> list[list[Any]]:
    """Send ``statements`` (SQL with its parameters, or SQL as it is) as one query, the parameters
    written in as literals (``workcard.sqltext``); return the rows of each statement that returns rows,
    in order."""
    quote = _quote(cursor)
    await cursor.execute(
        "; ".join(s if isinstance(s, str) else sqltext.render(s[0], s[1], quote) for s in statements)
    )
    results = []
    while True:
        if cursor.description is not None:
            results.append(await cursor.fetchall())
        if not cursor.nextset():
            return results


def _insert(cursor: Any, sql: str, rows: list[dict[str, Any]]) -> str:
    """One INSERT of ``rows``: ``sql`` ends with the VALUES tuple of one row (``%(name)s`` parameters)."""
    head, values = sql.split(" VALUES ", 1)
    quote = _quote(cursor)
    return head + " VALUES " + ", ".join(sqltext.render(values, row, quote) for row in rows)


def _quote(cursor: Any) -> Callable[[Any], str]:
    """The driver's quoting of one value, for the types ``sqltext`` does not render itself."""
    return lambda value: cursor.mogrify("%s", [value])


def _written(
    lane: int, last_hash: str
) -> Callable[[psycopg.AsyncConnection[Any]], Coroutine[Any, Any, bool]]:
    """Whether the group whose last audit record (in ``lane``) has ``last_hash`` was written: asked once
    the lane's head can be locked, so that a transaction of the lost connection still running has ended
    either way."""

    async def written(conn: psycopg.AsyncConnection[Any]) -> bool:
        results = await _round_trip(
            conn.cursor(),
            [
                "BEGIN",
                f"SET LOCAL lock_timeout = '{CHECK_LOCK_TIMEOUT}'",  # a transaction that never ends: unknown
                (audit.PG_WAIT_FOR_LANE, {"lane": lane}),
                (audit.PG_RECORD_WRITTEN, {"hash": last_hash}),
                "ROLLBACK",
            ],
        )
        return bool(results[-1][0].written)

    return written


def _conninfo(url: URL) -> str:
    """libpq's connection string for a SQLAlchemy URL of PostgreSQL."""
    args = url.translate_connect_args(username="user", database="dbname")
    args.update({k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()})
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in args.items()})


def json_answer(answer: BaseModel) -> Response:
    """A route's answer serialised once, as it is: the route's ``response_model`` documents it, and
    the framework does not validate it a second time."""
    return Response(answer.model_dump_json(), media_type="application/json")


def _is_json(content_type: str | None) -> bool:
    """Whether a Content-Type is JSON, as the framework decides it (``application/json``, ``…+json``)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class PartnerAPIRoute(APIRoute):
    """The route class of partner API routers. A call whose body is JSON and valid goes straight to the
    route function (``route(body, request, credentials)``), its body validated once by its model and its
    credentials read by ``basic``, without the framework's dependency machinery, which costs a partner
    call about as much as the rest of its request handling; every other call takes the framework's path,
    so its errors are answered as before. When the framework refuses a call's body before the route runs
    (422, 415, or 400 for a body it cannot read at all), the call is still authenticated, counted and
    recorded (``PartnerRoute.refused_body``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        partner_route: PartnerRoute[Any, Any, Any] | None = getattr(self.endpoint, "partner_route", None)
        if partner_route is None:
            return handler
        endpoint = self.endpoint
        body_model: type[BaseModel] | None = get_type_hints(endpoint).get("body")  # None: no JSON body

        async def route(request: Request) -> Response:
            if body_model is not None and _is_json(request.headers.get("content-type")):
                try:
                    body = body_model.model_validate_json(await request.body())
                except (ValidationError, ValueError):
                    body = None  # the framework's path answers what is wrong with it
                if body is not None:
                    return await endpoint(body, request, await basic(request))  # type: ignore[no-any-return]
            try:
                return await handler(request)
            except (RequestValidationError, StarletteHTTPException) as exc:
                if isinstance(exc, StarletteHTTPException) and exc.status_code != 400:  # 400: unreadable body
                    raise
                await partner_route.refused_body(request)
                raise

        return route
