"""Bilingual PDF "中华人民共和国外国人工作许可通知 / Notification Letter of Foreigner's Work Permit".

Under the Work Permit + Social Security Card integration no physical permit card is issued: this letter
is the holder's proof of the permit (used for Z-visa and residence-permit applications).  Pure rendering:
the permits service builds a :class:`LetterData` and calls :func:`render_letter`.

Fonts: an embedded TrueType CJK font (WenQuanYi Micro Hei, which also covers Latin, "·", é, ü, Ø, ...) is
used for all text; characters it lacks are set in DejaVu Sans when that is installed.  Without a usable
TrueType CJK font the non-embedded CID font STSong-Light is used and a warning is emitted.
See docs/decisions/0003-letter-rendering.md.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape

import segno
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    HRFlowable,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

__all__ = ["LetterData", "render_letter", "FONT_ENV_VAR"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LetterData:
    permit_number: str
    holder_name: str  # exactly as in the passport
    chinese_name: str | None
    nationality_code: str  # ISO 3166-1 alpha-3
    nationality_en: str
    nationality_zh: str
    sex: str  # "M" / "F"
    date_of_birth: date
    passport_number: str
    employer_name: str
    employer_uscc: str
    position: str
    work_location: str
    category: str  # "A" / "B" / "C"
    valid_from: date
    valid_until: date
    issued_on: date
    letter_version: int
    qr_text: str  # what the QR encodes (verification URL now, signed Base45 token later)
    qr_caption: str  # human-readable line under the QR, e.g. the permit number
    legacy_note: bool = False  # holder previously had a physical permit card: say this letter replaces it


# --------------------------------------------------------------------------------------------- fonts

FONT_ENV_VAR = "WORKCARD_CJK_FONT"
CJK_FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # Debian / Ubuntu: fonts-wqy-microhei
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",  # Fedora / RHEL
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",  # Arch
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # Debian: fonts-wqy-zenhei
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
)
SUPPLEMENT_FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian / Ubuntu
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",  # Fedora
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",  # Arch
)
CID_FALLBACK_FONT = "STSong-Light"
_CJK_NAME = "WorkcardCJK"
_SUPPLEMENT_NAME = "WorkcardSupplement"


@dataclass(frozen=True)
class _Font:
    name: str
    covers: Callable[[str], bool]


@dataclass(frozen=True)
class _FontChain:
    """Fonts tried in order for each character; ``base`` is the paragraph font."""

    base: str
    fonts: tuple[_Font, ...]
    embedded: bool

    def pick(self, cluster: str) -> str:
        for font in self.fonts:
            if all(font.covers(ch) for ch in cluster):
                return font.name
        for font in self.fonts:  # no font has the whole cluster: go by its base character
            if font.covers(cluster[0]):
                return font.name
        return self.base


_font_lock = threading.Lock()
# reportlab's TTFontFace keeps parse state on the shared face while subsetting, so two documents being
# saved at once corrupt each other (KeyError in makeSubset).  Renders take ~40 ms: serialise them.
_render_lock = threading.Lock()
_font_chain: _FontChain | None = None


def _load_ttf(name: str, path: str) -> _Font | None:
    try:
        font = TTFont(name, path, subfontIndex=0)  # subfontIndex only matters for .ttc collections
    except (TTFError, OSError) as exc:
        log.warning("cannot use font %s: %s", path, exc)
        return None
    pdfmetrics.registerFont(font)
    cmap = font.face.charToGlyph
    return _Font(name, lambda ch: cmap.get(ord(ch), 0) != 0)


def _first_ttf(name: str, paths: tuple[str, ...]) -> _Font | None:
    return next((f for p in paths if os.path.isfile(p) and (f := _load_ttf(name, p))), None)


def _cid_covers(ch: str) -> bool:
    """STSong-Light: ASCII and CJK; other Latin (·, é, Ø ...) is missing or poor."""
    cp = ord(ch)
    return cp < 0x80 or 0x2E80 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF or 0xFF00 <= cp <= 0xFFEF


def _load_fonts() -> _FontChain:
    env = os.environ.get(FONT_ENV_VAR)
    if env and not os.path.isfile(env):
        log.warning("%s=%s is not a file; trying the standard font paths", FONT_ENV_VAR, env)
    candidates = ((env,) if env else ()) + CJK_FONT_CANDIDATES
    cjk = _first_ttf(_CJK_NAME, candidates)
    supplement = _first_ttf(_SUPPLEMENT_NAME, SUPPLEMENT_FONT_CANDIDATES)
    if cjk is not None:
        return _FontChain(cjk.name, (cjk, supplement) if supplement else (cjk,), embedded=True)

    msg = (
        f"no TrueType CJK font found (set {FONT_ENV_VAR} or install fonts-wqy-microhei); falling back to "
        f"the CID font {CID_FALLBACK_FONT}, which is never embedded and lacks '·' and accented Latin"
    )
    log.warning(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=4)  # _load_fonts <- _fonts <- render_letter <- caller
    pdfmetrics.registerFont(UnicodeCIDFont(CID_FALLBACK_FONT))
    cid = _Font(CID_FALLBACK_FONT, _cid_covers)
    # With a supplement font all Latin (incl. ·, é, Ø) is set in it, embedded; STSong only gets CJK.
    fonts = (supplement, cid) if supplement else (cid,)
    return _FontChain(CID_FALLBACK_FONT, fonts, embedded=False)


def _fonts() -> _FontChain:
    """Register the fonts once per process and return the chain (thread-safe)."""
    global _font_chain
    with _font_lock:
        if _font_chain is None:
            _font_chain = _load_fonts()
        return _font_chain


def _clusters(text: str) -> Iterator[str]:
    """Base character + following combining marks (good enough for names; no full UAX #29)."""
    cluster = ""
    for ch in text:
        if cluster and unicodedata.combining(ch):
            cluster += ch
            continue
        if cluster:
            yield cluster
        cluster = ch
    if cluster:
        yield cluster


def _markup(text: str, chain: _FontChain) -> str:
    """Escape ``text`` for a Paragraph, switching fonts per run of characters the base font lacks."""
    runs: list[tuple[str, str]] = []
    for cluster in _clusters(unicodedata.normalize("NFC", text)):
        # never switch fonts on a space
        font = (runs[-1][0] if runs else chain.base) if cluster.isspace() else chain.pick(cluster)
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + cluster)
        else:
            runs.append((font, cluster))
    return "".join(escape(t) if f == chain.base else f'<font name="{f}">{escape(t)}</font>' for f, t in runs)


