"""The e-card's registration, facial recognition, log-in and the holder's list of who checked their
permit, through the pages (SPEC E1, E2, E3, E5, X2, X4, X5)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_of, post_form, sign_in
from tests.credentials.helpers import partner
from tests.ecard import pictures
from workcard import clock
from workcard.banks import service as banks
from workcard.config import get_settings
from workcard.credentials import service as credentials
from workcard.ecard import service
from workcard.ecard.models import EcardAccount, FaceAttempt, LivenessChallenge
from workcard.iam.roles import Role
from workcard.notify import service as notify
from workcard.permits import service as permits
from workcard.permits.models import Foreigner

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}
PASSWORD = "Travel2026!"
NAME = "Eileen Marie COLLINS"


@pytest.fixture
def holder_permit(make_permit):
    return make_permit(passport_name=NAME, photo=pictures.passport_photo())


def register(client, permit, *, name=NAME, password=PASSWORD, again=None, headers=EN):
    data = {"name": name, "permit_number": permit.number, "password": password,
            "password_again": password if again is None else again}  # fmt: skip
    return post_form(client, "/ecard/register", data, page="/ecard/register", headers=headers)


def face_step(client, headers=EN):
    page = client.get("/ecard/face", headers=headers)
    assert page.status_code == 200, page.text[:300]
    steps = re.search(r'data-steps="([^"]+)"', page.text).group(1).split()
    token = re.search(r'name="challenge" value="([^"]+)"', page.text).group(1)
    return token, steps


def send_face(client, token, frames, headers=EN):
    files = {f"frame{i}": (f"step{i + 1}.jpg", data, "image/jpeg") for i, data in enumerate(frames)}
    return client.post("/ecard/face", data={"challenge": token, "csrf_token": csrf_of(client, "/ecard/register")},
                       files=files, headers=headers)  # fmt: skip


def registered(client, permit):
    assert register(client, permit).status_code == 303
    token, steps = face_step(client)
    resp = send_face(client, token, pictures.frames_for(steps))
    assert resp.status_code == 303 and resp.headers["location"] == "/ecard", resp.text[:500]


def test_register_and_pass_facial_recognition(client, db, holder_permit):  # SPEC E1, E2
    resp = register(client, holder_permit)
    assert resp.status_code == 303 and resp.headers["location"] == "/ecard/face"
    token, steps = face_step(client)
    assert steps[0] == "front" and sorted(steps[1:]) == ["turn_left", "turn_right"]
    resp = send_face(client, token, pictures.frames_for(steps))
    assert resp.status_code == 303 and resp.headers["location"] == "/ecard"
    card = client.get("/ecard", headers=EN)
    assert (
        NAME in card.text and holder_permit.number in card.text and "Your e-card is registered" in card.text
    )
    account = db.scalar(select(EcardAccount).where(EcardAccount.foreigner_id == holder_permit.foreigner_id))
    assert account.state == service.ACTIVE and account.face_failures == 0
    assert [a.outcome for a in service.face_attempts(db, account)] == ["passed"]


@pytest.mark.parametrize(
    "name",
    [NAME.lower(), NAME + " ", "Eileen Marie  COLLINS", "Eileen COLLINS", ""],
    ids=["case", "trailing-space", "double-space", "missing-middle-name", "empty"],
)
def test_the_name_must_equal_the_passport_name_exactly(client, db, holder_permit, name):  # SPEC E1, X2
    resp = register(client, holder_permit, name=name)
    assert resp.status_code == 422
    assert "Write the name exactly as in your passport" in resp.text
    assert db.scalar(select(func.count()).select_from(EcardAccount)) == 0


def test_an_unknown_permit_gets_the_same_answer_as_a_wrong_name(client, db, holder_permit):  # SPEC E1, X2
    resp = post_form(client, "/ecard/register", {"name": NAME, "permit_number": "X" + holder_permit.number[1:],
                     "password": PASSWORD, "password_again": PASSWORD}, page="/ecard/register", headers=EN)  # fmt: skip
    assert resp.status_code == 422 and "Write the name exactly as in your passport" in resp.text


@pytest.mark.parametrize(
    ("password", "again", "message"),
    [
        ("short1!", None, "8 to 16 characters"),
        ("onlyletters", None, "at least two of"),
        ("12345678901234567", None, "8 to 16 characters"),
        ("with space 12", None, "no spaces"),
        (PASSWORD, PASSWORD + "x", "The two passwords are not the same."),
    ],
)
def test_password_rules(client, db, holder_permit, password, again, message):  # SPEC E1, X2
    resp = register(client, holder_permit, password=password, again=again)
    assert resp.status_code == 422 and message in resp.text
    assert db.scalar(select(func.count()).select_from(EcardAccount)) == 0


def test_a_permit_out_of_its_validity_cannot_register(client, db, world, make_permit):  # SPEC E1
    later = make_permit(passport_name=NAME, start=clock.today() + dt.timedelta(days=10))
    resp = register(client, later)
    assert resp.status_code == 422 and "has not started yet" in resp.text
    permits.cancel_permit(db, actor=world.officer, permit_id=later.id, reason="Left the company")
    resp = register(client, later)
    assert resp.status_code == 422 and "was cancelled" in resp.text


def test_messages_in_chinese(client, holder_permit):  # SPEC X1, E1
    resp = register(client, holder_permit, name="nobody", headers=ZH)
    assert resp.status_code == 422 and "护照" in resp.text


def test_a_failed_face_attempt_is_counted_and_the_sixth_closes_the_face_step(
    client, db, holder_permit
):  # SPEC E3
    assert register(client, holder_permit).status_code == 303
    for attempt in range(1, service.MAX_FACE_FAILURES):
        token, steps = face_step(client)
        resp = send_face(client, token, [pictures.stranger()] + pictures.frames_for(steps)[1:])
        assert resp.status_code == 422, resp.text[:300]
        assert "does not match the photo on file" in resp.text
        assert f"Tries left: {service.MAX_FACE_FAILURES - attempt}." in resp.text
    token, steps = face_step(client)
    resp = send_face(client, token, pictures.frames_for(list(reversed(steps[1:]))) + [pictures.straight()])
    assert resp.status_code == 403 and "verify with your bank card" in resp.text
    account = db.scalar(select(EcardAccount).where(EcardAccount.foreigner_id == holder_permit.foreigner_id))
    assert account.face_failures == service.MAX_FACE_FAILURES and account.state == service.PENDING
    # Registering again keeps the count: the face step stays closed.
    assert register(client, holder_permit).status_code == 303
    page = client.get("/ecard/face", headers=EN)
    assert "verify with your bank card" in page.text and 'name="challenge"' not in page.text
    assert db.scalar(select(func.count()).select_from(FaceAttempt)) == service.MAX_FACE_FAILURES


def test_bad_pictures_change_nothing(client, db, holder_permit):  # SPEC X2
    assert register(client, holder_permit).status_code == 303
    token, steps = face_step(client)
    frames = pictures.frames_for(steps)
    resp = send_face(client, token, [b"not an image", *frames[1:]])
    assert resp.status_code == 422 and "must be a JPEG or PNG file" in resp.text
    resp = send_face(client, _token_of(resp), [frames[0][:300], *frames[1:]])
    assert resp.status_code == 422 and "damaged or cannot be read" in resp.text
    resp = send_face(client, _token_of(resp), frames[:2])
    assert resp.status_code == 422 and "one picture for each of the 3 steps" in resp.text
    assert db.scalar(select(func.count()).select_from(FaceAttempt)) == 0
    assert "Tries left: 6." in resp.text  # none of it counted as a failed attempt
    token, steps = _token_of(resp), re.search(r'data-steps="([^"]+)"', resp.text).group(1).split()
    assert send_face(client, token, pictures.frames_for(steps)).status_code == 303


def _token_of(page) -> str:
    return re.search(r'name="challenge" value="([^"]+)"', page.text).group(1)


def test_a_challenge_is_used_once_and_expires(client, db, frozen, holder_permit):  # SPEC E2
    now = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
    frozen(now)
    assert register(client, holder_permit).status_code == 303
    token, steps = face_step(client)
    frozen(now + service.CHALLENGE_LIFE + dt.timedelta(seconds=1))
    resp = send_face(client, token, pictures.frames_for(steps))
    assert resp.status_code == 422 and "expired or was already used" in resp.text
    token, steps = face_step(client)
    assert send_face(client, token, [pictures.stranger(), *pictures.frames_for(steps)[1:]]).status_code == 422
    resp = send_face(client, token, pictures.frames_for(steps))
    assert resp.status_code == 422 and "expired or was already used" in resp.text


def test_no_usable_photo_on_file_leads_to_the_bank_card(client, db, make_permit):  # SPEC E3
    permit = make_permit(passport_name=NAME)  # no photo
    assert register(client, permit).status_code == 303
    token, steps = face_step(client)
    resp = send_face(client, token, pictures.frames_for(steps))
    assert resp.status_code == 403 and "cannot be used for facial recognition" in resp.text


def test_log_in_with_permit_number_and_password(client, db, holder_permit):  # SPEC E5
    registered(client, holder_permit)
    client.post("/ecard/logout", data={"csrf_token": csrf_of(client, "/ecard")})
    assert client.get("/ecard/checks").headers["location"] == "/ecard/login"
    data = {"permit_number": holder_permit.number, "password": "Wrong2026!"}
    resp = post_form(client, "/ecard/login", data, page="/ecard/login", headers=EN)
    assert resp.status_code == 401 and "permit number or password is wrong" in resp.text
    data["password"] = PASSWORD
    resp = post_form(client, "/ecard/login", data, page="/ecard/login", headers=EN)
    assert resp.status_code == 303 and resp.headers["location"] == "/ecard"
    assert client.get("/ecard/checks", headers=EN).status_code == 200


def test_a_registration_at_its_face_step_logs_in_to_that_step(client, holder_permit):  # SPEC E5, E2
    assert register(client, holder_permit).status_code == 303
    client.cookies.clear()
    data = {"permit_number": holder_permit.number, "password": PASSWORD}
    resp = post_form(client, "/ecard/login", data, page="/ecard/login", headers=EN)
    assert resp.status_code == 303 and resp.headers["location"] == "/ecard/face"
    assert client.get("/ecard/checks").status_code == 303  # not signed in to the card yet


def test_a_registered_card_cannot_be_registered_again(client, holder_permit):  # SPEC E1
    registered(client, holder_permit)
    resp = register(client, holder_permit)
    assert resp.status_code == 409 and "already registered" in resp.text


def test_the_holder_sees_who_checked_their_permit(
    client, db, world, make_staff, holder_permit
):  # SPEC P1, X4
    police = make_staff(Role.POLICE_VERIFIER)
    code = credentials.letter_code(db, holder_permit)
    credentials.verify_text(db, actor=f"staff:{police.id}:{police.username}", text=code, channel="page")
    auth = partner(db)
    assert client.post("/api/v1/verifications", json={"qr_text": code}, headers=auth).status_code == 200
    registered(client, holder_permit)
    page = client.get("/ecard/checks", headers=EN)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    rows = re.findall(r"<tr>\s*<td>(.*?)</tr>", page.text, re.S)
    assert len(rows) == 2
    assert "Partner system: Exit-Entry Bureau" in rows[0] and "System interface" in rows[0]
    assert f"Police verifier: {police.display_name}" in rows[1] and "Verifier page" in rows[1]
    assert all(holder_permit.number in r and ">Valid<" in r.replace("valid<", "Valid<") for r in rows)


def test_the_employer_never_sees_the_checks(client, db, world, make_staff, holder_permit):  # SPEC X4
    police = make_staff(Role.POLICE_VERIFIER)
    credentials.verify_text(db, actor=f"staff:{police.id}:{police.username}",
                            text=credentials.letter_code(db, holder_permit), channel="page")  # fmt: skip
    sign_in(client, world.staff.username)
    resp = client.get("/ecard/checks")
    assert resp.status_code == 303 and resp.headers["location"] == "/ecard/login"
    person = client.get(f"/employer/foreigners/{holder_permit.foreigner_id}", headers=EN)
    assert person.status_code == 200 and police.display_name not in person.text


# --- the bank card instead (SPEC E3) ---------------------------------------------------------------

CARD = "6222021234567894"
PHONE = "13912345678"


@pytest.fixture
def bank_ready(client, db, make_permit):
    """A registration whose face step is closed (no usable photo on file), and the person's bank card."""
    permit = make_permit(passport_name=NAME)
    holder = db.get(Foreigner, permit.foreigner_id)
    banks.open_account(db, bank="Test Bank", card_number=CARD, holder_name=NAME,
                       passport_number=holder.passport_number, phone=PHONE)  # fmt: skip
    assert register(client, permit).status_code == 303
    token, steps = face_step(client)
    assert send_face(client, token, pictures.frames_for(steps)).status_code == 403
    return permit, holder


