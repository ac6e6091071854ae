"""Use cases of identity and access: sign-in with throttling, sessions, staff accounts, partner
clients. Services never commit; the request, command or job that calls them owns the transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from workcard import audit, clock
from workcard.config import get_settings
from workcard.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from workcard.iam import limits
from workcard.iam.models import PartnerClient, StaffUser, WebSession
from workcard.iam.passwords import character_kinds, dummy_hash, hash_password, verify_password
from workcard.iam.roles import Role, Scope

_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def actor_of(user: StaffUser) -> str:
    return f"staff:{user.id}:{user.username}"


def staff_view(user: StaffUser) -> dict[str, object]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "employer_id": user.employer_id,
        "designated": user.designated,
        "active": user.active,
    }


# --- staff accounts -------------------------------------------------------------------------------


def check_password_strength(password: str) -> None:
    """8–64 characters with at least two kinds of letters, digits and symbols."""
    if not 8 <= len(password) <= 64 or character_kinds(password) < 2:
        raise InvalidInput(
            "The password needs 8 to 64 characters with at least two of: letters, digits, symbols.",
            field="password",
        )


def create_staff(
    session: Session,
    *,
    actor: str,
    username: str,
    display_name: str,
    password: str,
    role: Role,
    employer_id: int | None = None,
    designated: bool = False,
) -> StaffUser:
    username = (username or "").strip().lower()
    if not _USERNAME_RE.match(username):
        raise InvalidInput(
            "A user name has 2 to 64 lower-case letters, digits, dots, dashes or underscores.",
            field="username",
        )
    display_name = (display_name or "").strip()
    if not display_name or len(display_name) > 120:
        raise InvalidInput("Please enter the person's name (up to 120 characters).", field="display_name")
    check_password_strength(password)
    if role == Role.EMPLOYER_STAFF and employer_id is None:
        raise InvalidInput("Employer staff must belong to an employer.", field="employer_id")
    if role != Role.EMPLOYER_STAFF and (employer_id is not None or designated):
        raise InvalidInput("Only employer staff belong to an employer.", field="employer_id")
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise Conflict("The user name “{username}” is taken.", field="username", username=username)
    user = StaffUser(
        username=username,
        display_name=display_name,
        password_hash=hash_password(password),
        role=role.value,
        employer_id=employer_id,
        designated=designated,
        created_at=clock.now(),
    )
    session.add(user)
    session.flush()
    audit.record(
        session, actor=actor, action="staff.create", subject_type="staff", subject_id=user.id,
        after=staff_view(user),
    )  # fmt: skip
    return user


def get_staff(session: Session, user_id: int) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise NotFound("No such account.")
    return user


def list_staff(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.role, StaffUser.username)))


def update_staff(
    session: Session, *, actor: str, user_id: int, active: bool, designated: bool, password: str | None = None
) -> StaffUser:
    user = get_staff(session, user_id)
    before = staff_view(user)
    if designated and user.role != Role.EMPLOYER_STAFF:
        raise InvalidInput("Only employer staff can be designated staff.", field="designated")
    user.active = active
    user.designated = designated
    if password:
        check_password_strength(password)
        user.password_hash = hash_password(password)
    if not active:
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit.record(
        session, actor=actor, action="staff.update", subject_type="staff", subject_id=user.id,
        before=before, after={**staff_view(user), "password_changed": bool(password)},
    )  # fmt: skip
    return user


# --- sign-in and sessions -------------------------------------------------------------------------


@dataclass
class SignIn:
    user: StaffUser
    token: str  # the cookie value; only its hash is stored


def sign_in(session: Session, *, username: str, password: str, client_ip: str) -> SignIn:
    """Check a password, throttled per account and per address. A failed attempt is counted and
    audited in the caller's transaction, which is kept although the sign-in fails."""
    settings = get_settings()
    username = (username or "").strip().lower()[:64]
    window = settings.login_window_seconds
    keys = (f"login:user:{username}", f"login:ip:{client_ip}")
    for key in keys:
        count, remaining = limits.peek(session, key, window)
        limit = settings.login_max_failures * (1 if key.startswith("login:user") else 4)
        if count >= limit:
            raise TooManyRequests(
                "Too many failed sign-ins. Please try again in {minutes} minutes.",
                retry_after=remaining,
                minutes=max(1, -(-remaining // 60)),
            )
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    ok = verify_password(user.password_hash if user else dummy_hash(), password or "")
    if not (ok and user is not None and user.active):
        for key in keys:
            limits.hit(session, key, window)
        audit.record(
            session, actor=f"anonymous:{client_ip}", action="signin.fail", subject_type="staff",
            subject_id=username or "-",
        )  # fmt: skip
        raise Unauthorized("The user name or password is wrong.", keep_changes=True)
    limits.reset(session, keys[0])
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        WebSession(
            token_hash=_sha256(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + dt.timedelta(hours=settings.session_hours),
        )
    )
    audit.record(session, actor=actor_of(user), action="signin", subject_type="staff", subject_id=user.id)
    return SignIn(user=user, token=token)


def user_for_token(session: Session, token: str | None) -> StaffUser | None:
    if not token:
        return None
    row = session.scalar(select(WebSession).where(WebSession.token_hash == _sha256(token)))
    if row is None or row.expires_at <= clock.now():
        return None
    user = session.get(StaffUser, row.user_id)
    return user if user is not None and user.active else None


def sign_out(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == _sha256(token)))


def purge_sessions(session: Session) -> int:
    result = session.execute(delete(WebSession).where(WebSession.expires_at <= clock.now()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def require_role(user: StaffUser | None, *roles: Role) -> StaffUser:
    if user is None:
        raise Unauthorized("Please sign in.")
    if user.role not in {r.value for r in roles}:
        raise Forbidden("Your role may not use this page.")
    return user


# --- partner clients (SPEC W5) --------------------------------------------------------------------


@dataclass
class IssuedSecret:
    client: PartnerClient
    secret: str  # shown once


def _check_scopes(scopes: list[str]) -> list[str]:
    known = {s.value for s in Scope}
    bad = [s for s in scopes if s not in known]
    if bad:
        raise InvalidInput("Unknown scope: {scope}.", field="scopes", scope=", ".join(bad))
    return sorted(set(scopes))


def partner_view(client: PartnerClient) -> dict[str, object]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "scopes": client.scopes,
        "rate_limit_per_minute": client.rate_limit_per_minute,
        "active": client.active,
    }


def create_partner(
    session: Session, *, actor: str, name: str, scopes: list[str], rate_limit_per_minute: int | None = None
) -> IssuedSecret:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise InvalidInput("Please give the partner system a name (up to 120 characters).", field="name")
    rate = rate_limit_per_minute or get_settings().partner_rate_limit_per_minute
    if not 1 <= rate <= 100_000:
        raise InvalidInput("The rate limit must be between 1 and 100000 calls a minute.", field="rate")
    secret = secrets.token_urlsafe(32)
    client = PartnerClient(
        client_id="pc_" + secrets.token_hex(8),
        name=name,
        secret_hash=_sha256(secret),
        scopes=_check_scopes(scopes),
        rate_limit_per_minute=rate,
        created_at=clock.now(),
    )
    session.add(client)
    session.flush()
    audit.record(
        session, actor=actor, action="partner.create", subject_type="partner", subject_id=client.client_id,
        after=partner_view(client),
    )  # fmt: skip
    return IssuedSecret(client=client, secret=secret)


def get_partner(session: Session, client_id: str) -> PartnerClient:
    client = session.scalar(select(PartnerClient).where(PartnerClient.client_id == client_id))
    if client is None:
        raise NotFound("No such partner system.")
    return client


def list_partners(session: Session) -> list[PartnerClient]:
    return list(session.scalars(select(PartnerClient).order_by(PartnerClient.created_at.desc())))


def update_partner(
    session: Session, *, actor: str, client_id: str, scopes: list[str], rate_limit_per_minute: int
) -> PartnerClient:
    client = get_partner(session, client_id)
    if not client.active:
        raise Conflict("This partner system's credentials were revoked; create new ones instead.")
    if not 1 <= rate_limit_per_minute <= 100_000:
        raise InvalidInput("The rate limit must be between 1 and 100000 calls a minute.", field="rate")
    before = partner_view(client)
    client.scopes = _check_scopes(scopes)
    client.rate_limit_per_minute = rate_limit_per_minute
    audit.record(
        session, actor=actor, action="partner.update", subject_type="partner", subject_id=client.client_id,
        before=before, after=partner_view(client),
    )  # fmt: skip
    return client


def rotate_partner(session: Session, *, actor: str, client_id: str) -> IssuedSecret:
    client = get_partner(session, client_id)
    if not client.active:
        raise Conflict("This partner system's credentials were revoked; create new ones instead.")
    secret = secrets.token_urlsafe(32)
    client.secret_hash = _sha256(secret)
    client.rotated_at = clock.now()
    audit.record(
        session, actor=actor, action="partner.rotate", subject_type="partner", subject_id=client.client_id
    )
    return IssuedSecret(client=client, secret=secret)


def revoke_partner(session: Session, *, actor: str, client_id: str) -> PartnerClient:
    client = get_partner(session, client_id)
    if not client.active:
        raise Conflict("These credentials are already revoked.")
    client.active = False
    client.revoked_at = clock.now()
    audit.record(
        session, actor=actor, action="partner.revoke", subject_type="partner", subject_id=client.client_id
    )
    return client


Refusal = Unauthorized | Forbidden | TooManyRequests
_PARTNERS_BY_ID = select(PartnerClient).where(PartnerClient.client_id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True)
class PartnerCall:
    """The credentials a partner system sent with one call (HTTP Basic), where it called, and the
    request's id for the audit trail."""

    client_id: str | None
    secret: str | None
    path: str = ""
    request_id: str | None = None


_NO_SECRET = _sha256("-")


def _printable(text: str) -> str:
    """``text`` as it may be recorded: characters that are not printable (NUL, controls) shown as ``?``."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _refuse(
    session: Session | audit.Records, call: PartnerCall, exc: Refusal, reason: str, scope: Scope
) -> Refusal:
    """Record a refused call in the audit trail, kept although the call fails (``keep_changes``)."""
    with audit.in_request(call.request_id):
        audit.record(
            session, actor=f"partner:{_printable(call.client_id or '-')[:40]}", action="api.refused", subject_type="api",
            subject_id=call.path[:64] or "-", after={"reason": reason, "scope": scope.value},
        )  # fmt: skip
    exc.keep_changes = True
    return exc


def partner_ids(calls: Sequence[PartnerCall]) -> list[str]:
    """The client ids a group of calls names, as they are looked up."""
    return list({c.client_id[:40] for c in calls if c.client_id and c.client_id.isprintable()})


# The partners of a group of calls, on the driver (PostgreSQL; ``web.partner``): the columns ``admit``
# and the routes read, by the same names as ``PartnerClient``'s attributes.
PG_PARTNERS_BY_ID = (
    "SELECT client_id, secret_hash, scopes, rate_limit_per_minute, active FROM partner_client "
    "WHERE client_id = ANY(%(ids)s::text[])"
)


def authenticate_partners(
    session: Session, calls: Sequence[PartnerCall], *, scope: Scope
) -> list[PartnerClient | Refusal]:
    """Check each call's credentials and scope, for a group of calls in arrival order
    (``workcard.groupcommit``), with one read of the partners. A refused call gets its error and an
    audit record. The admitted calls are then counted with ``count_partner_calls``."""
    clients = {c.client_id: c for c in session.scalars(_PARTNERS_BY_ID, {"ids": partner_ids(calls)})}
    return admit(session, clients, calls, scope=scope)


def admit(
    session: Session | audit.Records, clients: dict[str, Any], calls: Sequence[PartnerCall], *, scope: Scope
) -> list[Any]:
    """``authenticate_partners`` once the partners are read (``clients``: by client id; rows with the
    attributes of ``PartnerClient``). Each call's answer is its client or its refusal."""
    answers: list[Any] = []
    for call in calls:
        client = clients.get(call.client_id[:40]) if call.client_id else None
        # the same work whether or not the client exists, so that timing tells nothing
        matches = hmac.compare_digest(
            client.secret_hash if client else _NO_SECRET, _sha256(call.secret or "")
        )
        if not (client and client.active and matches):
            error: Refusal = Unauthorized("The partner credentials are missing or wrong.")
            answers.append(_refuse(session, call, error, "credentials", scope))
        elif scope.value not in client.scopes:
            error = Forbidden("These credentials lack the scope {scope}.", scope=scope.value)
            answers.append(_refuse(session, call, error, "scope", scope))
        else:
            answers.append(client)
    return answers


def calls_per_partner(admitted: Sequence[Any]) -> dict[str, int]:
    """How many calls of a group each admitted partner made, by client id, in the order counters are
    updated: a fixed order, so that two groups that count the same partners never wait for each other
    in a circle. A refusal, or None (a call counted before), is left out."""
    per_client: dict[str, int] = {}
    for answer in admitted:
        if answer is not None and not isinstance(answer, DomainError):
            per_client[answer.client_id] = per_client.get(answer.client_id, 0) + 1
    return dict(sorted(per_client.items()))


def count_partner_calls(
    session: Session,
    calls: Sequence[PartnerCall],
    admitted: Sequence[PartnerClient | Refusal],
    *,
    scope: Scope,
) -> list[PartnerClient | Refusal]:
    """Count the admitted calls of a group against their partner's rate limit, one counter update per
    partner; the calls past the limit are refused (429, with an audit record). The counter row stays
    locked until the group commits, so a group does this as late as it can, after its reads."""
    per_client = calls_per_partner(admitted)
    counted = {cid: limits.hit(session, partner_key(cid), 60, n) for cid, n in per_client.items()}
    return refuse_over_limit(session, calls, admitted, places(admitted, per_client, counted), scope=scope)


def partner_key(client_id: str) -> str:
    """The rate counter's key of a partner's calls."""
    return f"partner:{client_id}"


# A counted call's place among its partner's calls in the current window (1: the first), and the
# seconds until the window ends.
Place = tuple[int, int]


def places(
    admitted: Sequence[Any], per_client: dict[str, int], counted: dict[str, tuple[int, int]]
) -> list[Place | None]:
    """Each admitted call's ``Place``, once the counters are updated with ``per_client``'s numbers
    (``counted``: by client id, the count in the window and the seconds until it ends); None for a
    call left out of the count (see ``calls_per_partner``)."""
    seen: dict[str, int] = {}
    answers: list[Place | None] = []
    for answer in admitted:
        if answer is None or isinstance(answer, DomainError):
            answers.append(None)
            continue
        total, remaining = counted[answer.client_id]
        seen[answer.client_id] = seen.get(answer.client_id, 0) + 1
        answers.append((total - per_client[answer.client_id] + seen[answer.client_id], remaining))
    return answers


def refuse_over_limit(
    session: Session | audit.Records,
    calls: Sequence[PartnerCall],
    admitted: Sequence[Any],
    counted: Sequence[Place | None],
    *,
    scope: Scope,
) -> list[Any]:
    """Refuse the admitted calls whose place (``counted``, by call) is past their partner's limit."""
    answers = list(admitted)
    for i, (call, answer, place) in enumerate(zip(calls, admitted, counted, strict=True)):
        if isinstance(answer, DomainError) or place is None:
            continue
        n, remaining = place
        if n > answer.rate_limit_per_minute:
            error = TooManyRequests(
                "Rate limit of {limit} calls a minute reached; retry in {seconds} seconds.",
                retry_after=remaining, limit=answer.rate_limit_per_minute, seconds=remaining,
            )  # fmt: skip
            answers[i] = _refuse(session, call, error, "rate_limit", scope)
    return answers


# --- who an actor string names -------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    kind: str  # staff, partner or unknown
    name: str  # the staff member's display name or the partner system's name
    role: str | None = None  # a staff member's role


def parties(session: Session, actors: Sequence[str]) -> dict[str, Party]:
    """What ``actor_of`` strings (``staff:<id>:<username>``) and partner actors (``partner:<client
    id>``) name, read in two queries, for a page that tells a person who acted."""
    staff_ids = {int(a.split(":")[1]) for a in actors if a.startswith("staff:") and a.split(":")[1].isdigit()}
    client_ids = {a.split(":", 1)[1] for a in actors if a.startswith("partner:")}
    staff = {u.id: u for u in session.scalars(select(StaffUser).where(StaffUser.id.in_(staff_ids)))}
    partners = {
        c.client_id: c
        for c in session.scalars(select(PartnerClient).where(PartnerClient.client_id.in_(client_ids)))
    }
    found: dict[str, Party] = {}
    for actor in actors:
        kind, _, rest = actor.partition(":")
        user = (
            staff.get(int(rest.split(":")[0])) if kind == "staff" and rest.split(":")[0].isdigit() else None
        )
        client = partners.get(rest) if kind == "partner" else None
        if user is not None:
            found[actor] = Party("staff", user.display_name, user.role)
        elif client is not None:
            found[actor] = Party("partner", client.name)
        else:
            found[actor] = Party("unknown", rest)
    return found
