# The credentials API: partner verification of scanned codes and the public lists (SPEC P1, P2, W5, X2, X5).
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.credentials.helpers import partner, zlib_bomb
from tests.credentials.test_keys import _private_texts
from workcard import audit
from workcard.credentials import jobs, keys, lists, service
from workcard.credentials.models import Verification
from workcard.permits import service as permits

pytestmark = pytest.mark.own_database  # on PostgreSQL, the partner API as it runs: on its own connections

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}


def _verify(client, headers, text, lang=EN):
    return client.post("/api/v1/verifications", headers={**headers, **lang}, json={"qr_text": text})


def test_openapi_lists_the_credentials_routes(client):  # SPEC W5
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {"/verifications", "/trust-list", "/status-list"} <= set(paths)
    assert paths["/verifications"]["post"]["security"]  # partner credentials
    assert "security" not in paths["/trust-list"]["get"]  # public


def test_partner_verifies_a_code(client, db, make_permit):  # SPEC P1, P2, X5
    permit = make_permit(passport_name="Olga Ivanova-Petrova", nationality="RUS")
    headers = partner(db)
    resp = _verify(client, headers, service.ecard_code(db, permit))
    assert resp.status_code == 200
    body = resp.json()
    assert body["verdict"] == "valid" and body["reason"] == "The work permit is valid."
    assert body["permit"] == {"permit_number": permit.number, "holder_name": "Olga Ivanova-Petrova",
                              "nationality": "RUS", "valid_until": permit.valid_until.isoformat()}  # fmt: skip
    assert set(body) == {"verdict", "reason", "checked_at", "permit"}
    row = db.scalars(select(Verification).order_by(Verification.id.desc())).first()
    assert row.actor.startswith("partner:") and row.channel == "api" and row.permit_id == permit.id
    assert db.scalars(select(audit.AuditRecord).where(audit.AuditRecord.action == "permit.verify_code")).all()


def test_verdict_reason_in_chinese(client, db, world, make_permit, frozen):  # SPEC X1
    frozen(dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC))
    permit = make_permit()
    code = service.letter_code(db, permit)
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left")
    headers = partner(db)
    body = _verify(client, headers, code, lang=ZH).json()
    assert body["verdict"] == "cancelled"  # the word is the same everywhere
    assert body["reason"] == "工作许可已于2026年11月21日注销。"  # the date as the pages write it
    assert body["permit"]["permit_number"] == permit.number
    english = _verify(client, headers, code).json()
    assert english["reason"] == "The work permit was cancelled on Nov 21, 2026."
    # the machine-readable fields stay ISO
    assert english["permit"]["valid_until"] == permit.valid_until.isoformat()
    assert dt.datetime.fromisoformat(english["checked_at"]).date() == dt.date(2026, 11, 21)


def test_garbage_is_a_malformed_verdict_not_an_error(client, db):  # SPEC X2
    headers = partner(db)
    for text in ("", "hello", "WC1:ZZZZ", zlib_bomb(), "WC1:" + "0" * 1020):
        resp = _verify(client, headers, text)
        assert resp.status_code == 200, (text[:20], resp.text)
        assert resp.json()["verdict"] == "malformed" and resp.json()["permit"] is None
    assert db.scalar(select(Verification.verdict).order_by(Verification.id.desc())) == "malformed"


def test_over_long_or_wrong_body_is_a_422_problem(client, db):  # SPEC X2
    headers = partner(db)
    before = len(db.scalars(select(Verification)).all())
    resp = _verify(client, headers, "WC1:" + "0" * 1021)
    assert resp.status_code == 422 and resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["errors"][0]["field"] == "qr_text"
    for body in ({"qr_text": 5}, {}, {"qr_text": "x", "extra": 1}):
        assert client.post("/api/v1/verifications", headers=headers, json=body).status_code == 422
    assert len(db.scalars(select(Verification)).all()) == before  # nothing recorded for a refused body


def test_verification_needs_partner_credentials(client, db):  # SPEC W5, X5
    resp = client.post("/api/v1/verifications", json={"qr_text": "WC1:"})
    assert resp.status_code == 401 and resp.headers["content-type"].startswith("application/problem+json")


