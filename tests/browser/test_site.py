# SPEC W2, W4, W5, X1 — what the whole site shows, in real headless Chromium with no network beyond the
# server: the partner API's documentation, the site icon, and a cancelled permit of the demo data.
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_journey import sign_in

pytestmark = pytest.mark.browser


def test_api_docs_render_with_no_network_beyond_the_server(server, new_page):  # SPEC W5
    page = new_page(locale="en-US")
    requested: list[str] = []
    failed: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto("/api/v1/docs")
    expect(page.get_by_role("heading", name=re.compile("workcard partner API"))).to_be_visible()
    expect(page.get_by_text("/permits/verify", exact=True)).to_be_visible()  # the operations are listed
    assert not failed, failed
    outside = [u for u in requested if not u.startswith(server.base_url) and not u.startswith("data:")]
    assert not outside, outside


def test_pages_carry_the_site_icon(server, new_page):
    page = new_page()
    icons: list[int] = []
    page.on("response", lambda r: icons.append(r.status) if "favicon" in r.url else None)
    page.goto("/")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(icon).ok
    page.wait_for_load_state("networkidle")
    assert all(status < 400 for status in icons), icons


def test_a_cancelled_permit_shows_its_letter_as_a_record(server, new_page):  # SPEC W2, W4, X1
    page = new_page(locale="en-US")
    sign_in(page, server, "hr")
    header = page.locator("header .who")
    expect(header).to_have_text("Li Na")  # a plain name: no English role text in either language
    page.goto("/employer/permits?status=cancelled")
    page.get_by_role("row").filter(has_text="Jean-Luc O'Connor").get_by_role("link").first.click()
    status = page.get_by_test_id("letter-status")
    expect(status).to_have_text(re.compile(r"^\(permit cancelled on [A-Z][a-z]{2} \d{1,2}, \d{4}\)$"))
    expect(page.get_by_text("(current)")).to_have_count(0)
    expect(page.get_by_test_id("download-letter-1")).to_be_visible()  # kept as a record
    history = page.locator("section").filter(has=page.get_by_role("heading", name="History"))
    expect(history).to_contain_text("Permit cancelled")
    page.get_by_role("button", name="中文").click()
    expect(status).to_have_text(re.compile(r"^\(工作许可已于\d{4}年\d{1,2}月\d{1,2}日注销\)$"))
    expect(page.locator("header .who")).to_have_text("Li Na")
