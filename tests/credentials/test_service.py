# Issuing and checking signed permit codes online (SPEC E8 the e-card's QR code, P1 officers verify it,
# P2 a verification says whether the permit is valid now and nothing more, X2 bad input, X5 recorded).
from __future__ import annotations

import dataclasses
import datetime as dt
import zlib

import pytest
import segno
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy import select

from tests.conftest import sign_in
from tests.credentials.helpers import as_jpeg, claims_for, qr_png, sign, zlib_bomb
from workcard import audit, clock
from workcard.credentials import base45, cose, cwt, jobs, keys, lists, service, verdicts
from workcard.credentials.models import StatusList, Verification
from workcard.errors import Conflict, InvalidInput
from workcard.permits import service as permits
from workcard.permits.models import Foreigner

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


def _resolver(db):
    def resolve(kid: bytes):
        key = keys.find_key(db, kid.decode())
        return cose.load_public_key(key.alg, key.public_key), key.alg

    return resolve


def _decode(db, text: str, now: dt.datetime | None = None) -> cwt.PermitClaims:
    return cwt.decode_token(text, resolve_key=_resolver(db), now=int((now or clock.now()).timestamp()))


def _check(db, text, actor="staff:1:officer", channel="page") -> service.Verdict:
    return service.verify_text(db, actor=actor, text=text, channel=channel)


# --- issuing ---------------------------------------------------------------------------------------------


def test_letter_code_carries_only_the_p2_claims(db, make_permit, frozen):  # SPEC P2, W2
    frozen(T0)
    permit = make_permit(passport_name="Ana María Núñez", nationality="ESP", days=400)
    claims = _decode(db, service.letter_code(db, permit))
    assert claims.permit_number == permit.number
    assert claims.holder_name == "Ana María Núñez" and claims.nationality == "ESP"
    assert claims.valid_until == permit.valid_until and claims.status == "valid" and claims.use == "letter"
    assert claims.issued_at == int(T0.timestamp())
    # the end of the day after the permit's last day, China time
    end = dt.datetime.combine(permit.valid_until + dt.timedelta(days=2), dt.time(0), tzinfo=clock.CHINA)
    assert claims.expires_at == int(end.timestamp())
    assert {f.name for f in dataclasses.fields(claims)} == {
        "permit_number", "holder_name", "nationality", "valid_until", "valid_from", "status", "issued_at",
        "expires_at", "use", "key_id",
    }  # fmt: skip
    assert claims.valid_from == permit.valid_from
    assert claims.key_id == keys.current_key(db).kid


def test_letter_code_fits_qr_version_10_for_a_40_character_name(db, make_permit):  # SPEC W2, P1
    permit = make_permit(passport_name="Alexandra Konstantinopoulou Wolfeschlegel")
    text = service.letter_code(db, permit)
    qr = segno.make(text, error="m", micro=False, boost_error=False)
    assert qr.mode == "alphanumeric" and qr.version <= 10, (len(text), qr.version)


def test_ecard_code_lives_120_seconds(db, make_permit, frozen):  # SPEC E8
    frozen(T0)
    permit = make_permit()
    text = service.ecard_code(db, permit)
    claims = _decode(db, text)
    assert claims.use == "ecard" and claims.expires_at - claims.issued_at == 120
    assert _check(db, text).verdict == "valid"
    frozen(T0 + dt.timedelta(seconds=120))
    result = _check(db, text)
    assert result.verdict == "expired" and "QR code has expired" in result.reason
    assert result.permit is None


def test_no_ecard_code_for_a_cancelled_permit(db, world, make_permit):  # SPEC E9
    permit = make_permit()
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left the company")
    with pytest.raises(Conflict):
        service.ecard_code(db, permit)


def test_no_letter_code_after_the_validity_ended(db, make_permit, frozen):  # SPEC W4
    frozen.date(dt.date(2026, 1, 1))
    permit = make_permit(days=30)
    frozen.date(dt.date(2026, 3, 10))
    with pytest.raises(Conflict):
        service.letter_code(db, permit)


# --- verdicts --------------------------------------------------------------------------------------------


