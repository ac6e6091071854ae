"""Use cases of the signed permit QR codes (SPEC E8, P1, P2): issuing the letter's and the e-card's
codes, checking a scanned code online, the trust list and the status list that offline verifiers sync.

Services never commit; the request, command or job owns the transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from workcard import audit, clock
from workcard.credentials import cose, cwt, jobs, keys, lists
from workcard.credentials import verdicts as v
from workcard.credentials.errors import CredentialError, Expired
from workcard.credentials.models import SigningKey, StatusList, Verification
from workcard.credentials.qrimage import decode_image
from workcard.errors import Conflict
from workcard.permits import service as permits
from workcard.permits.models import Foreigner, Permit
from workcard.permits.states import PermitState

ECARD_LIFETIME = keys.ECARD_LIFETIME
letter_expiry = keys.letter_expiry
MAX_TEXT = cwt.MAX_TEXT
CHANNELS = ("api", "page", "cli")

__all__ = [
    "ECARD_LIFETIME",
    "Lookups",
    "Verdict",
    "checks_of_holder",
    "decode_image",
    "ecard_code",
    "letter_code",
    "letter_expiry",
    "status_list",
    "trust_list",
    "verify_text",
]


# --- issuing codes ---------------------------------------------------------------------------------------


def _sign(session: Session, permit: Permit, *, use: str, expires: dt.datetime, now: dt.datetime) -> str:
    found = permits.find_permit(session, permit.number)
    if found is None:  # pragma: no cover - the caller holds the row
        raise Conflict("The permit no longer exists.")
    permit, holder = found
    status = permits.live_status(permit, clock.today())
    key = keys.ensure_signing_key(session)
    claims = cwt.PermitClaims(
        permit_number=permit.number,
        holder_name=holder.passport_name,
        nationality=holder.nationality,
        valid_until=permit.valid_until,
        valid_from=permit.valid_from,
        status=status
        if status in cwt.STATUSES
        else PermitState.VALID.value,  # not yet valid: valid_from says
        issued_at=int(now.timestamp()),
        expires_at=int(expires.timestamp()),
        use=use,
        key_id=key.kid,
    )
    return cwt.encode_token(claims, key=keys.private_key(key.kid), alg=key.alg, kid=key.kid.encode())


def letter_code(session: Session, permit: Permit) -> str:
    """The QR text printed on the notification letter (SPEC W2, P1): valid until the end of the day
    after the permit's last day, with the permit's status when it was made. Verifiers check the live
    status (online: the database; offline: the status list), so a letter of a permit cancelled later
    is caught."""
    now = clock.now()
    expires = letter_expiry(permit.valid_until)
    if expires <= now + dt.timedelta(seconds=1):
        raise Conflict("The validity of this work permit has ended; no QR code can be made for it.")
    return _sign(session, permit, use="letter", expires=expires, now=now)


def ecard_code(session: Session, permit: Permit) -> str:
    """The e-card's QR text (SPEC E8), valid for 120 seconds. Not for a permit that is expired or
    cancelled: the work-permit services are then unavailable (SPEC E9)."""
    status = permits.live_status(permit, clock.today())
    if status in (PermitState.EXPIRED.value, PermitState.CANCELLED.value):
        if status == PermitState.CANCELLED.value:
            raise Conflict("The work permit was cancelled; its QR code is not available.")
        raise Conflict("The work permit has expired; its QR code is not available.")
    now = clock.now()
    return _sign(session, permit, use="ecard", expires=now + ECARD_LIFETIME, now=now)


# --- checking a code online ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The answer to one check: ``verdict`` is one of ``verdicts.VERDICTS`` (the same words online and
    offline); ``reason`` an English msgid for people, formatted with ``params`` once translated."""

    verdict: str
    reason: str
    checked_at: dt.datetime
    params: dict[str, str] = field(default_factory=dict)
    claims: cwt.PermitClaims | None = None
    permit: Permit | None = None
    holder: Foreigner | None = None


