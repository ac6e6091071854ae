"""Real faces for the e-card tests: the astronaut of ``skimage.data`` (the holder), and a face of
``skimage.data.lfw_subset()`` (somebody else). A head turn is made from the straight picture by
squeezing one side of the face and widening the other, which moves the nose between the eyes as a turn
does; the mirror image turns the other way."""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image
from skimage import data

FACE_BOX = (179, 83, 266, 170)  # where dlib finds the astronaut's face (left, top, right, bottom)


def jpeg(pixels: np.ndarray, quality: int = 92) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(out, "JPEG", quality=quality)
    return out.getvalue()


@functools.cache
def _astronaut() -> np.ndarray:
    return data.astronaut()


def passport_photo() -> bytes:
    """The holder's photo on file: head and shoulders, as a registration photo is."""
    return jpeg(_astronaut()[20:330, 110:340])


def straight() -> bytes:
    return jpeg(_astronaut())


def _turned(k: float) -> np.ndarray:
    pixels = _astronaut()
    left, _, right, _ = FACE_BOX
    middle = (left + right) // 2
    xs = np.arange(pixels.shape[1], dtype=float)
    squeezed = left + (middle - left) * k
    source = xs.copy()
    a = (xs >= left) & (xs < squeezed)
    source[a] = left + (xs[a] - left) / k
    b = (xs >= squeezed) & (xs < right)
    source[b] = middle + (xs[b] - squeezed) * (right - middle) / (right - squeezed)
    return pixels[:, np.clip(np.round(source).astype(int), 0, pixels.shape[1] - 1)]


def turned_left() -> bytes:
    """The person's own left: in a picture that is not mirrored, the nose moves to the right."""
    return jpeg(_turned(1.5))


def turned_right() -> bytes:
    return jpeg(_turned(1.5)[:, ::-1])


def stranger() -> bytes:
    """Somebody else's face, large enough to be found."""
    small = (data.lfw_subset()[0] * 255).astype(np.uint8)
    return jpeg(np.asarray(Image.fromarray(small).convert("RGB").resize((240, 240), Image.BICUBIC)))


def two_people() -> bytes:
    """The holder and somebody else side by side."""
    a = Image.open(io.BytesIO(straight())).convert("RGB")
    b = Image.open(io.BytesIO(stranger())).convert("RGB").resize((300, 300))
    canvas = Image.new("RGB", (a.width + b.width, a.height), "white")
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width, 100))
    return jpeg(np.asarray(canvas))


def no_face() -> bytes:
    return jpeg(np.full((480, 640, 3), 200, dtype=np.uint8))


def frames_for(actions: list[str]) -> list[bytes]:
    """The pictures a person following these actions gives."""
    shots = {"front": straight, "turn_left": turned_left, "turn_right": turned_right}
    return [shots[a]() for a in actions]
