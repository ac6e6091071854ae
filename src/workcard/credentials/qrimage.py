"""Reading the permit QR code from a photo (an officer's upload, or ``workcard verify --image``)."""

from __future__ import annotations

import zxingcpp

from workcard.config import get_settings
from workcard.errors import InvalidInput
from workcard.images import JPEG_OR_PNG, open_checked

MAX_IMAGE_BYTES = 8_000_000  # a phone camera's JPEG is 2 to 6 MB


def decode_image(data: bytes, *, field: str = "image") -> list[str]:
    """The text of the one QR code in a photo (a list of one). No code, or several, is refused with
    :class:`InvalidInput`: an officer must know which code was checked."""
    img = open_checked(data, kinds=JPEG_OR_PNG, max_bytes=MAX_IMAGE_BYTES,
                       max_pixels=get_settings().photo_max_pixels, field=field).convert("L")  # fmt: skip
    found = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)
    texts = [code.text for code in found if code.valid]
    if not texts:
        raise InvalidInput("No QR code was found in the image; photograph the code squarely and in focus.",
                           field=field)  # fmt: skip
    if len(texts) > 1:
        raise InvalidInput("The image shows more than one QR code; photograph one.", field=field)
    return texts