def test_valid_code_is_recorded_with_who_when_which_verdict(db, make_permit, frozen):  # SPEC P1, X5
    frozen(T0)
    permit = make_permit(passport_name="Li Wei Smith")
    text = service.letter_code(db, permit)
    result = _check(db, "  " + text + "\n", actor="partner:exit-entry", channel="api")  # scanners add blanks
    assert result.verdict == "valid" and result.reason == "The work permit is valid."
    assert result.permit.id == permit.id and result.holder.passport_name == "Li Wei Smith"
    row = db.scalars(select(Verification).order_by(Verification.id.desc())).first()
    assert (row.actor, row.at, row.permit_id, row.verdict, row.channel) == (
        "partner:exit-entry", T0, permit.id, "valid", "api")  # fmt: skip
    assert row.holder_id == permit.foreigner_id and row.use == "letter" and row.key_id == result.claims.key_id
    rec = db.scalars(select(audit.AuditRecord).order_by(audit.AuditRecord.id.desc())).first()
    assert (rec.actor, rec.action, rec.subject_id) == (
        "partner:exit-entry",
        "permit.verify_code",
        str(permit.id),
    )
    assert rec.after["verdict"] == "valid" and text not in str(rec.after)


def test_cancelled_permit_is_cancelled_at_once_online(db, world, make_permit, frozen):  # SPEC P1, W4
    frozen(T0)
    permit = make_permit()
    text = service.letter_code(db, permit)  # says "valid"
    assert _decode(db, text).status == "valid"
    frozen(T0 + dt.timedelta(minutes=5))
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Contract ended")
    result = _check(db, text)
    assert result.verdict == "cancelled"
    assert result.params == {"date": "2026-03-02"} and result.permit.id == permit.id


def test_expired_by_date_before_the_expiry_job(db, make_permit, frozen):  # SPEC W4, P1
    frozen.date(dt.date(2026, 1, 1))
    permit = make_permit(days=30)
    text = service.letter_code(db, permit)
    frozen.date(permit.valid_until + dt.timedelta(days=1))  # the code itself still lives a day
    result = _check(db, text)
    assert result.verdict == "expired" and result.params == {"date": permit.valid_until.isoformat()}
    frozen.date(permit.valid_until + dt.timedelta(days=2))  # now the code has expired too
    ended = _check(db, text)  # still says which permit ended when, not "show a current code"
    assert ended.verdict == "expired" and ended.reason == verdicts.PERMIT_EXPIRED
    assert ended.params == result.params and ended.permit.id == permit.id and ended.holder is not None


def test_expired_letter_code_of_a_permit_valid_again_asks_for_the_current_letter(
    db, make_permit, frozen
):  # SPEC P1
    frozen.date(dt.date(2026, 1, 1))
    permit = make_permit(days=30)
    text = service.letter_code(db, permit)
    permit.valid_until += dt.timedelta(days=365)  # renewed: a new letter carries the new code
    db.flush()
    frozen.date(dt.date(2026, 1, 1) + dt.timedelta(days=40))
    result = _check(db, text)
    assert result.verdict == "expired" and result.reason == verdicts.TOKEN_EXPIRED and result.permit is None


def test_not_yet_valid_permit(db, make_permit, frozen):  # SPEC P1
    frozen.date(dt.date(2026, 1, 1))
    permit = make_permit(start=dt.date(2026, 2, 1))
    result = _check(db, service.letter_code(db, permit))
    assert result.verdict == "not_yet_valid" and result.params == {"date": "2026-02-01"}


def test_every_tampered_byte_is_refused(db, make_permit):  # SPEC P1
    permit = make_permit()
    text = service.letter_code(db, permit)
    message = cwt.unwrap(text)
    seen = set()
    # the message as a token carries it, and deflated as in a WC1 token
    for prefix, pack in ((cwt.PREFIX, bytes), (cwt.DEFLATED_PREFIX, lambda b: zlib.compress(bytes(b), 9))):
        for i in range(len(message)):
            changed = bytearray(message)
            changed[i] ^= 0x01
            verdict = service._check(
                service.Lookups(db), prefix + base45.encode(pack(changed)), clock.now()
            ).verdict
            assert verdict in ("bad_signature", "malformed", "unknown_key"), (i, verdict)
            seen.add(verdict)
    assert seen == {"bad_signature", "malformed", "unknown_key"}  # payload/signature, structure, kid
    # a changed claim, signed again by a key that is not ours under our kid: a forgery
    holder = db.get(Foreigner, permit.foreigner_id)
    forged = claims_for(permit, holder, kid=keys.current_key(db).kid, issued=clock.now(),
                        expires=clock.now() + dt.timedelta(days=9))  # fmt: skip
    forged = dataclasses.replace(forged, valid_until=dt.date(2040, 1, 1))
    assert _check(db, sign(forged, ed25519.Ed25519PrivateKey.generate())).verdict == "bad_signature"


