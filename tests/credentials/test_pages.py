"""The police verifier's page (SPEC P1, P2, X2, X4, X5)."""

from __future__ import annotations

import datetime as dt
import io
import re

import segno
from PIL import Image
from sqlalchemy import select

from tests.conftest import csrf_of, post_form, sign_in
from workcard.credentials import service
from workcard.credentials.models import Verification
from workcard.iam.roles import Role
from workcard.permits import service as permits

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}


def _png(text: str) -> bytes:
    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="png", scale=6, border=4)
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (358, 441), "white").save(buf, "JPEG")
    return buf.getvalue()


def test_verify_pasted_code(client, db, world, make_permit, make_staff):  # SPEC P1, P2
    police = make_staff(Role.POLICE_VERIFIER)
    permit = make_permit(passport_name="Jane Doe")
    code = service.ecard_code(db, permit)
    sign_in(client, police.username)
    resp = post_form(client, "/verify", {"qr_text": code}, page="/verify", headers=EN)
    assert resp.status_code == 200
    assert (
        'data-testid="verdict">Valid<' in resp.text and "Jane Doe" in resp.text and permit.number in resp.text
    )
    assert resp.headers["cache-control"] == "no-store"
    row = db.scalar(select(Verification).where(Verification.permit_id == permit.id))
    assert (row.channel, row.verdict, row.actor.split(":")[-1]) == (
        "page",
        "valid",
        police.username,
    )  # SPEC X5


def _cancelled_code_for_police(client, db, world, make_permit, make_staff) -> str:
    """The letter code of a permit cancelled after it was made, and a police verifier signed in."""
    police = make_staff(Role.POLICE_VERIFIER)
    permit = make_permit(passport_name="Jane Doe")
    code = service.letter_code(db, permit)
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left China")
    db.flush()
    sign_in(client, police.username)
    return code


def test_cancelled_permit_shows_cancelled_at_once(client, db, world, make_permit, make_staff):  # SPEC P1
    code = _cancelled_code_for_police(client, db, world, make_permit, make_staff)
    resp = post_form(client, "/verify", {"qr_text": code}, page="/verify", headers=EN)
    assert 'data-testid="verdict">Cancelled<' in resp.text


def test_verify_uploaded_photo(client, db, world, make_permit, make_staff):  # SPEC P1
    police = make_staff(Role.POLICE_VERIFIER)
    permit = make_permit(passport_name="Jane Doe")
    sign_in(client, police.username)
    resp = post_form(client, "/verify", {}, page="/verify", headers=EN,
                     files={"photo": ("code.png", _png(service.ecard_code(db, permit)), "image/png")})  # fmt: skip
    assert resp.status_code == 200 and 'data-testid="verdict">Valid<' in resp.text


def test_bad_input(client, db, make_staff):  # SPEC X2
    police = make_staff(Role.POLICE_VERIFIER)
    sign_in(client, police.username)
    garbage = post_form(client, "/verify", {"qr_text": "WC1:%%%%"}, page="/verify", headers=EN)
    assert garbage.status_code == 200 and 'data-testid="verdict">malformed<' in garbage.text.lower()
    empty = post_form(client, "/verify", {"qr_text": "  "}, page="/verify", headers=EN)
    assert empty.status_code == 422 and "paste its text" in empty.text
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(blank, "PNG")
    no_code = post_form(client, "/verify", {}, page="/verify", headers=EN,
                        files={"photo": ("x.png", blank.getvalue(), "image/png")})  # fmt: skip
    assert no_code.status_code == 422 and "No QR code" in no_code.text
    not_image = post_form(client, "/verify", {}, page="/verify", headers=EN,
                          files={"photo": ("x.txt", b"hello", "text/plain")})  # fmt: skip
    assert not_image.status_code == 422


def _checks(db) -> int:
    return len(db.scalars(select(Verification)).all())


def test_photo_and_text_together_are_refused(client, db, world, make_permit, make_staff):  # SPEC X2
    """Two codes to choose from: the page does not pick one silently; it asks for one, records nothing,
    and keeps the text (a browser cannot keep the chosen file), so the next submission checks it."""
    police = make_staff(Role.POLICE_VERIFIER)
    code = service.ecard_code(db, make_permit())
    sign_in(client, police.username)
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(blank, "PNG")
    for photo in (blank.getvalue(), _png(code)):  # a photo without a code, or with one
        both = post_form(client, "/verify", {"qr_text": code}, page="/verify", headers=EN,
                         files={"photo": ("x.png", photo, "image/png")})  # fmt: skip
        assert both.status_code == 422, both.text[:300]
        assert "Give either a photo of the code or its text, not both." in both.text
        assert re.search(r'<div class="field invalid">\s*<label for="f-photo">', both.text)
        assert f">{code}</textarea>" in both.text
    zh = post_form(client, "/verify", {"qr_text": code}, page="/verify", headers=ZH,
                   files={"photo": ("x.png", _png(code), "image/png")})  # fmt: skip
    assert zh.status_code == 422 and "请上传二维码照片或粘贴其文本，不要同时提供两者。" in zh.text
    assert _checks(db) == 0