class Decoded(NamedTuple):
    """An authentic token: its claims, the key that signed it, and whether it has expired (only a
    letter's code is let through expired, to say which permit ended when; see ``_check``)."""

    claims: cwt.PermitClaims
    key: SigningKey
    expired: bool


# What ``Lookups.read`` reads on the driver: every key (as ``keys.list_keys``), and the permits with their
# holders (the permit row stands for the permit; ``_Holder`` for the holder).
_PG_KEYS = (
    "SELECT kid, alg, public_key, signs_from, signs_until, verify_until, retired_at FROM signing_key "
    "ORDER BY signs_from, id"
)
_PG_PERMITS = (
    "SELECT p.id, p.number, p.status, p.valid_from, p.valid_until, p.cancelled_at, f.id AS holder_id, "
    "f.passport_name, f.nationality FROM permit p JOIN foreigner f ON f.id = p.foreigner_id "
    "WHERE p.number = ANY(%(numbers)s::text[])"
)

_PG_INSERT_VERIFICATIONS = (
    "INSERT INTO verification (at, actor, channel, verdict, permit_id, holder_id, key_id, use) VALUES "
    "(%(at)s, %(actor)s, %(channel)s, %(verdict)s, %(permit_id)s, %(holder_id)s, %(key_id)s, %(use)s)"
)


class _Holder(NamedTuple):
    id: int
    passport_name: str
    nationality: str


class Lookups:
    """What checking codes reads: the signing keys by kid and the permits by number. For one check they
    are read as needed; for a group of checks (``for_texts``) each is read once for the whole group."""

    def __init__(self, session: Session | None) -> None:
        self._session = session  # None: everything is read beforehand (``read``)
        self._keys: dict[str, SigningKey] | None = None  # every key, once read
        self._public: dict[str, cose.PublicKey] = {}
        self._decoded: dict[str, Decoded | Verdict] = {}
        self._permits: dict[str, tuple[Permit, Foreigner]] = {}
        self._permits_read: set[str] = set()
        self.checked: list[dict[str, object]] = []  # verification rows not yet written (see write)

    @classmethod
    def for_texts(cls, session: Session, texts: Sequence[str], now: dt.datetime) -> Lookups:
        lookups = cls(session)
        lookups._keys = {k.kid: k for k in keys.list_keys(session)}
        numbers = lookups._numbers(texts, now)
        lookups._permits = permits.find_permits(session, numbers)
        lookups._permits_read = numbers
        return lookups

    @classmethod
    def read(
        cls, texts: Callable[[], Sequence[str]], now: dt.datetime
    ) -> Generator[tuple[str, dict[str, Any]], Any, Lookups]:
        """``for_texts`` for work on the driver (PostgreSQL; ``web.partner``): yields each read (SQL and
        its parameters), is sent the read's rows, and returns the lookups. ``texts`` is asked for once
        the keys are read: by then, the texts of the admitted calls only (nothing is decoded for a call
        whose credentials are wrong)."""
        lookups = cls(None)
        lookups._keys = {k.kid: k for k in (yield _PG_KEYS, {})}
        numbers = lookups._numbers(texts(), now)
        rows = yield _PG_PERMITS, {"numbers": list(numbers)}
        lookups._permits = {r.number: (r, _Holder(r.holder_id, r.passport_name, r.nationality)) for r in rows}
        lookups._permits_read = numbers
        return lookups

    def _numbers(self, texts: Sequence[str], now: dt.datetime) -> set[str]:
        """The permit numbers of the texts that decode (each text decoded once, kept for the checks)."""
        numbers = set()
        for text in texts:
            decoded = self.decode(text, now)
            if not isinstance(decoded, Verdict):
                numbers.add(decoded.claims.permit_number)
        return numbers

    def _key(self, kid: str) -> SigningKey | None:
        if self._keys is not None:
            return self._keys.get(kid)
        return keys.find_key(self._session, kid)

    def decode(self, text: str, now: dt.datetime) -> Decoded | Verdict:
        """The token's claims and the key that signed it, or the refusal's verdict."""
        if text not in self._decoded:
            self._decoded[text] = self._decode(text, now)
        return self._decoded[text]

    def _decode(self, text: str, now: dt.datetime) -> Decoded | Verdict:
        used: list[SigningKey] = []

        def resolve(kid: bytes) -> tuple[cose.PublicKey, int] | None:
            key = self._key(kid.decode("utf-8"))
            if key is None or not keys.trusted_at(key, now):
                return None
            used.append(key)
            if key.kid not in self._public:
                self._public[key.kid] = cose.load_public_key(key.alg, key.public_key)
            return self._public[key.kid], key.alg

        try:
            claims = cwt.decode_token(text, resolve_key=resolve, now=int(now.timestamp()), max_len=MAX_TEXT)
        except Expired as exc:
            if isinstance(exc.claims, cwt.PermitClaims) and exc.claims.use == "letter":
                return Decoded(exc.claims, used[0], expired=True)  # the permit it names has ended
            return Verdict(v.EXPIRED, v.TOKEN_EXPIRED, now)
        except CredentialError as exc:
            verdict, reason = v.refusal(exc, text, alg=used[0].alg if used else None)
            return Verdict(verdict, reason, now)
        return Decoded(claims, used[0], expired=False)

    def write(self, session: Session) -> None:
        """Write the ``verification`` rows of the checks made with these lookups, in one statement."""
        if self.checked:
            session.connection().execute(insert(Verification), self.checked)
            self.checked = []

    def writes(self) -> list[tuple[str, list[dict[str, object]]]]:
        """``write`` for work on the driver (PostgreSQL; ``web.partner``): the statement and its rows."""
        rows, self.checked = self.checked, []
        return [(_PG_INSERT_VERIFICATIONS, rows)] if rows else []

    def permit(self, number: str) -> tuple[Permit, Foreigner] | None:
        if number not in self._permits_read:
            found = permits.find_permit(self._session, number)
            if found is not None:
                self._permits[number] = found
            self._permits_read.add(number)
        return self._permits.get(number)


