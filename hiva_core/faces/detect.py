"""Face detection: boxes, scores and five landmarks (eyes, nose tip, mouth corners) for every face in an image.

The detector is MTCNN (Zhang et al., 2016) as packaged by `facenet-pytorch`, whose wheel carries the P/R/O-Net
weights (pure PyTorch: no download, no extra runtime, runs on the same device as the AU model). facenet-pytorch pins an
old torch in its metadata, so it is installed with `pip install --no-deps facenet-pytorch`; it needs only torch,
torchvision (batched NMS), numpy and Pillow, all of which the toolkit already has.

Landmarks are in image pixel coordinates (x right, y down), in this order: the eye on the image's left (the subject's
right eye), the eye on the image's right, the nose tip, the mouth corner on the image's left, the mouth corner on the
image's right. That is the order `hiva_core.faces.align` expects.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from augtext.errors import UserError
from hiva_core.faces.align import invert_affine, transform_points, warp_affine

INSTALL_HINT = "pip install --no-deps facenet-pytorch"
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# Pixels per detector call. MTCNN holds a batch as float tensors and the feature maps of its largest pyramid level, at
# min_size 20 about 50 bytes per input pixel (measured: 1.2 GB more peak memory per 6000x4000 photo in a batch), so
# a folder of 16 equal-size phone photos in one call needs 10-40 GB and the process is killed. 2**25 still runs 16
# frames of 1080p video together.
MAX_BATCH_PIXELS = 2**25


@dataclass(frozen=True)
class Face:
    """One detected face: `box` (x1, y1, x2, y2) in pixels, detector `score` in [0, 1], `landmarks` (5, 2) float32."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def center_x(self) -> float:
        return 0.5 * (self.box[0] + self.box[2])

    @property
    def size(self) -> float:
        """Geometric mean of box width and height (pixels)."""
        return float(np.sqrt(max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0)))


class FaceDetector:
    """MTCNN on one device. Calls are serialised by a lock (the networks are shared, not thread-safe)."""

    def __init__(
        self,
        device: str | torch.device = "cpu",
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        threads: int | None = 1,
    ):
        try:
            from facenet_pytorch.models.mtcnn import ONet, PNet, RNet
            from facenet_pytorch.models.utils.detect_face import detect_face
        except ImportError as exc:
            raise UserError(
                f"face detection needs the facenet-pytorch package (MTCNN weights ship inside it): {INSTALL_HINT} "
                "(or pass --no-detect if the inputs are already aligned face crops)"
            ) from exc
        self.device = torch.device(device)
        self._detect_face = detect_face
        self.pnet, self.rnet, self.onet = (net().to(self.device).eval() for net in (PNet, RNet, ONet))
        self.thresholds = list(thresholds)
        self.factor = factor
        # On CPU, MTCNN's many tiny convolutions run fastest on one thread: intra-op threading costs more than it
        # gains. Measured on a 512-px photo, 2-core machine: 0.10 s with one thread, 0.43 s with two (idle machine),
        # 10-30x slower with two on a busy one. The thread count is restored after each call.
        self.threads = threads if self.device.type == "cpu" else None
        self._lock = threading.Lock()

    def __call__(
        self, images: Sequence[np.ndarray] | np.ndarray, *, min_score: float = 0.9, min_size: float = 20.0
    ) -> list[list[Face]]:
        """Faces in each image of a batch of equal-size RGB uint8 images (N, H, W, 3), each list sorted left→right."""
        if isinstance(images, np.ndarray) and images.ndim == 4:
            batch = images
        else:
            batch = np.stack([_check_image(im) for im in ([images] if isinstance(images, np.ndarray) else images)])
        _check_image(batch[0])
        min_size = max(12.0, float(min_size))
        if min(batch.shape[1:3]) < min_size:  # no face of min_size fits (and MTCNN's image pyramid would be empty)
            return [[] for _ in range(len(batch))]
        with self._lock, torch.inference_mode(), _num_threads(self.threads):
            boxes, points = self._detect_face(
                batch, min_size, self.pnet, self.rnet, self.onet, self.thresholds, self.factor, self.device
            )
        out: list[list[Face]] = []
        for img_boxes, img_points in zip(boxes, points, strict=True):
            faces = []
            for box, pts in zip(
                np.asarray(img_boxes, dtype=np.float64).reshape(-1, 5),
                np.asarray(img_points, dtype=np.float32).reshape(-1, 5, 2),
                strict=True,
            ):
                face = Face(box=tuple(float(v) for v in box[:4]), score=float(box[4]), landmarks=pts.copy())
                if face.score >= min_score and face.size >= min_size:
                    faces.append(face)
            out.append(sorted(faces, key=lambda f: f.center_x))
        return out