def test_other_algorithm_is_malformed(db, make_permit):  # SPEC P1
    permit = make_permit()
    holder = db.get(Foreigner, permit.foreigner_id)
    kid = keys.ensure_signing_key(db).kid
    claims = claims_for(
        permit, holder, kid=kid, issued=clock.now(), expires=clock.now() + dt.timedelta(days=1)
    )
    result = _check(db, sign(claims, ec.generate_private_key(ec.SECP256R1()), alg=cose.ES256))
    assert result.verdict == "malformed" and "algorithm" in result.reason


def test_unknown_key(db, make_permit):  # SPEC P1
    permit = make_permit()
    holder = db.get(Foreigner, permit.foreigner_id)
    claims = claims_for(
        permit, holder, kid="wc-9901-q", issued=clock.now(), expires=clock.now() + dt.timedelta(days=1)
    )
    result = _check(db, sign(claims, ed25519.Ed25519PrivateKey.generate()))
    assert result.verdict == "unknown_key" and result.permit is None


@pytest.mark.parametrize(
    "text",
    ["", "hello", "WC1:", "WC1:%%%%", "https://example.com/v/123", "WC1:" + "A" * 2000, "\x00\ud800"],
    ids=["empty", "word", "prefix", "bad-base45", "url", "over-long", "control"],
)
def test_garbage_is_malformed_and_recorded(db, text):  # SPEC X2, X5
    result = _check(db, text)
    assert result.verdict == "malformed" and result.permit is None and result.claims is None
    assert db.scalars(select(Verification).order_by(Verification.id.desc())).first().verdict == "malformed"


def test_zlib_bomb_is_malformed(db):  # SPEC X2
    assert _check(db, zlib_bomb()).verdict == "malformed"


def test_code_of_a_permit_that_does_not_exist(db, make_permit):  # SPEC P1
    permit = make_permit()
    holder = db.get(Foreigner, permit.foreigner_id)
    key = keys.ensure_signing_key(db)
    claims = claims_for(
        permit, holder, kid=key.kid, issued=clock.now(), expires=clock.now() + dt.timedelta(days=1)
    )
    claims = dataclasses.replace(claims, permit_number="1226999999990")
    result = _check(db, sign(claims, keys.private_key(key.kid)))
    assert (
        result.verdict == "malformed" and result.reason == "The QR code names no permit of the Work System."
    )


def test_checks_of_holder_newest_first_and_not_on_employer_pages(
    client, db, world, make_permit, frozen
):  # SPEC X4
    frozen(T0)
    permit = make_permit()
    text = service.letter_code(db, permit)
    _check(db, text, actor="partner:exit-entry-tianjin", channel="api")
    frozen(T0 + dt.timedelta(hours=1))
    _check(db, text, actor="staff:9:police", channel="page")
    checks = service.checks_of_holder(db, permit.foreigner_id)
    assert [(c.actor, c.verdict) for c in checks] == [("staff:9:police", "valid"),
                                                      ("partner:exit-entry-tianjin", "valid")]  # fmt: skip
    assert service.checks_of_holder(db, permit.foreigner_id + 1000) == []
    frozen(None)  # the sign-in session is made in real time
    sign_in(client, world.staff.username)
    for path in (f"/employer/permits/{permit.id}", f"/employer/foreigners/{permit.foreigner_id}"):
        page = client.get(path)
        assert page.status_code == 200
        assert "exit-entry-tianjin" not in page.text and "staff:9:police" not in page.text


# --- the photo of a code ---------------------------------------------------------------------------------


def test_decode_image_reads_one_code_png_and_jpeg(db, make_permit):  # SPEC P1
    text = service.letter_code(db, make_permit(passport_name="Photo Person"))
    png = qr_png(text)
    assert service.decode_image(png) == [text]
    assert service.decode_image(as_jpeg(png)) == [text]


