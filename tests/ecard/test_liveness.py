"""Facial recognition's judgement (SPEC E2): real faces read by the dlib models, and the liveness rules
on made-up readings."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from tests.ecard import pictures
from workcard.ecard import liveness
from workcard.ecard.faces import READER, Face
from workcard.ecard.liveness import Action, Outcome

ORDER = [Action.FRONT, Action.LEFT, Action.RIGHT]


def read(picture: bytes) -> list[Face]:
    return READER.faces(Image.open(io.BytesIO(picture)))


def test_the_holder_following_the_actions_passes():  # SPEC E2
    on_file = read(pictures.passport_photo())
    frames = [read(p) for p in pictures.frames_for(ORDER)]
    judgement = liveness.judge(on_file, frames, ORDER)
    assert judgement.outcome is Outcome.PASSED
    assert judgement.distance is not None and judgement.distance < liveness.MATCH_DISTANCE


def test_a_turn_is_read_as_a_turn_to_that_side():  # SPEC E2
    assert read(pictures.turned_left())[0].yaw >= liveness.TURN_YAW
    assert read(pictures.turned_right())[0].yaw <= -liveness.TURN_YAW
    assert abs(read(pictures.straight())[0].yaw) <= liveness.FRONT_YAW


def test_somebody_else_does_not_match():  # SPEC E2
    on_file = read(pictures.passport_photo())
    frames = [read(pictures.stranger())] + [read(p) for p in pictures.frames_for(ORDER[1:])]
    judgement = liveness.judge(on_file, frames, ORDER)
    assert judgement.outcome is Outcome.NOT_MATCHED and judgement.distance > liveness.MATCH_DISTANCE


def test_a_still_photo_held_to_the_camera_is_not_live():  # SPEC E2
    on_file = read(pictures.passport_photo())
    still = read(pictures.straight())
    assert liveness.judge(on_file, [still, still, still], ORDER) == liveness.Judgement(
        Outcome.NOT_FOLLOWED,
        step=2,
        distance=pytest.approx(liveness.judge(on_file, [still], [Action.FRONT]).distance),
    )


def test_turning_the_wrong_way_is_not_following():  # SPEC E2
    on_file = read(pictures.passport_photo())
    frames = [read(p) for p in pictures.frames_for(["front", "turn_right", "turn_left"])]
    assert liveness.judge(on_file, frames, ORDER).outcome is Outcome.NOT_FOLLOWED


def test_no_face_and_two_faces_are_named_with_their_picture():  # SPEC E2
    on_file = read(pictures.passport_photo())
    left, right = read(pictures.turned_left()), read(pictures.turned_right())
    assert liveness.judge(on_file, [read(pictures.no_face()), left, right], ORDER) == liveness.Judgement(
        Outcome.NO_FACE, step=1
    )
    assert liveness.judge(
        on_file, [read(pictures.straight()), read(pictures.two_people()), right], ORDER
    ) == (liveness.Judgement(Outcome.SEVERAL_FACES, step=2))


def test_a_photo_on_file_without_one_face_cannot_be_used():  # SPEC E2, E3
    frames = [read(p) for p in pictures.frames_for(ORDER)]
    assert liveness.judge([], frames, ORDER).outcome is Outcome.NO_PHOTO
    assert liveness.judge(read(pictures.two_people()), frames, ORDER).outcome is Outcome.NO_PHOTO


def _face(yaw: float) -> Face:
    return Face((0.0,) * 128, yaw)


@pytest.mark.parametrize(
    ("front", "left", "right", "outcome"),
    [
        (0.0, 0.2, -0.2, Outcome.PASSED),
        (0.11, 0.3, -0.2, Outcome.NOT_FOLLOWED),  # not looking straight
        (0.0, 0.14, -0.2, Outcome.NOT_FOLLOWED),  # not turned far enough
        (-0.09, 0.16, -0.25, Outcome.PASSED),
        (-0.09, 0.16, -0.2, Outcome.NOT_FOLLOWED),  # right: hardly more than when looking straight
        (0.09, 0.16, -0.2, Outcome.NOT_FOLLOWED),  # turned, but hardly more than when looking straight
        (0.0, 0.2, 0.2, Outcome.NOT_FOLLOWED),  # both turns to the same side
    ],
)
def test_liveness_thresholds(front, left, right, outcome):  # SPEC E2
    frames = [[_face(front)], [_face(left)], [_face(right)]]
    assert liveness.judge([_face(0.0)], frames, ORDER).outcome is outcome


def test_actions_start_straight_then_turn_both_ways_in_random_order():  # SPEC E2
    seen = {tuple(liveness.new_actions(random.Random(seed))) for seed in range(20)}
    assert seen == {(Action.FRONT, Action.LEFT, Action.RIGHT), (Action.FRONT, Action.RIGHT, Action.LEFT)}


def test_a_missing_picture_is_not_following():  # SPEC E2
    assert liveness.judge([_face(0.0)], [[_face(0.0)]], ORDER) == liveness.Judgement(
        Outcome.NOT_FOLLOWED, step=2
    )
