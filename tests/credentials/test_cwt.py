# The permit QR token: CWT claims in COSE_Sign1, Base45, prefix WC3; tokens of the earlier formats, WC2
# (no valid_from) and WC1 (the same, deflated), are still read (SPEC E8 the e-card's QR code, P1 the officer scans and verifies it offline,
# P2 it says whether the permit is valid now and nothing more).
from __future__ import annotations

import dataclasses
import datetime as dt
import io
import random
import zlib
from collections.abc import Callable

import cbor2
import pytest
import segno
import zxingcpp
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from workcard.credentials import base45, cose, cwt
from workcard.credentials.errors import (
    BadSignature,
    CredentialError,
    Expired,
    Malformed,
    NotYetValid,
    UnknownKey,
)

KID = b"wc-2025-01"
ISSUED = 1_750_000_000
EXPIRES = ISSUED + 30 * 86400
NOW = ISSUED + 100
ALGS = [cose.ES256, cose.EDDSA]
PRIVATE = {
    cose.ES256: ec.generate_private_key(ec.SECP256R1()),
    cose.EDDSA: ed25519.Ed25519PrivateKey.generate(),
}
PUBLIC = {alg: key.public_key() for alg, key in PRIVATE.items()}
# A 100-character passport name with letters outside ASCII (the longest name the permit rules allow).
LONG_NAME = (
    "Maximiliano Alejandro O'Connor-Rodríguez de la Santísima Trinidad·Ødegård Müller Papadopoulos Xü Zoë"
)


def make_claims(**overrides: object) -> cwt.PermitClaims:
    claims = cwt.PermitClaims(
        permit_number="WP-2024-110105-000123",
        holder_name="NGUYEN VAN AN",
        nationality="VNM",
        valid_until=dt.date(2027, 5, 31),
        valid_from=dt.date(2025, 6, 1),
        status="valid",
        issued_at=ISSUED,
        expires_at=EXPIRES,
        use="ecard",
        key_id=KID.decode(),
    )
    return dataclasses.replace(claims, **overrides)


def resolver(alg: int) -> Callable[[bytes], tuple[cose.PublicKey, int]]:
    keys = {KID: (PUBLIC[alg], alg)}
    return keys.__getitem__  # KeyError for an unknown kid


def token(alg: int, **overrides: object) -> str:
    return cwt.encode_token(make_claims(**overrides), key=PRIVATE[alg], alg=alg, kid=KID)


def decode(text: str, alg: int, **kwargs: object) -> cwt.PermitClaims:
    options: dict[str, object] = {"resolve_key": resolver(alg), "now": NOW, **kwargs}
    return cwt.decode_token(text, **options)  # type: ignore[arg-type]


def wrap(message: bytes) -> str:
    """A token around an already-built COSE message."""
    return cwt.PREFIX + base45.encode(message)


def wrap_deflated(compressed: bytes) -> str:
    """A token of the first format (WC1) around an already-deflated message."""
    return cwt.DEFLATED_PREFIX + base45.encode(compressed)


def old_message(text: str) -> bytes:
    """The COSE message an earlier format (WC1, WC2) carried for the same claims: without valid_from
    (-7), signed again with the same key."""
    message = cose.parse_sign1(cwt.unwrap(text))
    claims = {k: v for k, v in cbor2.loads(message.payload).items() if k != -7}
    return cose.sign1(cbor2.dumps(claims, canonical=True), key=PRIVATE[message.alg], alg=message.alg, kid=KID)


def as_wc2(text: str) -> str:
    """The WC2 token of the same claims as a WC3 token (what encode_token wrote before WC3)."""
    return cwt.PLAIN_PREFIX + base45.encode(old_message(text))


def as_wc1(text: str) -> str:
    """The WC1 token of the same claims as a WC3 token (what encode_token wrote before WC2)."""
    return wrap_deflated(zlib.compress(old_message(text), 9))


def signed_payload(payload: bytes, alg: int = cose.ES256) -> str:
    """A correctly signed token around an arbitrary claims payload."""
    return wrap(cose.sign1(payload, key=PRIVATE[alg], alg=alg, kid=KID))


def payload_of(text: str) -> bytes:
    return cose.parse_sign1(cwt.unwrap(text)).payload


# --- round trip --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_round_trip(alg: int) -> None:  # SPEC P1
    text = token(alg)
    assert text.startswith("WC3:")
    assert set(text[4:]) <= set(base45.ALPHABET)
    assert base45.decode(text[4:]) == cwt.unwrap(text)  # the COSE message itself, not deflated
    assert decode(text, alg) == make_claims()


