# Base45 (RFC 9285), the text form of the permit QR token (SPEC E8, P1).
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workcard.credentials import base45

# RFC 9285 §4.3 and §4.4 examples.
RFC_EXAMPLES = [
    (b"AB", "BB8"),
    (b"Hello!!", "%69 VD92EX0"),
    (b"base-45", "UJCLQE7W581"),
    (b"ietf!", "QED8WEX0"),
]


@pytest.mark.parametrize(("data", "text"), RFC_EXAMPLES)
def test_rfc_examples_encode(data: bytes, text: str) -> None:
    assert base45.encode(data) == text


@pytest.mark.parametrize(("data", "text"), RFC_EXAMPLES)
def test_rfc_examples_decode(data: bytes, text: str) -> None:
    assert base45.decode(text) == data


def test_empty() -> None:
    assert base45.encode(b"") == ""
    assert base45.decode("") == b""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("GGW", r"position 0 has value 65536, above 65535"),  # RFC 9285 §4.2: 65536 does not fit 2 bytes
        ("BB8GGW", r"position 3 has value 65536"),
        ("BB8:::", r"position 3 has value 91124"),  # the largest three-character value
        ("::", r"position 0 has value 2024, above 255"),  # a final pair must fit one byte
        ("BB8V5", r"position 3 has value 256, above 255"),
        ("A", r"length 1"),
        ("BB8A", r"length 4"),
        ("bb8", r"character 'b' at position 0"),  # lower case is not in the alphabet
        ("BB8=", r"character '=' at position 3"),
        ("BB8\n", r"character '\\n' at position 3"),
        ("BB8é00", r"character 'é' at position 3"),
        ("BB8\x00", r"character '\\x00' at position 3"),
    ],
)
def test_invalid_input_is_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        base45.decode(text)


def test_decode_needs_text() -> None:
    with pytest.raises(TypeError):
        base45.decode(b"BB8")  # type: ignore[arg-type]


def test_largest_values_decode() -> None:
    assert base45.decode("FGW") == b"\xff\xff"
    assert base45.decode("U5") == b"\xff"


def test_every_two_byte_value_round_trips() -> None:
    data = b"".join(n.to_bytes(2, "big") for n in range(65536))
    assert base45.decode(base45.encode(data)) == data


@given(st.binary(max_size=600))
def test_round_trip(data: bytes) -> None:
    text = base45.encode(data)
    assert len(text) == 3 * (len(data) // 2) + 2 * (len(data) % 2)
    assert set(text) <= set(base45.ALPHABET)
    assert base45.decode(text) == data


@given(st.text(alphabet=base45.ALPHABET + "ab=\n\x00é", max_size=60))
def test_decode_is_exact_or_refuses(text: str) -> None:
    # Only ValueError ever, and what decodes is the one canonical encoding of its bytes.
    try:
        data = base45.decode(text)
    except ValueError:
        return
    assert base45.encode(data) == text
