"""The permit token: a CBOR Web Token (RFC 8392) signed as a COSE_Sign1 and Base45-encoded.

    token = "WC3:" + base45(COSE_Sign1(CWT claims, valid_from included))      written and read
    token = "WC2:" + base45(COSE_Sign1(CWT claims))                            read only
    token = "WC1:" + base45(zlib.compress(COSE_Sign1(CWT claims), 9))          read only

The prefix names the format version; the prefix and the Base45 alphabet are all in the QR alphanumeric
character set, so a QR encoder uses alphanumeric mode (5.5 bits per character) for the whole token.
The first version, "WC1:", deflated the message. Deflate does not shorten these messages, which are
mostly a 64-byte signature and short texts (149 bytes deflate to 155 for a 20-character name, 210 to 209
for 80 characters), so "WC2:" tokens carry the message as it is. "WC3:" adds the permit's first day, so
that an offline verifier can tell a permit that has not started (a letter is printed when the permit is
approved, which may be before its start). "WC1:" and "WC2:" tokens, already printed on letters, are still
read (WC1 inflated to at most MAX_INFLATED bytes); they say nothing of the start
(docs/decisions/0006-signed-permit-codes.md).

Claims (SPEC P2: enough to match the person and say whether the permit is valid, nothing more). Keys
are integers so that each costs one byte; every value is an integer or a text string:

====  ==============  ==============================================================================
key   field           wire value
====  ==============  ==============================================================================
4     expires_at      ``exp`` (RFC 8392): epoch seconds; refused on or after it
6     issued_at       ``iat`` (RFC 8392): epoch seconds; refused if more than 60 s in the future
-1    permit_number   printable text, 1–32 characters
-2    holder_name     printable text, 1–100 characters, as in the passport
-3    nationality     text, ISO 3166-1 alpha-3 (three capital letters A–Z)
-4    valid_until     unsigned integer: days since 1970-01-01 (the RFC 8943 ``days`` count, untagged)
-5    status          unsigned integer: 0 valid, 1 expired, 2 cancelled
-6    use             unsigned integer: 0 ecard, 1 letter
-7    valid_from      unsigned integer: days since 1970-01-01, not after valid_until (WC3 only)
====  ==============  ==============================================================================

``key_id`` is not a claim: it is the COSE ``kid`` (UTF-8), which selects the verification key, so a
token whose kid were changed would be checked against another key and fail (as long as each kid names
its own key). No other claim is allowed and none may be missing; a new claim means a new prefix.

The private claim keys -1 to -7 are one byte each. They are outside RFC 8392's private-use range
(below -65536, five bytes each), which is acceptable because only this verifier reads these tokens;
moving them there would add 24 bytes (36 Base45 characters) to every QR code.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2

from workcard.credentials import base45, cose
from workcard.credentials.errors import CredentialError, Expired, Malformed, NotYetValid, UnknownKey

PREFIX = "WC3:"  # the format encode_token writes: the COSE message as it is, the start included
PLAIN_PREFIX = "WC2:"  # the second format, still read: the same without the start
DEFLATED_PREFIX = "WC1:"  # the first format, still read: WC2's message deflated
MAX_INFLATED = 4096  # bytes a WC1 token may inflate to; a real one is about 200
CLOCK_SKEW = 60  # seconds an iat may lie in the future
MAX_TEXT = 1024  # characters a verifier accepts as a code's text; a real one is about 300
STATUSES = ("valid", "expired", "cancelled")  # wire codes are the positions
USES = ("ecard", "letter")

KeyResolver = Callable[[bytes], tuple[cose.PublicKey, int]]


@dataclass(frozen=True)
class PermitClaims:
    """What a permit token says (see the module docstring for how each field is carried)."""

    permit_number: str
    holder_name: str
    nationality: str  # ISO 3166-1 alpha-3
    valid_until: dt.date
    status: str  # one of STATUSES
    issued_at: int  # epoch seconds
    expires_at: int  # epoch seconds
    use: str  # one of USES
    key_id: str
    valid_from: dt.date | None = None  # None: a WC1 or WC2 token, which does not say


# --- claims ----------------------------------------------------------------------------------------------
# The rules live in one place, decode_claims. encode_claims writes the wire values and then reads its own
# output back with decode_claims, so a value is only ever issued if it will be accepted as it was.

# field -> CWT claim key, listed in deterministic CBOR key order (length first, then bytewise: cbor2's
# ``canonical``); decode_claims unpacks the values in this order.
CLAIM_KEYS = {
    "expires_at": 4,
    "issued_at": 6,
    "permit_number": -1,
    "holder_name": -2,
    "nationality": -3,
    "valid_until": -4,
    "status": -5,
    "use": -6,
    "valid_from": -7,
}
_LABELS = b"".join(cbor2.dumps(key) for key in CLAIM_KEYS.values())
if len(_LABELS) != len(CLAIM_KEYS) or sorted(_LABELS) != list(_LABELS):  # pragma: no cover - table check
    raise RuntimeError("claim keys must be one-byte CBOR integers listed in deterministic order")
_LABELS_WITHOUT_START = _LABELS[:-1]  # WC1 and WC2: every claim but valid_from

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_MAX_DAYS = dt.date.max.toordinal() - _EPOCH_ORDINAL
_MAX_SECONDS = (1 << 63) - 1
_PERMIT_NUMBER_MAX = 32
_HOLDER_NAME_MAX = 100


def _refuse(field: str, rule: str) -> Malformed:
    return Malformed(f"claim {CLAIM_KEYS[field]} ({field}) {rule}")


def _is_text(value: Any, max_len: int) -> bool:
    return type(value) is str and 0 < len(value) <= max_len and value.isprintable()


def _is_alpha3(value: Any) -> bool:
    return type(value) is str and len(value) == 3 and value.isascii() and value.isalpha() and value.isupper()


def decode_claims(payload: bytes, *, key_id: str, with_start: bool = True) -> PermitClaims:
    """Read a claims set (``bytes``) written by :func:`encode_claims`. It must be a map of exactly the
    claims of CLAIM_KEYS in deterministic key order (``with_start=False``, for WC1 and WC2 tokens:
    without valid_from), so a missing, unknown, duplicated or reordered claim is refused
    (:class:`Malformed`), as is an ill-typed or out-of-range value."""
    try:
        exp, iat, number, name, nationality, days, status, use, *start = cose.read_fixed_map(
            payload, _LABELS if with_start else _LABELS_WITHOUT_START
        )
    except Malformed as exc:
        raise Malformed(f"bad claims set: {exc}") from None
    if type(exp) is not int or not 0 <= exp <= _MAX_SECONDS:
        raise _refuse("expires_at", "must be epoch seconds")
    if type(iat) is not int or not 0 <= iat <= exp:
        raise _refuse("issued_at", "must be epoch seconds, not after exp")
    if not _is_text(number, _PERMIT_NUMBER_MAX):
        raise _refuse("permit_number", f"must be printable text of 1 to {_PERMIT_NUMBER_MAX} characters")
    if not _is_text(name, _HOLDER_NAME_MAX):
        raise _refuse("holder_name", f"must be printable text of 1 to {_HOLDER_NAME_MAX} characters")
    if not _is_alpha3(nationality):
        raise _refuse("nationality", "must be three capital letters A-Z")
    if type(days) is not int or not 0 <= days <= _MAX_DAYS:
        raise _refuse("valid_until", "must be a count of days from 1970-01-01")
    if type(status) is not int or not 0 <= status < len(STATUSES):
        raise _refuse("status", f"must be the code of one of {', '.join(STATUSES)}")
    if type(use) is not int or not 0 <= use < len(USES):
        raise _refuse("use", f"must be the code of one of {', '.join(USES)}")
    first = None
    if start:
        if type(start[0]) is not int or not 0 <= start[0] <= days:
            raise _refuse("valid_from", "must be a count of days from 1970-01-01, not after valid_until")
        first = dt.date.fromordinal(_EPOCH_ORDINAL + start[0])
    # Not PermitClaims(...): the frozen dataclass's __init__ sets the ten fields one by one through
    # object.__setattr__ (1.1 µs, against 0.5 µs to fill the instance's __dict__ at once). Every value
    # is checked above.
    claims = object.__new__(PermitClaims)
    vars(claims).update(
        permit_number=number,
        holder_name=name,
        nationality=nationality,
        valid_until=dt.date.fromordinal(_EPOCH_ORDINAL + days),
        status=STATUSES[status],
        issued_at=iat,
        expires_at=exp,
        use=USES[use],
        key_id=key_id,
        valid_from=first,
    )
    return claims


def _date_to_days(value: dt.date) -> int:
    if type(value) is not dt.date:  # a datetime is a date too, and would lose its time silently
        raise TypeError("must be a datetime.date")
    return value.toordinal() - _EPOCH_ORDINAL


_TO_WIRE: dict[str, Callable[[Any], int]] = {
    "valid_until": _date_to_days,
    "valid_from": _date_to_days,
    "status": STATUSES.index,
    "use": USES.index,
}


def encode_claims(claims: PermitClaims) -> bytes:
    """The CWT claims set of ``claims`` as deterministic CBOR (``key_id`` goes in the COSE kid instead).
    Raise ``ValueError`` naming the claim if a value cannot be carried or would be refused on reading."""
    wire: dict[int, Any] = {}
    for field, key in CLAIM_KEYS.items():
        value = getattr(claims, field)
        try:
            wire[key] = _TO_WIRE[field](value) if field in _TO_WIRE else value
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"claim {field}={value!r} cannot be encoded: {exc}") from None
        if type(wire[key]) not in (int, str):
            raise ValueError(f"claim {field}={value!r} must be an integer or text")
    encoded = cbor2.dumps(wire, canonical=True)
    try:
        decoded = decode_claims(encoded, key_id=claims.key_id)
    except Malformed as exc:
        raise ValueError(f"the claims would be refused: {exc}") from None
    if decoded != claims:  # pragma: no cover - every field is checked above or read back exactly
        raise ValueError("the claims do not survive encoding")
    return encoded


# --- tokens ----------------------------------------------------------------------------------------------


def encode_token(claims: PermitClaims, *, key: cose.PrivateKey, alg: int, kid: bytes) -> str:
    """Sign ``claims`` with ``key`` (``alg`` -7 ES256 or -8 EdDSA) under ``kid``, which must be
    ``claims.key_id`` in UTF-8, and return the QR text."""
    if kid != claims.key_id.encode("utf-8"):
        raise ValueError(f"kid {kid!r} is not the claims' key_id {claims.key_id!r}")
    return PREFIX + base45.encode(cose.sign1(encode_claims(claims), key=key, alg=alg, kid=kid))


def unwrap(text: str) -> bytes:
    """The COSE message a token of any format carries, neither parsed nor verified. Raise
    :class:`Malformed` for another prefix, bad Base45, or (WC1) a bad deflate stream."""
    if text.startswith(PREFIX) or text.startswith(PLAIN_PREFIX):
        encoded, deflated = text[len(PREFIX) :], False
    elif text.startswith(DEFLATED_PREFIX):
        encoded, deflated = text[len(DEFLATED_PREFIX) :], True
    else:
        raise Malformed(
            f"the token does not start with {PREFIX!r} (or {PLAIN_PREFIX!r} or {DEFLATED_PREFIX!r})"
        )
    try:
        data = base45.decode(encoded)
    except ValueError as exc:
        raise Malformed(f"bad Base45: {exc}") from None
    return _inflate(data) if deflated else data


def _inflate(data: bytes) -> bytes:
    """Inflate a zlib stream, refusing one that inflates beyond MAX_INFLATED (a zlib bomb), is cut
    short, is followed by anything, or is not valid."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, MAX_INFLATED)
    except zlib.error as exc:
        raise Malformed(f"bad compressed data: {exc}") from None
    if inflater.unconsumed_tail:
        raise Malformed(f"the token inflates to more than {MAX_INFLATED} bytes")
    if not inflater.eof:
        raise Malformed("the compressed data is truncated")
    if inflater.unused_data:
        raise Malformed("bytes follow the compressed data")
    return raw