# -------------------------------------------------------------------------------------------- layout

TITLE_ZH = "中华人民共和国外国人工作许可通知"
TITLE_EN = "Notification Letter of Foreigner's Work Permit"
INTRO_ZH = "兹通知，下列外国人已获准在中华人民共和国境内工作，工作许可信息如下："
INTRO_EN = (
    "This is to notify that the foreign national named below has been granted permission to work "
    "in the People's Republic of China. The work permit details are as follows:"
)
NOTES: tuple[tuple[str, str], ...] = (
    (
        "本通知是外国人工作许可的证明，不另行签发实体工作许可证。",
        "This letter is the proof of the work permit; no physical work permit card is issued.",
    ),
    (
        "持证人可出示本通知或电子卡二维码以供核验。",
        "The holder may show this letter or the QR code of the e-card for verification.",
    ),
    (
        "本通知可用于申请Z字签证及工作类居留许可。",
        "This letter may be used to apply for a Z visa and a work-type residence permit.",
    ),
)
LEGACY_NOTE = (
    "本通知取代此前签发给持证人的实体《外国人工作许可证》。",
    "This letter replaces the physical Foreigner's Work Permit card previously issued to the holder.",
)
CATEGORIES = {
    "A": ("A类（外国高端人才）", "Category A (foreign high-end talent)"),
    "B": ("B类（外国专业人才）", "Category B (foreign professional)"),
    "C": ("C类（其他外国人员）", "Category C (other foreign personnel)"),
}
SEXES = {"M": ("男", "Male"), "F": ("女", "Female")}

PAGE_W, PAGE_H = A4
MARGIN_X = 20 * mm
MARGIN_TOP = 16 * mm
MARGIN_BOTTOM = 24 * mm  # room for the footer
CONTENT_W = PAGE_W - 2 * MARGIN_X
LABEL_W = 58 * mm
QR_MIN_SIZE = 40 * mm  # including the 4-module quiet zone
QR_MIN_MODULE = 0.5 * mm
QR_QUIET = 4
INK = colors.HexColor("#1A1A1A")
MUTED = colors.HexColor("#5F6368")
RULE = colors.HexColor("#9AA0A6")
GRID = colors.HexColor("#C4C7CC")
LABEL_BG = colors.HexColor("#F1F3F4")
ACCENT = colors.HexColor("#8B1A1A")

Value = str | tuple[str, str]