def bank_form(holder, **changes):
    return {"name": NAME, "passport_number": holder.passport_number, "card_number": "6222 0212 3456 7894",
            "phone": "+86 139 1234 5678", **changes}  # fmt: skip


def last_code(db) -> str:
    return re.search(r"\b(\d{6})\b", notify.sent(db, phone=PHONE, limit=1)[0].body).group(1)


def test_the_bank_card_and_a_text_message_complete_the_registration(client, db, bank_ready):  # SPEC E3
    permit, holder = bank_ready
    page = client.get("/ecard/face", headers=EN)
    assert 'href="/ecard/bank"' in page.text
    resp = post_form(client, "/ecard/bank", bank_form(holder), page="/ecard/bank", headers=EN)
    assert resp.status_code == 200 and "139****5678" in resp.text
    resp = post_form(client, "/ecard/bank/code", {"code": last_code(db), "phone": "139****5678"},
                     page="/ecard/bank", headers=EN)  # fmt: skip
    assert resp.status_code == 303 and resp.headers["location"] == "/ecard"
    assert NAME in client.get("/ecard", headers=EN).text
    account = db.scalar(select(EcardAccount).where(EcardAccount.foreigner_id == holder.id))
    assert account.state == service.ACTIVE


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"card_number": "6222021234567895"}, "check digit does not match"),
        ({"card_number": "4111111111111111"}, "starts with 62"),
        ({"phone": "12345"}, "11-digit mobile number"),
        ({"phone": "13800000000"}, "The bank could not confirm"),
        ({"name": "Eileen Collins"}, "The bank could not confirm"),
        ({"passport_number": "X0000000"}, "The bank could not confirm"),
    ],
)
def test_bank_details_that_do_not_match_are_refused(client, db, bank_ready, changes, message):  # SPEC E3, X2
    _, holder = bank_ready
    resp = post_form(client, "/ecard/bank", bank_form(holder, **changes), page="/ecard/bank", headers=EN)
    assert resp.status_code == 422 and message in resp.text
    assert notify.sent(db, phone=PHONE) == []


