"""The framework's errors reach people and partner systems in their language, as the project's own
messages (SPEC X1, X2): request validation, unreadable bodies and forms, unknown addresses and methods,
undecodable credentials; error pages know who is signed in."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.conftest import basic_auth, csrf_of, sign_in
from tests.credentials.helpers import partner
from workcard import audit, clock
from workcard.iam import service as iam
from workcard.iam.roles import Role
from workcard.web import i18n
from workcard.web.errors import field_error

pytestmark = pytest.mark.own_database  # on PostgreSQL, the partner API as it runs: on its own connections

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}
CJK = re.compile(r"[\u4e00-\u9fff]")
VERIFY = "/api/v1/permits/verify"


def _errors(resp) -> dict[str, str]:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    return {e["field"]: e["message"] for e in resp.json()["errors"]}


@pytest.fixture
def partner_headers(db) -> dict[str, str]:
    """A partner system's credentials: the body of a call is looked at once the call is admitted."""
    return partner(db)


def test_field_messages_are_the_projects_in_english(client, partner_headers):  # SPEC X2
    body = {"permit_number": "", "holder_name": "x" * 121, "passport_number": 5, "extra": 1}
    assert _errors(client.post(VERIFY, json=body, headers={**EN, **partner_headers})) == {
        "permit_number": "Must be at least 1 character long.",
        "holder_name": "Must be at most 120 characters long.",
        "passport_number": "Must be text.",
        "extra": "This field is not part of the request.",
    }
    assert _errors(client.post(VERIFY, json={}, headers={**EN, **partner_headers})) == {
        "permit_number": "This field is required.",
        "holder_name": "This field is required.",
    }
    too_long = client.post(
        "/api/v1/verifications", json={"qr_text": "x" * 1025}, headers={**EN, **partner_headers}
    )
    assert _errors(too_long) == {"qr_text": "Must be at most 1024 characters long."}


def test_field_messages_are_translated(client, partner_headers):  # SPEC X1
    body = {"holder_name": "x" * 121, "passport_number": 5, "extra": 1}
    errors = _errors(client.post(VERIFY, json=body, headers={**ZH, **partner_headers}))
    assert errors.keys() == {"permit_number", "holder_name", "passport_number", "extra"}
    assert all(CJK.search(m) for m in errors.values()), errors
    assert "120" in errors["holder_name"]
    assert (
        client.post(VERIFY, json=body, headers={**ZH, **partner_headers}).json()["detail"]
        != (client.post(VERIFY, json=body, headers={**EN, **partner_headers}).json()["detail"])
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "The request body is not valid JSON (error at character 1)."),
        (b'{"permit_number": ', "The request body is not valid JSON (error at character 18)."),
        (b"", "The request has no body: send a JSON object."),
        (b"[]", "The request body must be a JSON object."),
        (b'"text"', "The request body must be a JSON object."),
    ],
)
def test_a_body_that_is_not_an_object_is_a_body_level_error(client, partner_headers, raw, message):  # SPEC X2
    resp = client.post(
        VERIFY, content=raw, headers={**EN, **partner_headers, "Content-Type": "application/json"}
    )
    assert _errors(resp) == {"": message}


