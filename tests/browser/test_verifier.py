# SPEC P1, P2, E8, X1 — the police check in real headless Chromium: the employer shows the holder's
# dynamic e-card QR code on screen; the police verifier, on a phone, checks a photo of that screen, pasted
# rubbish, and the code seen through the (fake) camera.
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_journey import PHONE, fits_the_screen, shoot, sign_in

pytestmark = pytest.mark.browser

HOLDER = "Jane Elizabeth Doe"  # the demo's person with a valid permit of employer `hr`
PERMIT_NUMBER = re.compile(r"\S+")


@dataclass(frozen=True)
class HolderCode:
    png: Path  # the QR image as the employer's screen shows it
    text: str  # the code's text as the page shows it
    permit_number: str


def _sign_in(page: Page, server: Any, username: str) -> None:
    """The browser asks for Chinese: switch to English with the button, then sign in."""
    page.goto("/")
    if page.locator("html").get_attribute("lang") != "en":
        page.get_by_role("button", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
    sign_in(page, server, username)


def _new_context(browser: Any, server: Any, **kw: Any) -> Any:
    kw.setdefault("viewport", {"width": 1280, "height": 900})
    context = browser.new_context(base_url=server.base_url, locale="zh-CN", **kw)
    context.set_default_timeout(15_000)
    return context


def _as_police_on_a_phone(browser: Any, server: Any, **kw: Any) -> tuple[Any, Page]:
    context = _new_context(browser, server, viewport={"width": PHONE[0], "height": PHONE[1]}, is_mobile=True,
                           has_touch=True, device_scale_factor=2, **kw)  # fmt: skip
    page = context.new_page()
    _sign_in(page, server, "police")
    assert page.url.endswith("/verify"), f"the verifier lands on {page.url}"
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify a work permit")
    fits_the_screen(page)
    return context, page


@pytest.fixture(scope="module")
def holder_code(browser: Any, server: Any, shots: Path) -> Iterator[HolderCode]:
    """Employer staff opens the valid permit and shows the holder's QR code (SPEC E8); the QR image is
    captured as a phone camera pointed at the screen would see it. The code is valid for two minutes,
    much longer than this module runs."""
    context = _new_context(browser, server)
    try:
        page = context.new_page()
        _sign_in(page, server, "hr")
        page.get_by_role("navigation").get_by_role("link", name="Permits").click()
        page.get_by_role("row").filter(has_text=HOLDER).get_by_role("link").first.click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Work permit")
        number = page.get_by_role("heading", level=1).locator("code").inner_text().strip()
        assert PERMIT_NUMBER.fullmatch(number), number

        page.get_by_role("link", name="Show the holder's QR code").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Work permit QR code")
        expect(page.locator("main")).to_contain_text(number)
        image = page.get_by_role("img", name="QR code")
        expect(image).to_be_visible()
        # The script renews the code 20 s before its two minutes are over, and counts down to that.
        countdown = page.locator("[data-code-countdown]")
        expect(countdown).to_have_text(re.compile(r"^Renews in (100|99|98) s$"))
        first = countdown.inner_text()
        expect(countdown).not_to_have_text(first, timeout=2_500)  # the script runs
        expect(countdown).to_have_text(re.compile(r"^Renews in 9\d s$"))
        page.get_by_text("Code text").click()
        code_text = page.locator("[data-code-text]")
        # Base45 has the space, and a code may hold two in a row: the page must not fold them into one,
        # or the text a person copies from it no longer verifies
        assert code_text.evaluate("e => getComputedStyle(e).whiteSpace") == "pre-wrap"
        text = code_text.inner_text().strip()
        shoot(page, shots, "verifier-01-employer-code")
        page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})  # the same page on a phone
        fits_the_screen(page)
        expect(image).to_be_in_viewport()
        page.set_viewport_size({"width": 1280, "height": 900})
        png = shots / "verifier-02-qr.png"
        image.screenshot(path=str(png))
        yield HolderCode(png=png, text=text, permit_number=number)
    finally:
        context.close()


