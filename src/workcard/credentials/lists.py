"""The two documents offline verifiers sync, both COSE_Sign1 (EdDSA) signed by the trust anchor.
Pure: no database and no web framework; the server writes them and ``offline.py`` reads them.

Trust list payload (deterministic CBOR)::

    {"type": "wc-trust-list", "v": 1, "issued_at": <epoch s>, "anchor": <32 bytes, the anchor's key>,
     "keys": [{"kid": text, "alg": int, "x": <raw public key>, "signs_from": <epoch s>,
               "signs_until": <epoch s, absent while current>, "verify_until": <epoch s, absent while current>}]}

Status list payload::

    {"type": "wc-status-list", "v": 1, "issued_at": <epoch s>, "entries": [<16 bytes>, ...]}

``entries`` is sorted and holds :func:`status_entry` of every permit that is cancelled or expired and
whose tokens could still be unexpired. The ``type`` field keeps one anchor-signed document from being
passed off as the other. Absent values are left out rather than written as null, because the strict
decoder (:func:`workcard.credentials.cose.decode_cbor`) refuses simple values.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ed25519

from workcard.credentials import cose
from workcard.credentials.errors import CredentialError
from workcard.errors import DomainError
from workcard.web.vocabulary import N_

TRUST_LIST = "wc-trust-list"
STATUS_LIST = "wc-status-list"
VERSION = 1
ENTRY_BYTES = 16
KINDS = {TRUST_LIST: N_("trust list"), STATUS_LIST: N_("status list")}  # the ``kind`` param of messages


class ListError(DomainError):
    """A trust or status list that is not authentic or not well formed. The message is an English msgid;
    a ``kind`` param is one of ``KINDS`` and is translated too where the message is shown."""


def status_entry(permit_number: str) -> bytes:
    """What the status list holds for a permit: a truncated hash of its number, not the number."""
    return hashlib.sha256(b"wc-status:" + permit_number.encode("utf-8")).digest()[:ENTRY_BYTES]


def etag_of(body: bytes) -> str:
    """A strong entity tag. The documents' bytes are deterministic (Ed25519 signatures are), so equal
    content gives an equal tag in every server process."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def anchor_kid(public_raw: bytes) -> bytes:
    return b"anchor-" + hashlib.sha256(public_raw).hexdigest()[:8].encode()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raw = b""  # refused below, as a key of the wrong length is
    if len(raw) != 32:
        raise ListError("The anchor is not an Ed25519 public key in base64url (43 characters).")
    return raw


@dataclass(frozen=True)
class TrustedKey:
    kid: str
    alg: int
    x: bytes
    signs_from: int
    signs_until: int | None = None
    verify_until: int | None = None


@dataclass(frozen=True)
class TrustList:
    issued_at: int
    anchor: bytes
    keys: tuple[TrustedKey, ...]

    def key(self, kid: str) -> TrustedKey | None:
        return next((k for k in self.keys if k.kid == kid), None)


@dataclass(frozen=True)
class StatusListDoc:
    issued_at: int
    entries: tuple[bytes, ...]  # sorted

    def __contains__(self, entry: object) -> bool:
        i = bisect.bisect_left(self.entries, entry)  # type: ignore[arg-type]
        return i < len(self.entries) and self.entries[i] == entry


def _sign(payload: dict[str, Any], anchor: ed25519.Ed25519PrivateKey) -> bytes:
    public_raw = anchor.public_key().public_bytes_raw()
    return cose.sign1(
        cbor2.dumps(payload, canonical=True), key=anchor, alg=cose.EDDSA, kid=anchor_kid(public_raw)
    )


def sign_trust_list(keys: list[TrustedKey], *, issued_at: int, anchor: ed25519.Ed25519PrivateKey) -> bytes:
    entries = []
    for k in sorted(keys, key=lambda k: k.signs_from):
        entry: dict[str, Any] = {"kid": k.kid, "alg": k.alg, "x": k.x, "signs_from": k.signs_from}
        if k.signs_until is not None:
            entry["signs_until"] = k.signs_until
        if k.verify_until is not None:
            entry["verify_until"] = k.verify_until
        entries.append(entry)
    payload = {
        "type": TRUST_LIST,
        "v": VERSION,
        "issued_at": issued_at,
        "anchor": anchor.public_key().public_bytes_raw(),
        "keys": entries,
    }
    return _sign(payload, anchor)