def test_a_wrong_code_is_counted_and_an_old_code_is_dead(client, db, bank_ready):  # SPEC E3, X2
    _, holder = bank_ready
    post_form(client, "/ecard/bank", bank_form(holder), page="/ecard/bank", headers=EN)
    first = last_code(db)
    post_form(client, "/ecard/bank", bank_form(holder), page="/ecard/bank", headers=EN)
    second = last_code(db)
    wrong = next(c for c in ("000000", "111111", "222222") if c not in (first, second))
    resp = post_form(client, "/ecard/bank/code", {"code": wrong}, page="/ecard/bank", headers=EN)
    assert resp.status_code == 422 and f"Tries left: {service.SMS_CODE_TRIES - 1}." in resp.text
    if first != second:
        resp = post_form(client, "/ecard/bank/code", {"code": first}, page="/ecard/bank", headers=EN)
        assert resp.status_code == 422 and "The code is wrong" in resp.text
    resp = post_form(client, "/ecard/bank/code", {"code": second}, page="/ecard/bank", headers=EN)
    assert resp.status_code == 303


def test_the_bank_card_is_not_offered_while_the_face_step_is_open(client, db, holder_permit):  # SPEC E3
    assert register(client, holder_permit).status_code == 303
    assert client.get("/ecard/bank").headers["location"] == "/ecard/face"
    resp = post_form(client, "/ecard/bank", {"name": NAME}, page="/ecard/register", headers=EN)
    assert resp.status_code == 403 and "complete facial recognition first" in resp.text


