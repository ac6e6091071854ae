# SPEC W1, W2, X1 — the permit journey as people do it, in real headless Chromium: employer staff registers
# a person and applies, the permit officer approves, the employer downloads the bilingual notification letter.
from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from workcard import clock

pytestmark = pytest.mark.browser

CJK = re.compile(r"[\u4e00-\u9fff]")
PHONE = (390, 844)


def sign_in(page: Page, server: Any, username: str) -> None:
    """Sign in from the home page with the demo's credentials; then make sure the pages are in English."""
    page.goto("/")
    page.get_by_role("link", name="Sign in", exact=True).first.click()
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(server.credentials[username])
    page.locator("main").get_by_role("button", name="Sign in").click()
    expect(page.locator("header form[action='/signout']")).to_be_visible()
    if page.locator("html").get_attribute("lang") != "en":  # the language this person chose last time
        page.get_by_role("button", name="English").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in").first).to_be_visible()


def fits_the_screen(page: Page) -> None:
    """Nothing sticks out sideways: no horizontal scrolling of the page (wide tables scroll in their box)."""
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"{page.url} is {overflow}px wider than the screen"


def shoot(page: Page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def test_permit_journey_in_english(server, new_page, shots, tmp_path):
    page = new_page(locale="zh-CN")

    # A visitor whose browser asks for Chinese sees Chinese, and switches to English with the button.
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    shoot(page, shots, "01-home-zh")
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Work Permit and Social Security Card")

    # Employer staff registers a new person and applies for a permit for them.
    sign_in(page, server, "hr")
    page.get_by_role("navigation").get_by_role("link", name="Foreign staff").click()
    page.get_by_role("link", name="Register a person").click()
    name = "Amélie Zoë O'Brien-Nakamura"
    page.get_by_label("Name (as in passport)").fill(name)
    page.get_by_label("Nationality (ISO 3166-1 alpha-3)").fill("IRL")
    page.get_by_label("Passport No.").fill("PE7654321")
    page.get_by_label("Passport expiry").fill("2034-06-30")
    page.get_by_label("Date of birth").fill("1991-03-15")
    page.get_by_label("Sex").select_option(label="Female")
    shoot(page, shots, "02-register-person")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)

    page.get_by_role("link", name="Apply for a work permit").click()
    expect(page.get_by_label("Person")).to_have_value(re.compile(r"\d+"))
    start = clock.today()
    page.get_by_label("Category").select_option("B")
    page.get_by_label(re.compile(r"^Position")).fill("Data scientist")
    page.get_by_label("Work location").fill("Tianjin, Binhai New Area")
    page.get_by_label("Valid from").fill(start.isoformat())
    page.get_by_label("Valid until").fill((start + dt.timedelta(days=729)).isoformat())
    shoot(page, shots, "03-application-form")
    page.get_by_role("button", name="Submit for approval").click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("submitted", ignore_case=True)
    expect(page.locator("main")).to_contain_text(name)
    application = re.search(r"/employer/applications/(\d+)$", page.url)
    assert application, page.url
    shoot(page, shots, "04-application-submitted")
    sign_out(page)

    # The permit officer finds it in the review queue and approves it.
    sign_in(page, server, "officer")
    page.get_by_role("navigation").get_by_role("link", name="Review queue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Review queue")
    shoot(page, shots, "05-review-queue")
    page.get_by_role("row").filter(has_text=name).get_by_role("link", name="Review").click()
    assert page.url.endswith(f"/officer/applications/{application[1]}")
    expect(page.locator("main")).to_contain_text(name)
    expect(page.locator("main")).to_contain_text("Data scientist")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("approved", ignore_case=True)
    sign_out(page)

    # The employer opens the permit and downloads the notification letter.
    sign_in(page, server, "hr")
    page.get_by_role("navigation").get_by_role("link", name="Permits").click()
    page.get_by_role("row").filter(has_text=name).get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Work permit")
    expect(page.locator("main")).to_contain_text(name)
    shoot(page, shots, "06-permit")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download").first.click()
    download = info.value
    assert download.suggested_filename.endswith(".pdf")
    pdf = tmp_path / "letter.pdf"
    download.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = subprocess.run(  # noqa: S603
            [shutil.which("pdftotext") or "pdftotext", "-enc", "UTF-8", str(pdf), "-"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    else:  # pragma: no cover - .ci/run installs poppler-utils
        from pypdf import PdfReader

        text = "\n".join(p.extract_text() for p in PdfReader(pdf).pages)
    flat = re.sub(r"\s+", " ", text)
    assert "中华人民共和国外国人工作许可通知" in flat.replace(" ", "")
    assert "Notification Letter" in flat

    # The same page in Chinese: the switch keeps the person on the page they were reading (SPEC X1).
    page.get_by_role("button", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("heading", level=1)).to_contain_text(CJK)
    expect(page.get_by_role("navigation")).to_contain_text(CJK)
    shoot(page, shots, "07-permit-zh")


def test_pages_fit_a_phone(server, new_page, shots):
    """Every page of the journey is readable on a 390 × 844 phone screen, in Chinese and in English."""
    page = new_page(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True, device_scale_factor=2)
    page.goto("/")
    fits_the_screen(page)
    expect(page.locator("main")).to_contain_text(CJK)
    shoot(page, shots, "phone-01-home-zh")
    page.goto("/signin")
    fits_the_screen(page)
    shoot(page, shots, "phone-02-signin-zh")

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    sign_in(page, server, "hr")
    employer_pages = ["/employer/applications", "/employer/foreigners", "/employer/foreigners/new",
                      "/employer/applications/new?kind=new", "/employer/permits"]  # fmt: skip
    for n, path in enumerate(employer_pages, start=3):
        page.goto(path)
        fits_the_screen(page)
        shoot(page, shots, f"phone-{n:02d}-{path.strip('/').replace('/', '-').split('?')[0]}")
    page.get_by_role("row").filter(has_text="Jane Elizabeth Doe").get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(r"/employer/permits/[^/]+$"))
    fits_the_screen(page)
    shoot(page, shots, "phone-08-permit")
    sign_out(page)

    sign_in(page, server, "officer")
    for n, path in enumerate(["/officer/queue", "/officer/permits", "/officer/legacy-import"], start=9):
        page.goto(path)
        fits_the_screen(page)
        shoot(page, shots, f"phone-{n:02d}-{path.strip('/').replace('/', '-')}")
