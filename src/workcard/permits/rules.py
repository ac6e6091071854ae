"""Formats and validation rules of the Work System. Pure functions: no framework, no DB.

Permit number (this project's format, docs/decisions/0002-identifiers.md): 13 characters
``PPYYSSSSSSSSC`` — PP the GB/T 2260 province code of the employer, YY the year of issue, SSSSSSSS an
8-digit serial per province and year, C an ISO 7064 MOD 11-2 check character (0–9 or X) over the
first 12 digits, the same scheme as the resident identity card. Permits issued on paper before
2024-12-01 keep the number printed on them (SPEC W3)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from functools import lru_cache

import pycountry

from workcard.errors import InvalidInput

# Province codes (GB/T 2260, first two digits) with their names.
PROVINCES: dict[str, tuple[str, str]] = {
    "11": ("北京市", "Beijing"), "12": ("天津市", "Tianjin"), "13": ("河北省", "Hebei"),
    "14": ("山西省", "Shanxi"), "15": ("内蒙古自治区", "Inner Mongolia"), "21": ("辽宁省", "Liaoning"),
    "22": ("吉林省", "Jilin"), "23": ("黑龙江省", "Heilongjiang"), "31": ("上海市", "Shanghai"),
    "32": ("江苏省", "Jiangsu"), "33": ("浙江省", "Zhejiang"), "34": ("安徽省", "Anhui"),
    "35": ("福建省", "Fujian"), "36": ("江西省", "Jiangxi"), "37": ("山东省", "Shandong"),
    "41": ("河南省", "Henan"), "42": ("湖北省", "Hubei"), "43": ("湖南省", "Hunan"),
    "44": ("广东省", "Guangdong"), "45": ("广西壮族自治区", "Guangxi"), "46": ("海南省", "Hainan"),
    "50": ("重庆市", "Chongqing"), "51": ("四川省", "Sichuan"), "52": ("贵州省", "Guizhou"),
    "53": ("云南省", "Yunnan"), "54": ("西藏自治区", "Tibet"), "61": ("陕西省", "Shaanxi"),
    "62": ("甘肃省", "Gansu"), "63": ("青海省", "Qinghai"), "64": ("宁夏回族自治区", "Ningxia"),
    "65": ("新疆维吾尔自治区", "Xinjiang"),
}  # fmt: skip

NEW_PROCESS_START = dt.date(2024, 12, 1)
_PERMIT_RE = re.compile(r"^\d{12}[0-9X]$")
_LEGACY_RE = re.compile(r"^[A-Z0-9]{6,20}$")
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_PASSPORT_RE = re.compile(r"^[A-Z0-9]{5,20}$")
# Punctuation that passports' names carry: middle dot, apostrophes, hyphen, comma, full stop.
_NAME_PUNCT = set("·'’-,.")


def mod11_2(digits: str) -> str:
    """ISO 7064 MOD 11-2 check character of a string of digits."""
    weights = [pow(2, len(digits) - i, 11) for i in range(len(digits))]
    total = sum(int(d) * w for d, w in zip(digits, weights, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def make_permit_number(province: str, year: int, serial: int) -> str:
    if province not in PROVINCES:
        raise ValueError(f"unknown province code {province!r}")
    if not 0 < serial < 10**8:
        raise ValueError("serial out of range")
    body = f"{province}{year % 100:02d}{serial:08d}"
    return body + mod11_2(body)


def is_valid_permit_number(number: str) -> bool:
    return bool(_PERMIT_RE.match(number)) and mod11_2(number[:12]) == number[12]


def clean_permit_number(raw: str) -> str:
    """Normalise a permit number typed by a person (spaces, lower-case x)."""
    return re.sub(r"\s+", "", raw or "").upper()


def check_legacy_number(number: str) -> str:
    number = clean_permit_number(number)
    if not _LEGACY_RE.match(number):
        raise InvalidInput("A paper permit number has 6 to 20 letters and digits.", field="number")
    return number


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def check_uscc(raw: str) -> str:
    """A unified social credit code (GB 32100-2015): 18 characters, the last one a check character."""
    code = (raw or "").strip().upper()
    if len(code) != 18 or any(c not in _USCC_CHARS for c in code):
        raise InvalidInput(
            "A unified social credit code has 18 characters (digits and capital letters except I, O, S, V, Z).",
            field="uscc",
        )
    if uscc_check_char(code[:17]) != code[17]:
        raise InvalidInput(
            "The unified social credit code's check character is wrong; please check the code.",
            field="uscc",
        )
    return code


def check_passport_name(raw: str, *, field: str = "passport_name") -> str:
    """A name exactly as printed in the passport (SPEC E1 relies on it): letters of any script, combining
    marks, single spaces and the punctuation passports use. Invisible characters (zero-width, bidi
    controls) are refused, never silently removed, so what is stored is what the person typed."""
    name = unicodedata.normalize("NFC", raw or "")
    if not name.strip():
        raise InvalidInput("Please enter the name exactly as in the passport.", field=field)
    for ch in name:
        cat = unicodedata.category(ch)
        if cat in ("Cf", "Cc", "Co", "Cs", "Cn", "Zl", "Zp"):
            raise InvalidInput(
                "The name contains an invisible or control character (U+{code}); please type it again.",
                field=field,
                code=f"{ord(ch):04X}",
            )
        if not (cat[0] in "LM" or ch == " " or ch in _NAME_PUNCT):
            raise InvalidInput(
                "The name may contain only letters, spaces and the marks · ' - , . (found “{char}”).",
                field=field,
                char=ch,
            )
    if name != name.strip() or "  " in name:
        raise InvalidInput(
            "The name must not start or end with a space or contain two spaces in a row.", field=field
        )
    if len(name) > 100:
        raise InvalidInput("The name is longer than 100 characters.", field=field)
    return name


def check_chinese_name(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    return check_passport_name(raw.strip(), field="chinese_name")


@lru_cache
def _alpha3() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.countries)


def check_nationality(raw: str) -> str:
    code = (raw or "").strip().upper()
    if code not in _alpha3():
        raise InvalidInput(
            "“{code}” is not an ISO 3166-1 alpha-3 country code (for example GBR, USA, FRA).",
            field="nationality",
            code=raw,
        )
    return code


def nationality_names(code: str) -> tuple[str, str]:
    """(English, Chinese) names of a nationality."""
    from babel import Locale

    country = pycountry.countries.get(alpha_3=code)
    if country is None:
        return code, code
    zh = Locale.parse("zh_CN").territories.get(country.alpha_2, country.name)
    return getattr(country, "common_name", None) or country.name, zh


def check_passport_number(raw: str) -> str:
    number = re.sub(r"\s+", "", raw or "").upper()
    if not _PASSPORT_RE.match(number):
        raise InvalidInput("A passport number has 5 to 20 letters and digits.", field="passport_number")
    return number


def check_passport_valid(expiry: dt.date, today: dt.date) -> None:
    if expiry <= today:
        raise InvalidInput(
            "The passport expired on {date}; a permit needs a valid passport.",
            field="passport_expiry",
            date=expiry.isoformat(),
        )


def check_birth_date(born: dt.date, today: dt.date) -> None:
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if not 16 <= age <= 100:
        raise InvalidInput(
            "The date of birth gives an age of {age}; please check it.", field="date_of_birth", age=age
        )


def check_validity(start: dt.date, end: dt.date) -> None:
    if end <= start:
        raise InvalidInput(
            "The validity must end after it starts ({start} – {end}).",
            field="valid_until",
            start=start.isoformat(),
            end=end.isoformat(),
        )
    if (end - start).days > 5 * 366:
        raise InvalidInput("A work permit is valid for at most 5 years.", field="valid_until")


def check_text(raw: str | None, *, field: str, label: str, max_len: int = 200) -> str:
    value = (raw or "").strip()
    if not value:
        raise InvalidInput("Please fill in: {label}.", field=field, label=label)
    if len(value) > max_len:
        raise InvalidInput("{label} is longer than {n} characters.", field=field, label=label, n=max_len)
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise InvalidInput("{label} contains an invisible or control character.", field=field, label=label)
    return value