def _get(client, path, etag=None):
    return client.get(path, headers={"If-None-Match": etag} if etag else {})


def test_trust_list_is_public_signed_and_cached(client, db, frozen):  # SPEC P1
    frozen(dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC))
    resp = _get(client, "/api/v1/trust-list")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/cose"
    assert resp.headers["cache-control"] == "public, max-age=3600"
    etag = resp.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    doc = lists.open_trust_list(resp.content, keys.anchor_public_raw())
    current = keys.current_key(db)
    assert [(k.kid, k.x, k.verify_until) for k in doc.keys] == [(current.kid, current.public_key, None)]
    again = _get(client, "/api/v1/trust-list", etag)
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert _get(client, "/api/v1/trust-list", f'"nope", W/{etag}').status_code == 304
    assert _get(client, "/api/v1/trust-list").content == resp.content  # deterministic bytes
    keys.rotate(db, "test")
    db.flush()
    rotated = _get(client, "/api/v1/trust-list", etag)
    assert rotated.status_code == 200 and rotated.headers["etag"] != etag
    doc = lists.open_trust_list(rotated.content, keys.anchor_public_raw())
    assert len(doc.keys) == 2 and doc.keys[0].verify_until is not None and doc.issued_at > 0


def test_status_list_etag_follows_its_content(client, db, world, make_permit):  # SPEC P1
    permit = make_permit()
    first = _get(client, "/api/v1/status-list")
    assert first.status_code == 200 and first.headers["content-type"] == "application/cose"
    # no cache may serve it without asking: a cancellation must not stay hidden behind a proxy for an hour
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    unchanged = _get(client, "/api/v1/status-list", etag)
    assert unchanged.status_code == 304 and unchanged.headers["cache-control"] == "no-cache"
    jobs.rebuild_status_list(db)  # nothing changed: the same version
    assert _get(client, "/api/v1/status-list", etag).status_code == 304
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left")
    jobs.rebuild_status_list(db)
    changed = _get(client, "/api/v1/status-list", etag)
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    doc = lists.open_status_list(changed.content, keys.anchor_public_raw())
    assert lists.status_entry(permit.number) in doc and permit.number.encode() not in changed.content


def test_no_private_key_in_any_response(client, db, make_permit):  # SPEC X5
    permit = make_permit()
    headers = partner(db)
    responses = [
        _verify(client, headers, service.letter_code(db, permit)).text,
        _get(client, "/api/v1/trust-list").content.hex(),
        _get(client, "/api/v1/status-list").content.hex(),
        client.get("/api/v1/openapi.json").text,
    ]
    kid = keys.current_key(db).kid
    for secret in _private_texts(kid) + _private_texts(keys.key_dir() / "anchor.pem"):
        assert not any(secret in r or secret.lower() in r for r in responses)


def test_a_check_during_a_permit_change_answers_from_the_committed_permit_at_once(
    client, db, make_permit, own_engine
):  # SPEC X3
    """A staff transaction holds the permit (FOR UPDATE) and lane 1 of the audit trail, as a change of
    the permit does at its commit: a group of checks naming the permit neither waits for it nor
    deadlocks; it answers from the permit as committed, and its record goes to another lane."""
    from sqlalchemy import text

    if own_engine is None:
        pytest.skip("on PostgreSQL, where partner groups have connections of their own")
    permit = make_permit(passport_name="Ann Lee")
    code, headers = service.letter_code(db, permit), partner(db)
    db.commit()
    with own_engine.connect() as staff:
        staff.execute(text("UPDATE permit SET status = 'cancelled' WHERE id = :id"), {"id": permit.id})
        staff.execute(text("SELECT count FROM audit_head WHERE id = 1 FOR UPDATE"))
        answer = _verify(client, headers, code)
        assert answer.status_code == 200 and answer.json()["verdict"] == "valid"  # not yet committed
        lane = staff.scalar(text("SELECT lane FROM audit_record ORDER BY id DESC LIMIT 1"))
        assert lane != 1
        staff.rollback()
    assert _verify(client, headers, code).json()["verdict"] == "valid"
