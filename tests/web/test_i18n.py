"""The message catalogs are complete and consistent (SPEC X1).

Messages are extracted from the source exactly as ``make messages`` does (the method map of ``babel.cfg``
and the ``-k`` keywords of the Makefile's KEYWORDS variable, on top of Babel's defaults), so a string
added to the code without a Simplified Chinese translation fails here, naming the string."""

from __future__ import annotations

import re
import string
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po

from workcard.web import i18n

ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = ROOT / "src" / "workcard" / "locale"


def _makefile_keywords() -> list[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^KEYWORDS\s*:?=(.*)$", makefile, re.MULTILINE)
    assert match, "the Makefile has no KEYWORDS variable"
    specs = re.findall(r"-k\s*(\S+)", match.group(1))
    assert specs, "the Makefile's KEYWORDS variable names no keyword"
    return specs


@cache
def extracted() -> dict[str, str | None]:
    """msgid -> msgid_plural (None for a singular message), as ``make messages`` would extract them."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh, filename=str(ROOT / "babel.cfg"))
    keywords = dict(DEFAULT_KEYWORDS)
    keywords.update(parse_keywords(_makefile_keywords()))
    found: dict[str, str | None] = {}
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords, strip_comment_tags=True
    ):
        if isinstance(message, tuple | list):
            singular, plural = message[0], message[1] if len(message) > 1 else None
        else:
            singular, plural = message, None
        if singular:
            found.setdefault(singular, plural)
    return found


@cache
def catalog(locale: str) -> Catalog:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def _strings(message: Message) -> list[str]:
    if isinstance(message.string, tuple | list):
        return list(message.string)
    return [message.string]


def _ids(message: Message) -> list[str]:
    if isinstance(message.id, tuple | list):
        return list(message.id)
    return [message.id]


def placeholders(text: str) -> set[str]:
    """The str.format fields of a text (``{name}``, ``{n:d}`` -> ``name``, ``n``)."""
    return {field for _literal, field, _spec, _conv in string.Formatter().parse(text) if field is not None}


def test_extraction_finds_the_source_strings():  # SPEC X1
    found = extracted()
    # one message from a template, one from Python source, one from a Makefile keyword
    assert "Sign in" in found
    assert "valid" in found
    assert "Please fill in: {label}." in found


def test_every_message_has_a_chinese_translation():  # SPEC X1
    zh = catalog("zh_CN")
    missing = []
    for msgid in sorted(extracted()):
        entry = zh.get(msgid)
        if entry is None or not all(s.strip() for s in _strings(entry)):
            missing.append(msgid)
    assert not missing, (
        f"{len(missing)} message(s) without a zh_CN translation (run `make messages` and translate them "
        "in src/workcard/locale/zh_CN/LC_MESSAGES/messages.po):\n  " + "\n  ".join(map(repr, missing))
    )


def test_chinese_catalog_header():  # SPEC X1
    zh = catalog("zh_CN")
    headers = dict(zh.mime_headers)
    assert headers.get("Language") == "zh_CN"
    assert "charset=utf-8" in headers.get("Content-Type", "").lower()
    assert zh.num_plurals == 1
    assert zh.plural_expr.strip() == "0"


def test_no_chinese_entry_is_fuzzy():  # SPEC X1
    zh = catalog("zh_CN")
    fuzzy = [m.id for m in zh if m.fuzzy]  # the header too: a fuzzy header makes gettext ignore its charset
    assert not fuzzy, f"fuzzy zh_CN entries (a fuzzy translation is not used): {fuzzy}"


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_translations_keep_the_placeholders(locale):  # SPEC X1
    bad = []
    for message in catalog(locale):
        if not message.id:
            continue  # the header
        wanted = set().union(*(placeholders(i) for i in _ids(message)))
        for text in _strings(message):
            if not text:
                continue  # untranslated: falls back to the msgid
            try:
                got = placeholders(text)
            except ValueError as exc:  # an unbalanced brace would break str.format at run time
                bad.append(f"{message.id!r} -> {text!r}: {exc}")
                continue
            if got != wanted:
                bad.append(f"{message.id!r} -> {text!r}: {sorted(got)} instead of {sorted(wanted)}")
    assert not bad, "placeholders differ between msgid and msgstr:\n  " + "\n  ".join(bad)


def test_translated_messages_can_be_formatted():  # SPEC X1
    """Each zh_CN translation formats with the msgid's own fields without raising."""
    for message in catalog("zh_CN"):
        if not message.id:
            continue
        params = {name: "x" for i in _ids(message) for name in placeholders(i)}
        for text in _strings(message):
            if text:
                text.format(**params)


@pytest.fixture
def zh_locale():
    token = i18n.current_locale.set("zh_CN")
    try:
        yield
    finally:
        i18n.current_locale.reset(token)


def test_gettext_translates_into_chinese(zh_locale):  # SPEC X1
    assert i18n.gettext("Sign in") == "登录"
    assert i18n.gettext("valid") == "有效"
    assert i18n.gettext("Please fill in: {label}.", label="护照号码") == "请填写：护照号码。"
    assert i18n.ngettext(
        "{n} application waits for a decision.", "{n} applications wait for a decision.", 3
    ).startswith("3")


def test_english_falls_back_to_the_msgid():  # SPEC X1
    token = i18n.current_locale.set("en")
    try:
        assert i18n.gettext("Sign in") == "Sign in"
    finally:
        i18n.current_locale.reset(token)