def test_registering_again_ends_the_earlier_browsers_hold(client, app, holder_permit):  # SPEC E1, E2
    from fastapi.testclient import TestClient

    assert register(client, holder_permit).status_code == 303
    with TestClient(app, follow_redirects=False) as other:
        assert register(other, holder_permit, password="Other2026!").status_code == 303
        # the first browser can no longer complete the registration with the password the other one set
        assert client.get("/ecard/face").headers["location"] == "/ecard/register"
        token, steps = face_step(other)
        assert send_face(other, token, pictures.frames_for(steps)).status_code == 303
    data = {"permit_number": holder_permit.number, "password": "Other2026!"}
    assert post_form(client, "/ecard/login", data, page="/ecard/login").status_code == 303


def test_a_new_challenge_ends_the_one_before(client, holder_permit):  # SPEC E2, E3
    assert register(client, holder_permit).status_code == 303
    first, steps = face_step(client)
    face_step(client)
    resp = send_face(client, first, pictures.frames_for(steps))
    assert resp.status_code == 422 and "expired or was already used" in resp.text


def test_codes_sent_are_limited_per_account(client, db, bank_ready):  # SPEC E3, X2
    _, holder = bank_ready
    limit = get_settings().login_max_failures
    for _ in range(limit):
        assert post_form(client, "/ecard/bank", bank_form(holder), page="/ecard/bank").status_code == 200
    resp = post_form(client, "/ecard/bank", bank_form(holder), page="/ecard/bank", headers=EN)
    assert resp.status_code == 429 and "Too many failed attempts" in resp.text
    assert len(notify.sent(db, phone=PHONE, limit=100)) == limit


