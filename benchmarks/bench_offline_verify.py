"""Offline verification of a permit token, against the bare signature check it is built around.

Tokens are made by the real ``cwt.encode_token`` with realistic claims (a 13-character permit number
from ``rules.make_permit_number``, a 20-character passport name, a letter code's lifetime, a ``wc-YYMM-a``
kid); they are ``WC2:`` tokens, whose COSE message is not deflated (``WC1:`` tokens, deflated, are still
read: one inflate more, about 1.3 µs). Measured in one process, in interleaved rounds (the order of the
workloads rotates every round):

* **ours**: the full ``cwt.decode_token`` (Base45, COSE parse, signature check, claims checks),
  the key resolved from an in-memory dict of key objects, as a synced trust list gives it;
* **raw**: ``Ed25519PublicKey.verify`` of the same signature over the same Sig_structure bytes, built
  once beforehand (for ES256: the DER signature built once too);
* **PyJWT**: ``jwt.decode`` of an equivalent JWT (EdDSA, the same key, the same claims as JSON, the kid
  in the header), the key looked up by ``jwt.get_unverified_header(token)["kid"]`` in a dict of key
  objects, with ``exp`` and ``iat`` required and checked.

Goals: ours ≥ 0.8 × the throughput of the raw check (``ratio`` = raw time / our time); ours faster than
PyJWT (``ratio`` = PyJWT time / our time). The same for ES256 as an informative row (the algorithm was
chosen by this measurement: docs/decisions/0006-signed-permit-codes.md). Also the QR version (segno,
error correction M, no Micro QR, as the letter prints it) of tokens for 20-, 40- and 80-character
names, with the length and version the same message would have as a deflated ``WC1:`` token; goals:
40 characters ≤ version 10, 80 characters ≤ version 13.

No database is needed."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import os
import time
import zlib
from collections.abc import Callable
from typing import Any

import jwt
import segno
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from benchmarks._common import median, result
from workcard.credentials import base45, cose, cwt
from workcard.credentials.keys import letter_expiry
from workcard.permits import rules

ROUNDS = int(os.environ.get("WORKCARD_BENCH_OFFLINE_ROUNDS", "30"))
OPS = int(os.environ.get("WORKCARD_BENCH_OFFLINE_OPS", "2000"))
GOAL_RAW = 0.8
KID = "wc-2611-a"  # the shape keys._new_kid gives: year and month, then a letter
# Passport names (as check_passport_name accepts them) of exactly 20, 40 and 80 characters.
NAMES = {
    20: "Amelia Grace Johnson",
    40: "Maria del Carmen Fernandez Garcia-Moreno",
    80: "Oluwaseun Chukwuemeka Adebayo-Okonkwo Nwachukwu Oyelaran-Babatunde Ikechukwu Eze",
}
QR_GOALS = {40: 10, 80: 13}


def _name(length: int) -> str:
    name = NAMES[length]
    if len(name) != length:  # pragma: no cover - a table check
        raise RuntimeError(f"the {length}-character name has {len(name)} characters")
    return rules.check_passport_name(name)


def make_claims(name: str, now: int) -> cwt.PermitClaims:
    valid_until = dt.datetime.fromtimestamp(now, dt.UTC).date() + dt.timedelta(days=730)
    return cwt.PermitClaims(
        permit_number=rules.make_permit_number("11", 2026, 1),  # 13 characters, e.g. 1126000000018
        holder_name=name,
        nationality="GBR",
        valid_until=valid_until,
        valid_from=valid_until - dt.timedelta(days=1095),
        status="valid",
        issued_at=now,
        expires_at=int(letter_expiry(valid_until).timestamp()),
        use="letter",
        key_id=KID,
    )


def _jwt_claims(claims: cwt.PermitClaims) -> dict[str, Any]:
    """The same claims, as a JSON object with readable names (what a JWT would carry)."""
    return {
        "exp": claims.expires_at,
        "iat": claims.issued_at,
        "permit_number": claims.permit_number,
        "holder_name": claims.holder_name,
        "nationality": claims.nationality,
        "valid_until": claims.valid_until.isoformat(),
        "status": claims.status,
        "use": claims.use,
    }


def qr_version(text: str) -> int:
    """The QR version the letter would print ``text`` at (permits/letter.py: error M, not boosted)."""
    return int(segno.make(text, error="m", micro=False, boost_error=False).version)


def _time(fn: Callable[[], object], ops: int) -> tuple[float, float]:
    """(CPU seconds, wall-clock seconds) per call of ``fn``, over ``ops`` calls. The figures use the
    thread's CPU time: on a shared machine it leaves out the time the process waited for a core."""
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    for _ in range(ops):
        fn()
    return (time.thread_time() - cpu0) / ops, (time.perf_counter() - wall0) / ops


