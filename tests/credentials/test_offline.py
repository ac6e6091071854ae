# Offline verification: sync the anchor-signed lists, then check codes with no network (SPEC P1 officers
# verify the QR code, P2 valid now or not, X2 clear refusals). The server is the real app, reached
# through the TestClient (an httpx.Client), or an httpx.MockTransport where the server must misbehave.
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from typer.testing import CliRunner

from tests.credentials.helpers import qr_png
from workcard import cli, clock
from workcard.credentials import jobs, keys, lists, offline, service
from workcard.permits import service as permits

SERVER = "http://testserver"
T0 = dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def seen(client):
    """The (path, status, If-None-Match) of every response the TestClient gets."""
    log: list[tuple[str, int, str | None]] = []
    client.event_hooks = {"response": [lambda r: log.append(
        (r.request.url.path, r.status_code, r.request.headers.get("if-none-match")))]}  # fmt: skip
    return log


def test_first_sync_trusts_the_anchor_and_says_so(client, db, make_permit, tmp_path, seen):  # SPEC P1
    code = service.letter_code(db, make_permit(passport_name="Kim Min-jun", nationality="KOR"))
    report = offline.sync(SERVER, tmp_path, client=client)
    assert report.first_use is True and report.anchor == lists.b64url(keys.anchor_public_raw())
    assert report.keys == 1 and report.trust_list_changed and report.status_list_changed
    assert (tmp_path / "anchor.txt").read_text() == report.anchor
    assert {p.name for p in tmp_path.iterdir()} >= {
        "anchor.txt",
        "trust-list.cose",
        "status-list.cose",
        "state.json",
    }
    result = offline.verify(code, tmp_path)
    assert result.verdict == "valid" and result.claims.holder_name == "Kim Min-jun"
    assert result.status_list_age < dt.timedelta(minutes=1)
    # the second sync asks with the stored ETags and gets 304s: nothing is downloaded again
    seen.clear()
    again = offline.sync(SERVER, tmp_path, client=client)
    assert again.first_use is False and not again.trust_list_changed and not again.status_list_changed
    assert [(p, s) for p, s, _ in seen] == [("/api/v1/trust-list", 304), ("/api/v1/status-list", 304)]
    assert all(etag for _, _, etag in seen)


def test_cancelled_online_at_once_offline_after_job_and_sync(
    client, db, world, make_permit, tmp_path, frozen
):
    # SPEC P1, W4
    frozen(T0)
    permit = make_permit()
    code = service.letter_code(db, permit)
    offline.sync(SERVER, tmp_path, client=client)
    frozen(T0 + dt.timedelta(hours=5))
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left China")
    assert (
        service.verify_text(db, actor="t", text=code, channel="page").verdict == "cancelled"
    )  # online: at once
    stale = offline.verify(code, tmp_path)
    assert stale.verdict == "valid" and stale.status_list_age == dt.timedelta(
        hours=5
    )  # offline: not yet known
    jobs.rebuild_status_list(db)
    report = offline.sync(SERVER, tmp_path, client=client)
    assert report.status_list_changed and report.entries == 1
    result = offline.verify(code, tmp_path)
    assert result.verdict == "cancelled" and result.reason == "The work permit has been cancelled."
    assert result.status_list_age == dt.timedelta(0)


def test_expired_offline_by_the_claims_date(client, db, make_permit, tmp_path, frozen):  # SPEC W4, P1
    frozen.date(dt.date(2026, 1, 1))
    permit = make_permit(days=30)
    code = service.letter_code(db, permit)
    offline.sync(SERVER, tmp_path, client=client)
    frozen.date(permit.valid_until + dt.timedelta(days=1))
    result = offline.verify(code, tmp_path)
    assert result.verdict == "expired" and result.params == {"date": permit.valid_until.isoformat()}
    frozen.date(permit.valid_until + dt.timedelta(days=3))
    assert (
        offline.verify(code, tmp_path).reason
        == "This QR code has expired; ask the holder to show a current one."
    )


