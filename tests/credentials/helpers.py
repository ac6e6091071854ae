"""Helpers of the credentials tests: foreign tokens, QR photos, partner credentials."""

from __future__ import annotations

import datetime as dt
import io
import zlib

import segno
from PIL import Image

from tests.conftest import basic_auth
from workcard.credentials import base45, cose, cwt
from workcard.iam import service as iam


def claims_for(permit, holder, *, kid: str, issued: dt.datetime, expires: dt.datetime, status="valid",
               use="letter") -> cwt.PermitClaims:  # fmt: skip
    return cwt.PermitClaims(
        permit_number=permit.number, holder_name=holder.passport_name, nationality=holder.nationality,
        valid_until=permit.valid_until, valid_from=permit.valid_from, status=status, issued_at=int(issued.timestamp()),
        expires_at=int(expires.timestamp()), use=use, key_id=kid,
    )  # fmt: skip


def sign(claims: cwt.PermitClaims, key: cose.PrivateKey, alg: int = cose.EDDSA) -> str:
    return cwt.encode_token(claims, key=key, alg=alg, kid=claims.key_id.encode())


def zlib_bomb() -> str:
    """A WC1 (deflated) token of about 400 characters whose deflate stream inflates to 256 KB."""
    return cwt.DEFLATED_PREFIX + base45.encode(zlib.compress(b"\0" * 256 * 1024, 9))


def qr_png(*texts: str, scale: int = 4) -> bytes:
    """A PNG photo-like image showing each text as its own QR code, side by side on white."""
    images = []
    for text in texts:
        buf = io.BytesIO()
        segno.make(text, error="m", micro=False, boost_error=False).save(
            buf, kind="png", scale=scale, border=4
        )
        buf.seek(0)
        images.append(Image.open(buf).convert("RGB"))
    width = sum(i.width for i in images) + 40 * (len(images) + 1)
    height = max((i.height for i in images), default=200) + 80
    canvas = Image.new("RGB", (width, height), "white")
    x = 40
    for img in images:
        canvas.paste(img, (x, 40))
        x += img.width + 40
    out = io.BytesIO()
    canvas.save(out, "PNG")
    return out.getvalue()


def as_jpeg(png: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(out, "JPEG", quality=92)
    return out.getvalue()


def partner(db, scopes=("permits:verify",)) -> dict[str, str]:
    issued = iam.create_partner(db, actor="test", name="Exit-Entry Bureau", scopes=list(scopes),
                                rate_limit_per_minute=600)  # fmt: skip
    return basic_auth(issued.client.client_id, issued.secret)
