# The keys of the signed permit codes: files, rotation, retirement, the trust anchor (SPEC P1 verifiable
# codes, X5 key changes are audited, X3 several processes make one first key).
from __future__ import annotations

import base64
import datetime as dt
import re
import stat
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from typer.testing import CliRunner

from workcard import audit, cli, clock
from workcard.credentials import commands, keys, lists, service
from workcard.credentials.models import SigningKey
from workcard.db import make_engine, make_sessionmaker
from workcard.errors import Conflict, NotFound

T0 = dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC)


def _private_texts(kid_or_path) -> list[str]:
    """Ways a private key could leak into a response or a log: its PEM body, raw bytes in hex and base64."""
    path = kid_or_path if not isinstance(kid_or_path, str) else keys.key_dir() / f"{kid_or_path}.pem"
    pem = path.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())  # fmt: skip
    body = b"".join(pem.splitlines()[1:-1]).decode()
    return [body, raw.hex(), base64.b64encode(raw).decode(), lists.b64url(raw)]


def test_first_key_is_an_owner_only_file_and_a_public_row(db, frozen):  # SPEC P1, X5
    frozen(T0)
    key = keys.ensure_signing_key(db)
    assert re.fullmatch(r"wc-2611-[a-z]+", key.kid) and len(key.kid) <= 12
    assert key.alg == -8 and len(key.public_key) == 32 and key.signing is True
    assert key.signs_from == T0 and key.signs_until is None and key.verify_until is None
    path = keys.key_dir() / f"{key.kid}.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.key_dir().stat().st_mode) == 0o700
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert private.public_key().public_bytes_raw() == key.public_key
    assert keys.ensure_signing_key(db).id == key.id  # idempotent
    rec = db.scalars(select(audit.AuditRecord).where(audit.AuditRecord.action == "signing_key.create")).all()[
        -1
    ]
    assert rec.subject_id == key.kid
    assert not any(secret in str(rec.after) for secret in _private_texts(key.kid))


def test_rotation_keeps_old_codes_verifiable(db, make_permit, frozen):  # SPEC P1
    frozen(T0)
    permit = make_permit(days=5 * 366)  # the longest permit
    old_code = service.letter_code(db, permit)
    old = keys.current_key(db)
    frozen(T0 + dt.timedelta(days=30))
    new = keys.rotate(db, "cli:root")
    assert new.kid != old.kid and new.signing and old.signing is None
    assert old.signs_until == T0 + dt.timedelta(days=30)
    # trusted for as long as any code it signed can live: the longest permit's letter code
    assert old.verify_until >= keys.letter_expiry(permit.valid_until)
    new_code = service.letter_code(db, permit)
    assert service.verify_text(db, actor="t", text=old_code, channel="page").verdict == "valid"
    assert service.verify_text(db, actor="t", text=new_code, channel="page").claims.key_id == new.kid
    actions = db.scalars(
        select(audit.AuditRecord.action).order_by(audit.AuditRecord.id.desc()).limit(5)
    ).all()
    assert {"signing_key.close", "signing_key.create"} <= set(actions)
    # once the old key's verify_until passes, its codes name a key nobody trusts
    frozen(old.verify_until + dt.timedelta(seconds=1))
    assert keys.trusted_at(old, clock.now()) is False


def test_retired_key_gives_unknown_key(db, make_permit):  # SPEC P1
    permit = make_permit()
    code = service.letter_code(db, permit)
    old = keys.current_key(db)
    with pytest.raises(Conflict):
        keys.retire(db, "cli:root", old.kid)  # the current key: rotate first
    keys.rotate(db, "cli:root")
    keys.retire(db, "cli:root", old.kid)
    result = service.verify_text(db, actor="t", text=code, channel="page")
    assert result.verdict == "unknown_key" and result.permit is None
    with pytest.raises(Conflict):
        keys.retire(db, "cli:root", old.kid)
    with pytest.raises(NotFound):
        keys.retire(db, "cli:root", "wc-0000-zz")


