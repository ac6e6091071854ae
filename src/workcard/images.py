"""Checks of uploaded images, done before any full decode (decompression bombs are refused from the
header alone). One place for every upload: a person's photo (JPEG) and a photo of a QR code (JPEG
or PNG)."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from workcard.errors import InvalidInput
from workcard.web.vocabulary import N_

JPEG = {b"\xff\xd8\xff": "JPEG"}
JPEG_OR_PNG = {**JPEG, b"\x89PNG\r\n\x1a\n": "PNG"}
_WRONG_TYPE = {
    "JPEG": N_("The photo must be a JPEG (.jpg) file."),
    "JPEG/PNG": N_("The image must be a JPEG or PNG file."),
}


def open_checked(
    data: bytes, *, kinds: dict[bytes, str], max_bytes: int, max_pixels: int, field: str
) -> Image.Image:
    """Open an upload of at most ``max_bytes`` whose first bytes name one of ``kinds`` and whose
    declared size is at most ``max_pixels``; the pixels are decoded only after the header passed."""
    if not data:
        raise InvalidInput("Please choose an image file.", field=field)
    if len(data) > max_bytes:
        raise InvalidInput("The image is {size} KB; the limit is {limit} KB.", field=field,
                           size=len(data) // 1024, limit=max_bytes // 1024)  # fmt: skip
    kind = next((name for magic, name in kinds.items() if data.startswith(magic)), None)
    if kind is None:
        wrong_type = _WRONG_TYPE["JPEG" if kinds is JPEG else "JPEG/PNG"]
        raise InvalidInput(wrong_type, field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[kind])  # reads the header only
            width, height = img.size
            if width * height > max_pixels:
                raise InvalidInput(
                    "The image declares {width} × {height} pixels, more than allowed; please send a smaller one.",
                    field=field, width=width, height=height,
                )  # fmt: skip
            img.load()
            return img
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput("The image declares more pixels than allowed; please send a smaller one.",
                           field=field) from None  # fmt: skip
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidInput("The image file is damaged or cannot be read.", field=field) from None


def check_jpeg(data: bytes, *, max_bytes: int, max_pixels: int, field: str = "photo") -> tuple[int, int]:
    """A person's photo: a JPEG within the limits; returns (width, height)."""
    img = open_checked(data, kinds=JPEG, max_bytes=max_bytes, max_pixels=max_pixels, field=field)
    return img.size
