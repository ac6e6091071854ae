# SPEC E1, E2, E3, E5, P1, X1, X4 — the foreigner's e-card in real headless Chromium, on a phone: a police
# officer checks the holder's code; the holder registers with the name and permit number the demo prints,
# tries facial recognition with the (fake) camera — the demo's photo on file has no face, so the page
# leads to the bank card — finishes with the bank card and the text message the outbox shows, and sees
# who checked the permit. The employer's pages never show that list.
from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_journey import PHONE, fits_the_screen, shoot
from tests.browser.test_verifier import HOLDER, HolderCode, _as_police_on_a_phone, holder_code  # noqa: F401

pytestmark = pytest.mark.browser

PASSWORD = "Harbour2026!"


def _demo_value(server: Any, pattern: str) -> str:
    for line in server.demo_lines:
        if found := re.search(pattern, line):
            return found.group(1)
    raise AssertionError(
        f"`workcard demo` printed nothing like {pattern!r}:\n" + "\n".join(server.demo_lines)
    )


def test_the_holder_registers_and_sees_who_checked_the_permit(
    browser,
    server,
    shots,
    holder_code: HolderCode,  # noqa: F811 - the fixture imported above
):
    # A police officer checks the holder's code on the verifier page.
    context, page = _as_police_on_a_phone(browser, server)
    try:
        page.get_by_label("Or the code's text").fill(holder_code.text)
        page.get_by_role("button", name="Verify", exact=True).click()
        expect(page.get_by_test_id("verdict")).to_have_text("Valid")
    finally:
        context.close()

    permit = _demo_value(server, r"permit (\S+);")
    assert permit == holder_code.permit_number
    card, phone = _demo_value(server, r"bank card finishes it: (\d+),"), _demo_value(server, r"phone (\d+),")
    passport = _demo_value(server, r"passport (\S+);")

    camera = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=CHROMIUM_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"],
    )  # fmt: skip
    try:
        context = camera.new_context(base_url=server.base_url, locale="zh-CN", viewport={"width": PHONE[0], "height": PHONE[1]},
                                     is_mobile=True, has_touch=True, permissions=["camera"])  # fmt: skip
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.goto("/")
        page.get_by_role("link", name="外国人：电子社保卡").click()
        page.get_by_role("link", name="注册电子社保卡").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("注册电子社保卡")
        fits_the_screen(page)
        shoot(page, shots, "ecard-01-register-zh")

        # A name that differs from the passport's by a space is refused, in Chinese, and nothing is kept.
        page.get_by_label("姓名（与护照一致）").fill(HOLDER.replace(" ", "  ", 1))
        page.get_by_label("工作许可证号").fill(permit)
        page.locator("#f-password").fill(PASSWORD)
        page.get_by_label("再次输入密码").fill(PASSWORD)
        page.get_by_role("button", name="下一步").click()
        expect(page.get_by_role("alert")).to_contain_text("请按护照填写姓名")
        expect(page.get_by_label("工作许可证号")).to_have_value(permit)
        page.get_by_role("button", name="English").click()

        page.get_by_label("Name (as in passport)").fill(HOLDER)
        page.get_by_label("Work permit number").fill(permit)
        page.locator("#f-password").fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Facial recognition")
        fits_the_screen(page)
        shoot(page, shots, "ecard-02-face")

        # The camera runs the steps the server chose and sends the pictures; the demo's photo on file
        # has no face to compare with, so the page offers the bank card.
        page.get_by_role("button", name="Start").click()
        expect(page.locator("[data-face-instruction]")).to_have_text("Look straight at the camera")
        shoot(page, shots, "ecard-02b-face-running")
        expect(page.get_by_role("alert")).to_contain_text(
            "cannot be used for facial recognition", timeout=30_000
        )
        shoot(page, shots, "ecard-03-face-closed")
        page.get_by_role("link", name="Verify with your bank card").click()

        page.get_by_label("Name (as in passport)").fill(HOLDER)
        page.get_by_label("Passport number").fill(passport)
        page.get_by_label("UnionPay card number").fill(card[:-1] + str((int(card[-1]) + 1) % 10))
        page.get_by_label("Phone number kept by the bank").fill(phone)
        page.get_by_role("button", name="Send the code").click()
        expect(page.locator("#e-card_number")).to_contain_text("check digit")
        page.get_by_label("UnionPay card number").fill(card)
        page.get_by_role("button", name="Send the code").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Text message code")
        expect(page.locator("main")).to_contain_text(phone[:3] + "****" + phone[-4:])

        message = server.workcard("sms", "--to", phone, "--limit", "1")
        code = re.search(r"code: (\d{6})", message).group(1)
        page.get_by_label("Code").fill(code)
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("status")).to_have_text("Your e-card is registered. You are logged in.")
        expect(page.get_by_test_id("holder-name")).to_have_text(HOLDER)
        fits_the_screen(page)
        shoot(page, shots, "ecard-04-card")

        page.get_by_role("link", name="Who checked my permit").first.click()
        rows = page.get_by_test_id("checks").locator("tbody tr")
        expect(rows.first).to_contain_text("Police verifier: Chen Gang")
        expect(rows.first).to_contain_text(permit)
        fits_the_screen(page)
        shoot(page, shots, "ecard-05-checks")

        # Log out, and back in with the permit number and the password.
        page.get_by_role("button", name="Log out").click()
        page.goto("/ecard/checks")
        expect(page.get_by_role("heading", level=1)).to_have_text("Log in to the e-card")
        page.get_by_label("Work permit number").fill(permit)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_test_id("holder-name")).to_have_text(HOLDER)
    finally:
        camera.close()
