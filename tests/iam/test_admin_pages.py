"""The administrator's pages: staff accounts, partner credentials, employers (SPEC W5, X2, X4, X5)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.conftest import basic_auth, post_form, sign_in, uscc
from workcard import audit
from workcard.iam.models import PartnerClient, StaffUser
from workcard.iam.roles import Role
from workcard.permits.models import Employer

pytestmark = pytest.mark.own_database  # on PostgreSQL, the partner API as it runs: on its own connections

EN = {"Accept-Language": "en"}


def test_create_staff_account(client, db, world):
    sign_in(client, world.admin.username)
    resp = post_form(client, "/admin/staff", {"username": "new.hr", "display_name": "New HR", "password": "abc-12345",
                                              "role": "employer_staff", "employer_id": world.employer.id,
                                              "designated": "true"}, page="/admin/staff")  # fmt: skip
    assert resp.status_code == 303
    user = db.scalar(select(StaffUser).where(StaffUser.username == "new.hr"))
    assert (
        user.employer_id == world.employer.id
        and user.designated
        and user.password_hash.startswith("$argon2id$")
    )


def test_bad_staff_input_changes_nothing(client, db, world):  # SPEC X2
    sign_in(client, world.admin.username)
    cases = [
        ({"role": "employer_staff"}, "must belong to an employer"),
        ({"role": "admin", "password": "short"}, "8 to 64"),
        ({"role": "astronaut"}, "choose a role"),
        ({"role": "admin", "username": "Bad Name!"}, "user name has"),
    ]
    for overrides, message in cases:
        data = {"username": "x.person", "display_name": "X", "password": "abc-12345", **overrides}
        resp = post_form(client, "/admin/staff", data, page="/admin/staff", headers=EN)
        assert resp.status_code == 422, overrides
        assert message in resp.text
    assert db.scalar(select(StaffUser).where(StaffUser.username == "x.person")) is None


def test_partner_credentials_lifecycle(client, db, world, make_permit):  # SPEC W5
    permit = make_permit(passport_name="Jane Doe")
    sign_in(client, world.admin.username)
    created = post_form(client, "/admin/partners", {"name": "Public Security", "scopes": ["permits:verify"],
                                                    "rate": "100"}, page="/admin/partners", headers=EN)  # fmt: skip
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    client_id = re.search(r'data-testid="client-id">([^<]+)<', created.text).group(1)
    secret = re.search(r'data-testid="secret">([^<]+)<', created.text).group(1)
    assert secret not in client.get("/admin/partners").text  # shown once

    def call(s: str) -> int:
        auth = basic_auth(client_id, s)
        return client.post("/api/v1/permits/verify", headers=auth,
                           json={"permit_number": permit.number, "holder_name": "Jane Doe"}).status_code  # fmt: skip

    assert call(secret) == 200
    rotated = post_form(client, f"/admin/partners/{client_id}", {"action": "rotate"}, page="/admin/partners")
    new_secret = re.search(r'data-testid="secret">([^<]+)<', rotated.text).group(1)
    assert call(secret) == 401 and call(new_secret) == 200
    post_form(
        client, f"/admin/partners/{client_id}", {"action": "update", "rate": "50"}, page="/admin/partners"
    )
    assert call(new_secret) == 403  # no scope left
    post_form(client, f"/admin/partners/{client_id}", {"action": "revoke"}, page="/admin/partners")
    assert call(new_secret) == 401
    row = db.scalar(select(PartnerClient).where(PartnerClient.client_id == client_id))
    assert not row.active and row.rate_limit_per_minute == 50
    actions = db.scalars(
        select(audit.AuditRecord.action)
        .where(audit.AuditRecord.subject_id == client_id)
        .order_by(audit.AuditRecord.id)
    ).all()
    assert actions == ["partner.create", "partner.rotate", "partner.update", "partner.revoke"]


def test_unknown_scope_refused(client, db, world):  # SPEC X2
    sign_in(client, world.admin.username)
    resp = post_form(client, "/admin/partners", {"name": "X", "scopes": ["permits:delete"], "rate": "10"},
                     page="/admin/partners", headers=EN)  # fmt: skip
    assert resp.status_code == 422 and "Unknown scope" in resp.text


def test_register_employer_with_check_character(client, db, world):  # SPEC X2
    sign_in(client, world.admin.username)
    good = uscc(424242)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    resp = post_form(client, "/admin/employers", {"name": "Acme", "uscc": bad, "province": "12", "city": "Tianjin",
                                                  "address": "Road 1"}, page="/admin/employers", headers=EN)  # fmt: skip
    assert resp.status_code == 422 and "check character" in resp.text
    resp = post_form(client, "/admin/employers", {"name": "Acme", "uscc": good, "province": "12", "city": "Tianjin",
                                                  "address": "Road 1"}, page="/admin/employers")  # fmt: skip
    assert resp.status_code == 303
    assert db.scalar(select(Employer).where(Employer.uscc == good)).name == "Acme"


def test_disabled_account_loses_its_sessions(client, db, world, make_staff):
    user = make_staff(Role.PERMIT_OFFICER)
    other = client.__class__(client.app, follow_redirects=False)
    sign_in(other, user.username)
    assert other.get("/officer/queue").status_code == 200
    sign_in(client, world.admin.username)
    post_form(client, f"/admin/staff/{user.id}", {}, page="/admin/staff")  # active unchecked
    assert other.get("/officer/queue").status_code == 303