@pytest.mark.parametrize("alg", ALGS)
def test_tokens_of_the_earlier_formats_are_still_read(alg: int) -> None:  # SPEC P1: letters printed before
    text = token(alg, holder_name=LONG_NAME)
    assert as_wc1(text).startswith("WC1:") and as_wc2(text).startswith("WC2:")
    for old in (as_wc1(text), as_wc2(text)):  # they do not say when the permit starts
        assert decode(old, alg) == make_claims(holder_name=LONG_NAME, valid_from=None)
    with pytest.raises(Malformed, match="exactly 8"):  # each format has its own claims
        decode(cwt.PLAIN_PREFIX + text[4:], alg)
    with pytest.raises(Malformed, match="exactly 9"):
        decode(cwt.PREFIX + as_wc2(text)[4:], alg)


def test_tokens_are_not_deflated_because_deflate_makes_them_longer() -> None:  # SPEC W2, E8
    text = token(cose.EDDSA, holder_name="Amelia Grace Johnson")
    assert len(as_wc1(text)) > len(as_wc2(text))


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize(
    "overrides",
    [
        {"holder_name": LONG_NAME, "status": "cancelled", "use": "letter"},
        {
            "status": "expired",
            "valid_until": dt.date(1970, 1, 1),
            "valid_from": dt.date(1970, 1, 1),
            "nationality": "XXA",
        },
        {"permit_number": "1" * 32, "holder_name": "李明", "issued_at": 0, "expires_at": 2**40},
    ],
)
def test_round_trip_of_unusual_values(alg: int, overrides: dict[str, object]) -> None:
    claims = make_claims(**overrides)
    text = cwt.encode_token(claims, key=PRIVATE[alg], alg=alg, kid=KID)
    assert cwt.decode_token(text, resolve_key=resolver(alg), now=min(NOW, claims.expires_at - 1)) == claims


def test_claims_are_minimal() -> None:  # SPEC P2: enough to match the person and the validity, no more
    claims = cbor2.loads(payload_of(token(cose.ES256)))
    assert sorted(claims) == [-7, -6, -5, -4, -3, -2, -1, 4, 6]
    assert all(type(value) in (int, str) for value in claims.values())
    assert claims[4] == EXPIRES and claims[6] == ISSUED  # RFC 8392 exp and iat
    assert claims[-4] == (dt.date(2027, 5, 31) - dt.date(1970, 1, 1)).days
    assert (claims[-5], claims[-6]) == (0, 0)  # status valid, use ecard