_DETECTORS: dict[str, FaceDetector] = {}
_DETECTORS_LOCK = threading.Lock()


def get_detector(device: str | torch.device | None = None) -> FaceDetector:
    """The process-wide detector for `device` (default CPU), built on first use."""
    key = str(torch.device(device or "cpu"))
    with _DETECTORS_LOCK:
        if key not in _DETECTORS:
            _DETECTORS[key] = FaceDetector(key)
        return _DETECTORS[key]


def detect_faces(
    image: np.ndarray, *, min_score: float = 0.9, min_size: float = 20.0, device: str | torch.device | None = None
) -> list[Face]:
    """Every face in an RGB uint8 image (H, W, 3), sorted left→right by box centre, its landmarks found again at fixed
    scales (`refine`).

    `min_score` drops weak detections (MTCNN's final-stage probability); `min_size` (pixels) is the smallest face
    searched for: raising it makes detection on large frames much faster.
    """
    return detect_faces_batch([image], min_score=min_score, min_size=min_size, device=device)[0]


REFINE_SIDE = 256
REFINE_SPANS = (1.6, 1.8, 2.0, 2.2, 2.5)
"""`refine` finds each face again in REFINE_SIDE-pixel crops around it whose side is these multiples of its box."""


def refine(detector: FaceDetector, image: np.ndarray, face: Face, *, min_score: float = 0.9) -> Face:
    """`face` with its landmarks found again at fixed scales: the mean over crops around it of REFINE_SIDE pixels
    whose sides span REFINE_SPANS times the box (one detector call). Unchanged if no crop finds it.

    MTCNN's landmarks jitter with the image's resolution, and a model reading the brows against the aligned frame
    reads a frame a few pixels off as a brow raise or not (AU1 0.46-0.64 on one astronaut photo saved at 7 sizes,
    512-4096 px). Over six real photos, each at 0.6-2.5 times its size, the aligned crop's frame moved by 12 % of
    the eye distance on average (mean range of 9 frame points); with these five spans, by 5 %
    (bench/bench_landmarks.py). The box and score stay the first detection's.
    """
    x1, y1, x2, y2 = face.box
    cx, cy, side = 0.5 * (x1 + x2), 0.5 * (y1 + y2), max(x2 - x1, y2 - y1, 1.0)
    matrices = [
        np.array([[s, 0.0, REFINE_SIDE / 2 - s * cx], [0.0, s, REFINE_SIDE / 2 - s * cy]])
        for s in (REFINE_SIDE / (span * side) for span in REFINE_SPANS)
    ]
    crops = np.stack([warp_affine(image, m, REFINE_SIDE) for m in matrices])
    points = [
        transform_points(min(found, key=lambda f: abs(f.center_x - REFINE_SIDE / 2)).landmarks, invert_affine(m))
        for m, found in zip(matrices, detector(crops, min_score=min_score, min_size=REFINE_SIDE / 6), strict=True)
        if found
    ]
    if not points:
        return face
    return Face(box=face.box, score=face.score, landmarks=np.mean(points, axis=0).astype(np.float32))


def detect_faces_batch(
    images: Sequence[np.ndarray],
    *,
    min_score: float = 0.9,
    min_size: float = 20.0,
    device: str | torch.device | None = None,
) -> list[list[Face]]:
    """`detect_faces` for many images; images of equal size run through the networks together, up to
    `MAX_BATCH_PIXELS` pixels per call (always at least one image); each face then refined on its own (`refine`)."""
    results: list[list[Face] | None] = [None] * len(images)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(images):
        by_shape.setdefault(_check_image(im).shape, []).append(i)
    detector = get_detector(device)
    for shape, same in by_shape.items():
        step = max(1, MAX_BATCH_PIXELS // (shape[0] * shape[1]))
        for start in range(0, len(same), step):
            idx = same[start : start + step]
            found = detector([images[i] for i in idx], min_score=min_score, min_size=min_size)
            for i, faces in zip(idx, found, strict=True):
                results[i] = [refine(detector, images[i], face, min_score=min_score) for face in faces]
    return [r if r is not None else [] for r in results]


@contextlib.contextmanager
def _num_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `n` inside the block (unchanged for None)."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None and n != before:
            torch.set_num_threads(before)


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}"
        raise ValueError(f"detect_faces expects an RGB uint8 array (H, W, 3), got {desc}")
    return image
