"""The issue's whole journey: the notification letter's QR, printed from the PDF and photographed,
verifies on the officer's page and offline; cancelling the permit turns both verdicts to cancelled
(online at once, offline after the status-list job and a sync). SPEC W2, P1, P2."""

from __future__ import annotations

import io

import pypdfium2
from sqlalchemy import select

from tests.conftest import post_form, sign_in
from workcard.credentials import cwt, jobs, offline
from workcard.credentials.qrimage import decode_image
from workcard.iam.roles import Role
from workcard.permits import service as permits
from workcard.permits.models import Letter

EN = {"Accept-Language": "en"}


def _photograph(pdf: bytes) -> bytes:
    """The letter printed and photographed: its first page rendered at 150 dpi, as a JPEG."""
    page = pypdfium2.PdfDocument(pdf)[0]
    image = page.render(scale=150 / 72).to_pil().convert("RGB")
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def test_letter_code_verifies_online_and_offline_until_cancelled(client, db, world, make_permit, make_staff,
                                                                  tmp_path):  # fmt: skip
    permit = make_permit(passport_name="Søren Kierkegaard-Ólafsson", nationality="DNK")
    letter = db.scalar(select(Letter).where(Letter.permit_id == permit.id))
    photo = _photograph(letter.pdf)
    code = decode_image(photo)[0]
    assert code.startswith(cwt.PREFIX)

    police = make_staff(Role.POLICE_VERIFIER)
    sign_in(client, police.username)
    online = post_form(client, "/verify", {}, page="/verify", headers=EN,
                       files={"photo": ("letter.jpg", photo, "image/jpeg")})  # fmt: skip
    assert 'data-testid="verdict">Valid<' in online.text and "Søren Kierkegaard-Ólafsson" in online.text

    offline.sync("http://testserver", tmp_path, client=client)
    assert offline.verify(code, tmp_path).verdict == "valid"

    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left China")
    db.flush()
    again = post_form(client, "/verify", {"qr_text": code}, page="/verify", headers=EN)
    assert 'data-testid="verdict">Cancelled<' in again.text  # online: at once
    assert offline.verify(code, tmp_path).verdict == "valid"  # offline: not before a sync
    jobs.rebuild_status_list(db)
    db.flush()
    offline.sync("http://testserver", tmp_path, client=client)
    assert offline.verify(code, tmp_path).verdict == "cancelled"