def _check(lookups: Lookups, text: str, now: dt.datetime) -> Verdict:
    decoded = lookups.decode(text, now)
    if isinstance(decoded, Verdict):
        return decoded
    claims, key = decoded.claims, decoded.key
    signs_until = int(key.signs_until.timestamp()) if key.signs_until else None
    if not v.within_window(claims.issued_at, int(key.signs_from.timestamp()), signs_until):
        return Verdict(v.UNKNOWN_KEY, v.TOKEN_OUTSIDE_WINDOW, now, claims=claims)
    found = lookups.permit(claims.permit_number)
    if found is None:
        return Verdict(v.MALFORMED, v.NO_PERMIT, now, claims=claims)
    permit, holder = found
    status = permits.live_status(permit, clock.today())
    if decoded.expired and status not in (PermitState.EXPIRED.value, PermitState.CANCELLED.value):
        return Verdict(v.EXPIRED, v.TOKEN_EXPIRED, now, claims=claims)  # an old letter of a renewed permit
    if status == PermitState.VALID.value:
        return Verdict(v.VALID, v.PERMIT_VALID, now, claims=claims, permit=permit, holder=holder)
    if status == PermitState.CANCELLED.value:
        day = (permit.cancelled_at or now).astimezone(clock.CHINA).date()
        return Verdict(
            v.CANCELLED, v.PERMIT_CANCELLED, now, {"date": day.isoformat()}, claims, permit, holder
        )
    if status == PermitState.EXPIRED.value:
        params = {"date": permit.valid_until.isoformat()}
        return Verdict(v.EXPIRED, v.PERMIT_EXPIRED, now, params, claims, permit, holder)
    params = {"date": permit.valid_from.isoformat()}
    return Verdict(v.NOT_YET_VALID, v.PERMIT_NOT_YET_VALID, now, params, claims, permit, holder)


def clean_text(text: str) -> str:
    return text.strip() if isinstance(text, str) else text