def test_the_screen_shows_a_readable_code(holder_code: HolderCode):
    """What a camera sees of the employer's screen is the code the page states, in one QR symbol."""
    with Image.open(holder_code.png) as img:
        assert min(img.size) >= 200, img.size
        found = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [code.text for code in found] == [holder_code.text]


def test_police_check_a_photo_of_the_code_on_a_phone(browser, server, shots, holder_code: HolderCode):
    context, page = _as_police_on_a_phone(browser, server)
    try:
        shoot(page, shots, "verifier-03-phone-form")
        page.get_by_label("Or a photo of the code").set_input_files(str(holder_code.png))
        page.get_by_role("button", name="Verify", exact=True).click()
        verdict = page.get_by_test_id("verdict")
        expect(verdict).to_have_text("Valid")
        assert float(verdict.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 28  # large
        expect(page.get_by_test_id("holder-name")).to_have_text(HOLDER)
        expect(page.locator("main")).to_contain_text(holder_code.permit_number)
        fits_the_screen(page)
        shoot(page, shots, "verifier-04-phone-valid")

        # Rubbish pasted as the code's text.
        page.get_by_role("link", name="Check another code").click()
        page.get_by_label("Or the code's text").fill("HELLO, THIS IS NOT A PERMIT CODE")
        page.get_by_role("button", name="Verify", exact=True).click()
        expect(page.get_by_test_id("verdict")).to_have_text("Malformed")
        expect(page.get_by_test_id("holder-name")).to_have_count(0)
        fits_the_screen(page)
        shoot(page, shots, "verifier-05-phone-malformed")

        # The same page in Chinese (SPEC X1).
        page.get_by_role("link", name="Check another code").click()
        page.get_by_role("button", name="中文").click()
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.get_by_role("button", name="使用摄像头扫码")).to_be_visible()
        fits_the_screen(page)
        shoot(page, shots, "verifier-06-phone-form-zh")
        page.get_by_role("button", name="English").click()  # the choice is kept for this person
        expect(page.locator("html")).to_have_attribute("lang", "en")
    finally:
        context.close()


def test_the_code_page_says_when_no_code_is_available(browser, server, shots):  # SPEC E9, X1
    """The employer shows the holder's code when the permit gets cancelled: the next renewal gets the
    server's refusal as problem+json, and the page shows its message instead of a code about to lapse.
    (The renewal is sent to the real code.json of the demo's cancelled permit.)"""
    context = _new_context(browser, server)
    try:
        page = context.new_page()
        _sign_in(page, server, "hr")
        page.goto("/employer/permits?status=cancelled")
        page.get_by_role("row").filter(has_text="Jean-Luc O'Connor").get_by_role("link").first.click()
        cancelled = re.sub(r"/employer/permits/(\d+).*", r"/employer/permits/\1/code.json", page.url)
        page.clock.install()
        page.goto("/employer/permits")
        page.get_by_role("row").filter(has_text=HOLDER).get_by_role("link").first.click()
        page.get_by_role("link", name="Show the holder's QR code").click()
        expect(page.get_by_role("img", name="QR code")).to_be_visible()
        page.wait_for_load_state()  # the page's script has set its timer before the clock is moved on
        answers: list[tuple[int, str]] = []

        def to_the_cancelled_permit(route: Any) -> None:
            response = route.fetch(url=cancelled)
            answers.append((response.status, response.headers["content-type"]))
            route.fulfill(response=response)

        page.route("**/code.json", to_the_cancelled_permit)
        page.clock.run_for(101_000)  # the renewal is due 20 s before the two minutes are over
        countdown = page.locator("[data-code-countdown]")
        expect(countdown).to_have_text(
            re.compile(r"^The work permit was cancelled; its QR code is not available\.$")
        )
        expect(countdown).to_have_attribute("role", "alert")
        expect(page.get_by_role("img", name="QR code")).to_be_hidden()
        expect(page.get_by_text("Code text")).to_be_hidden()
        assert answers == [(409, "application/problem+json")], answers
        shoot(page, shots, "verifier-10-code-page-refused")
    finally:
        context.close()


