"""The Work System's pages through the HTTP app (SPEC W1, W2, X1, X2, X4)."""

from __future__ import annotations

import datetime as dt
import io

from PIL import Image
from sqlalchemy import func, select

from tests.conftest import post_form, sign_in
from workcard import audit, clock
from workcard.permits import jobs
from workcard.permits.models import Application, Foreigner, Permit

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (358, 441), "white").save(buf, "JPEG")
    return buf.getvalue()


def _person_form(**overrides):
    values = {"passport_name": "Zoë Ångström·Li", "nationality": "SWE", "passport_number": "S1234567",
              "passport_expiry": str(clock.today() + dt.timedelta(days=3000)), "date_of_birth": "1991-05-06",
              "sex": "F"}  # fmt: skip
    values.update(overrides)
    return values


def test_employer_to_officer_to_letter(client, db, world):  # SPEC W1, W2
    sign_in(client, world.staff.username)
    resp = post_form(client, "/employer/foreigners/new", _person_form(), page="/employer/foreigners/new",
                     files={"photo": ("me.jpg", _jpeg(), "image/jpeg")})  # fmt: skip
    assert resp.status_code == 303, resp.text[:400]
    person = db.scalar(select(Foreigner).where(Foreigner.passport_number == "S1234567"))
    assert person.passport_name == "Zoë Ångström·Li" and person.photo
    start = clock.today()
    resp = post_form(client, "/employer/applications/new", {
        "kind": "new", "foreigner_id": person.id, "category": "B", "position": "Researcher",
        "work_location": "Tianjin", "valid_from": str(start), "valid_until": str(start + dt.timedelta(days=365)),
        "submit": "1"}, page="/employer/applications/new")  # fmt: skip
    assert resp.status_code == 303, resp.text[:400]
    app_path = resp.headers["location"]
    app_id = int(app_path.rsplit("/", 1)[1])
    assert db.get(Application, app_id).state == "submitted"

    client.cookies.clear()
    sign_in(client, world.officer.username)
    assert str(app_id) in client.get("/officer/queue", headers=EN).text
    resp = post_form(
        client, f"/officer/applications/{app_id}", {"decision": "approve"}, page="/officer/queue"
    )
    assert resp.status_code == 303
    permit = db.scalar(select(Permit).where(Permit.foreigner_id == person.id))
    assert permit.status == "valid"

    client.cookies.clear()
    sign_in(client, world.staff.username)
    page = client.get(f"/employer/permits/{permit.id}", headers=EN)
    assert permit.number in page.text and "Version 1" in page.text
    pdf = client.get(f"/employer/permits/{permit.id}/letter.pdf?download=true")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "attachment" in pdf.headers["content-disposition"]


def test_other_employer_gets_the_same_404_as_missing(client, db, world, make_permit):  # SPEC X4
    permit = make_permit()
    app_id = db.scalar(select(Application.id).where(Application.permit_id == permit.id))
    sign_in(client, world.other_staff.username)
    theirs = client.get(f"/employer/applications/{app_id}", headers=EN)
    missing = client.get("/employer/applications/987654", headers=EN)
    assert theirs.status_code == missing.status_code == 404

    def main(html: str) -> str:
        return html.split("<main>")[1].split("</main>")[0]

    assert main(theirs.text) == main(missing.text)
    assert client.get(f"/employer/permits/{permit.id}/letter.pdf").status_code == 404


def test_bad_input_rerenders_the_form_and_changes_nothing(client, db, world):  # SPEC X2, X1
    sign_in(client, world.staff.username)
    before = db.scalar(select(func.count()).select_from(Foreigner))
    resp = post_form(client, "/employer/foreigners/new", _person_form(nationality="XXX"),
                     page="/employer/foreigners/new", headers=EN)  # fmt: skip
    assert resp.status_code == 422
    assert "alpha-3" in resp.text and 'value="Zoë Ångström·Li"' in resp.text  # input kept
    resp = post_form(client, "/employer/foreigners/new", _person_form(passport_name="Zoë\u200bLi"),
                     page="/employer/foreigners/new", headers=ZH)  # fmt: skip
    assert resp.status_code == 422 and "200B" in resp.text
    resp = post_form(client, "/employer/foreigners/new", _person_form(), page="/employer/foreigners/new",
                     files={"photo": ("x.png", b"\x89PNG\r\n\x1a\nxx", "image/png")}, headers=EN)  # fmt: skip
    assert resp.status_code == 422 and "JPEG" in resp.text
    assert db.scalar(select(func.count()).select_from(Foreigner)) == before


def test_officer_cancel_twice_shows_message(client, db, world, make_permit):  # SPEC X2, W4
    permit = make_permit()
    sign_in(client, world.officer.username)
    ok = post_form(client, f"/officer/permits/{permit.id}", {"op": "cancel", "reason": "Left China"},
                   page="/officer/queue")  # fmt: skip
    assert ok.status_code == 303
    again = post_form(client, f"/officer/permits/{permit.id}", {"op": "cancel", "reason": "Again"},
                      page="/officer/queue", headers=EN)  # fmt: skip
    assert again.status_code == 409 and "not possible" in again.text
    db.refresh(permit)
    assert permit.cancel_reason == "Left China"