def _iso(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _code_value(code: str, table: dict[str, tuple[str, str]]) -> Value:
    return table.get(code.strip().upper(), code)


# (Chinese label, English label, value) -- the value is a string or a (Chinese, English) pair.
ROWS: tuple[tuple[str, str, Callable[[LetterData], Value]], ...] = (
    ("工作许可号码", "Work Permit No.", lambda d: d.permit_number),
    ("姓名", "Name", lambda d: d.holder_name),
    ("中文姓名", "Chinese name", lambda d: d.chinese_name or "—"),
    ("国籍", "Nationality", lambda d: (d.nationality_zh, f"{d.nationality_en} ({d.nationality_code})")),
    ("性别", "Sex", lambda d: _code_value(d.sex, SEXES)),
    ("出生日期", "Date of birth", lambda d: _iso(d.date_of_birth)),
    ("护照号码", "Passport No.", lambda d: d.passport_number),
    ("用人单位", "Employer", lambda d: d.employer_name),
    ("统一社会信用代码", "Unified Social Credit Code", lambda d: d.employer_uscc),
    ("职位", "Position", lambda d: d.position),
    ("工作地点", "Work location", lambda d: d.work_location),
    ("类别", "Category", lambda d: _code_value(d.category, CATEGORIES)),
    ("有效期", "Validity", lambda d: f"{_iso(d.valid_from)} 至 to {_iso(d.valid_until)}"),
)


class _Styles:
    def __init__(self, base: str) -> None:
        self.base = base

        def style(name: str, size: float, **kw: object) -> ParagraphStyle:
            kw.setdefault("leading", size * 1.35)
            kw.setdefault("textColor", INK)
            kw.setdefault("wordWrap", "CJK")  # breaks CJK anywhere, Latin at spaces where possible
            return ParagraphStyle(name, fontName=base, fontSize=size, **kw)  # type: ignore[arg-type]

        self.title_zh = style("title_zh", 19, alignment=TA_CENTER, leading=24, textColor=ACCENT)
        self.title_en = style("title_en", 13, alignment=TA_CENTER, leading=17, textColor=ACCENT)
        self.body_zh = style("body_zh", 10.5, leading=14)
        self.body_en = style("body_en", 9.5, leading=12.5, textColor=MUTED, wordWrap=None)
        self.label_zh = style("label_zh", 9.5, leading=11.5)
        self.label_en = style("label_en", 7.5, leading=9, textColor=MUTED)
        self.value = style("value", 10.5, leading=13)
        self.note_zh = style("note_zh", 9, leading=11.5)
        self.note_en = style("note_en", 8, leading=10, textColor=MUTED, wordWrap=None)
        self.caption = style("caption", 9, alignment=TA_CENTER)
        self.caption_sub = style("caption_sub", 7.5, alignment=TA_CENTER, textColor=MUTED)
        self.footer_left = style("footer_left", 8, alignment=TA_LEFT, textColor=MUTED)
        self.footer_right = style("footer_right", 8, alignment=TA_RIGHT, textColor=MUTED)


def _bilingual(zh: str, en: str, zh_style: ParagraphStyle, en_style: ParagraphStyle) -> list[Flowable]:
    """One table cell / block: the Chinese line(s) above the English line(s)."""
    chain = _fonts()
    return [Paragraph(_markup(zh, chain), zh_style), Paragraph(_markup(en, chain), en_style)]


def _value_cell(value: Value, st: _Styles) -> Flowable | list[Flowable]:
    if isinstance(value, tuple):
        return _bilingual(value[0], value[1], st.value, st.value)
    return Paragraph(_markup(value, _fonts()), st.value)


class QRFlowable(Flowable):
    """A QR code (segno, error correction M) drawn as vector rectangles, quiet zone included."""

    def __init__(self, text: str) -> None:
        super().__init__()
        qr = segno.make_qr(text, error="m", boost_error=False)
        self.rows = [list(row) for row in qr.matrix_iter(scale=1, border=0)]
        total = len(self.rows) + 2 * QR_QUIET
        self.width = self.height = max(QR_MIN_SIZE, total * QR_MIN_MODULE)
        self.module = self.width / total

    def draw(self) -> None:
        canv, size, m, n = self.canv, self.width, self.module, len(self.rows)
        canv.saveState()
        canv.setFillColor(colors.white)
        canv.rect(0, 0, size, size, stroke=0, fill=1)
        path = canv.beginPath()
        for y, row in enumerate(self.rows):
            x = 0
            while x < n:  # one rectangle per horizontal run of dark modules
                if not row[x]:
                    x += 1
                    continue
                start = x
                while x < n and row[x]:
                    x += 1
                path.rect((QR_QUIET + start) * m, size - (QR_QUIET + y + 1) * m, (x - start) * m, m)
        canv.setFillColor(colors.black)
        canv.drawPath(path, stroke=0, fill=1)
        canv.restoreState()


def _details_table(data: LetterData, st: _Styles) -> Table:
    rows = [
        [_bilingual(zh, en, st.label_zh, st.label_en), _value_cell(value(data), st)] for zh, en, value in ROWS
    ]
    table = Table(rows, colWidths=[LABEL_W, CONTENT_W - LABEL_W])
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.base),  # else the table references Helvetica
                ("BACKGROUND", (0, 0), (0, -1), LABEL_BG),
                ("GRID", (0, 0), (-1, -1), 0.5, GRID),
                ("BOX", (0, 0), (-1, -1), 0.8, RULE),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ("RIGHTPADDING", (0, 0), (-1, -1), 6),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
            ]
        )
    )
    return table