def test_rotated_key_still_verifies_retired_key_does_not(
    client, db, make_permit, tmp_path, frozen
):  # SPEC P1
    frozen(T0)
    permit = make_permit()
    old_code = service.letter_code(db, permit)
    old = keys.current_key(db)
    keys.rotate(db, "test")
    new_code = service.ecard_code(db, permit)
    offline.sync(SERVER, tmp_path, client=client)
    assert offline.verify(old_code, tmp_path).verdict == "valid"
    assert offline.verify(new_code, tmp_path).verdict == "valid"
    keys.retire(db, "test", old.kid)
    db.flush()
    assert offline.sync(SERVER, tmp_path, client=client).trust_list_changed
    assert offline.verify(old_code, tmp_path).verdict == "unknown_key"
    assert offline.verify(new_code, tmp_path).verdict == "valid"


def test_old_key_is_trusted_only_until_its_verify_until(client, db, make_permit, tmp_path, frozen):  # SPEC P1
    frozen(T0)
    permit = make_permit(days=30)
    code = service.letter_code(db, permit)
    old = keys.current_key(db)
    keys.rotate(db, "test")
    offline.sync(SERVER, tmp_path, client=client)
    trusted = lists.open_trust_list((tmp_path / "trust-list.cose").read_bytes(), keys.anchor_public_raw())
    assert trusted.key(old.kid).verify_until == int(old.verify_until.timestamp())
    # a code that lives past its key's verify_until (only a forger could make one) is not trusted then
    late = old.verify_until + dt.timedelta(seconds=1)
    assert offline.verify(code, tmp_path, now=late).verdict in ("unknown_key", "expired")
    from tests.credentials.helpers import claims_for, sign
    from workcard.permits.models import Foreigner

    holder = db.get(Foreigner, permit.foreigner_id)
    claims = claims_for(permit, holder, kid=old.kid, issued=T0, expires=late + dt.timedelta(days=30))
    forged_lifetime = sign(claims, keys.private_key(old.kid))
    assert offline.verify(forged_lifetime, tmp_path, now=late).verdict == "unknown_key"


def test_bad_codes_offline(client, db, make_permit, tmp_path):  # SPEC X2
    make_permit()
    offline.sync(SERVER, tmp_path, client=client)
    for text in ("", "hello", "WC1:Z", "WC1:" + "0" * 2000):
        assert offline.verify(text, tmp_path).verdict == "malformed"
    code = service.ecard_code(db, make_permit())
    claims = offline.verify(code, tmp_path).claims
    forged = dataclasses.replace(claims, holder_name="Someone Else")
    from tests.credentials.helpers import sign

    assert (
        offline.verify(sign(forged, ed25519.Ed25519PrivateKey.generate()), tmp_path).verdict
        == "bad_signature"
    )


def test_not_synced_yet(tmp_path):  # SPEC X2
    with pytest.raises(offline.OfflineError, match="sync"):
        offline.verify("WC1:X", tmp_path / "nothing")


