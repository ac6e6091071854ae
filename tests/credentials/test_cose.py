# COSE_Sign1 signing and strict verification, the envelope of the permit QR token (SPEC E8, P1).
from __future__ import annotations

import base64

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from workcard.credentials import cose
from workcard.credentials.errors import BadSignature, CredentialError, Malformed

# --- test vectors (data) ------------------------------------------------------------------------------
# RFC 9052 Appendix C.7.1 / cose-wg/Examples key "11" (P-256), base64url coordinates and private scalar.
KEY_11 = {
    "x": "usWxHK2PmfnHKwXPS54m0kTcGJ90UiglWiGahtagnv8",
    "y": "IBOL-C3BttVivg-lSreASjpkttcsz-1rb7btKLv8EX4",
    "d": "V8kgd2ZBRuh2dgyVINBUqpPDr7BOMGcF22CQMIUHtNM",
}
CONTENT = b"This is the content."
# RFC 9052 Appendix C.2.1 "Single ECDSA Signature": tagged COSE_Sign1, ES256, kid "11".
RFC9052_C21 = (
    "D28443A10126A10442313154546869732069732074686520636F6E74656E742E"
    "58408EB33E4CA31D1C465AB05AAC34CC6B23D58FEF5C083106C4D25A91AEF0B0117E"
    "2AF9A291AA32E14AB834DC56ED2A223444547E01F11D3B0916E5A4C345CACB36"
)
# cose-wg/Examples sign1-tests/sign-pass-03.json (commit 43538b5): another ES256 signature of the same
# Sig_structure by key "11" (ECDSA is randomised), here with the tag the profile requires.
COSE_WG_RESIGNED = (
    "D28443A10126A10442313154546869732069732074686520636F6E74656E742E"
    "5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E1"
    "9F43D6C6BA654472DA301B645B293C9BA939295B97C4BDB847782BFF384C5794"
)
# The "ToBeSign_hex" intermediates of sign-pass-03 (ES256) and eddsa-sig-02 (EdDSA), no external AAD.
TO_BE_SIGNED = {
    cose.ES256: "846A5369676E61747572653143A101264054546869732069732074686520636F6E74656E742E",
    cose.EDDSA: "846A5369676E61747572653143A101274054546869732069732074686520636F6E74656E742E",
}
# cose-wg/Examples eddsa-examples/eddsa-sig-01.json: Ed25519 (RFC 8032 §7.1 test 1 key), kid "11",
# protected {1: -8, 3: 0}. Its content-type parameter is outside this profile.
EDDSA_SIG_01 = (
    "D28445A201270300A10442313154546869732069732074686520636F6E74656E742E"
    "58407142FD2FF96D56DB85BEE905A76BA1D0B7321A95C8C4D3607C5781932B7AFB87"
    "11497DFA751BF40B58B3BCC32300B1487F3DB34085EEF013BF08F4A44D6FEF0D"
)
RFC8032_TEST1_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
# cose-wg/Examples sign1-tests that must not verify (all signed by key "11").
MUST_FAIL = {
    # sign-fail-01: tag 998 instead of 18.
    "wrong tag": "D903E6" + RFC9052_C21[2:],
    # sign-fail-02: payload changed ("." -> "/").
    "changed payload": (
        "D28443A10126A10442313154546869732069732074686520636F6E74656E742F"
        "5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E1"
        "9F43D6C6BA654472DA301B645B293C9BA939295B97C4BDB847782BFF384C5794"
    ),
    # sign-fail-03: alg -999.
    "unknown alg": (
        "D28445A1013903E6A10442313154546869732069732074686520636F6E74656E742E"
        "5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E1"
        "9F43D6C6BA654472DA301B645B293C9BA939295B97C4BDB847782BFF384C5794"
    ),
    # sign-fail-04: alg "unknown" (a text string).
    "text alg": (
        "D2844AA10167756E6B6E6F776EA10442313154546869732069732074686520636F6E74656E742E"
        "5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E1"
        "9F43D6C6BA654472DA301B645B293C9BA939295B97C4BDB847782BFF384C5794"
    ),
    # sign-fail-06: a protected parameter (content type) added after signing.
    "added protected": (
        "D28445A201260300A10442313154546869732069732074686520636F6E74656E742E"
        "5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E1"
        "9F43D6C6BA654472DA301B645B293C9BA939295B97C4BDB847782BFF384C5794"
    ),
    # sign-fail-07: a protected parameter removed after signing.
    "removed protected": (
        "D28443A10126A10442313154546869732069732074686520636F6E74656E742E"
        "5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E1"
        "72727F48461FABBBA2E343492DDECAC3983686250BC68E9F1A7A07D41225B59F"
    ),
    # sign-pass-01: valid COSE, but the alg is in the unprotected header (refused by this profile).
    "alg unprotected": (
        "D28441A0A201260442313154546869732069732074686520636F6E74656E742E"
        "5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E1"
        "1A02E5F0344BF2D4EE5C7FD75A68A9F5E0B3CC1F1FC1409C189566586FF9D610"
    ),
    # sign-pass-03: valid COSE, but untagged (refused by this profile).
    "untagged": RFC9052_C21[2:],
    # eddsa-sig-02: EdDSA with Ed448, a 114-byte signature (this profile's EdDSA is Ed25519 only).
    "ed448": (
        "D28443A10127A10445336434343854546869732069732074686520636F6E74656E742E5872"
        "988240A3A2F189BD486DE14AA77F54686C576A09F2E7ED9BAE910DF9139C2AC3BE7C27B7E10A20FA17C9D57D3510"
        "A2CF1F634BC0345AB9BE00849842171D1E9E98B2674C0E38BFCF6C557A1692B01B71015A47AC9F7748840CAD1DA8"
        "0CBB5B349309FEBB912672B377C8B2072AF1598B3700"
    ),
}


