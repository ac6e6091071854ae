"""The police verifier's page (SPEC P1, P2, X2, X4, X5)."""

from __future__ import annotations

import io

import segno
from PIL import Image
from sqlalchemy import select

from tests.conftest import csrf_of, post_form, sign_in
from workcard.credentials import service
from workcard.credentials.models import Verification
from workcard.iam.roles import Role
from workcard.permits import service as permits

EN = {"Accept-Language": "en"}


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


def test_cancelled_permit_shows_cancelled_at_once(client, db, world, make_permit, make_staff):  # SPEC P1
    police = make_staff(Role.POLICE_VERIFIER)
    permit = make_permit(passport_name="Jane Doe")
    code = service.letter_code(db, permit)
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left China")
    db.flush()
    sign_in(client, police.username)
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
