"""Formats of bank data. Pure: no framework, no DB."""

from __future__ import annotations

import re

from workcard.errors import InvalidInput

_CARD = re.compile(r"62[0-9]{14,17}")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def check_unionpay_card(raw: str, *, field: str = "card_number") -> str:
    """A domestic UnionPay card number: 16 to 19 digits starting with 62, with a valid check digit
    (spaces as printed on the card are allowed)."""
    number = (raw or "").replace(" ", "")
    if not _CARD.fullmatch(number):
        raise InvalidInput("A UnionPay card number has 16 to 19 digits and starts with 62.", field=field)
    if not luhn_ok(number):
        raise InvalidInput("This card number is mistyped: its check digit does not match.", field=field)
    return number


def check_mobile(raw: str, *, field: str = "phone") -> str:
    """A mainland China mobile number: 11 digits starting with 1 (a leading +86 is allowed)."""
    number = (raw or "").replace(" ", "").replace("-", "")
    number = number.removeprefix("+86")
    if not _MOBILE.fullmatch(number):
        raise InvalidInput("Please enter the 11-digit mobile number, for example 13912345678.", field=field)
    return number