def b64int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


KEY_11_PUBLIC = ec.EllipticCurvePublicNumbers(
    b64int(KEY_11["x"]), b64int(KEY_11["y"]), ec.SECP256R1()
).public_key()
KEY_11_PRIVATE = ec.derive_private_key(b64int(KEY_11["d"]), ec.SECP256R1())
ED_PRIVATE = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_TEST1_SEED))
KEYS = {cose.ES256: (KEY_11_PRIVATE, KEY_11_PUBLIC), cose.EDDSA: (ED_PRIVATE, ED_PRIVATE.public_key())}


def verify(data: bytes, alg: int = cose.ES256) -> cose.Sign1:
    msg = cose.parse_sign1(data)
    cose.verify_sign1(msg, KEYS[alg][1], expected_alg=alg)
    return msg


# --- interoperability --------------------------------------------------------------------------------


def test_rfc9052_c21_verifies() -> None:
    msg = verify(bytes.fromhex(RFC9052_C21))
    assert (msg.alg, msg.kid, msg.payload) == (cose.ES256, b"11", CONTENT)
    assert msg.protected_raw == cbor2.dumps({1: -7})  # the protected header, as signed


def test_second_cose_wg_signature_verifies() -> None:
    assert verify(bytes.fromhex(COSE_WG_RESIGNED)).payload == CONTENT


def test_key_11_private_matches_public() -> None:
    assert KEY_11_PRIVATE.public_key() == KEY_11_PUBLIC


@pytest.mark.parametrize("alg", [cose.ES256, cose.EDDSA])
def test_sig_structure_matches_cose_wg_intermediates(alg: int) -> None:
    protected = cbor2.dumps({1: alg})
    assert cose.sig_structure(protected, CONTENT) == bytes.fromhex(TO_BE_SIGNED[alg])


