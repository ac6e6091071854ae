# SPEC W2, X1 — bilingual "Notification Letter of Foreigner's Work Permit" PDF (text, QR, fonts, determinism).
from __future__ import annotations

import dataclasses
import io
import os
import random
import re
import shutil
import subprocess
import unicodedata
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pypdfium2 as pdfium
import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from reportlab.lib.units import mm

from workcard.permits import letter
from workcard.permits.letter import LetterData, QRFlowable, render_letter

WQY = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
LONG_NAME = (
    "Maximiliano Alejandro O'Connor-Rodríguez de la Santísima Trinidad·Ødegård Müller Papadopoulos Xü Zoë"
)
assert len(LONG_NAME) == 100


def make_data(**overrides: object) -> LetterData:
    data = LetterData(
        permit_number="WP-2024-110105-000123",
        holder_name="José Müller-Ødegård·Li",
        chinese_name="李明",
        nationality_code="DEU",
        nationality_en="Germany",
        nationality_zh="德国",
        sex="M",
        date_of_birth=date(1988, 3, 7),
        passport_number="C01X00T47",
        employer_name="北京示例科技有限公司 Beijing Example Technology Co., Ltd.",
        employer_uscc="91110105MA01ABCD2X",
        position="高级软件工程师 Senior Software Engineer",
        work_location="北京市朝阳区 Chaoyang District, Beijing",
        category="B",
        valid_from=date(2024, 5, 1),
        valid_until=date(2026, 4, 30),
        issued_on=date(2024, 4, 28),
        letter_version=2,
        qr_text="https://workcard.example.cn/verify/WP-2024-110105-000123",
        qr_caption="WP-2024-110105-000123",
    )
    return dataclasses.replace(data, **overrides)  # type: ignore[arg-type]


def pdf_text(pdf: bytes) -> str:
    if shutil.which("pdftotext"):
        out = subprocess.run(  # noqa: S603
            ["pdftotext", "-raw", "-enc", "UTF-8", "-", "-"],  # noqa: S607 -- -raw: no de-hyphenation
            input=pdf,
            capture_output=True,
            check=True,
        ).stdout.decode("utf-8")
    else:
        out = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return unicodedata.normalize("NFC", out)