def test_pinned_anchor(client, db, tmp_path):  # SPEC P1
    stranger = lists.b64url(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    with pytest.raises(offline.OfflineError, match="another anchor"):
        offline.sync(SERVER, tmp_path / "a", client=client, anchor=stranger)
    assert not (tmp_path / "a" / "anchor.txt").exists()  # nothing stored from a refused sync
    right = lists.b64url(keys.anchor_public_raw())
    report = offline.sync(SERVER, tmp_path / "b", client=client, anchor=right)
    assert report.first_use is False
    with pytest.raises(offline.OfflineError, match="pins another trust anchor"):
        offline.sync(SERVER, tmp_path / "b", client=client, anchor=stranger)
    with pytest.raises(offline.OfflineError, match="base64url"):
        offline.sync(SERVER, tmp_path / "c", client=client, anchor="not a key!")


def _serving(documents: dict[str, bytes]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        body = documents.get(request.url.path)
        if body is None:
            return httpx.Response(404)
        return httpx.Response(200, content=body, headers={"content-type": "application/cose", "etag": '"x"'})

    return httpx.Client(transport=httpx.MockTransport(handler), base_url=SERVER)


def test_tampered_or_swapped_lists_are_refused(client, db, tmp_path):  # SPEC P1
    trust = client.get("/api/v1/trust-list").content
    status = client.get("/api/v1/status-list").content
    tampered = bytearray(status)
    tampered[-70] ^= 0x01  # inside the payload
    cases = {
        "tampered": {offline.TRUST_PATH: trust, offline.STATUS_PATH: bytes(tampered)},
        "swapped": {offline.TRUST_PATH: status, offline.STATUS_PATH: trust},  # both anchor-signed
        "garbage": {offline.TRUST_PATH: b"<html>hello</html>", offline.STATUS_PATH: status},
        "missing": {offline.TRUST_PATH: trust},
    }
    for name, docs in cases.items():
        with pytest.raises(offline.OfflineError):
            offline.sync(
                SERVER, tmp_path / name, client=_serving(docs), anchor=lists.b64url(keys.anchor_public_raw())
            )
    with pytest.raises(offline.OfflineError, match="cannot fetch"):
        offline.sync("http://127.0.0.1:9", tmp_path / "offline")


def test_an_older_status_list_is_refused(client, db, world, make_permit, tmp_path, frozen):  # SPEC P1
    frozen(T0)
    permit = make_permit()
    old_trust = client.get("/api/v1/trust-list").content
    old_status = client.get("/api/v1/status-list").content  # without the cancellation
    frozen(T0 + dt.timedelta(hours=1))
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left")
    jobs.rebuild_status_list(db)
    offline.sync(SERVER, tmp_path, client=client)
    replay = _serving({offline.TRUST_PATH: old_trust, offline.STATUS_PATH: old_status})
    with pytest.raises(offline.OfflineError, match="older status list"):
        offline.sync(SERVER, tmp_path, client=replay)
    assert offline.verify(service.letter_code(db, make_permit()), tmp_path).verdict == "valid"
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["server"] == SERVER


# --- the command ---------------------------------------------------------------------------------------


def test_verify_command(client, db, world, make_permit, tmp_path, monkeypatch):  # SPEC P1, X1
    permit = make_permit(passport_name="Ivan Horvat", nationality="HRV")
    code = service.letter_code(db, permit)
    monkeypatch.setattr(offline, "sync", functools.partial(offline.sync, client=client))
    runner = CliRunner()
    synced = runner.invoke(cli.app, ["verify", "--sync", SERVER, "--dir", str(tmp_path)])
    assert synced.exit_code == 0, synced.output
    assert "trusting the server's anchor on first use" in synced.output and "synced at" in synced.output
    ok = runner.invoke(cli.app, ["verify", code, "--dir", str(tmp_path), "--lang", "en"])
    assert ok.exit_code == 0, ok.output
    assert "VALID: The work permit is valid." in ok.output and "Ivan Horvat" in ok.output
    assert "status list is 0 hours old" in ok.output
    zh = runner.invoke(cli.app, ["verify", code, "--dir", str(tmp_path), "--lang", "zh_CN"])
    assert zh.exit_code == 0 and "工作许可有效" in zh.output
    photo = tmp_path / "code.png"
    photo.write_bytes(qr_png(code))
    assert runner.invoke(cli.app, ["verify", "--image", str(photo), "--dir", str(tmp_path)]).exit_code == 0
    assert runner.invoke(cli.app, ["verify", "-", "--dir", str(tmp_path)], input=code + "\n").exit_code == 0
    bad = runner.invoke(cli.app, ["verify", "WC1:NOPE", "--dir", str(tmp_path), "--lang", "en"])
    assert bad.exit_code == 1 and "MALFORMED" in bad.output
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left")
    jobs.rebuild_status_list(db)
    assert runner.invoke(cli.app, ["verify", "--sync", SERVER, "--dir", str(tmp_path)]).exit_code == 0
    cancelled = runner.invoke(cli.app, ["verify", code, "--dir", str(tmp_path), "--lang", "en"])
    assert cancelled.exit_code == 1 and "CANCELLED" in cancelled.output
    empty = tmp_path / "empty.png"
    empty.write_bytes(qr_png())
    no_code = runner.invoke(
        cli.app, ["verify", "--image", str(empty), "--dir", str(tmp_path), "--lang", "en"]
    )
    assert no_code.exit_code == 2 and "No QR code" in no_code.output
    assert runner.invoke(cli.app, ["verify", code, "--dir", str(tmp_path / "never")]).exit_code == 2
    assert runner.invoke(cli.app, ["verify", "--dir", str(tmp_path)]).exit_code == 2
    assert clock.now()  # the command leaves the clock and the locale as they were