def test_eddsa_cose_wg_signature_verifies() -> None:
    # parse_sign1 refuses the vector (content type in the protected header), so the verification
    # primitive is checked on its parts.
    data = bytes.fromhex(EDDSA_SIG_01)
    with pytest.raises(Malformed, match="may only hold the algorithm"):
        cose.parse_sign1(data)
    protected_raw, unprotected, payload, signature = cbor2.loads(data).value
    assert cbor2.loads(protected_raw) == {1: -8, 3: 0} and unprotected == {4: b"11"}
    msg = cose.Sign1(protected_raw, payload, signature, cose.EDDSA, b"11")
    cose.verify_sign1(msg, ED_PRIVATE.public_key(), expected_alg=cose.EDDSA)


@pytest.mark.parametrize("name", sorted(MUST_FAIL))
def test_cose_wg_failures_are_refused(name: str) -> None:
    with pytest.raises((Malformed, BadSignature)):
        verify(bytes.fromhex(MUST_FAIL[name]))


@given(st.binary(max_size=3000))
def test_sig_structure_is_the_cbor_of_the_rfc_array(payload: bytes) -> None:
    protected = cbor2.dumps({1: -7})
    assert cose.sig_structure(protected, payload) == cbor2.dumps(["Signature1", protected, b"", payload])


# --- round trips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", [cose.ES256, cose.EDDSA])
@pytest.mark.parametrize("payload", [b"", CONTENT, bytes(range(256)) * 300])
def test_sign_then_verify(alg: int, payload: bytes) -> None:
    data = cose.sign1(payload, key=KEYS[alg][0], alg=alg, kid=b"wc-2025-01")
    msg = verify(data, alg)
    assert (msg.payload, msg.kid, msg.alg) == (payload, b"wc-2025-01", alg)
    assert data == cbor2.dumps(cbor2.loads(data), canonical=True)  # deterministic encoding


def test_eddsa_signing_is_deterministic_and_es256_randomised() -> None:
    def sign(alg: int) -> bytes:
        return cose.sign1(CONTENT, key=KEYS[alg][0], alg=alg, kid=b"11")

    assert sign(cose.EDDSA) == sign(cose.EDDSA)
    assert sign(cose.ES256) != sign(cose.ES256)


def test_our_es256_message_matches_the_rfc_layout() -> None:
    ours = cose.sign1(CONTENT, key=KEY_11_PRIVATE, alg=cose.ES256, kid=b"11")
    # Everything but the (randomised) signature is byte-identical to RFC 9052 C.2.1.
    assert ours[:-64] == bytes.fromhex(RFC9052_C21)[:-64]


# --- tampering and algorithm confusion -------------------------------------------------------------------


@pytest.mark.parametrize("alg", [cose.ES256, cose.EDDSA])
def test_one_changed_byte_anywhere_is_refused(alg: int) -> None:
    data = cose.sign1(CONTENT, key=KEYS[alg][0], alg=alg, kid=b"11")
    kid_at = data.index(b"\x42\x31\x31") + 1
    for pos in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(data)
            tampered[pos] ^= mask
            if pos in (kid_at, kid_at + 1):
                # The kid is not signed: another kid still verifies with this key. It only selects
                # the key, so in a token it gives UnknownKey or the wrong key (see test_cwt).
                assert verify(bytes(tampered), alg).payload == CONTENT
                continue
            with pytest.raises((Malformed, BadSignature)):
                verify(bytes(tampered), alg)


def test_rfc_vector_relabelled_as_eddsa_is_refused() -> None:
    # Algorithm confusion: the protected alg says EdDSA, the key is P-256.
    relabelled = bytes.fromhex(RFC9052_C21.replace("A10126", "A10127", 1))
    msg = cose.parse_sign1(relabelled)
    assert msg.alg == cose.EDDSA
    with pytest.raises(BadSignature, match="algorithm"):
        cose.verify_sign1(msg, KEY_11_PUBLIC, expected_alg=cose.ES256)