def test_decode_image_refuses_none_or_two_codes(db, make_permit):  # SPEC X2
    with pytest.raises(InvalidInput, match="No QR code"):
        service.decode_image(as_jpeg(qr_png()))
    with pytest.raises(InvalidInput, match="more than one QR code"):
        service.decode_image(qr_png("WC1:FIRST", "WC1:SECOND"))


def test_decode_image_refuses_what_is_not_a_small_photo():  # SPEC X2
    with pytest.raises(InvalidInput, match="JPEG or PNG"):
        service.decode_image(b"GIF89a" + b"\0" * 100)
    with pytest.raises(InvalidInput, match="damaged"):
        service.decode_image(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(InvalidInput, match="limit"):
        service.decode_image(b"\xff\xd8\xff" + b"\0" * 9_000_000)
    with pytest.raises(InvalidInput, match="choose"):
        service.decode_image(b"")
    # a decompression bomb: a tiny PNG that declares 30000 x 30000 pixels
    import struct
    import zlib as z

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", z.crc32(kind + data))

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", z.compress(b"\0" * 1000)) + chunk(b"IEND", b""))  # fmt: skip
    with pytest.raises(InvalidInput, match="pixels"):
        service.decode_image(bomb)


# --- the status list -------------------------------------------------------------------------------------


def test_status_list_holds_hashes_of_ended_permits_and_is_idempotent(
    db, world, make_permit, frozen
):  # SPEC P1
    frozen.date(dt.date(2026, 1, 1))
    live = make_permit()
    cancelled = make_permit()
    lapsed = make_permit(days=30)
    long_gone = make_permit(days=10)
    permits.cancel_permit(db, actor=world.officer, permit_id=cancelled.id, reason="Left")
    frozen.date(dt.date(2026, 2, 1))  # lapsed ended 2026-01-31; long_gone on 2026-01-11
    assert jobs.rebuild_status_list(db) is True
    row = db.get(StatusList, 1)
    doc = lists.open_status_list(row.body, keys.anchor_public_raw())
    assert lists.status_entry(cancelled.number) in doc and lists.status_entry(lapsed.number) in doc
    assert lists.status_entry(live.number) not in doc
    assert lists.status_entry(long_gone.number) not in doc  # its codes expired long ago: pruned
    assert cancelled.number.encode() not in row.body  # hashes, not numbers
    etag, body = row.etag, row.body
    frozen(dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC))  # later the same day
    assert jobs.rebuild_status_list(db) is False
    assert (db.get(StatusList, 1).etag, db.get(StatusList, 1).body) == (etag, body)


def test_cancellation_rebuilds_the_status_list_after_commit(db, world, make_permit):  # SPEC P1, W4
    permit = make_permit()
    jobs.rebuild_status_list(db)
    db.commit()
    before = db.get(StatusList, 1).etag
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left")
    db.commit()  # the subscriber runs after the commit, in a session of its own
    db.expire_all()
    row = db.get(StatusList, 1)
    assert row.etag != before
    assert lists.status_entry(permit.number) in lists.open_status_list(row.body, keys.anchor_public_raw())


def test_expiry_job_rebuilds_the_status_list_after_commit(db, world, make_permit, frozen):  # SPEC P1, W4
    import datetime as _dt

    from workcard.permits import jobs as permit_jobs

    frozen.date(_dt.date(2026, 3, 1))
    permit = make_permit(days=30, start=_dt.date(2026, 3, 1))
    jobs.rebuild_status_list(db)
    db.commit()
    frozen.date(_dt.date(2026, 4, 2))
    assert permit_jobs.expire_due(db) == 1
    db.commit()  # one permits.expired event for the cohort; the subscriber rebuilds the list
    db.expire_all()
    row = db.get(StatusList, 1)
    assert lists.status_entry(permit.number) in lists.open_status_list(row.body, keys.anchor_public_raw())


def test_status_list_subscriber_failure_does_not_undo_the_cancellation(
    db, world, make_permit, monkeypatch, caplog
):
    permit = make_permit()
    db.commit()

    def broken(session):
        raise RuntimeError("disk full")

    monkeypatch.setattr(jobs, "rebuild_status_list", broken)
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left")
    db.commit()
    db.expire_all()
    assert permits.find_permit(db, permit.number)[0].status == "cancelled"
    assert "disk full" in caplog.text
