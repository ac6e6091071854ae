# Offline verification: sync the anchor-signed lists, then check codes with no network (SPEC P1 officers
# verify the QR code, P2 valid now or not, X2 clear refusals). The server is the real app, reached
# through the TestClient (an httpx.Client), or an httpx.MockTransport where the server must misbehave.
from __future__ import annotations

import contextlib
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
from workcard.web import i18n

SERVER = "http://testserver"
T0 = dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC)


def in_language(locale: str, exc: offline.OfflineError) -> str:
    token = i18n.current_locale.set(locale)
    try:
        return offline.explain(exc)
    finally:
        i18n.current_locale.reset(token)


@contextlib.contextmanager
def refused(match: str):
    """Expect an OfflineError whose English message contains ``match``."""
    with pytest.raises(offline.OfflineError) as caught:
        yield
    assert match in in_language("en", caught.value), in_language("en", caught.value)


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
    frozen.date(permit.valid_until + dt.timedelta(days=3))  # the letter's code has expired too
    ended = offline.verify(code, tmp_path)  # still says which permit ended when
    assert ended.verdict == "expired" and ended.reason == "The work permit expired on {date}."
    assert ended.params == result.params and ended.claims.permit_number == permit.number


def test_a_permit_that_has_not_started_is_not_yet_valid_offline_too(
    client, db, make_permit, tmp_path, frozen
):  # SPEC P1, W4: the same verdict as online
    frozen.date(dt.date(2026, 1, 1))
    permit = make_permit(start=dt.date(2026, 2, 1))  # approved, and its letter printed, before its start
    code = service.letter_code(db, permit)
    offline.sync(SERVER, tmp_path, client=client)
    early = offline.verify(code, tmp_path)
    assert early.verdict == "not_yet_valid" and early.params == {"date": "2026-02-01"}
    assert service.verify_text(db, actor="t", text=code, channel="page").verdict == "not_yet_valid"
    frozen.date(dt.date(2026, 2, 1))
    assert offline.verify(code, tmp_path).verdict == "valid"


def test_expired_ecard_code_offline_asks_for_a_current_one(
    client, db, make_permit, tmp_path, frozen
):  # SPEC E8
    frozen(dt.datetime(2026, 1, 5, 4, 0, tzinfo=dt.UTC))
    permit = make_permit(days=300)
    code = service.ecard_code(db, permit)
    offline.sync(SERVER, tmp_path, client=client)
    frozen(dt.datetime(2026, 1, 5, 4, 5, tzinfo=dt.UTC))  # a screenshot five minutes later
    result = offline.verify(code, tmp_path)
    assert result.verdict == "expired"
    assert result.reason == "This QR code has expired; ask the holder to show a current one."


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
    with refused("run `workcard verify --sync URL` first"):
        offline.verify("WC1:X", tmp_path / "nothing")