def test_message_of_one_alg_is_refused_for_a_key_of_the_other() -> None:
    msg = cose.parse_sign1(cose.sign1(CONTENT, key=ED_PRIVATE, alg=cose.EDDSA, kid=b"11"))
    with pytest.raises(BadSignature):
        cose.verify_sign1(msg, KEY_11_PUBLIC, expected_alg=cose.ES256)


def test_key_that_does_not_fit_the_alg_is_a_caller_error() -> None:
    msg = cose.parse_sign1(bytes.fromhex(RFC9052_C21))
    with pytest.raises(TypeError):
        cose.verify_sign1(msg, ED_PRIVATE.public_key(), expected_alg=cose.ES256)  # type: ignore[arg-type]
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(TypeError):
        cose.verify_sign1(msg, p384, expected_alg=cose.ES256)
    with pytest.raises(ValueError, match="unsupported"):
        cose.verify_sign1(msg, KEY_11_PUBLIC, expected_alg=-35)
    ed_msg = cose.parse_sign1(cose.sign1(CONTENT, key=ED_PRIVATE, alg=cose.EDDSA, kid=b"11"))
    for not_ed25519 in (KEY_11_PUBLIC, ED_PRIVATE, object()):
        with pytest.raises(TypeError):
            cose.verify_sign1(ed_msg, not_ed25519, expected_alg=cose.EDDSA)  # type: ignore[arg-type]


def test_high_s_twin_of_an_es256_signature_also_verifies() -> None:
    # ECDSA malleability: (r, n - s) is valid too, which is why a token's bytes are not its identity.
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    msg = cose.parse_sign1(bytes.fromhex(RFC9052_C21))
    s = int.from_bytes(msg.signature[32:], "big")
    twin = msg._replace(signature=msg.signature[:32] + (n - s).to_bytes(32, "big"))
    cose.verify_sign1(twin, KEY_11_PUBLIC, expected_alg=cose.ES256)


# --- strict parsing --------------------------------------------------------------------------------------


def _message(
    protected: bytes, unprotected: bytes, payload: bytes = b"\x40", signature: bytes | None = None
) -> bytes:
    """A tagged COSE_Sign1 from already-encoded parts (so that invalid encodings can be built)."""
    if signature is None:
        signature = b"\x58\x40" + bytes(64)
    return b"\xd2\x84" + protected + unprotected + payload + signature


GOOD_PROTECTED = b"\x43\xa1\x01\x26"
GOOD_UNPROTECTED = b"\xa1\x04\x42\x31\x31"


def test_hand_built_message_parses() -> None:
    msg = cose.parse_sign1(_message(GOOD_PROTECTED, GOOD_UNPROTECTED))
    assert (msg.alg, msg.kid, msg.payload) == (cose.ES256, b"11", b"")