def test_roles_cannot_use_each_others_pages(client, world):  # SPEC X4
    sign_in(client, world.staff.username)
    assert client.get("/officer/queue").status_code == 403
    assert client.get("/admin/partners").status_code == 403


def test_healthz(client):
    assert client.get("/healthz").json()["status"] == "ok"


def test_pages_in_both_languages(client, world):  # SPEC X1
    sign_in(client, world.staff.username)
    assert "Foreign staff" in client.get("/employer/foreigners", headers=EN).text
    assert "Foreign staff" not in client.get("/employer/foreigners", headers=ZH).text


def _letters(html: str) -> str:
    """The page's section of notification letters."""
    return next(section for section in html.split("<section") if "letter.pdf" in section)


def test_officer_actions_are_confirmed_once(client, world, make_permit):  # SPEC W1, X1
    permit = make_permit()
    sign_in(client, world.officer.username)
    until = str(permit.valid_until + dt.timedelta(days=100))
    renewed = post_form(client, f"/officer/permits/{permit.id}", {"op": "renew", "valid_until": until},
                        page="/officer/queue")  # fmt: skip
    assert renewed.status_code == 303
    page = client.get(renewed.headers["location"], headers=EN)
    assert 'class="flash" role="status">The permit was renewed;' in page.text
    assert 'class="flash"' not in client.get(renewed.headers["location"], headers=EN).text  # said once
    cancelled = post_form(client, f"/officer/permits/{permit.id}", {"op": "cancel", "reason": "Left China"},
                          page="/officer/queue")  # fmt: skip
    page = client.get(cancelled.headers["location"], headers=ZH)
    assert 'class="flash" role="status">工作许可已注销' in page.text


def test_letters_of_a_cancelled_permit_are_records(client, world, make_permit, frozen):  # SPEC W2, W4, X1
    frozen(dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC))
    permit = make_permit()
    sign_in(client, world.officer.username)
    assert "(current)" in _letters(client.get(f"/officer/permits/{permit.id}", headers=EN).text)
    frozen(dt.datetime(2026, 5, 10, 18, 0, tzinfo=dt.UTC))  # 11 May in China
    sign_in(client, world.officer.username)  # the sign-in of March has ended
    post_form(client, f"/officer/permits/{permit.id}", {"op": "cancel", "reason": "Left China"},
              page="/officer/queue")  # fmt: skip
    for path in (f"/officer/permits/{permit.id}", f"/employer/permits/{permit.id}"):
        if path.startswith("/employer"):
            client.cookies.clear()
            sign_in(client, world.staff.username)
        letters = _letters(client.get(path, headers=EN).text)
        assert "(current)" not in letters and "(permit cancelled on May 11, 2026)" in letters
        assert "kept as records" in letters
        assert "工作许可已于2026年5月11日注销" in _letters(client.get(path, headers=ZH).text)
        pdf = client.get(f"{path}/letter.pdf?download=true")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")  # still there, as a record
        assert (
            f'filename="work-permit-{permit.number}-v1-cancelled.pdf"' in pdf.headers["content-disposition"]
        )


def test_an_expired_permit_shows_its_expiry(client, db, world, make_permit, frozen):  # SPEC W4
    frozen.date(dt.date(2026, 1, 10))
    permit = make_permit(days=30)  # valid until 9 February
    audit.write_pending(db)  # the test's session does not commit: its records, for the app to read
    frozen.date(dt.date(2026, 2, 10))
    sign_in(client, world.staff.username)
    before_job = client.get(f"/employer/permits/{permit.id}", headers=EN).text
    assert "(permit expired on Feb 9, 2026)" in _letters(before_job)  # as of today, before the job ran
    assert "Permit expired" not in before_job.split("History")[1]
    assert jobs.expire_due(db) == 1
    audit.write_pending(db)
    page = client.get(f"/employer/permits/{permit.id}", headers=EN).text
    assert "(permit expired on Feb 9, 2026)" in _letters(page) and "(current)" not in _letters(page)
    history = page.split("History")[1]
    assert history.index("Permit issued") < history.index("Permit expired")
    pdf = client.get(f"/employer/permits/{permit.id}/letter.pdf")
    assert pdf.status_code == 200 and "-v1-expired.pdf" in pdf.headers["content-disposition"]


def test_lists_show_a_permit_that_has_not_started_as_not_yet_valid(
    client, db, world, make_permit
):  # SPEC W4, X1
    """The lists, the person's page and the application say what the permit's own page says."""
    import datetime as dt

    from workcard import clock

    permit = make_permit(passport_name="Asa Lind", start=clock.today() + dt.timedelta(days=10))
    db.flush()
    sign_in(client, world.staff.username)
    for path in ("/employer/permits", f"/employer/foreigners/{permit.foreigner_id}",
                 f"/employer/permits/{permit.id}"):  # fmt: skip
        assert "Not yet valid" in client.get(path, headers=EN).text, path
    client.cookies.clear()
    sign_in(client, world.officer.username)
    assert "Not yet valid" in client.get("/officer/permits", headers=EN).text
