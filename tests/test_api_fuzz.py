"""Whatever a partner system sends, the API answers with a verdict or a problem document, never a 500
(SPEC X2). Hypothesis generates the bodies."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import basic_auth
from workcard.iam import service as iam

pytestmark = pytest.mark.own_database  # on PostgreSQL, the partner API as it runs: on its own connections

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=12,
)
verify_bodies = st.fixed_dictionaries(
    {},
    optional={
        "permit_number": json_values | st.text(max_size=60),
        "holder_name": json_values | st.text(max_size=150),
        "passport_number": json_values,
        "extra": json_values,
    },
)
code_bodies = st.fixed_dictionaries(
    {}, optional={"qr_text": json_values | st.text(max_size=1100), "x": json_values}
)


def _auth(db) -> dict[str, str]:
    issued = iam.create_partner(
        db, actor="test", name="Fuzz", scopes=["permits:verify"], rate_limit_per_minute=100_000
    )
    db.flush()
    return basic_auth(issued.client.client_id, issued.secret)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=verify_bodies | json_values)
def test_permit_verification_never_fails_on_input(client, db, body):
    headers = db.info.setdefault("fuzz_auth", _auth(db))
    resp = client.post("/api/v1/permits/verify", headers=headers, json=body)
    assert resp.status_code in (200, 422), resp.text
    if resp.status_code == 422:
        assert resp.headers["content-type"] == "application/problem+json"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=code_bodies | json_values)
def test_code_verification_never_fails_on_input(client, db, body):
    headers = db.info.setdefault("fuzz_auth", _auth(db))
    resp = client.post("/api/v1/verifications", headers=headers, json=body)
    assert resp.status_code in (200, 422), resp.text
    if resp.status_code == 200:
        assert resp.json()["verdict"] in {"valid", "expired", "cancelled", "not_yet_valid", "bad_signature",
                                          "unknown_key", "malformed"}  # fmt: skip


def test_raw_garbage_bodies(client, db):
    headers = {**_auth(db), "Content-Type": "application/json"}
    for raw in (b"", b"{", b"\xff\xfe", b"null", b"[]", b'{"permit_number": "\\ud800"}', b"{" * 5000):
        resp = client.post("/api/v1/permits/verify", headers=headers, content=raw)
        assert resp.status_code in (400, 422), (raw[:20], resp.status_code, resp.text[:200])