def _notes_and_qr(data: LetterData, st: _Styles) -> Table:
    notes: list[Flowable] = [Paragraph(_markup("说明 Notes", _fonts()), st.label_zh), Spacer(0, 2 * mm)]
    for zh, en in NOTES + ((LEGACY_NOTE,) if data.legacy_note else ()):
        notes += [*_bilingual(zh, en, st.note_zh, st.note_en), Spacer(0, 2 * mm)]
    qr = QRFlowable(data.qr_text)
    qr_block = [
        qr,
        Paragraph(_markup(data.qr_caption, _fonts()), st.caption),
        Paragraph(_markup("扫码核验 Scan to verify", _fonts()), st.caption_sub),
    ]
    qr_w = qr.width + 4 * mm
    table = Table([[notes, qr_block]], colWidths=[CONTENT_W - qr_w, qr_w])
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.base),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ALIGN", (1, 0), (1, 0), "CENTER"),
                ("LEFTPADDING", (0, 0), (0, 0), 0),
                ("RIGHTPADDING", (0, 0), (0, 0), 6 * mm),
                ("LEFTPADDING", (1, 0), (1, 0), 2 * mm),
                ("RIGHTPADDING", (1, 0), (1, 0), 0),
            ]
        )
    )
    return table


def _footer(data: LetterData, st: _Styles) -> Callable[[Canvas, BaseDocTemplate], None]:
    chain = _fonts()
    left = _markup(f"签发日期 Date of issue: {_iso(data.issued_on)}", chain)
    right = _markup(f"第 {data.letter_version} 版 Letter version {data.letter_version}", chain)

    def draw(canv: Canvas, doc: BaseDocTemplate) -> None:
        canv.saveState()
        y = 14 * mm
        canv.setStrokeColor(RULE)
        canv.setLineWidth(0.5)
        canv.line(MARGIN_X, y + 5 * mm, PAGE_W - MARGIN_X, y + 5 * mm)
        for markup, style in ((left, st.footer_left), (right, st.footer_right)):
            para = Paragraph(markup, style)
            para.wrapOn(canv, CONTENT_W, 10 * mm)
            para.drawOn(canv, MARGIN_X, y)
        canv.restoreState()

    return draw


def render_letter(data: LetterData) -> bytes:
    """Render the notification letter as an A4 PDF; the same data always yields the same bytes."""
    chain = _fonts()
    st = _Styles(chain.base)
    buf = io.BytesIO()
    frame = Frame(
        MARGIN_X,
        MARGIN_BOTTOM,
        CONTENT_W,
        PAGE_H - MARGIN_TOP - MARGIN_BOTTOM,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
    )
    doc = BaseDocTemplate(
        buf,
        pagesize=A4,
        pageTemplates=[PageTemplate("letter", frames=[frame], onPage=_footer(data, st))],
        title=f"{TITLE_ZH} / {TITLE_EN}",
        subject=f"Work Permit No. {data.permit_number} (letter version {data.letter_version})",
        author="workcard",
        creator="workcard",
        lang="zh-CN",
        initialFontName=chain.base,  # otherwise an unused, non-embedded Helvetica is referenced
        displayDocTitle=True,
        invariant=1,  # fixed dates and document ID: same data -> same bytes
        pageCompression=1,
    )
    story: list[Flowable] = [
        Paragraph(_markup(TITLE_ZH, chain), st.title_zh),
        Spacer(0, 1 * mm),
        Paragraph(_markup(TITLE_EN, chain), st.title_en),
        Spacer(0, 2.5 * mm),
        HRFlowable(width="100%", thickness=1.2, color=ACCENT, spaceAfter=0.8 * mm),
        HRFlowable(width="100%", thickness=0.4, color=ACCENT, spaceAfter=5 * mm),
        *_bilingual(INTRO_ZH, INTRO_EN, st.body_zh, st.body_en),
        Spacer(0, 4 * mm),
        _details_table(data, st),
        Spacer(0, 6 * mm),
        _notes_and_qr(data, st),
    ]
    with _render_lock:
        doc.build(story)
    return buf.getvalue()