@pytest.mark.parametrize(
    ("protected", "unprotected", "message"),
    [
        # duplicate map keys: cbor2 before 6 would keep the last one silently
        (b"\x45\xa2\x01\x26\x01\x26", GOOD_UNPROTECTED, "duplicate"),
        (GOOD_PROTECTED, b"\xa2\x04\x42\x31\x31\x04\x42\x32\x32", "duplicate"),
        # alg confusion through the unprotected header
        (GOOD_PROTECTED, b"\xa2\x01\x27\x04\x42\x31\x31", "must not be in the unprotected"),
        (b"\x40", b"\xa2\x01\x26\x04\x42\x31\x31", "protected header is empty"),
        # kid: missing, empty, text, too long
        (GOOD_PROTECTED, b"\xa0", "kid"),
        (GOOD_PROTECTED, b"\xa1\x04\x40", "kid"),
        (GOOD_PROTECTED, b"\xa1\x04\x62\x31\x31", "kid"),
        (GOOD_PROTECTED, b"\xa1\x04\x58\x41" + bytes(65), "kid"),
        # unknown parameters are not ignored (no crit support)
        (GOOD_PROTECTED, b"\xa2\x04\x42\x31\x31\x03\x00", "only hold the kid"),
        # wrong types
        (b"\xa1\x01\x26", GOOD_UNPROTECTED, "protected header must be a byte string"),
        (b"\x43\x81\x01\x26", GOOD_UNPROTECTED, "truncated|trailing"),
        (b"\x42\x81\x26", GOOD_UNPROTECTED, "must be a map"),
        (GOOD_PROTECTED, b"\x80", "must be a map"),
        (b"\x43\xa1\x01\x20", GOOD_UNPROTECTED, "unsupported algorithm -1"),
        # non-shortest encodings: 24 written in two bytes, a length written in two bytes
        (b"\x44\xa1\x01\x38\x06", GOOD_UNPROTECTED, "shortest"),
        (GOOD_PROTECTED, b"\xa1\x04\x58\x02\x31\x31", "shortest"),
        # indefinite-length map, tag inside, float key
        (GOOD_PROTECTED, b"\xbf\x04\x42\x31\x31\xff", "indefinite"),
        (GOOD_PROTECTED, b"\xa1\x04\xc2\x42\x31\x31", "tags"),
        (GOOD_PROTECTED, b"\xa1\xf9\x44\x00\x42\x31\x31", "floats"),
    ],
)
def test_bad_headers_are_refused(protected: bytes, unprotected: bytes, message: str) -> None:
    with pytest.raises(Malformed, match=message):
        cose.parse_sign1(_message(protected, unprotected))


@pytest.mark.parametrize(
    ("payload", "signature", "message"),
    [
        (b"\xf6", None, "floats and simple values"),  # detached payload (nil)
        (b"\x60", None, "payload"),  # text instead of bytes
        (b"\x40", b"\x58\x3f" + bytes(63), "64 bytes"),
        (b"\x40", b"\x58\x41" + bytes(65), "64 bytes"),
        (b"\x40", b"\x59\x00\x40" + bytes(64), "shortest"),  # the right length, written too long
        (b"\x40", b"\x60", "signature must be a byte string"),
        (b"\x40", b"\x80", "nested"),  # an array where the signature should be
    ],
)
def test_bad_payload_or_signature_is_refused(payload: bytes, signature: bytes | None, message: str) -> None:
    with pytest.raises(Malformed, match=message):
        cose.parse_sign1(_message(GOOD_PROTECTED, GOOD_UNPROTECTED, payload, signature))


def test_truncated_message_is_refused_at_every_length() -> None:
    data = bytes.fromhex(RFC9052_C21)
    for end in range(len(data)):
        with pytest.raises(Malformed):
            cose.parse_sign1(data[:end])


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(Malformed, match="trailing"):
        cose.parse_sign1(bytes.fromhex(RFC9052_C21) + b"\x00")


def test_wrong_array_length_is_refused() -> None:
    data = bytes.fromhex(RFC9052_C21)
    with pytest.raises(Malformed, match="array of 4"):
        cose.parse_sign1(b"\xd2\x85" + data[2:] + b"\x00")


def test_parse_refuses_non_bytes() -> None:
    with pytest.raises(TypeError):
        cose.parse_sign1(5)  # type: ignore[arg-type]
    assert cose.parse_sign1(bytearray.fromhex(RFC9052_C21)).kid == b"11"


# --- the strict CBOR decoder -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_data", "message"),
    [
        ("a2010201 03", "duplicate CBOR map key 1"),
        ("a2616101 616102", "duplicate CBOR map key 'a'"),
        ("a2 01 00 f5 00", "floats and simple values"),  # true would equal 1 in a Python dict
        ("a1 41 61 00", "keys must be integers or text"),
        ("8201", "truncated"),
        ("5a 00 01 00 00", "truncated"),
        ("1b 00 00 00 00 00 00 00 18", "shortest"),
        ("9f 01 ff", "indefinite"),
        ("1c", "reserved"),
        ("0102", "trailing"),
        ("62 c3 28", "UTF-8"),
        ("c1 1a 51 4b 67 b0", "tags"),
        ("818181818100", "nested too deeply"),
    ],
)
def test_decoder_refuses(hex_data: str, message: str) -> None:
    with pytest.raises(Malformed, match=message):
        cose.decode_cbor(bytes.fromhex(hex_data.replace(" ", "")))