def test_leaked_old_key_cannot_mint_new_looking_codes(db, make_permit, frozen):  # SPEC P1
    from tests.credentials.helpers import claims_for, sign
    from workcard.permits.models import Foreigner

    frozen(T0)
    permit = make_permit()
    old = keys.ensure_signing_key(db)
    keys.rotate(db, "cli:root")
    frozen(T0 + dt.timedelta(days=3))
    holder = db.get(Foreigner, permit.foreigner_id)
    claims = claims_for(
        permit, holder, kid=old.kid, issued=clock.now(), expires=clock.now() + dt.timedelta(days=1)
    )
    result = service.verify_text(db, actor="t", text=sign(claims, keys.private_key(old.kid)), channel="page")
    assert result.verdict == "unknown_key" and "did not sign" in result.reason


def test_anchor_is_separate_long_lived_and_owner_only(db):  # SPEC P1
    raw = keys.anchor_public_raw()
    assert raw == keys.anchor_public_raw() and len(raw) == 32
    assert stat.S_IMODE((keys.key_dir() / "anchor.pem").stat().st_mode) == 0o600
    assert raw != keys.ensure_signing_key(db).public_key


def test_orphan_key_file_is_taken_over(db, frozen):  # SPEC X3: a rolled-back creation leaves a file
    frozen(T0)
    kid = keys._new_kid(db, clock.now())
    orphan = keys._create_or_load(keys.key_dir() / f"{kid}.pem")  # as if its row had been rolled back
    key = keys.ensure_signing_key(db)
    assert (key.kid, key.public_key) == (kid, orphan.public_key().public_bytes_raw())


def test_processes_racing_for_the_first_key_make_one(committed_url):  # SPEC X3
    maker = make_sessionmaker(make_engine(committed_url))
    barrier = threading.Barrier(4)
    kids: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with maker() as session:
                barrier.wait()
                kids.append(keys.ensure_signing_key(session).kid)
                session.commit()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with maker() as session:
        rows = session.scalars(select(SigningKey)).all()
    assert len(rows) == 1 and set(kids) == {rows[0].kid}


def test_keys_commands(committed_url, monkeypatch, frozen):  # SPEC X5
    maker = make_sessionmaker(make_engine(committed_url))
    monkeypatch.setattr(commands, "_sessionmaker", lambda: maker)
    runner = CliRunner()
    frozen(T0)
    first = runner.invoke(cli.app, ["keys", "rotate"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli.app, ["keys", "rotate"])
    assert second.exit_code == 0 and "no longer signs" in second.output
    listing = runner.invoke(cli.app, ["keys", "list"])
    assert listing.exit_code == 0
    assert listing.output.count("current") == 1 and "trusted" in listing.output
    anchor = runner.invoke(cli.app, ["keys", "anchor"])
    assert anchor.exit_code == 0 and lists.from_b64url(anchor.output.strip()) == keys.anchor_public_raw()
    with maker() as session:
        old = session.scalars(select(SigningKey).where(SigningKey.signing.is_(None))).one()
        secrets = _private_texts(old.kid)
    for out in (first.output, second.output, listing.output, anchor.output):
        assert not any(s in out for s in secrets)
    retired = runner.invoke(cli.app, ["keys", "retire", old.kid])
    assert retired.exit_code == 0 and "retired" in retired.output
    assert runner.invoke(cli.app, ["keys", "retire", old.kid]).exit_code == 1


def test_status_list_job_command(committed_url, monkeypatch):  # SPEC P1
    maker = make_sessionmaker(make_engine(committed_url))
    monkeypatch.setattr(commands, "_sessionmaker", lambda: maker)
    runner = CliRunner()
    first = runner.invoke(cli.app, ["jobs", "status-list"])
    assert first.exit_code == 0 and "status list written: 0 entries" in first.output, first.output
    again = runner.invoke(cli.app, ["jobs", "status-list"])
    assert again.exit_code == 0 and "status list unchanged" in again.output