BAD = "rgb(179, 38, 30)"  # --bad in style.css


def test_police_get_clear_refusals_on_the_form(browser, server, shots, holder_code: HolderCode):  # SPEC X2
    context, page = _as_police_on_a_phone(browser, server)
    try:
        text = page.get_by_label("Or the code's text")
        photo = page.get_by_label("Or a photo of the code")
        # Nothing given: the text box is marked, as other fields are.
        page.get_by_role("button", name="Verify", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("paste its text")
        expect(text).to_have_attribute("aria-invalid", "true")
        expect(text).to_have_css("border-top-color", BAD)
        fits_the_screen(page)
        shoot(page, shots, "verifier-08-phone-empty")

        # The box takes no more than a code can hold (the API's limit too).
        expect(text).to_have_attribute("maxlength", "1024")
        text.fill("X" * 1500)
        assert len(text.input_value()) == 1024

        # A photo and a text: the page does not pick one silently.
        text.fill(holder_code.text)
        photo.set_input_files(str(holder_code.png))
        page.get_by_role("button", name="Verify", exact=True).click()
        expect(page.get_by_role("alert")).to_have_text(
            "Give either a photo of the code or its text, not both."
        )
        expect(photo).to_have_css("border-top-color", BAD)
        expect(text).to_have_value(holder_code.text)  # kept: verifying again checks it
        shoot(page, shots, "verifier-09-phone-photo-and-text")
        page.get_by_role("button", name="Verify", exact=True).click()
        expect(page.get_by_test_id("verdict")).to_have_text("Valid")
    finally:
        context.close()


def _y4m(qr: Path, out: Path, size: tuple[int, int] = (640, 480), frames: int = 5) -> Path:
    """A short still video of the QR code, as Chromium's fake camera reads it (YUV4MPEG2, 4:2:0)."""
    w, h = size
    with Image.open(qr) as img:
        code = img.convert("RGB")
    side = min(w, h) * 3 // 4
    frame = Image.new("RGB", size, "white")
    frame.paste(code.resize((side, side), Image.Resampling.NEAREST), ((w - side) // 2, (h - side) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    half = (w // 2, h // 2)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with out.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + planes)
    return out


def test_police_scan_the_code_with_the_camera(browser, server, shots, tmp_path, holder_code: HolderCode):
    video = _y4m(holder_code.png, tmp_path / "qr.y4m")
    fake_camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                   f"--use-file-for-fake-video-capture={video}"]  # fmt: skip
    # A second Chromium of the same Playwright: the fake camera is chosen when the browser starts.
    camera = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + fake_camera
    )
    try:
        context, page = _as_police_on_a_phone(camera, server, permissions=["camera"])
        answers: list[dict[str, Any]] = []

        def frame(route: Any) -> None:  # the server's answers on the camera frames, read on their way
            response = route.fetch()
            answers.append(response.json())
            route.fulfill(response=response)

        page.route("**/verify/frame", frame)
        page.get_by_role("button", name="Scan with the camera").click()
        expect(page.locator("[data-scanner] video")).to_be_visible()
        expect(page.get_by_test_id("verdict")).to_have_text("Valid", timeout=10_000)
        expect(page.get_by_test_id("holder-name")).to_have_text(HOLDER)
        expect(page.locator("main")).to_contain_text(holder_code.permit_number)
        fits_the_screen(page)
        shoot(page, shots, "verifier-07-phone-camera-valid")
        # The verdict came from what the camera saw, not from anything typed.
        assert answers and answers[-1] == {"found": True, "text": holder_code.text}, answers
    finally:
        camera.close()