def test_key_id_is_the_kid() -> None:
    with pytest.raises(ValueError, match="key_id"):
        cwt.encode_token(make_claims(key_id="other"), key=PRIVATE[cose.ES256], alg=cose.ES256, kid=KID)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"nationality": "vnm"}, "nationality"),
        ({"nationality": "VN"}, "nationality"),
        ({"nationality": "ÄÖÜ"}, "nationality"),
        ({"status": "revoked"}, "status"),
        ({"use": "card"}, "use"),
        ({"valid_until": dt.datetime(2027, 5, 31, 12, 0)}, "valid_until"),
        ({"valid_until": dt.date(1969, 12, 31)}, "valid_until"),
        ({"holder_name": ""}, "holder_name"),
        ({"holder_name": "A" * 101}, "holder_name"),
        ({"holder_name": "NGUYEN\nVAN AN"}, "holder_name"),
        ({"permit_number": "1" * 33}, "permit_number"),
        ({"issued_at": -1}, "issued_at"),
        ({"expires_at": True}, "expires_at"),
        ({"expires_at": 1.5e9}, "expires_at"),
        ({"expires_at": ISSUED - 1}, "not after exp"),
    ],
)
def test_encode_refuses_values_it_could_not_read_back(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        token(cose.ES256, **overrides)


# --- verdicts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_expired(alg: int) -> None:  # SPEC P2: valid *now*
    text = token(alg)
    assert decode(text, alg, now=EXPIRES - 1).permit_number
    for now in (EXPIRES, EXPIRES + 1):  # RFC 8392: not accepted on or after exp
        with pytest.raises(Expired) as caught:
            decode(text, alg, now=now)
        assert caught.value.verdict == "expired"


@pytest.mark.parametrize("alg", ALGS)
def test_not_yet_valid(alg: int) -> None:  # SPEC P2
    text = token(alg)
    assert decode(text, alg, now=ISSUED - cwt.CLOCK_SKEW).issued_at == ISSUED  # within the clock skew
    with pytest.raises(NotYetValid) as caught:
        decode(text, alg, now=ISSUED - cwt.CLOCK_SKEW - 1)
    assert caught.value.verdict == "not_yet_valid"


def test_unknown_kid() -> None:
    text = cwt.encode_token(
        make_claims(key_id="wc-old"), key=PRIVATE[cose.ES256], alg=cose.ES256, kid=b"wc-old"
    )
    with pytest.raises(UnknownKey) as caught:
        decode(text, cose.ES256)
    assert caught.value.verdict == "unknown_key"


def raising(exc: Exception) -> Callable[[bytes], object]:
    def resolve(kid: bytes) -> object:
        raise exc

    return resolve


@pytest.mark.parametrize(
    "resolve",
    [
        lambda kid: None,
        lambda kid: {}[kid],
        raising(UnknownKey("revoked")),
        raising(RuntimeError("key store down")),
        lambda kid: (PUBLIC[cose.EDDSA], cose.ES256),  # a key that does not fit its algorithm
        lambda kid: (PUBLIC[cose.ES256], -35),  # an algorithm this module does not support
        lambda kid: "nonsense",
    ],
)
def test_resolver_failures_are_unknown_key(resolve: Callable[[bytes], object]) -> None:
    with pytest.raises(UnknownKey):
        cwt.decode_token(token(cose.ES256), resolve_key=resolve, now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize("alg", ALGS)
def test_signed_by_another_key(alg: int) -> None:
    other = (
        ec.generate_private_key(ec.SECP256R1()) if alg == cose.ES256 else ed25519.Ed25519PrivateKey.generate()
    )
    text = cwt.encode_token(make_claims(), key=other, alg=alg, kid=KID)
    with pytest.raises(BadSignature) as caught:
        decode(text, alg)
    assert caught.value.verdict == "bad_signature"


def test_algorithm_confusion_is_refused() -> None:
    # The kid's key is an ES256 key; a token signed with EdDSA under that kid must not be accepted.
    text = cwt.encode_token(make_claims(), key=PRIVATE[cose.EDDSA], alg=cose.EDDSA, kid=KID)
    with pytest.raises(BadSignature, match="algorithm"):
        decode(text, cose.ES256)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "WC1:",
        "WC2:",
        "HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH",  # another scheme's prefix
        "wc2:BB8",
        "WC4:BB8",  # a format version this verifier does not know
        "WC3:BB8",  # not COSE
        "WC2:bb8",  # lower case is not Base45
        "WC2:GGW",  # Base45 overflow
        "WC2:A",  # Base45 length 3k+1
        "WC2:BB8",  # not COSE
        "WC1:BB8",  # not zlib
        "https://example.org/verify?p=1",
        "\x00" * 50,
        "WC2:" + "é" * 30,
    ],
)
def test_garbage_is_malformed(text: str) -> None:
    with pytest.raises(Malformed) as caught:
        decode(text, cose.ES256)
    assert caught.value.verdict == "malformed"


def test_non_text_is_malformed() -> None:
    with pytest.raises(Malformed):
        decode(token(cose.ES256).encode(), cose.ES256)  # type: ignore[arg-type]


def test_bad_arguments_are_a_caller_error() -> None:
    with pytest.raises(TypeError):
        cwt.decode_token(token(cose.ES256), resolve_key=resolver(cose.ES256), now=float(NOW))  # type: ignore[arg-type]


def test_over_long_input_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    text = token(cose.ES256, holder_name=LONG_NAME)
    assert decode(text, cose.ES256, max_len=len(text)).holder_name == LONG_NAME
    calls: list[str] = []
    monkeypatch.setattr(cwt.base45, "decode", lambda text: calls.append(text) or b"")
    with pytest.raises(Malformed, match="longer than 1024"):
        cwt.decode_token("WC1:" + "0" * 1021, resolve_key=resolver(cose.ES256), now=NOW)
    with pytest.raises(Malformed, match=f"longer than {len(text) - 1}"):
        decode(text, cose.ES256, max_len=len(text) - 1)
    assert calls == []


@pytest.mark.parametrize("size", [cwt.MAX_INFLATED + 1, 10_000_000])
def test_zlib_bomb_is_refused(size: int) -> None:
    bomb = zlib.compress(b"\x00" * size, 9)  # 10 MB of zeros deflate to about 10 kB
    with pytest.raises(Malformed, match=f"more than {cwt.MAX_INFLATED}"):
        decode(wrap_deflated(bomb), cose.ES256, max_len=10**6)


def test_inflating_to_exactly_the_limit_is_not_a_bomb() -> None:
    with pytest.raises(Malformed, match="COSE_Sign1"):  # inflated fine, then not a COSE message
        decode(wrap_deflated(zlib.compress(b"\x00" * cwt.MAX_INFLATED)), cose.ES256, max_len=10**6)