def _resolve(resolve_key: KeyResolver, kid: bytes) -> tuple[cose.PublicKey, int]:
    """The key and algorithm for ``kid``, or :class:`UnknownKey`. A resolver signals an unknown kid by
    raising (UnknownKey, LookupError, ...) or returning None. Whatever else fails here is refused as an
    unknown key too (chained, for the logs): no key could be found to check the token with."""
    try:
        found = resolve_key(kid)
        if found is None:
            raise UnknownKey(f"no key for kid {kid!r}")
        public_key, alg = found
    except UnknownKey:
        raise
    except Exception as exc:
        raise UnknownKey(f"no key for kid {kid!r} ({type(exc).__name__})") from exc
    return public_key, alg


def _decode(text: str, resolve_key: KeyResolver, now: int, max_len: int) -> PermitClaims:
    if type(text) is not str:
        raise Malformed("a token is text")
    if len(text) > max_len:  # before any other work
        raise Malformed(f"the token is longer than {max_len} characters")
    message = cose.parse_sign1(unwrap(text))
    public_key, alg = _resolve(resolve_key, message.kid)
    try:
        cose.verify_sign1(message, public_key, expected_alg=alg)
    except (TypeError, ValueError) as exc:  # the resolver gave a key that does not fit its algorithm
        raise UnknownKey(f"the key for kid {message.kid!r} is unusable: {exc}") from exc
    try:
        key_id = message.kid.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("the kid is not UTF-8") from None
    claims = decode_claims(message.payload, key_id=key_id, with_start=text.startswith(PREFIX))
    if now >= claims.expires_at:
        raise Expired(f"the token expired at {claims.expires_at}, it is now {now}", claims)
    if claims.issued_at > now + CLOCK_SKEW:
        raise NotYetValid(f"the token is issued at {claims.issued_at}, it is now {now}")
    return claims


def decode_token(text: str, *, resolve_key: KeyResolver, now: int, max_len: int = MAX_TEXT) -> PermitClaims:
    """Verify a token offline and return its claims; ``now`` is epoch seconds.

    ``resolve_key(kid)`` returns the trusted public key for a kid and the COSE algorithm it is for
    (cached key objects: see :func:`cose.load_public_key`), and raises (LookupError, UnknownKey, ...) or
    returns None for a kid it does not know.

    Raises only :class:`CredentialError` subclasses, whatever ``text`` is: Malformed, UnknownKey,
    BadSignature, Expired, NotYetValid — in that order of checking, so a token is only called expired
    or not yet valid once it is known to be authentic."""
    if type(now) is not int or type(max_len) is not int:
        raise TypeError("now and max_len must be integers")
    try:
        return _decode(text, resolve_key, now, max_len)
    except CredentialError:
        raise
    except Exception as exc:  # the boundary: no input may raise anything but a verdict
        raise Malformed(f"unreadable token ({type(exc).__name__}: {exc})") from exc
