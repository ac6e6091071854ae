"""Formats and validation rules (SPEC W1, X2), with Hypothesis."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workcard.errors import InvalidInput
from workcard.permits import rules

provinces = st.sampled_from(sorted(rules.PROVINCES))


@given(provinces, st.integers(2024, 2099), st.integers(1, 10**8 - 1))
def test_permit_number_round_trip(province, year, serial):
    number = rules.make_permit_number(province, year, serial)
    assert len(number) == 13
    assert rules.is_valid_permit_number(number)


@given(provinces, st.integers(2024, 2099), st.integers(1, 10**8 - 1), st.integers(0, 11), st.integers(1, 9))
def test_permit_number_detects_single_digit_errors(province, year, serial, pos, delta):
    number = rules.make_permit_number(province, year, serial)
    wrong = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1 :]
    assert not rules.is_valid_permit_number(wrong)


@given(provinces, st.integers(2024, 2099), st.integers(1, 10**8 - 1), st.integers(0, 10))
def test_permit_number_detects_adjacent_swaps(province, year, serial, pos):
    number = rules.make_permit_number(province, year, serial)
    if number[pos] == number[pos + 1]:
        return
    swapped = number[:pos] + number[pos + 1] + number[pos] + number[pos + 2 :]
    assert not rules.is_valid_permit_number(swapped)


def test_mod11_2_matches_the_identity_card_scheme():
    assert rules.mod11_2("11010519491231002") == "X"  # the GB 11643 example


def test_uscc_check_character():
    assert rules.check_uscc("91350100M000100Y43") == "91350100M000100Y43"
    with pytest.raises(InvalidInput, match="check character"):
        rules.check_uscc("91350100M000100Y44")
    with pytest.raises(InvalidInput, match="18 characters"):
        rules.check_uscc("91350100M000100Y4I")


@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=17, max_size=17))
def test_uscc_round_trip(body):
    assert rules.check_uscc(body + rules.uscc_check_char(body)) == body + rules.uscc_check_char(body)


@pytest.mark.parametrize(
    "name",
    ["José Müller-Ødegård", "Aleksandr Ivanovich Petrov·Smith", "Jean-Luc O'Connor", "Nguyễn Thị Minh Khai",
     "SMITH, JOHN", "Łukasz Żółć", "Ana María de la Cruz y Pérez", "李 明"],
)  # fmt: skip
def test_passport_names_accepted_as_typed(name):  # SPEC E1 relies on exact names
    assert rules.check_passport_name(name) == name


@pytest.mark.parametrize(
    ("name", "code"),
    [("Jane\u200bDoe", "200B"), ("Jane\u202eeoD", "202E"), ("Jane\u2066Doe", "2066"), ("Jane\ufeffDoe", "FEFF"),
     ("Jane\u200dDoe", "200D"), ("Jane\nDoe", "000A")],
)  # fmt: skip
def test_invisible_and_bidi_characters_refused(name, code):  # SPEC X2
    with pytest.raises(InvalidInput) as info:
        rules.check_passport_name(name)
    assert info.value.params["code"] == code


@pytest.mark.parametrize("name", ["", "   ", " Jane", "Jane  Doe", "Jane2", "Jane<script>", "x" * 101])
def test_malformed_names_refused(name):  # SPEC X2
    with pytest.raises(InvalidInput):
        rules.check_passport_name(name)


@given(st.text(min_size=1, max_size=120))
def test_name_check_only_accepts_or_raises(text):  # SPEC X2: never anything but InvalidInput
    with contextlib.suppress(InvalidInput):
        assert rules.check_passport_name(text)


@pytest.mark.parametrize("code", ["XXX", "UK", "ENG", "", "12", "gbrr"])
def test_unknown_nationality_refused(code):  # SPEC X2
    with pytest.raises(InvalidInput, match="alpha-3"):
        rules.check_nationality(code)


def test_known_nationalities():
    assert rules.check_nationality("gbr") == "GBR"
    assert rules.nationality_names("DEU") == ("Germany", "德国")


def test_validity_rules():  # SPEC X2
    start = dt.date(2026, 1, 1)
    with pytest.raises(InvalidInput, match="end after it starts"):
        rules.check_validity(start, start - dt.timedelta(days=1))
    with pytest.raises(InvalidInput, match="end after it starts"):
        rules.check_validity(start, start)
    with pytest.raises(InvalidInput, match="5 years"):
        rules.check_validity(start, start + dt.timedelta(days=5 * 366 + 1))
    rules.check_validity(start, start + dt.timedelta(days=365))


def test_expired_passport_refused():  # SPEC X2
    with pytest.raises(InvalidInput, match="expired"):
        rules.check_passport_valid(dt.date(2026, 1, 1), dt.date(2026, 1, 1))