def squash(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFC", text))


def decode_qr(pdf: bytes, dpi: int = 200) -> list[zxingcpp.Barcode]:
    doc = pdfium.PdfDocument(pdf)
    try:
        image = doc[0].render(scale=dpi / 72).to_pil()
    finally:
        doc.close()
    return [b for b in zxingcpp.read_barcodes(image) if b.format == zxingcpp.BarcodeFormat.QRCode]


def base45_string(length: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(BASE45) for _ in range(length))


@pytest.fixture(scope="module")
def sample_pdf() -> bytes:
    return render_letter(make_data(legacy_note=True))


def test_is_single_a4_page(sample_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(sample_pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (210, 297)


def test_text_titles_labels_and_values(sample_pdf: bytes) -> None:
    text = pdf_text(sample_pdf)
    flat = squash(text)
    assert "中华人民共和国外国人工作许可通知" in text
    assert "Notification Letter of Foreigner's Work Permit" in text
    assert "WP-2024-110105-000123" in text
    assert "José Müller-Ødegård·Li" in text
    for label in ("工作许可号码", "姓名", "中文姓名", "国籍", "性别", "出生日期", "护照号码", "用人单位"):
        assert label in text
    for label in ("统一社会信用代码", "职位", "工作地点", "类别", "有效期"):
        assert label in text
    for label in ("Work Permit No.", "Passport No.", "Unified Social Credit Code", "Validity"):
        assert label in text
    for value in ("李明", "德国", "Germany (DEU)", "C01X00T47", "91110105MA01ABCD2X", "北京示例科技有限公司"):
        assert value in text
    # dates as YYYY-MM-DD, footer with the issue date and the letter version
    for iso in ("1988-03-07", "2024-05-01", "2026-04-30", "2024-04-28"):
        assert iso in text
    assert "version 2" in text.lower()
    # bilingual verification note, legacy note only when asked for
    assert squash("持证人可出示本通知或电子卡二维码以供核验") in flat
    assert "for verification" in text
    assert "实体《外国人工作许可证》" in text


def test_legacy_note_is_optional() -> None:
    text = pdf_text(render_letter(make_data(legacy_note=False)))
    assert "实体《外国人工作许可证》" not in text
    assert "replaces the physical" not in text


def test_long_name_wraps_and_appears_completely() -> None:
    pdf = render_letter(make_data(holder_name=LONG_NAME))
    assert squash(LONG_NAME) in squash(pdf_text(pdf))
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1


def test_long_name_without_spaces_is_split_not_lost() -> None:
    name = ("Ødegård·Müller-" * 7)[:100]
    assert squash(name) in squash(pdf_text(render_letter(make_data(holder_name=name))))


def test_markup_escaping() -> None:
    name = "O'Brien <Jr.> & Søn"
    assert squash(name) in squash(pdf_text(render_letter(make_data(holder_name=name))))


def test_missing_chinese_name_and_category_text() -> None:
    text = pdf_text(render_letter(make_data(chinese_name=None, category="A", sex="F")))
    assert "中文姓名" in text
    assert "A类" in text and "Category A" in text
    assert "女" in text and "Female" in text


def test_decomposed_and_rare_characters_render() -> None:
    """NFD input is normalised; glyphs WenQuanYi lacks (e.g. ẞ) come from the supplement font."""
    if not letter._fonts().embedded or len(letter._fonts().fonts) < 2:
        pytest.skip("needs WenQuanYi Micro Hei and DejaVu Sans")
    name = unicodedata.normalize("NFD", "José Müller") + " GROẞ"
    pdf = render_letter(make_data(holder_name=name))
    assert "José Müller GROẞ" in pdf_text(pdf)
    assert any("DejaVuSans" in str(f["/BaseFont"]) for f in _fonts(pdf))


@given(
    name=st.text(
        alphabet=st.sampled_from("AaBbÉéÜüØøÇçŁłÑñ·'- abcdefghijklmnopqrstuvwxyz"), min_size=1, max_size=100
    ).filter(lambda s: s.strip() != "")
)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_passport_name_survives(name: str) -> None:
    assert squash(name) in squash(pdf_text(render_letter(make_data(holder_name=name))))


@pytest.mark.parametrize(
    "qr_text",
    [
        "https://workcard.example.cn/verify/WP-2024-110105-000123",
        base45_string(300, seed=1),
        base45_string(500, seed=2),
    ],
    ids=["url", "base45-300", "base45-500"],
)
def test_qr_decodes_to_qr_text(qr_text: str) -> None:
    pdf = render_letter(make_data(qr_text=qr_text))
    barcodes = decode_qr(pdf)
    assert [b.text for b in barcodes] == [qr_text]
    assert barcodes[0].ec_level == "M"
    pos = barcodes[0].position  # symbol without quiet zone, in pixels at 200 dpi
    width_mm = (pos.top_right.x - pos.top_left.x) / 200 * 25.4
    assert width_mm >= 30


@pytest.mark.parametrize("qr_text", ["https://x.cn/v/1", base45_string(500, seed=3)])
def test_qr_size_including_quiet_zone(qr_text: str) -> None:
    assert QRFlowable(qr_text).width >= 35 * mm


def test_qr_caption_under_code(sample_pdf: bytes) -> None:
    text = pdf_text(sample_pdf)
    assert text.count("WP-2024-110105-000123") >= 2  # table row + QR caption
    assert "Scan to verify" in text


def _fonts(pdf: bytes) -> list[dict]:
    fonts = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            if font.get("/Subtype") == "/Type0":
                font = font["/DescendantFonts"][0].get_object()
            fonts.append(font)
    return fonts


def test_fonts_are_embedded(sample_pdf: bytes) -> None:
    fonts = _fonts(sample_pdf)
    assert fonts
    for font in fonts:
        descriptor = font["/FontDescriptor"].get_object()
        assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")), font["/BaseFont"]
    if shutil.which("pdffonts"):
        out = subprocess.run(  # noqa: S603
            ["pdffonts", "-"],  # noqa: S607
            input=sample_pdf,
            capture_output=True,
            check=True,
        ).stdout.decode()
        rows = out.splitlines()[2:]
        assert rows and all(" yes " in row for row in rows), out


def test_metadata(sample_pdf: bytes) -> None:
    meta = PdfReader(io.BytesIO(sample_pdf)).metadata
    assert meta is not None
    assert "Notification Letter of Foreigner's Work Permit" in (meta.title or "")
    assert "中华人民共和国外国人工作许可通知" in (meta.title or "")
    assert "WP-2024-110105-000123" in (meta.subject or "")


def test_deterministic() -> None:
    data = make_data(holder_name=LONG_NAME, legacy_note=True)
    assert render_letter(data) == render_letter(data)
    assert render_letter(data) != render_letter(dataclasses.replace(data, letter_version=3))


def test_concurrent_renders_are_safe_and_identical() -> None:
    # without letter._render_lock this usually fails (KeyError/IndexError in reportlab TTF subsetting)
    datas = [make_data(holder_name=f"Name{i} Ødegård·{'中文' * i}", letter_version=i) for i in range(24)]
    expected = [render_letter(d) for d in datas]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(render_letter, datas * 3)) == expected * 3


def test_env_var_font_override(monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.path.isfile(WQY):
        pytest.skip("fonts-wqy-microhei not installed")
    monkeypatch.setattr(letter, "_font_chain", None)
    monkeypatch.setattr(letter, "CJK_FONT_CANDIDATES", ())
    monkeypatch.setenv(letter.FONT_ENV_VAR, WQY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pdf = render_letter(make_data())
    assert letter._fonts().embedded
    assert "José Müller-Ødegård·Li" in pdf_text(pdf)


def test_cid_fallback_warns_and_still_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(letter, "_font_chain", None)
    monkeypatch.setattr(letter, "CJK_FONT_CANDIDATES", ())
    monkeypatch.setenv(letter.FONT_ENV_VAR, "/nonexistent/font.ttc")
    with pytest.warns(RuntimeWarning, match="STSong-Light"):
        pdf = render_letter(make_data())
    assert not letter._fonts().embedded
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    names = {str(f["/BaseFont"]) for f in _fonts(pdf)}
    assert any("STSong-Light" in n for n in names)
    if any(os.path.isfile(p) for p in letter.SUPPLEMENT_FONT_CANDIDATES):
        # Latin, incl. "·" and accents, then goes to the embedded supplement font (DejaVu Sans)
        assert any("DejaVuSans" in n for n in names)
        assert "José Müller-Ødegård·Li" in pdf_text(pdf)
    assert [b.text for b in decode_qr(pdf)] == [make_data().qr_text]