def run() -> list[dict[str, Any]]:
    now = int(time.time())
    claims = make_claims(_name(20), now)

    # Ed25519: the algorithm the platform signs with.
    # Fixed keys, so that the tokens, and the deflated sizes the QR rows compare, are the same in every run.
    seed = hashlib.sha256(b"workcard benchmark key").digest()
    ed_private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    ed_public = cose.load_public_key(cose.EDDSA, ed_private.public_key().public_bytes_raw())
    ed_token = cwt.encode_token(claims, key=ed_private, alg=cose.EDDSA, kid=KID.encode())
    # ES256, for comparison.
    es_private = ec.derive_private_key(int.from_bytes(seed, "big") >> 8, ec.SECP256R1())
    es_public = es_private.public_key()
    es_token = cwt.encode_token(claims, key=es_private, alg=cose.ES256, kid=KID.encode())

    # The synced trust list, as the verifier holds it: kid -> (key object, alg).
    ed_trust = {KID.encode(): (ed_public, cose.EDDSA)}
    es_trust = {KID.encode(): (es_public, cose.ES256)}
    ed_resolve, es_resolve = ed_trust.get, es_trust.get

    # The bytes the raw checks verify: exactly the token's Sig_structure and signature.
    def signed_parts(token: str) -> tuple[bytes, bytes]:
        message = cose.parse_sign1(cwt.unwrap(token))
        return cose.sig_structure(message.protected_raw, message.payload), message.signature

    ed_tbs, ed_sig = signed_parts(ed_token)
    es_tbs, es_raw_sig = signed_parts(es_token)
    es_der = encode_dss_signature(
        int.from_bytes(es_raw_sig[:32], "big"), int.from_bytes(es_raw_sig[32:], "big")
    )
    ecdsa = ec.ECDSA(hashes.SHA256())

    jwt_token = jwt.encode(_jwt_claims(claims), ed_private, algorithm="EdDSA", headers={"kid": KID})
    jwt_trust = {KID: ed_public}

    def ours_ed() -> cwt.PermitClaims:
        return cwt.decode_token(ed_token, resolve_key=ed_resolve, now=now)

    def ours_es() -> cwt.PermitClaims:
        return cwt.decode_token(es_token, resolve_key=es_resolve, now=now)

    def raw_ed() -> None:
        ed_public.verify(ed_sig, ed_tbs)

    def raw_es() -> None:
        es_public.verify(es_der, es_tbs, ecdsa)

    def pyjwt_ed() -> dict[str, Any]:
        key = jwt_trust[jwt.get_unverified_header(jwt_token)["kid"]]
        return jwt.decode(jwt_token, key, algorithms=["EdDSA"], options={"require": ["exp", "iat"]})

    # Every workload must do real, successful work before it is timed.
    assert ours_ed() == claims and ours_es() == claims
    raw_ed()
    raw_es()
    assert pyjwt_ed() == _jwt_claims(claims)

    workloads: dict[str, Callable[[], object]] = {
        "raw_ed": raw_ed,
        "ours_ed": ours_ed,
        "pyjwt_ed": pyjwt_ed,
        "raw_es": raw_es,
        "ours_es": ours_es,
    }
    names = list(workloads)
    per_op: dict[str, list[float]] = {n: [] for n in names}
    wall: dict[str, list[float]] = {n: [] for n in names}
    for n in names:  # warm-up
        _time(workloads[n], max(1, OPS // 10))
    gc.collect()
    for i in range(ROUNDS):
        k = i % len(names)
        for n in names[k:] + names[:k]:  # every workload runs first, second, ... in turn
            cpu_s, wall_s = _time(workloads[n], OPS)
            per_op[n].append(cpu_s)
            wall[n].append(wall_s)
    us = {n: [s * 1e6 for s in v] for n, v in per_op.items()}
    med = {n: median(v) for n, v in us.items()}

    def per_round(top: str, bottom: str, times: dict[str, list[float]] = us) -> list[float]:
        return [a / b for a, b in zip(times[top], times[bottom], strict=True)]

    def wall_ratio(top: str, bottom: str) -> str:
        return f"wall-clock: median of per-round ratios {median(per_round(top, bottom, wall)):.3f}"

    ed_ratios = per_round("raw_ed", "ours_ed")
    es_ratios = per_round("raw_es", "ours_es")
    jwt_ratios = per_round("pyjwt_ed", "ours_ed")
    setup = (
        f"{ROUNDS} interleaved rounds × {OPS} calls per workload (order rotated each round), one process, "
        "thread CPU time; "
        f"token {len(ed_token)} characters (20-character name, 13-character permit number, kid {KID})"
    )

    def spread(values: list[float]) -> str:
        ordered = sorted(values)
        return f"per-round range {ordered[0]:.3f}–{ordered[-1]:.3f}"

    rows = [
        result(
            "offline_verify/ed25519", med["ours_ed"], "µs/op", baseline=med["raw_ed"],
            ratio=median(ed_ratios), goal=f"ratio >= {GOAL_RAW}",
            notes=(f"full cwt.decode_token (value) vs Ed25519PublicKey.verify of the same Sig_structure "
                   f"(baseline), median CPU µs per call; ratio = throughput ours/raw = median of per-round "
                   f"ratios raw/ours ({spread(ed_ratios)}); ratio of medians "
                   f"{med['raw_ed'] / med['ours_ed']:.3f}; {wall_ratio('raw_ed', 'ours_ed')}; {setup}"),
        ),
        result(
            "offline_verify/vs_pyjwt", med["ours_ed"], "µs/op", baseline=med["pyjwt_ed"],
            ratio=median(jwt_ratios), goal="ratio > 1",
            notes=(f"full cwt.decode_token (value) vs PyJWT {jwt.__version__} of an equivalent EdDSA JWT "
                   f"({len(jwt_token)} characters) with the same key and claims as JSON, key found by the "
                   f"header's kid, exp and iat required (baseline); ratio = PyJWT time / ours = median of "
                   f"per-round ratios ({spread(jwt_ratios)}); ratio of medians "
                   f"{med['pyjwt_ed'] / med['ours_ed']:.3f}; {wall_ratio('pyjwt_ed', 'ours_ed')}"),
        ),
        result(
            "offline_verify/es256", med["ours_es"], "µs/op", baseline=med["raw_es"],
            ratio=median(es_ratios),
            notes=(f"informative: the same for ES256 (P-256), token {len(es_token)} characters; raw = "
                   f"EllipticCurvePublicKey.verify with the DER signature built beforehand; ratio raw/ours, "
                   f"median of per-round ratios ({spread(es_ratios)}); ratio of medians "
                   f"{med['raw_es'] / med['ours_es']:.3f}; {wall_ratio('raw_es', 'ours_es')}"),
        ),
    ]  # fmt: skip
    for length in sorted(NAMES):
        token = cwt.encode_token(
            make_claims(_name(length), now), key=ed_private, alg=cose.EDDSA, kid=KID.encode()
        )
        goal = f"value <= {QR_GOALS[length]}" if length in QR_GOALS else None
        message = cwt.unwrap(token)
        deflated = zlib.compress(message, 9)
        wc1 = cwt.DEFLATED_PREFIX + base45.encode(deflated)
        rows.append(
            result(
                f"offline_verify/qr_name_{length}", qr_version(token), "QR version",
                baseline=len(token), goal=goal,
                notes=(f"Ed25519 letter token for a {length}-character passport name: QR version at error "
                       f"correction M (segno, micro=False, as the letter prints it); baseline = token length "
                       f"in characters ({len(token) - len(cwt.PREFIX)} Base45 characters after {cwt.PREFIX}); "
                       f"the COSE message is {len(message)} bytes, {len(deflated)} deflated: as a deflated "
                       f"{cwt.DEFLATED_PREFIX} token it would be {len(wc1)} characters, QR version "
                       f"{qr_version(wc1)}"),
            )
        )  # fmt: skip
    for n in names:
        print(
            f"   {n:9s} median {med[n]:7.1f} µs/op  (rounds: {min(us[n]):.1f}–{max(us[n]):.1f})", flush=True
        )
    return rows
