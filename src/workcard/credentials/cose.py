"""COSE_Sign1 (RFC 9052 §4.2) with ES256 and EdDSA (RFC 9053 §2.1, §2.2), on ``cryptography`` and ``cbor2``.

Profile (what :func:`sign1` writes and :func:`parse_sign1` accepts, nothing else):

* the message is CBOR tag 18 around ``[protected, unprotected, payload, signature]``;
* the protected header is ``{1: alg}`` (alg -7 ES256 or -8 EdDSA) and carries no other parameter;
* the unprotected header is ``{4: kid}``, kid a byte string of 1 to :data:`KID_MAX_LEN` bytes; an alg
  there is refused (it is not integrity-protected), and so is any other parameter, since this verifier
  does not implement ``crit`` and must not ignore what it does not understand;
* the payload is embedded (no detached payload), external AAD is empty;
* the signature is 64 bytes: ``r || s`` (each 32 bytes, big-endian) for ES256, the Ed25519 signature
  for EdDSA.

Strict decoding. ``cbor2`` is used to *encode*. Bytes from a token are *decoded* by this module's own
small decoder, for exactly the CBOR subset the profile needs: unsigned and negative integers, byte
strings, UTF-8 text strings, arrays and maps (the one outer tag 18 is checked by :func:`parse_sign1`).
It refuses, with :class:`~workcard.credentials.errors.Malformed`:

* **duplicate map keys**. cbor2 < 6 keeps the last of duplicate keys silently (cbor2 6 can refuse them,
  but the project allows cbor2 >= 5.6), and comparing with a canonical re-encoding costs about 6 µs
  per map, more than parsing a whole message here. So the decoder checks ``key in map`` as it goes:
  keys may only be integers or text strings, and two such Python values are equal exactly when their
  CBOR encodings are, while floats, booleans and null (which Python would take for 1 or 0) are refused
  outright. :func:`read_fixed_map` reads a record with known keys in deterministic order instead, so
  a repeated key there is simply not the key expected next;
* truncated input, trailing bytes, indefinite lengths, reserved encodings and non-shortest heads
  (so the unsigned parts of a message cannot be re-encoded into a different token that still verifies);
* tags, floats and simple values inside the message, invalid UTF-8, and nesting deeper than needed.

:func:`decode_cbor` does not check key *order* (the profile's only unsigned map has one entry). Note
that an ES256 signature is malleable all the same (``(r, n - s)`` verifies too), so a token's bytes
must never serve as its identity.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, NoReturn

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from workcard.credentials.errors import BadSignature, Malformed

ES256 = -7
EDDSA = -8
SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_KID = 4
KID_MAX_LEN = 64

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

# --- algorithms ----------------------------------------------------------------------------------------

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_P256_COORDINATE = 32


@dataclass(frozen=True, slots=True)
class _Algorithm:
    name: str
    key_kind: str
    signature_length: int
    sign: Callable[[Any, bytes], bytes]  # (private key, data) -> COSE signature
    verify: Callable[[Any, bytes, bytes], None]  # (public key, COSE signature, data); InvalidSignature
    load_public: Callable[[bytes], PublicKey]  # raw public key bytes -> key object
    fits_private: Callable[[object], bool]
    fits_public: Callable[[object], bool]


def _es256_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, _ECDSA_SHA256))
    return r.to_bytes(_P256_COORDINATE, "big") + s.to_bytes(_P256_COORDINATE, "big")


def _es256_verify(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> None:
    r = int.from_bytes(signature[:_P256_COORDINATE], "big")
    s = int.from_bytes(signature[_P256_COORDINATE:], "big")
    key.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)


@lru_cache(maxsize=32)
def _implements(kind: type, interface: type) -> bool:
    """``issubclass``, cached: the key interfaces of ``cryptography`` are ABCs whose ``isinstance`` check
    costs about 0.3 µs a call, and every verification checks its key."""
    return issubclass(kind, interface)


def _is_p256(key: object, kind: type) -> bool:
    if not _implements(type(key), kind):
        return False
    return _implements(type(key.curve), ec.SECP256R1)  # type: ignore[attr-defined]


_ALGORITHMS: dict[int, _Algorithm] = {
    ES256: _Algorithm(
        name="ES256",
        key_kind="P-256",
        signature_length=2 * _P256_COORDINATE,
        sign=_es256_sign,
        verify=_es256_verify,
        load_public=lambda raw: ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw),
        fits_private=lambda key: _is_p256(key, ec.EllipticCurvePrivateKey),
        fits_public=lambda key: _is_p256(key, ec.EllipticCurvePublicKey),
    ),
    EDDSA: _Algorithm(
        name="EdDSA",
        key_kind="Ed25519",
        signature_length=64,
        sign=lambda key, data: key.sign(data),
        verify=lambda key, signature, data: key.verify(signature, data),
        load_public=ed25519.Ed25519PublicKey.from_public_bytes,
        fits_private=lambda key: _implements(type(key), ed25519.Ed25519PrivateKey),
        fits_public=lambda key: _implements(type(key), ed25519.Ed25519PublicKey),
    ),
}


def _algorithm(alg: int) -> _Algorithm:
    try:
        return _ALGORITHMS[alg]
    except (KeyError, TypeError):
        raise ValueError(f"unsupported COSE algorithm {alg!r} (supported: -7 ES256, -8 EdDSA)") from None


@lru_cache(maxsize=256)
def load_public_key(alg: int, raw: bytes) -> PublicKey:
    """The public key object for ``raw`` bytes — a SEC1 point (65 bytes uncompressed or 33 compressed)
    for ES256, 32 bytes for EdDSA. Cached: building a P-256 key object (an on-curve check, and a
    point decompression for the compressed form) costs 7 to 27 µs, a tenth to a third of a verification,
    so key stores should resolve kids through this function or keep the objects themselves."""
    return _algorithm(alg).load_public(raw)


# --- deterministic encoding helpers --------------------------------------------------------------------


def _head(major: int, argument: int) -> bytes:
    """The shortest CBOR head for ``major`` type and ``argument`` (RFC 8949 §3, §4.2.1)."""
    if argument < 24:
        return bytes((major << 5 | argument,))
    for extra, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * width):
            return bytes((major << 5 | extra,)) + argument.to_bytes(width, "big")
    raise ValueError("CBOR argument too large")


@lru_cache(maxsize=256)
def _sig_structure_head(protected_raw: bytes, payload_length: int) -> bytes:
    """Everything of the Sig_structure before the payload's bytes. The profile has two protected
    headers, and payloads of a few dozen lengths (they vary with the claims' texts)."""
    return b"".join(
        (
            b"\x84",
            _head(3, 10),
            b"Signature1",
            _head(2, len(protected_raw)),
            protected_raw,
            b"\x40",
            _head(2, payload_length),
        )
    )


def sig_structure(protected_raw: bytes, payload: bytes) -> bytes:
    """The ToBeSigned bytes of a COSE_Sign1: ``["Signature1", protected, external_aad = h'', payload]``
    (RFC 9052 §4.4), written directly rather than through a generic encoder."""
    return _sig_structure_head(protected_raw, len(payload)) + payload


# --- strict decoding -----------------------------------------------------------------------------------

# Additional information 24 to 27: the argument follows in 1, 2, 4 or 8 bytes (a precompiled struct
# reads it) and must be at least the given value, or a shorter head could have carried it.
_ARGUMENTS = tuple(
    (struct.Struct(f">{code}"), smallest)
    for code, smallest in zip("BHIQ", (24, 1 << 8, 1 << 16, 1 << 32), strict=True)
)


def _item(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    """Decode the item at ``pos``; return it and the position after it. ``depth`` is how many more
    levels of arrays and maps may be opened. An ``IndexError`` means the input ended early."""
    initial = buf[pos]
    pos += 1
    if initial < 24:  # the most frequent item: a small unsigned integer
        return initial, pos
    major = initial >> 5
    if major >= 6:
        raise Malformed("CBOR tags, floats and simple values are not allowed here")
    argument = initial & 0x1F
    if argument >= 24:
        if argument > 27:
            raise Malformed("indefinite-length or reserved CBOR encoding")
        reader, smallest = _ARGUMENTS[argument - 24]
        end = pos + reader.size
        if end > len(buf):
            raise IndexError
        (argument,) = reader.unpack_from(buf, pos)
        if argument < smallest:
            raise Malformed("CBOR integer or length not in its shortest form")
        pos = end
    if major == 0:
        return argument, pos
    if major == 1:
        return -1 - argument, pos
    if major <= 3:
        end = pos + argument
        if end > len(buf):
            raise IndexError
        return (buf[pos:end] if major == 2 else buf[pos:end].decode("utf-8")), end
    if depth <= 0:
        raise Malformed("CBOR nested too deeply")
    if argument > len(buf) - pos:  # every element takes at least one byte
        raise IndexError
    depth -= 1
    if major == 4:
        array = []
        for _ in range(argument):
            element, pos = _item(buf, pos, depth)
            array.append(element)
        return array, pos
    mapping: dict[int | str, Any] = {}
    for _ in range(argument):
        key, pos = _item(buf, pos, depth)
        if type(key) is not int and type(key) is not str:
            raise Malformed("CBOR map keys must be integers or text strings")
        if key in mapping:
            raise Malformed(f"duplicate CBOR map key {key!r}")
        mapping[key], pos = _item(buf, pos, depth)
    return mapping, pos


def _malformed(exc: IndexError | UnicodeDecodeError) -> Malformed:
    if isinstance(exc, IndexError):
        return Malformed("truncated CBOR")
    return Malformed("CBOR text string is not valid UTF-8")


def _read(data: bytes, pos: int, *, max_depth: int) -> tuple[Any, int]:
    """Decode the CBOR item that starts at offset ``pos`` of ``data``, opening at most ``max_depth``
    levels of arrays and maps; return it with the offset just after it."""
    try:
        return _item(data, pos, max_depth)
    except (IndexError, UnicodeDecodeError) as exc:
        raise _malformed(exc) from None


def _expect_end(data: bytes, end: int) -> None:
    """Refuse bytes after the last item."""
    if end != len(data):
        raise Malformed(f"{len(data) - end} trailing byte(s) after the CBOR item")


def read_fixed_map(data: bytes, labels: bytes) -> list[Any]:
    """Read ``data`` (``bytes``), which must be exactly one map whose keys are the one-byte CBOR items of
    ``labels`` (integers -24 to 23), in that order, and whose values are integers or strings; return the
    values. A missing, extra, repeated or reordered key is refused.

    This reads a record whose writer uses deterministic encoding (so the key order is known) against
    its schema, which costs about half as much as decoding the map and then checking its keys."""
    if len(labels) >= 24:
        raise ValueError("at most 23 labels")
    pos = 1
    values = []
    try:
        if data[0] != 0xA0 | len(labels):
            raise Malformed(f"expected a map of exactly {len(labels)} entries")
        for label in labels:
            if data[pos] != label:
                raise Malformed(f"map key {_item(bytes((label,)), 0, 0)[0]} is missing or out of order")
            value, pos = _item(data, pos + 1, 0)
            values.append(value)
    except (IndexError, UnicodeDecodeError) as exc:
        raise _malformed(exc) from None
    _expect_end(data, pos)
    return values


def _as_bytes(data: bytes) -> bytes:
    # memoryview() refuses ints and str, which bytes() would turn into zero bytes or demand an encoding.
    return data if type(data) is bytes else bytes(memoryview(data))


def decode_cbor(data: bytes, *, max_depth: int = 2) -> Any:
    """Decode ``data``, which must be exactly one CBOR item of the strict subset described in the module
    docstring; raise :class:`Malformed` for anything else. ``max_depth`` bounds the nesting of arrays
    and maps."""
    data = _as_bytes(data)
    value, end = _read(data, 0, max_depth=max_depth)
    _expect_end(data, end)
    return value


# --- COSE_Sign1 ----------------------------------------------------------------------------------------


class Sign1(NamedTuple):
    """A parsed, not yet verified, COSE_Sign1 message. Its headers are those of the profile,
    ``{1: alg}`` protected (``protected_raw`` as signed) and ``{4: kid}`` unprotected. A named tuple
    rather than a frozen dataclass: one is built for every token checked, at less than half the cost."""

    protected_raw: bytes
    payload: bytes
    signature: bytes
    alg: int
    kid: bytes


def sign1(payload: bytes, *, key: PrivateKey, alg: int, kid: bytes) -> bytes:
    """Sign ``payload`` into a tagged COSE_Sign1 message with protected ``{1: alg}`` and unprotected
    ``{4: kid}``. Raise ``ValueError``/``TypeError`` for an unsupported alg, a key of the wrong type, or
    a kid that is not 1 to :data:`KID_MAX_LEN` bytes."""
    algorithm = _algorithm(alg)
    if not algorithm.fits_private(key):
        raise TypeError(f"{algorithm.name} needs a private key of type {algorithm.key_kind}")
    if type(kid) is not bytes or not 1 <= len(kid) <= KID_MAX_LEN:
        raise ValueError(f"kid must be 1 to {KID_MAX_LEN} bytes")
    if not isinstance(payload, bytes):
        raise TypeError("payload must be bytes")
    protected_raw = cbor2.dumps({HEADER_ALG: alg}, canonical=True)
    signature = algorithm.sign(key, sig_structure(protected_raw, payload))
    message = cbor2.CBORTag(SIGN1_TAG, [protected_raw, {HEADER_KID: kid}, payload, signature])
    return cbor2.dumps(message, canonical=True)


_PROTECTED_ALG = {cbor2.dumps({HEADER_ALG: alg}, canonical=True): alg for alg in _ALGORITHMS}


def _expect(value: Any, kind: type, what: str) -> Any:
    if type(value) is not kind:
        raise Malformed(f"{what} must be {'a byte string' if kind is bytes else 'a map'}")
    return value


def _message_prefix(protected_raw: bytes) -> bytes:
    """Tag 18, an array of 4, the protected header, a map of one entry, and that entry's key (kid)."""
    return b"".join(
        (
            _head(6, SIGN1_TAG),
            _head(4, 4),
            _head(2, len(protected_raw)),
            protected_raw,
            _head(5, 1),
            _head(0, HEADER_KID),
        )
    )


# Every message of the profile starts with one of these prefixes (8 bytes): in deterministic CBOR a
# protected header holding only {1: alg} has exactly one encoding per alg. Each gives the alg, the
# protected header, and the head of the signature that must end the message.
_PREFIXES = {
    _message_prefix(raw): (alg, raw, _head(2, _ALGORITHMS[alg].signature_length))
    for raw, alg in _PROTECTED_ALG.items()
}
_PREFIX_LEN = len(next(iter(_PREFIXES)))


def parse_sign1(data: bytes) -> Sign1:
    """Parse a tagged COSE_Sign1 of this module's profile, checking its structure but not its
    signature. Raise :class:`Malformed` for anything outside the profile.

    The profile fixes the first 8 bytes and the length of the signature, whose head and bytes end the
    message, so the message is read against that layout (kid and payload are the only items decoded);
    anything else is decoded generically, only to say what is wrong with it."""
    data = _as_bytes(data)
    known = _PREFIXES.get(data[:_PREFIX_LEN])
    if known is None:
        _refuse_layout(data)
    alg, protected_raw, signature_head = known
    try:
        kid, pos = _item(data, _PREFIX_LEN, 0)
        payload, pos = _item(data, pos, 0)
    except (IndexError, UnicodeDecodeError) as exc:
        raise _malformed(exc) from None
    if type(kid) is not bytes or not 1 <= len(kid) <= KID_MAX_LEN:
        raise Malformed(f"the unprotected header must hold a kid of 1 to {KID_MAX_LEN} bytes")
    _expect(payload, bytes, "the payload (detached payloads are not supported)")
    signature = data[pos + len(signature_head) :]
    if not data.startswith(signature_head, pos) or len(signature) != _ALGORITHMS[alg].signature_length:
        _refuse_signature(data, pos, alg)
    return Sign1(protected_raw, payload, signature, alg, kid)


def _refuse_signature(data: bytes, pos: int, alg: int) -> NoReturn:
    """Say why the item at ``pos``, the last of the message, is not a signature of algorithm ``alg``."""
    signature, end = _read(data, pos, max_depth=0)
    _expect_end(data, end)
    _expect(signature, bytes, "the signature")
    length = _ALGORITHMS[alg].signature_length
    raise Malformed(f"a signature of algorithm {alg} is {length} bytes, not {len(signature)}")


def _refuse_layout(data: bytes) -> NoReturn:
    """Say why ``data`` does not start like a message of the profile."""
    if not data or data[0] != 0xC0 | SIGN1_TAG:
        raise Malformed("not a COSE_Sign1 message (CBOR tag 18 expected)")
    # Depth 2: the message array, and the unprotected map inside it.
    items, end = _read(data, 1, max_depth=2)
    _expect_end(data, end)
    if type(items) is not list or len(items) != 4:
        raise Malformed("a COSE_Sign1 message is an array of 4 items")
    protected_raw = _expect(items[0], bytes, "the protected header")
    unprotected = _expect(items[1], dict, "the unprotected header")
    if protected_raw not in _PROTECTED_ALG:
        _refuse_protected(protected_raw)
    if HEADER_ALG in unprotected:
        raise Malformed("the algorithm must not be in the unprotected header")
    if HEADER_KID not in unprotected:
        raise Malformed("the unprotected header must hold the kid")
    raise Malformed("the unprotected header may only hold the kid")


def _refuse_protected(protected_raw: bytes) -> NoReturn:
    """Say why ``protected_raw`` is not one of the encodings in _PROTECTED_ALG."""
    if not protected_raw:
        raise Malformed("the protected header is empty; it must hold the algorithm")
    protected = _expect(decode_cbor(protected_raw, max_depth=1), dict, "the protected header")
    alg = protected.get(HEADER_ALG)
    if type(alg) is not int:
        raise Malformed("the protected header must hold the algorithm as an integer")
    if alg not in _ALGORITHMS:
        raise Malformed(f"unsupported algorithm {alg}")
    raise Malformed("the protected header may only hold the algorithm")


def verify_sign1(msg: Sign1, public_key: PublicKey, *, expected_alg: int) -> None:
    """Check ``msg``'s signature with ``public_key``, which is a key for ``expected_alg``. Raise
    :class:`BadSignature` if the protected header names another algorithm (algorithm confusion) or the
    signature does not verify; ``TypeError`` if ``public_key`` does not fit ``expected_alg`` (a caller's
    bug, not a property of the message)."""
    algorithm = _algorithm(expected_alg)
    if not algorithm.fits_public(public_key):
        raise TypeError(f"{algorithm.name} needs a public key of type {algorithm.key_kind}")
    if msg.alg != expected_alg:
        raise BadSignature(f"the message says algorithm {msg.alg}, the key is for {algorithm.name}")
    try:
        algorithm.verify(public_key, msg.signature, sig_structure(msg.protected_raw, msg.payload))
    except InvalidSignature:
        raise BadSignature("the signature does not verify") from None
