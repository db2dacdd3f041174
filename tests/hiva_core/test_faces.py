"""Face detection (MTCNN on skimage's astronaut, a real photograph) and similarity alignment."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from augtext.errors import UserError
from hiva_core.faces import (
    TEMPLATE,
    align,
    detect_faces,
    invert_affine,
    similarity_transform,
    template_points,
    transform_points,
    warp_affine,
)

pytest.importorskip("facenet_pytorch", reason="face detection needs: pip install --no-deps facenet-pytorch")


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def compose(m2: np.ndarray, m1: np.ndarray) -> np.ndarray:
    """m2 after m1, both 2x3."""
    return (np.vstack([m2, [0, 0, 1]]) @ np.vstack([m1, [0, 0, 1]]))[:2]


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def astronaut_face(astronaut):
    faces = detect_faces(astronaut)
    assert len(faces) == 1
    return faces[0]


def test_astronaut_has_one_face_with_plausible_landmarks(astronaut_face):
    face = astronaut_face
    x1, y1, x2, y2 = face.box
    assert face.score > 0.95
    # The face in astronaut() spans roughly x 180-270, y 60-175 (a 512x512 image).
    assert 160 < x1 < 200 and 250 < x2 < 290 and 40 < y1 < 90 and 150 < y2 < 200
    le, re, nose, ml, mr = face.landmarks
    assert face.landmarks.shape == (5, 2)
    assert (face.landmarks[:, 0] > x1).all() and (face.landmarks[:, 0] < x2).all()
    assert (face.landmarks[:, 1] > y1).all() and (face.landmarks[:, 1] < y2).all()
    assert le[0] < nose[0] < re[0] and ml[0] < mr[0]  # left to right in the image
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])  # eyes above the nose above the mouth
    assert 30 < np.linalg.norm(re - le) < 60  # eye distance of a ~90 px wide face


def test_faces_sorted_left_to_right(astronaut):
    crop = astronaut[20:240, 130:330]
    flipped = crop[:, ::-1]
    pair = np.concatenate([crop, np.full_like(crop, 255)[:, :40], flipped], axis=1)
    faces = detect_faces(pair)
    assert len(faces) == 2
    assert faces[0].center_x < crop.shape[1] < faces[1].center_x


def test_no_face_in_a_blank_image():
    assert detect_faces(np.full((200, 240, 3), 128, np.uint8)) == []


def test_detect_rejects_non_rgb_uint8():
    with pytest.raises(ValueError, match="RGB uint8"):
        detect_faces(np.zeros((50, 50), np.float32))


def test_missing_detector_package_is_a_user_error(monkeypatch):
    from hiva_core.faces.detect import FaceDetector

    for name in [m for m in sys.modules if m.startswith("facenet_pytorch")] + ["facenet_pytorch"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(UserError, match="pip install --no-deps facenet-pytorch"):
        FaceDetector("cpu")


def test_similarity_transform_recovers_a_known_transform_exactly():
    src = template_points(256) * 0.7 + 40
    truth = similarity(23.0, 1.7, -12.5, 31.0)
    estimate = similarity_transform(src, transform_points(src, truth))
    np.testing.assert_allclose(estimate, truth, atol=1e-9)
    back = transform_points(transform_points(src, truth), invert_affine(truth))
    np.testing.assert_allclose(back, src, atol=1e-9)


def test_alignment_error_on_a_synthetic_face():
    """Landmarks of a synthetic face (the template moved by a known similarity, plus 1 px of noise): the aligned
    landmarks land on the template within the noise, and the estimated transform is the inverse of the known one."""
    rng = np.random.default_rng(0)
    truth = similarity(-17.0, 0.45, 300.0, 120.0)  # template -> image: a face 115 px wide, tilted
    landmarks = transform_points(template_points(256), truth) + rng.normal(0, 1.0, (5, 2))
    _, matrix = align(np.zeros((600, 800, 3), np.uint8), landmarks)
    residual = transform_points(landmarks, matrix) - template_points(256)
    assert np.sqrt((residual**2).sum(1).mean()) < 4.0  # 1 px of noise at 1/0.45 scale
    recovered = compose(matrix, truth)  # should be the identity
    np.testing.assert_allclose(recovered[:, :2], np.eye(2), atol=0.03)
    np.testing.assert_allclose(recovered[:, 2], 0.0, atol=3.0)


def test_align_puts_landmark_pixels_on_the_template():
    """An image with a bright blob at each landmark: in the aligned crop the blobs sit on the template points."""
    truth = similarity(12.0, 0.6, 150.0, 80.0)
    landmarks = transform_points(template_points(256), truth)
    yy, xx = np.mgrid[0:400, 0:500]
    image = np.zeros((400, 500, 3), np.uint8)
    for channel, (x, y) in enumerate(landmarks[:3]):
        image[..., channel] = np.maximum(image[..., channel], 255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 18.0))
    crop, _ = align(image, landmarks, size=256)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    cy, cx = np.mgrid[0:256, 0:256]
    for channel, (tx, ty) in enumerate(template_points(256)[:3]):
        w = crop[..., channel].astype(float)
        w[w < 20] = 0
        centre = np.array([(w * cx).sum() / w.sum(), (w * cy).sum() / w.sum()])
        np.testing.assert_allclose(centre, [tx, ty], atol=0.5)


def test_known_transform_round_trip_through_the_detector(astronaut, astronaut_face):
    """Warp the photo by a known similarity, detect and align again: the two alignments recover the warp."""
    truth = similarity(15.0, 0.8, 120.0, -30.0)
    warped = warp_affine(astronaut, truth, (512, 512))
    faces = detect_faces(warped)
    assert len(faces) == 1
    crop_a, m_orig = align(astronaut, astronaut_face.landmarks)
    crop_b, m_warp = align(warped, faces[0].landmarks)
    recovered = compose(invert_affine(m_warp), m_orig)  # original -> warped
    angle = np.rad2deg(np.arctan2(recovered[1, 0], recovered[0, 0]))
    scale = np.hypot(recovered[0, 0], recovered[1, 0])
    assert abs(angle - 15.0) < 3.0
    assert abs(scale - 0.8) < 0.04
    moved = transform_points(astronaut_face.landmarks, recovered) - transform_points(astronaut_face.landmarks, truth)
    assert np.abs(moved).max() < 4.0
    # Both crops show the same face at the same place: the crops agree far better than chance.
    diff = np.abs(crop_a.astype(float) - crop_b.astype(float))[32:224, 32:224].mean()
    assert diff < 20.0


def test_template_is_a_centred_face():
    le, re, nose, ml, mr = TEMPLATE
    assert le[1] == re[1] and ml[1] == mr[1]
    assert np.isclose((le[0] + re[0]) / 2, 0.5) and np.isclose(nose[0], 0.5)
    assert np.isclose(re[0] - le[0], 0.30)
    np.testing.assert_allclose(template_points(256)[2], [127.5, 140.3])


def test_a_crop_does_not_change_with_the_photos_resolution():
    """The same scene in a photo 4x larger gives the same crop: a warp that shrinks the image filters it first
    (PREFILTER_BELOW). Without the filter, bilinear sampling every 4th pixel aliases fine detail (here: pixel
    noise, the finest there is; on faces, brows and creases) into the crop: a mean difference of 38 grey levels
    against the crop of the 4x-reduced photo, under 5 with it."""
    from PIL import Image

    detail = np.random.default_rng(0).integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    reduced = np.asarray(Image.fromarray(detail).resize((512, 512), Image.Resampling.BOX))
    landmarks = np.array([[220.0, 100.0], [265.0, 100.0], [243.0, 125.0], [225.0, 150.0], [262.0, 150.0]])
    small_crop, _ = align(reduced, landmarks, size=112)
    big_crop, matrix = align(detail, (landmarks + 0.5) * 4 - 0.5, size=112)
    assert np.sqrt(abs(np.linalg.det(matrix[:, :2]))) < 0.3  # the big photo is shrunk about 7x
    assert np.abs(small_crop.astype(float) - big_crop.astype(float)).mean() < 5.0


def test_the_aligned_frame_holds_still_across_a_photos_resolutions(astronaut):
    """MTCNN's landmarks jitter with the image's resolution; `refine` finds them again at fixed scales, so that the
    same photo at 0.6-2.5 times its size is framed alike. Measured as the mean range (over the sizes) of 9 points of
    the aligned crop's frame mapped back into the photo, in % of the eye distance: 14.4 from the detector alone on
    this photo, 6.2 refined."""
    from PIL import Image

    from hiva_core.faces.align import similarity_transform, template_points

    grid = np.array([[x, y] for x in (0, 128, 255) for y in (0, 128, 255)], dtype=float)
    frames = []
    for zoom in (0.6, 1.0, 1.5, 2.5):
        side = round(512 * zoom)
        image = np.asarray(Image.fromarray(astronaut).resize((side, side), Image.Resampling.LANCZOS))
        face = max(detect_faces(image), key=lambda f: f.size)
        points = (face.landmarks + 0.5) / zoom - 0.5  # in the 512-px photo
        matrix = similarity_transform(points, template_points(256))
        frames.append(transform_points(grid, invert_affine(matrix)) / np.linalg.norm(points[0] - points[1]) * 100)
    assert np.ptp(np.stack(frames), axis=0).mean() < 9.0