def verify_text(
    session: Session | audit.Records, *, actor: str, text: str, channel: str, lookups: Lookups | None = None
) -> Verdict:
    """Check a scanned permit code against the keys and the live permit (SPEC P1, P2): a permit
    cancelled after the code was made is ``cancelled`` at once. Every check is recorded, whatever its
    verdict (``verification`` table and the audit trail, SPEC X5). ``lookups``: what a group of checks
    read beforehand (``Lookups.for_texts``, with the texts passed through ``clean_text``); the group's
    ``verification`` rows are then written together by ``Lookups.write``."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    now = clock.now()
    result = _check(lookups or Lookups(session), clean_text(text), now)
    claims = result.claims
    row = {
        "at": now, "actor": actor[:80], "channel": channel, "verdict": result.verdict,
        "permit_id": result.permit.id if result.permit else None,
        "holder_id": result.holder.id if result.holder else None,
        "key_id": claims.key_id[:16] if claims else None, "use": claims.use if claims else None,
    }  # fmt: skip
    if lookups is None:
        session.execute(insert(Verification), [row])
    else:
        lookups.checked.append(row)
    audit.record(
        session, actor=actor[:80], action="permit.verify_code", subject_type="permit",
        subject_id=result.permit.id if result.permit else "-",
        after={"verdict": result.verdict, "channel": channel, "key_id": claims.key_id if claims else None},
    )  # fmt: skip
    return result


def checks_of_holder(session: Session, foreigner_id: int, *, limit: int = 200) -> list[Verification]:
    """Who checked this person's permit codes, newest first: for the holder only. Employers must never
    be shown this (officers' checks are not the employer's business)."""
    stmt = (
        select(Verification)
        .where(Verification.holder_id == foreigner_id)
        .order_by(Verification.at.desc(), Verification.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


# --- what offline verifiers sync -------------------------------------------------------------------------


def trust_list(session: Session) -> tuple[bytes, str]:
    """The anchor-signed list of the keys verifiers may trust (every key not retired; each entry says
    until when), and its ETag. Its issue time is the last change of the key set, so the same keys give
    the same bytes."""
    keys.ensure_signing_key(session)
    rows = keys.list_keys(session)
    changed = max(t for r in rows for t in (r.created_at, r.signs_until, r.retired_at) if t is not None)
    trusted = [
        lists.TrustedKey(
            kid=r.kid, alg=r.alg, x=r.public_key, signs_from=int(r.signs_from.timestamp()),
            signs_until=int(r.signs_until.timestamp()) if r.signs_until else None,
            verify_until=int(r.verify_until.timestamp()) if r.verify_until else None,
        )
        for r in rows
        if r.retired_at is None
    ]  # fmt: skip
    body = lists.sign_trust_list(trusted, issued_at=int(changed.timestamp()), anchor=keys.anchor_private())
    return body, lists.etag_of(body)


def status_list(session: Session) -> StatusList:
    """The current status list (built now if the job has not run yet)."""
    row = session.get(StatusList, 1)
    if row is None or not row.body:
        jobs.rebuild_status_list(session)
        row = session.get(StatusList, 1)
        assert row is not None
    return row


PHOTO_AFTER_CHECK = dt.timedelta(minutes=15)


def holder_photo_for_verifier(session: Session, *, actor: str, foreigner_id: int) -> bytes | None:
    """The holder's photo, for the officer who checked one of their codes in the last 15 minutes (to
    match the face to the person in front of them); anyone else gets None. The read is recorded."""
    since = clock.now() - PHOTO_AFTER_CHECK
    checked = session.scalar(
        select(Verification.id)
        .where(
            Verification.actor == actor[:80], Verification.holder_id == foreigner_id, Verification.at >= since
        )
        .limit(1)
    )
    if checked is None:
        return None
    photo = permits.holder_photo(session, foreigner_id)
    audit.record(session, actor=actor[:80], action="foreigner.photo_read", subject_type="foreigner",
                 subject_id=foreigner_id)  # fmt: skip
    return photo