def test_compressed_stream_must_end_cleanly() -> None:
    good = zlib.compress(cose.sign1(b"\xa0", key=PRIVATE[cose.ES256], alg=cose.ES256, kid=KID), 9)
    with pytest.raises(Malformed, match="truncated"):
        decode(wrap_deflated(good[:-4]), cose.ES256)  # without its checksum
    with pytest.raises(Malformed, match="follow"):
        decode(wrap_deflated(good + b"\x00"), cose.ES256)
    with pytest.raises(Malformed, match="compressed"):
        decode(wrap_deflated(good[:-1] + bytes([good[-1] ^ 1])), cose.ES256)  # bad checksum


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("form", [str, as_wc1], ids=["WC3", "WC1"])
def test_truncated_token_is_refused_at_every_length(alg: int, form: Callable[[str], str]) -> None:  # SPEC X2
    text = form(token(alg))
    for end in range(len(text)):
        with pytest.raises(Malformed):
            decode(text[:end], alg)


def refused_or_same(text: str, alg: int, original: cwt.PermitClaims) -> None:
    """``text`` is refused, or it reads as exactly the original claims: in a WC1 token the unused
    padding bits of the last deflate byte are covered by no checksum, so a few other strings carry the
    same signed token (like ECDSA's (r, n - s) twin, a reason why a token's text is never its identity)."""
    try:
        claims = decode(text, alg)
    except CredentialError:
        return
    assert claims == original


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("form", [str, as_wc1], ids=["WC3", "WC1"])
def test_every_changed_character_is_refused(alg: int, form: Callable[[str], str]) -> None:  # SPEC P1, X2
    # Whatever character is changed, the verdict is a refusal, never other claims.
    text = form(token(alg))
    original = decode(text, alg)
    for pos in range(len(text)):
        for replacement in base45.ALPHABET:
            if replacement != text[pos]:
                refused_or_same(text[:pos] + replacement + text[pos + 1 :], alg, original)


@pytest.mark.parametrize("alg", ALGS)
def test_every_changed_byte_of_the_signed_message_is_refused(alg: int) -> None:
    # The COSE message itself (in a WC1 token, below the compression, whose checksum would catch most
    # changes on its own).
    message = cwt.unwrap(token(alg))
    for pos in range(len(message)):
        for mask in (0x01, 0x80):
            changed = bytearray(message)
            changed[pos] ^= mask
            with pytest.raises((Malformed, BadSignature, UnknownKey)):
                decode(wrap(bytes(changed)), alg)


# --- claims that are signed but wrong ---------------------------------------------------------------------


DELETE = object()


def claims_wire(changes: dict[int, object] | None = None) -> dict[int, object]:
    """The claims map of a good token, with some claims changed (or DELETEd)."""
    wire: dict[int, object] = cbor2.loads(payload_of(token(cose.ES256)))
    for key, value in (changes or {}).items():
        if value is DELETE:
            del wire[key]
        else:
            wire[key] = value
    return wire


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({4: DELETE}, "exactly 9"),  # exp missing
        ({-8: "extra"}, "exactly 9"),  # an unknown claim
        ({-7: "2025-06-01"}, "valid_from"),
        ({-7: 30_000}, "not after valid_until"),
        ({4: "1750000000"}, "expires_at"),  # exp as text
        ({4: 1.5e9}, "floats"),
        ({6: -5}, "issued_at"),
        ({-1: ["WP"]}, "nested"),
        ({-2: b"NGUYEN"}, "holder_name"),
        ({-3: "VN"}, "nationality"),
        ({-4: -1}, "valid_until"),
        ({-5: 3}, "status"),
        ({-6: "ecard"}, "use"),
        ({4: ISSUED - 1}, "not after exp"),
    ],
)
def test_signed_but_bad_claims_are_malformed(changes: dict[int, object], message: str) -> None:
    payload = cbor2.dumps(claims_wire(changes), canonical=True)
    with pytest.raises(Malformed, match=message):
        decode(signed_payload(payload), cose.ES256)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda encoded: encoded[:-1], "truncated"),
        (lambda encoded: encoded + b"\x00", "trailing"),
        (lambda encoded: cbor2.dumps(list(cbor2.loads(encoded).items())), "map of exactly 9"),
        (lambda encoded: cbor2.dumps(cbor2.CBORTag(61, cbor2.loads(encoded))), "map of exactly 9"),  # CWT tag
    ],
)
def test_signed_but_badly_encoded_claims_are_malformed(
    mangle: Callable[[bytes], bytes], message: str
) -> None:
    payload = mangle(cbor2.dumps(claims_wire(), canonical=True))
    with pytest.raises(Malformed, match=message):
        decode(signed_payload(payload), cose.ES256)