def test_card_and_phone_numbers_take_ascii_digits_only(client, bank_ready):  # SPEC E3, X2
    _, holder = bank_ready
    resp = post_form(client, "/ecard/bank", bank_form(holder, phone="１３９１２３４５６７８"), page="/ecard/bank",
                     headers=EN)  # fmt: skip
    assert resp.status_code == 422 and "11-digit mobile number" in resp.text


def test_housekeeping_ends_e_card_sessions_and_challenges(client, db, frozen, holder_permit):  # SPEC E2, E5
    now = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
    frozen(now)
    assert register(client, holder_permit).status_code == 303
    face_step(client)
    frozen(now + service.FACE_SESSION + dt.timedelta(seconds=1))
    assert service.purge(db) == 1
    assert db.scalar(select(func.count()).select_from(LivenessChallenge)) == 0
    assert client.get("/ecard/face").headers["location"] == "/ecard/register"


def test_the_sms_command_reads_the_outbox(tmp_path, monkeypatch):  # SPEC E3
    from typer.testing import CliRunner

    from workcard.cli import app
    from workcard.db import make_engine, make_sessionmaker
    from workcard.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'sms.db'}"
    upgrade(url)
    with make_sessionmaker(make_engine(url))() as session:
        notify.GATEWAY.send(session, phone=PHONE, body="E-card verification code: 123456.")
        notify.GATEWAY.send(session, phone="13800000000", body="another")
        session.commit()
    monkeypatch.setenv("WORKCARD_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        found = CliRunner().invoke(app, ["sms", "--to", PHONE])
        assert found.exit_code == 0 and f"to {PHONE}: E-card verification code: 123456." in found.output
        assert "another" not in found.output
        none = CliRunner().invoke(app, ["sms", "--to", "13700000000"])
        assert none.exit_code == 0 and "no text messages to 13700000000" in none.output
    finally:
        get_settings.cache_clear()