LABELS = bytes((0x04, 0x06, 0x20))  # keys 4, 6, -1


@pytest.mark.parametrize(
    ("hex_data", "message"),
    [
        ("a3 04 01 06 02 20 63616263", None),
        ("a2 04 01 06 02", "exactly 3"),
        ("a4 04 01 06 02 20 00 21 00", "exactly 3"),
        ("a3 06 02 04 01 20 00", "key 4 is missing or out of order"),
        ("a3 04 01 04 01 20 00", "key 6 is missing or out of order"),  # a duplicate
        ("a3 04 01 06 02 20 00 00", "trailing"),
        ("a3 04 01 06 02 20", "truncated"),
        ("a3 04 01 06 81 02 20 00", "nested"),
    ],
)
def test_read_fixed_map(hex_data: str, message: str | None) -> None:
    data = bytes.fromhex(hex_data.replace(" ", ""))
    if message is None:
        assert cose.read_fixed_map(data, LABELS) == [1, 2, "abc"]
    else:
        with pytest.raises(Malformed, match=message):
            cose.read_fixed_map(data, LABELS)


cbor_ints = st.integers(min_value=-(2**64), max_value=2**64 - 1)
cbor_values = st.recursive(
    cbor_ints | st.binary(max_size=300) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(cbor_ints | st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@given(cbor_values)
def test_decoder_reads_what_cbor2_writes(value: object) -> None:
    assert cose.decode_cbor(cbor2.dumps(value), max_depth=8) == value


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_decoder_agrees_with_cbor2_or_refuses(data: bytes) -> None:
    try:
        value = cose.decode_cbor(data, max_depth=8)
    except Malformed:
        return
    assert cbor2.loads(data) == value


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_parse_sign1_only_raises_malformed(data: bytes) -> None:
    for candidate in (data, b"\xd2\x84" + data):
        try:
            cose.parse_sign1(candidate)
        except CredentialError as exc:
            assert isinstance(exc, Malformed)


# --- arguments of sign1 and key loading ------------------------------------------------------------------


def test_sign1_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="P-256"):
        cose.sign1(CONTENT, key=ED_PRIVATE, alg=cose.ES256, kid=b"11")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="P-256"):
        cose.sign1(CONTENT, key=ec.generate_private_key(ec.SECP384R1()), alg=cose.ES256, kid=b"11")
    with pytest.raises(TypeError, match="Ed25519"):
        cose.sign1(CONTENT, key=KEY_11_PRIVATE, alg=cose.EDDSA, kid=b"11")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unsupported"):
        cose.sign1(CONTENT, key=KEY_11_PRIVATE, alg=-35, kid=b"11")
    for kid in (b"", bytes(cose.KID_MAX_LEN + 1), "11"):
        with pytest.raises(ValueError, match="kid"):
            cose.sign1(CONTENT, key=KEY_11_PRIVATE, alg=cose.ES256, kid=kid)  # type: ignore[arg-type]


def test_load_public_key_is_cached_and_typed() -> None:
    point = KEY_11_PUBLIC.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    key = cose.load_public_key(cose.ES256, point)
    assert key == KEY_11_PUBLIC
    assert cose.load_public_key(cose.ES256, point) is key
    ed_raw = ED_PRIVATE.public_key().public_bytes_raw()
    assert ed_raw.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"  # RFC 8032 §7.1
    assert cose.load_public_key(cose.EDDSA, ed_raw) == ED_PRIVATE.public_key()
    with pytest.raises(ValueError):
        cose.load_public_key(cose.ES256, b"\x04" + bytes(64))  # not on the curve
