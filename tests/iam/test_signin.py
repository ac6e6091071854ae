"""Sign-in, sessions, CSRF and throttling (issue: staff accounts; SPEC X2, X4, X5)."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import PASSWORD, csrf_of, sign_in
from workcard import audit, clock
from workcard.iam.models import WebSession
from workcard.iam.roles import Role


def test_sign_in_and_out(client, make_staff, db):
    user = make_staff(Role.PERMIT_OFFICER)
    sign_in(client, user.username)
    assert client.get("/officer/queue").status_code == 200
    token = csrf_of(client, "/officer/queue")
    out = client.post("/signout", data={"csrf_token": token})
    assert out.status_code == 303
    assert client.get("/officer/queue").status_code == 303  # back to the sign-in page


def test_wrong_password_is_refused_and_counted(client, make_staff, db):  # SPEC X2, X5
    user = make_staff(Role.ADMIN)
    token = csrf_of(client)
    resp = client.post(
        "/signin",
        data={"username": user.username, "password": "wrong-pass-1", "csrf_token": token},
        headers={"Accept-Language": "en"},
    )
    assert resp.status_code == 401
    assert "wrong" in resp.text
    assert db.scalar(select(func.count()).select_from(WebSession)) == 0
    actions = db.scalars(
        select(audit.AuditRecord.action).where(audit.AuditRecord.action == "signin.fail")
    ).all()
    assert actions == ["signin.fail"]


def test_throttled_after_repeated_failures(client, make_staff):  # SPEC X2
    user = make_staff(Role.ADMIN)
    with clock.frozen(clock.now()):  # all six attempts fall in one counting window
        for _ in range(5):
            token = csrf_of(client)
            client.post(
                "/signin", data={"username": user.username, "password": "nope-nope-1", "csrf_token": token}
            )
        token = csrf_of(client)
        resp = client.post(
            "/signin", data={"username": user.username, "password": PASSWORD, "csrf_token": token}
        )
    assert resp.status_code == 429
    assert "Retry-After" in resp.headers


def test_missing_or_forged_csrf_is_refused(client, make_staff, db):  # SPEC X2
    user = make_staff(Role.ADMIN)
    csrf_of(client)  # sets the nonce cookie
    for data in ({}, {"csrf_token": "forged"}):
        resp = client.post(
            "/signin",
            data={"username": user.username, "password": PASSWORD, **data},
            headers={"Accept-Language": "en"},
        )
        assert resp.status_code == 403
        assert "reload the page" in resp.text
    assert db.scalar(select(func.count()).select_from(WebSession)) == 0


def test_chinese_by_accept_language_and_choice(client, make_staff):  # SPEC X1
    assert "登录" in client.get("/signin", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    assert "Sign in" in client.get("/signin", headers={"Accept-Language": "en-GB,en;q=0.8"}).text
    token = csrf_of(client)
    resp = client.post("/lang", data={"locale": "en", "next": "/signin", "csrf_token": token})
    assert resp.status_code == 303
    for sent, back in (
        ("/employer/permits?q=Jane&status=valid", "/employer/permits?q=Jane&status=valid"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
    ):
        again = client.post("/lang", data={"locale": "en", "next": sent, "csrf_token": token})
        assert again.headers["location"] == back  # the same page and query, on this site only
    page = client.get("/signin?next=/employer/permits", headers={"Accept-Language": "en"})
    assert 'name="next" value="/signin?next=/employer/permits"' in page.text  # the button keeps the query
    assert "Sign in" in client.get("/signin", headers={"Accept-Language": "zh-CN"}).text