def test_text_longer_than_a_code_is_refused(client, db, make_staff):  # SPEC X2
    police = make_staff(Role.POLICE_VERIFIER)
    sign_in(client, police.username)
    form = client.get("/verify")
    assert f'maxlength="{service.MAX_TEXT}"' in form.text  # the same cap as the API's
    for text in ("WC2:" + "0" * 100_000, "x" * (service.MAX_TEXT + 1)):
        resp = post_form(client, "/verify", {"qr_text": text}, page="/verify", headers=EN)
        assert resp.status_code == 422 and "at most 1024 characters" in resp.text
    zh = post_form(client, "/verify", {"qr_text": "x" * 2048}, page="/verify", headers=ZH)
    assert zh.status_code == 422 and "二维码文本过长（最多1024个字符）。" in zh.text
    assert _checks(db) == 0  # refused, not a check
    longest = post_form(client, "/verify", {"qr_text": "x" * service.MAX_TEXT}, page="/verify", headers=EN)
    assert longest.status_code == 200 and 'data-testid="verdict">Malformed<' in longest.text


def test_empty_text_is_marked_invalid(client, db, make_staff):  # SPEC X2
    police = make_staff(Role.POLICE_VERIFIER)
    sign_in(client, police.username)
    empty = post_form(client, "/verify", {"qr_text": ""}, page="/verify", headers=EN)
    assert empty.status_code == 422
    assert re.search(r'<div class="field invalid">\s*<label for="f-qr_text">', empty.text)
    assert re.search(r'<textarea id="f-qr_text"[^>]*aria-invalid="true"', empty.text)
    css = client.get("/static/style.css").text
    assert ".field.invalid textarea" in css


def test_verdict_dates_as_the_page_writes_them(client, db, world, make_permit, make_staff, frozen):  # SPEC X1
    frozen(dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC))
    code = _cancelled_code_for_police(client, db, world, make_permit, make_staff)
    zh = post_form(client, "/verify", {"qr_text": code}, page="/verify", headers=ZH)
    assert '<p class="reason">工作许可已于2026年11月21日注销。</p>' in zh.text
    en = post_form(client, "/verify", {"qr_text": code}, page="/verify", headers=EN)
    assert '<p class="reason">The work permit was cancelled on Nov 21, 2026.</p>' in en.text
    assert "2026-11-21" not in en.text and "2026-11-21" not in zh.text


def test_camera_frame_reader(client, db, make_permit, make_staff):  # SPEC P1
    police = make_staff(Role.POLICE_VERIFIER)
    permit = make_permit()
    code = service.ecard_code(db, permit)
    sign_in(client, police.username)
    token = csrf_of(client, "/verify")
    found = client.post("/verify/frame", files={"frame": ("f.png", _png(code), "image/png")},
                        headers={"X-CSRF-Token": token})  # fmt: skip
    assert found.json() == {"found": True, "text": code}
    assert (
        db.scalar(select(Verification).where(Verification.permit_id == permit.id)) is None
    )  # not a check yet
    forged = client.post("/verify/frame", files={"frame": ("f.png", _png(code), "image/png")})
    assert forged.status_code == 403


def test_only_police_verifiers(client, world):  # SPEC X4
    sign_in(client, world.staff.username)
    assert client.get("/verify").status_code == 403


def test_holder_photo_only_after_a_check(client, db, world, make_staff, make_permit):  # SPEC P2, X4
    police = make_staff(Role.POLICE_VERIFIER)
    permit = make_permit(passport_name="Jane Doe", photo=_jpeg())
    sign_in(client, police.username)
    assert client.get(f"/verify/photo/{permit.foreigner_id}").status_code == 404
    post_form(client, "/verify", {"qr_text": service.ecard_code(db, permit)}, page="/verify")
    photo = client.get(f"/verify/photo/{permit.foreigner_id}")
    assert photo.status_code == 200 and photo.content.startswith(b"\xff\xd8")


def test_dynamic_code_page_for_employer_and_officer(client, db, world, make_permit):  # SPEC E8, X4
    from workcard.credentials import cwt

    permit = make_permit(passport_name="Jane Doe")
    sign_in(client, world.staff.username)
    page_ = client.get(f"/employer/permits/{permit.id}/code", headers=EN)
    assert page_.status_code == 200 and "data:image/svg+xml" in page_.text
    data = client.get(f"/employer/permits/{permit.id}/code.json").json()
    assert data["code"].startswith(cwt.PREFIX) and data["expires_in"] == 120 and data["qr_version"] <= 10
    client.cookies.clear()
    sign_in(client, world.other_staff.username)
    assert client.get(f"/employer/permits/{permit.id}/code.json").status_code == 404


def test_no_dynamic_code_for_a_cancelled_permit(client, db, world, make_permit):  # SPEC E9
    permit = make_permit()
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left")
    db.flush()
    sign_in(client, world.officer.username)
    resp = client.get(f"/officer/permits/{permit.id}/code", headers=EN)
    assert resp.status_code == 409 and "not available" in resp.text


def _problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text[:300]
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status and body["type"].startswith("urn:workcard:problem:")
    return body


def test_dynamic_code_json_answers_errors_in_json(client, db, world, make_permit):  # SPEC E9, X1, X2
    permit = make_permit()
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left")
    db.flush()
    url = f"/officer/permits/{permit.id}/code.json"
    assert _problem(client.get(url), 401)["type"] == "urn:workcard:problem:unauthorized"  # no redirect
    sign_in(client, world.officer.username)
    en = _problem(client.get(url, headers=EN), 409)
    assert en["detail"] == "The work permit was cancelled; its QR code is not available."
    assert en["title"] == "Conflict"
    zh = _problem(client.get(url, headers=ZH), 409)
    assert zh["detail"] == "该工作许可已注销，二维码不可用。"
    assert _problem(client.get("/officer/permits/999999/code.json", headers=EN), 404)["detail"]
    client.cookies.clear()
    sign_in(client, world.other_staff.username)  # another employer's permit
    assert _problem(client.get(f"/employer/permits/{permit.id}/code.json"), 404)
