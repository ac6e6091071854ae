"""The liveness check of facial recognition (SPEC E2): the person follows on-screen actions — look
straight at the camera, then turn the head one way and the other, in an order chosen at random for each
attempt — and a picture is taken at each. A printed photo or a replayed picture cannot turn its head
on demand. Pure: no framework, no DB."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from workcard.ecard.faces import Face, distance


class Action(StrEnum):
    FRONT = "front"
    LEFT = "turn_left"  # the person's own left
    RIGHT = "turn_right"


# Descriptors of the same person lie within this distance of each other; dlib's own threshold is 0.6,
# a registration that hands out a credential takes a stricter one.
MATCH_DISTANCE = 0.55
FRONT_YAW = 0.10  # looking straight: the nose within this of the middle between the eyes
TURN_YAW = 0.15  # turned: at least this far to the asked side
TURN_CHANGE = 0.12  # and at least this much further than in the straight picture


class Outcome(StrEnum):
    PASSED = "passed"
    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"
    NOT_FOLLOWED = "not_followed"
    NOT_MATCHED = "not_matched"
    NO_PHOTO = "no_photo"


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    step: int | None = None  # 1-based: the picture that failed
    distance: float | None = None  # the largest distance of a picture to the photo on file


def new_actions(rng: random.Random | None = None) -> list[Action]:
    turns = [Action.LEFT, Action.RIGHT]
    (rng or random.SystemRandom()).shuffle(turns)
    return [Action.FRONT, *turns]


def _followed(action: Action, face: Face, front: Face) -> bool:
    if action is Action.FRONT:
        return abs(face.yaw) <= FRONT_YAW
    sign = 1 if action is Action.LEFT else -1
    return sign * face.yaw >= TURN_YAW and sign * (face.yaw - front.yaw) >= TURN_CHANGE


def judge(on_file: list[Face], frames: Sequence[list[Face]], actions: Sequence[Action]) -> Judgement:
    """The faces found in the photo on file and in each picture taken, against the actions asked.
    The photo on file must show exactly one face, and so must every picture."""
    if len(on_file) != 1:
        return Judgement(Outcome.NO_PHOTO)
    if len(frames) != len(actions):
        return Judgement(Outcome.NOT_FOLLOWED, step=min(len(frames), len(actions)) + 1)
    for step, faces in enumerate(frames, 1):
        if not faces:
            return Judgement(Outcome.NO_FACE, step=step)
        if len(faces) > 1:
            return Judgement(Outcome.SEVERAL_FACES, step=step)
    taken = [faces[0] for faces in frames]
    far = max(distance(on_file[0], face) for face in taken)
    if far > MATCH_DISTANCE:
        return Judgement(Outcome.NOT_MATCHED, distance=far)
    front = taken[actions.index(Action.FRONT)] if Action.FRONT in actions else taken[0]
    for step, (action, face) in enumerate(zip(actions, taken, strict=True), 1):
        if not _followed(action, face, front):
            return Judgement(Outcome.NOT_FOLLOWED, step=step, distance=far)
    return Judgement(Outcome.PASSED, distance=far)