def sign_status_list(entries: list[bytes], *, issued_at: int, anchor: ed25519.Ed25519PrivateKey) -> bytes:
    if any(len(e) != ENTRY_BYTES for e in entries):
        raise ValueError(f"status entries are {ENTRY_BYTES} bytes")
    return _sign({"type": STATUS_LIST, "v": VERSION, "issued_at": issued_at, "entries": sorted(set(entries))},
                 anchor)  # fmt: skip


def _open(data: bytes, wanted: str, anchor: bytes | None, max_depth: int) -> tuple[dict[str, Any], bytes]:
    """Check the signature (with ``anchor``, or, trusting on first use, with the anchor the trust list
    names) and the type; return the payload and the anchor that verified it."""
    kind = KINDS[wanted]
    try:
        message = cose.parse_sign1(data)
        payload = cose.decode_cbor(message.payload, max_depth=max_depth)
    except CredentialError:
        raise ListError("This is not a signed {kind}.", kind=kind) from None
    if type(payload) is not dict or payload.get("type") != wanted or payload.get("v") != VERSION:
        raise ListError("This is not a {kind} of version {version}.", kind=kind, version=VERSION)
    if anchor is None:
        named = payload.get("anchor")
        if type(named) is not bytes or len(named) != 32:
            raise ListError("The {kind} names no anchor to trust on first use.", kind=kind)
        anchor = named
    if message.kid != anchor_kid(anchor):
        raise ListError("The {kind} is signed by another anchor ({kid}).", kind=kind,
                        kid=message.kid.decode(errors="replace"))  # fmt: skip
    try:
        cose.verify_sign1(message, cose.load_public_key(cose.EDDSA, anchor), expected_alg=cose.EDDSA)
    except (CredentialError, ValueError):
        raise ListError("The {kind}'s signature does not verify with the anchor.", kind=kind) from None
    if type(payload.get("issued_at")) is not int:
        raise ListError("The {kind} has no issue time.", kind=kind)
    return payload, anchor


def _int(entry: dict[str, Any], name: str, *, optional: bool = False) -> int | None:
    value = entry.get(name)
    if value is None and optional:
        return None
    if type(value) is not int:
        raise ListError("A key of the trust list has no integer “{name}”.", name=name)
    return value


def open_trust_list(data: bytes, anchor: bytes | None) -> TrustList:
    """Verify and read a trust list. ``anchor`` is the pinned anchor key (raw); None trusts the one
    the list names (first use: the caller must say so and store it)."""
    payload, anchor = _open(data, TRUST_LIST, None if anchor is None else bytes(anchor), max_depth=3)
    if payload.get("anchor") != anchor:
        raise ListError("The trust list names another anchor than the one that signed it.")
    raw_keys = payload.get("keys")
    if type(raw_keys) is not list:
        raise ListError("The trust list has no keys.")
    keys = []
    for entry in raw_keys:
        if type(entry) is not dict or type(entry.get("kid")) is not str or type(entry.get("x")) is not bytes:
            raise ListError("A key of the trust list has no kid or no public key.")
        keys.append(
            TrustedKey(
                kid=entry["kid"], alg=_int(entry, "alg"), x=entry["x"],  # type: ignore[arg-type]
                signs_from=_int(entry, "signs_from"),  # type: ignore[arg-type]
                signs_until=_int(entry, "signs_until", optional=True),
                verify_until=_int(entry, "verify_until", optional=True),
            )
        )  # fmt: skip
    return TrustList(issued_at=payload["issued_at"], anchor=anchor, keys=tuple(keys))


def open_status_list(data: bytes, anchor: bytes) -> StatusListDoc:
    payload, _ = _open(data, STATUS_LIST, bytes(anchor), max_depth=2)
    entries = payload.get("entries")
    if type(entries) is not list or any(type(e) is not bytes or len(e) != ENTRY_BYTES for e in entries):
        raise ListError("The status list's entries are not strings of {size} bytes.", size=ENTRY_BYTES)
    if entries != sorted(entries):
        raise ListError("The status list's entries are not sorted.")
    return StatusListDoc(issued_at=payload["issued_at"], entries=tuple(entries))