def test_pinned_anchor(client, db, tmp_path):  # SPEC P1
    stranger = lists.b64url(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    with refused("The trust list is signed by another anchor"):
        offline.sync(SERVER, tmp_path / "a", client=client, anchor=stranger)
    assert not (tmp_path / "a" / "anchor.txt").exists()  # nothing stored from a refused sync
    right = lists.b64url(keys.anchor_public_raw())
    report = offline.sync(SERVER, tmp_path / "b", client=client, anchor=right)
    assert report.first_use is False
    with refused("pins another trust anchor"):
        offline.sync(SERVER, tmp_path / "b", client=client, anchor=stranger)
    with refused("not an Ed25519 public key in base64url"):
        offline.sync(SERVER, tmp_path / "c", client=client, anchor="not a key!")


def test_errors_in_chinese_with_their_reasons(client, db, tmp_path):  # SPEC X1
    """An error and the reason behind it, and the kind of list it names, are all translated."""
    stranger = lists.b64url(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    with pytest.raises(offline.OfflineError) as caught:
        offline.sync(SERVER, tmp_path, client=client, anchor=stranger)
    assert in_language("zh_CN", caught.value).startswith(
        "http://testserver/api/v1/trust-list的列表被拒绝：信任列表由其他信任锚签署（anchor-"
    )
    assert in_language("en", caught.value).startswith(
        "The list at http://testserver/api/v1/trust-list is refused: The trust list is signed by another anchor"
    )


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
    with refused("Cannot fetch http://127.0.0.1:9/api/v1/trust-list"):
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
    with refused("older status list"):
        offline.sync(SERVER, tmp_path, client=replay)
    assert offline.verify(service.letter_code(db, make_permit()), tmp_path).verdict == "valid"
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["server"] == SERVER


# --- the command ---------------------------------------------------------------------------------------


@pytest.fixture
def run(client, monkeypatch, tmp_path):
    """``run(*args, input=None)``: ``workcard verify ... --dir tmp_path``, syncing through the TestClient."""
    monkeypatch.setattr(offline, "sync", functools.partial(offline.sync, client=client))
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):  # noqa: A002 - CliRunner's name
        return runner.invoke(cli.app, ["verify", *args, "--dir", str(tmp_path)], input=input)

    return invoke


def test_verify_command(db, world, make_permit, tmp_path, run):  # SPEC P1, X1
    permit = make_permit(passport_name="Ivan Horvat", nationality="HRV")
    code = service.letter_code(db, permit)
    synced = run("--sync", SERVER, "--lang", "en")  # --sync alone: only the lists
    assert synced.exit_code == 0, synced.output
    assert "Trusting the server's trust anchor on first use" in synced.output
    assert "Synced at" in synced.output and "Trust list: 1 key (updated)." in synced.output
    ok = run(code, "--lang", "en")
    assert ok.exit_code == 0, ok.output
    assert "VALID: The work permit is valid." in ok.output and "Ivan Horvat" in ok.output
    assert "The status list is 0 hours old" in ok.output and "WARNING" not in ok.output
    assert f"  Permit No.             {permit.number}\n" in ok.output  # labels aligned
    zh = run(code, "--lang", "zh_CN")
    assert zh.exit_code == 0 and zh.output.startswith("有效：工作许可有效。\n")
    photo = tmp_path / "code.png"
    photo.write_bytes(qr_png(code))
    assert run("--image", str(photo)).exit_code == 0
    assert run("-", input=code + "\n").exit_code == 0
    bad = run("WC1:NOPE", "--lang", "en")
    assert bad.exit_code == 1 and "MALFORMED" in bad.output
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left")
    jobs.rebuild_status_list(db)
    assert run("--sync", SERVER).exit_code == 0
    cancelled = run(code, "--lang", "en")
    assert cancelled.exit_code == 1 and "CANCELLED" in cancelled.output
    assert clock.now()  # the command leaves the clock and the locale as they were


def test_command_speaks_chinese_by_default(db, make_permit, run, frozen):  # SPEC X1
    frozen(T0)
    permit = make_permit(passport_name="Ivan Horvat", nationality="HRV", days=30)
    code = service.letter_code(db, permit)
    synced = run("--sync", SERVER)
    assert synced.output.startswith("首次使用，信任服务器的信任锚：")
    assert "已于2026年11月21日 11:00:00从http://testserver同步。" in synced.output
    assert "信任列表：1个密钥（已更新）。" in synced.output and "状态列表：0条记录（已更新）" in synced.output
    ok = run(code)
    assert ok.exit_code == 0, ok.output
    until = f"{permit.valid_until.year}年{permit.valid_until.month}月{permit.valid_until.day}日"
    assert ok.output.splitlines() == [
        "有效：工作许可有效。",
        f"  工作许可号码        {permit.number}",
        "  姓名（与护照一致）  Ivan Horvat",
        "  国籍                HRV",
        f"  有效期至            {until}",
        f"  二维码              工作许可通知，生成于2026年11月21日 11:00:00，密钥{keys.current_key(db).kid}",
        "状态列表已有0小时（上次同步于2026年11月21日 11:00:00，签发于2026年11月21日 11:00:00）。",
    ]
    # a date inside the reason is written as the pages write it, not in ISO
    frozen.date(permit.valid_until + dt.timedelta(days=1))
    expired = run(code)
    assert expired.exit_code == 1
    assert expired.output.startswith(f"已过期：工作许可已于{until}过期。\n")
    assert permit.valid_until.isoformat() not in expired.output
    english = run(code, "--lang", "en")
    assert (
        f"EXPIRED: The work permit expired on {permit.valid_until:%b} {permit.valid_until.day}, 2026."
        in english.output
    )


def test_stale_lists_warn_and_exit_3(db, world, make_permit, run, frozen):  # SPEC P1
    frozen(T0)
    permit = make_permit()
    code = service.letter_code(db, permit)
    assert run("--sync", SERVER).exit_code == 0
    frozen(T0 + dt.timedelta(hours=23))  # synced within the day: fine
    fresh = run(code, "--lang", "en")
    assert fresh.exit_code == 0 and "WARNING" not in fresh.output
    frozen(T0 + dt.timedelta(days=7))
    stale = run(code, "--lang", "en")
    assert stale.exit_code == 3, stale.output  # valid, but stale: not the same as valid
    lines = stale.output.splitlines()
    assert lines[0] == "VALID: The work permit is valid."
    assert lines[1] == (
        "WARNING: the lists were last synced 168 hours ago (Nov 21, 2026, 11:00:00\u202fAM): permits cancelled "
        "since then are not known here. Sync again while online: workcard verify --sync http://testserver"
    )
    zh = run(code)
    assert zh.exit_code == 3
    assert zh.output.splitlines()[1].startswith("警告：列表上次同步于168小时前（2026年11月21日 11:00:00），")
    assert run(code, "--stale-after", "200").exit_code == 0  # the verifier's own policy
    # a verdict other than valid keeps its own code, with the warning
    permits.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left")
    assert run("WC2:NOPE", "--lang", "en").exit_code == 1
    # syncing makes the lists fresh again (and brings the cancellation)
    jobs.rebuild_status_list(db)
    assert run("--sync", SERVER).exit_code == 0
    after = run(code, "--lang", "en")
    assert after.exit_code == 1 and "CANCELLED" in after.output and "WARNING" not in after.output


def test_stale_by_the_issue_time_when_no_sync_is_recorded(db, make_permit, run, frozen, tmp_path):  # SPEC P1
    frozen(T0)
    code = service.letter_code(db, make_permit())
    assert run("--sync", SERVER).exit_code == 0
    (tmp_path / "state.json").write_text('{"synced_at": "yesterday?"}')  # damaged: not trusted
    frozen(T0 + dt.timedelta(hours=30))
    stale = run(code, "--lang", "en")
    assert stale.exit_code == 3 and "30 hours ago" in stale.output and "--sync URL" in stale.output


def test_command_refuses_bad_input_clearly(db, make_permit, run, tmp_path):  # SPEC X1, X2
    code = service.letter_code(db, make_permit())
    never = run(code, "--lang", "en")  # before any sync
    assert (
        never.exit_code == 2 and "No lists in" in never.output and "yet: run `workcard verify" in never.output
    )
    assert run(code).output.startswith(str(tmp_path) + "中尚无列表")
    french = run("--sync", SERVER, "--lang", "fr")
    assert french.exit_code == 2
    assert french.output == "不支持语言“fr”，请选择：zh_CN, en。\n"  # in the default language
    assert not (tmp_path / "anchor.txt").exists()  # nothing was done
    assert run("--sync", SERVER, "--lang", "en-GB").exit_code == 0
    empty = tmp_path / "empty.png"
    empty.write_bytes(qr_png())
    no_code = run("--image", str(empty), "--lang", "en")
    assert no_code.exit_code == 2 and "No QR code" in no_code.output
    photo = tmp_path / "code.png"
    photo.write_bytes(qr_png(code))
    both = run(code, "--image", str(photo), "--lang", "en")
    assert both.exit_code == 2 and "Give either the code's text or --image FILE, not both." in both.output
    a_file = run(str(photo))  # a photo's path given as the code's text
    assert (
        a_file.exit_code == 2
        and a_file.output == f"{photo}是一个文件：要读取照片中的二维码，请使用 --image {photo}。\n"
    )
    missing = run("--image", str(tmp_path / "nope.jpg"))
    assert missing.exit_code == 2 and missing.output == f"无法读取文件{tmp_path / 'nope.jpg'}。\n"
    assert run("--image", str(tmp_path), "--lang", "en").output.startswith("Cannot read the file")
    nothing = run("--lang", "en")
    assert nothing.exit_code == 2 and "Give the code's text, --image FILE or --sync URL" in nothing.output
    too_long = run("WC2:" + "A" * 1100, "--lang", "en")  # refused as the page and the API refuse it
    assert too_long.exit_code == 2
    assert too_long.output == "This text is too long for a permit QR code (at most 1024 characters).\n"


def test_failed_sync_says_why(tmp_path):  # SPEC X1, X2
    failed = CliRunner().invoke(cli.app, ["verify", "--sync", "http://127.0.0.1:9", "--dir", str(tmp_path)])
    assert failed.exit_code == 2
    assert failed.output.startswith("同步失败：无法获取http://127.0.0.1:9/api/v1/trust-list（")
    assert not (tmp_path / "anchor.txt").exists()