def test_a_body_that_is_not_json_is_refused_with_415(client, partner_headers):  # SPEC X2
    for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
        headers = {**EN, **partner_headers, **({"Content-Type": content_type} if content_type else {})}
        resp = client.post(VERIFY, content=b'{"permit_number": "1", "holder_name": "x"}', headers=headers)
        assert resp.status_code == 415, (content_type, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        problem = resp.json()
        assert problem["type"] == "urn:workcard:problem:unsupported_media_type"
        assert problem["detail"] == (
            "The request body must be JSON, sent with the header Content-Type: application/json."
        )
    zh = client.post(
        VERIFY, content=b"permit_number=1", headers={**ZH, **partner_headers, "Content-Type": "text/plain"}
    )
    assert zh.status_code == 415 and CJK.search(zh.json()["detail"]) and CJK.search(zh.json()["title"])


def test_a_refused_body_is_still_authenticated_counted_and_recorded(client, db):  # SPEC W5, X2, X5
    refused = (
        select(func.count()).select_from(audit.AuditRecord).where(audit.AuditRecord.action == "api.refused")
    )
    before = db.scalar(refused)
    nobody = {**EN, **basic_auth("pc_nobody", "x"), "Content-Type": "application/json"}
    for raw in (b"{", b'{"qr_text": "\xff"}', b"[" * 100_000):  # broken, not UTF-8, nested too deep
        assert client.post(VERIFY, content=raw, headers=nobody).status_code == 401  # credentials first
    assert db.scalar(refused) == before + 3
    issued = iam.create_partner(db, actor="t", name="P", scopes=["permits:verify"], rate_limit_per_minute=2)
    auth = basic_auth(issued.client.client_id, issued.secret)
    with clock.frozen(clock.now()):
        codes = [
            client.post(VERIFY, json={"holder_name": 5}, headers={**EN, **auth}).status_code for _ in range(3)
        ]
    assert codes == [422, 422, 429]  # bad bodies count against the rate limit like any call
    assert db.scalar(refused) == before + 4


@pytest.mark.parametrize(
    ("error", "english"),
    [
        ({"type": "int_parsing", "loc": ("body", "days")}, "Must be a whole number."),
        ({"type": "date_from_datetime_parsing", "loc": ("body", "day")}, "Must be a date (YYYY-MM-DD)."),
        ({"type": "bool_parsing", "loc": ("body", "flag")}, "Must be true or false."),
        ({"type": "dict_type", "loc": ("body", "permit")}, "Must be a JSON object."),
        (
            {"type": "literal_error", "loc": ("body", "sex"), "ctx": {"expected": "'M' or 'F'"}},
            "Must be one of: 'M', 'F'.",
        ),
        ({"type": "enum", "loc": ("body", "kind"), "ctx": {"expected": "'new'"}}, "Must be one of: 'new'."),
        (
            {"type": "string_too_short", "loc": ("body", "pin"), "ctx": {"min_length": 6}},
            "Must be at least 6 characters long.",
        ),
        ({"type": "some_future_type", "loc": ("body", "x")}, "Not in the expected format."),
    ],
)
def test_every_pydantic_error_type_has_a_project_message(error, english):  # SPEC X1, X2
    said = {}
    for locale in ("en", "zh_CN"):
        token = i18n.current_locale.set(locale)
        try:
            said[locale] = field_error(error)
        finally:
            i18n.current_locale.reset(token)
    assert said["en"] == {"field": error["loc"][-1], "message": english}
    assert CJK.search(said["zh_CN"]["message"])


def test_unknown_address_and_method_under_the_api_are_translated(client):  # SPEC X1
    wrong_method = client.get(VERIFY, headers=ZH)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert CJK.search(wrong_method.json()["detail"]) and "GET" in wrong_method.json()["detail"]
    assert client.get(VERIFY, headers=EN).json()["detail"] == "This address does not accept GET requests."
    missing = client.get("/api/v1/no-such-thing", headers=ZH)
    assert missing.status_code == 404 and CJK.search(missing.json()["detail"])
    assert client.get("/api/v1/no-such-thing", headers=EN).json()["detail"] == (
        "The page or record does not exist."
    )


@pytest.mark.parametrize("header", ["Basic !!!notb64", "Basic Zm9v", "Basic"])
def test_undecodable_basic_credentials_are_refused_like_wrong_ones(client, db, header):  # SPEC W5, X1, X5
    body = {"permit_number": "1226000000018", "holder_name": "Jane Doe"}
    wrong = client.post(VERIFY, json=body, headers={**ZH, **basic_auth("pc_nobody", "wrong")})
    refused = (
        select(func.count()).select_from(audit.AuditRecord).where(audit.AuditRecord.action == "api.refused")
    )
    before = db.scalar(refused)
    malformed = client.post(VERIFY, json=body, headers={**ZH, "Authorization": header})
    assert db.scalar(refused) == before + 1  # recorded like any refused call
    assert malformed.status_code == wrong.status_code == 401
    assert malformed.json() == wrong.json()
    assert malformed.json()["type"] == "urn:workcard:problem:unauthorized"
    assert CJK.search(malformed.json()["detail"])
    assert malformed.headers["www-authenticate"] == wrong.headers["www-authenticate"]
    assert malformed.headers["www-authenticate"].startswith('Basic realm="')


def test_an_oversized_form_field_gets_a_translated_page_with_the_signed_in_header(
    client, db, make_staff
):  # SPEC X1, X2
    police = make_staff(Role.POLICE_VERIFIER)
    sign_in(client, police.username)
    token = csrf_of(client, "/verify")
    before = db.scalar(select(func.count()).select_from(audit.AuditRecord))
    for headers, wanted in ((EN, "A field of the form is too large. Nothing was saved."), (ZH, None)):
        resp = client.post(
            "/verify",
            files={"qr_text": (None, "W" * 5_000_000), "csrf_token": (None, token)},
            headers=headers,
        )
        assert resp.status_code == 413
        assert "exceeded" not in resp.text and "KB" not in resp.text
        if wanted:
            assert wanted in resp.text
        else:
            assert CJK.search(resp.text.split('role="alert">')[1].split("<")[0])
        assert police.display_name in resp.text and 'action="/signout"' in resp.text
    assert db.scalar(select(func.count()).select_from(audit.AuditRecord)) == before  # nothing recorded
    urlencoded = client.post("/verify", data={"qr_text": "W" * 2_000_000, "csrf_token": token}, headers=EN)
    assert urlencoded.status_code == 413 and "too large" in urlencoded.text


def test_error_pages_show_the_signed_in_header(client, world):  # SPEC X1
    sign_in(client, world.officer.username)
    pages = {
        "csrf": client.post("/officer/permits/1", data={"op": "cancel", "csrf_token": "forged"}, headers=EN),
        "missing": client.get("/no-such-page", headers=EN),
        "bad path": client.get("/officer/permits/not-a-number", headers=EN),
    }
    assert [p.status_code for p in pages.values()] == [403, 404, 422]
    for name, resp in pages.items():
        header = resp.text.split("<main>")[0]
        assert world.officer.display_name in header and "Sign out" in header, name
        assert 'href="/signin"' not in header, name
        assert 'href="/officer/queue"' in header, name  # the officer's own menu
    client.cookies.clear()
    anonymous = client.get("/no-such-page", headers=EN).text.split("<main>")[0]
    assert 'href="/signin"' in anonymous and "Sign out" not in anonymous


def test_api_docs_use_only_local_assets(client):  # SPEC W5: the published interface works offline
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) >= 3  # the script, the style sheet, the icon
    for url in assets:
        assert url.startswith("/") and not url.startswith("//"), url
        assert client.get(url).status_code == 200, url
    assert "url: '/api/v1/openapi.json'" in page.text
    assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "workcard partner API"


def test_every_page_names_the_site_icon_and_the_usual_address_finds_it(client):
    home = client.get("/")
    icon = re.search(r'<link rel="icon" href="([^"]+)"', home.text)
    assert icon, "no icon link on the page"
    served = client.get(icon.group(1))
    assert served.status_code == 200 and served.headers["content-type"].startswith("image/svg+xml")
    legacy = client.get("/favicon.ico")
    assert legacy.status_code == 301 and legacy.headers["location"] == icon.group(1)


@pytest.mark.parametrize("path", ["/healthz", "/", "/api/v1/docs", "/api/v1/ping"])
def test_head_answers_like_get_without_a_body(client, path):  # monitoring probes with HEAD
    head, get = client.head(path, headers=ZH), client.get(path, headers=ZH)
    assert head.status_code == get.status_code == 200
    assert head.content == b"" and head.headers["content-length"] == str(len(get.content))
    assert head.headers["content-language"] == "zh-CN"  # API answers say their language too