def test_duplicate_claim_is_refused() -> None:
    encoded = cbor2.dumps(claims_wire(), canonical=True)
    # Ten pairs in a map that says ten, the last repeating "use" (-6) with another value.
    duplicated = bytes([encoded[0] + 1]) + encoded[1:] + b"\x25\x01"
    assert cbor2.loads(duplicated)[-6] == 1  # a lax decoder would read "letter"
    with pytest.raises(Malformed):
        decode(signed_payload(duplicated), cose.ES256)
    # ... and a duplicate in place of a claim, with the right count.
    swapped = encoded.replace(b"\x24\x00", b"\x25\x01", 1)  # status -> a second "use"
    with pytest.raises(Malformed, match="missing or out of order"):
        decode(signed_payload(swapped), cose.ES256)


def test_claims_out_of_order_are_refused() -> None:
    wire = claims_wire()
    reordered = b"\xa9" + b"".join(cbor2.dumps(key) + cbor2.dumps(wire[key]) for key in sorted(wire))
    with pytest.raises(Malformed, match="out of order"):
        decode(signed_payload(reordered), cose.ES256)


def test_kid_that_is_not_utf8_is_malformed() -> None:
    kid = b"\xff\xfe"
    text = wrap(
        cose.sign1(cwt.encode_claims(make_claims()), key=PRIVATE[cose.ES256], alg=cose.ES256, kid=kid)
    )
    keys = {kid: (PUBLIC[cose.ES256], cose.ES256)}
    with pytest.raises(Malformed, match="UTF-8"):
        cwt.decode_token(text, resolve_key=keys.__getitem__, now=NOW)


# --- QR code (SPEC E8, P1) ---------------------------------------------------------------------------------


def incompressible_name(length: int) -> str:
    """A name of random capital letters and spaces: deflate cannot shorten it, the worst case."""
    rng = random.Random(length)
    return (
        "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ ") for _ in range(length)).strip().ljust(length, "X")
    )


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize(
    ("name", "max_version"), [(incompressible_name(40), 10), (incompressible_name(80), 13)]
)
def test_qr_version_at_level_m(alg: int, name: str, max_version: int) -> None:
    text = token(alg, holder_name=name)
    qr = segno.make(text, error="m", micro=False, boost_error=False)
    assert qr.mode == "alphanumeric"
    assert qr.version <= max_version


@pytest.mark.parametrize("alg", ALGS)
def test_scanned_qr_verifies(alg: int) -> None:  # SPEC P1: the officer scans the code
    text = token(alg, holder_name=LONG_NAME)
    qr = segno.make(text, error="m", micro=False, boost_error=False)
    assert qr.version <= 13
    png = io.BytesIO()
    qr.save(png, kind="png", scale=4)
    png.seek(0)
    (scanned,) = zxingcpp.read_barcodes(
        Image.open(png), formats=zxingcpp.BarcodeFormat.QRCode
    )  # as scanners do
    assert decode(scanned.text, alg).holder_name == LONG_NAME


# --- fuzzing: decode_token only ever gives a verdict -------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(
    st.text(max_size=300)
    | st.tuples(
        st.sampled_from([cwt.PREFIX, cwt.DEFLATED_PREFIX]), st.text(alphabet=base45.ALPHABET, max_size=300)
    ).map("".join)
)
def test_fuzz_text(text: str) -> None:
    with pytest.raises(CredentialError):
        decode(text, cose.ES256)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_compressed_bytes(data: bytes) -> None:
    tagged = b"\xd2\x84" + data
    for text in (wrap(data), wrap(tagged), wrap_deflated(data), wrap_deflated(zlib.compress(tagged))):
        with pytest.raises(CredentialError):
            decode(text, cose.ES256, max_len=10**4)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_signed_payload(payload: bytes) -> None:
    # Authentic signatures around arbitrary claims: the claims reader gets attacker-shaped input.
    with pytest.raises(Malformed):
        decode(signed_payload(payload, cose.EDDSA), cose.EDDSA)


@FUZZ
@given(st.data())
def test_fuzz_changed_tokens(data: st.DataObject) -> None:
    text = token(cose.EDDSA)
    pos = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    replacement = data.draw(st.text(max_size=3))
    refused_or_same(text[:pos] + replacement + text[pos + 1 :], cose.EDDSA, make_claims())
