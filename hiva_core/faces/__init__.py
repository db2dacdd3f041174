"""Faces in: detection (MTCNN, five landmarks) and similarity alignment to one fixed template."""

from __future__ import annotations

from hiva_core.faces.align import (
    DEFAULT_SIZE,
    TEMPLATE,
    align,
    invert_affine,
    similarity_transform,
    template_points,
    transform_points,
    warp_affine,
)
from hiva_core.faces.detect import LANDMARK_NAMES, Face, FaceDetector, detect_faces, detect_faces_batch, get_detector

__all__ = [
    "DEFAULT_SIZE",
    "LANDMARK_NAMES",
    "TEMPLATE",
    "Face",
    "FaceDetector",
    "align",
    "detect_faces",
    "detect_faces_batch",
    "get_detector",
    "invert_affine",
    "similarity_transform",
    "template_points",
    "transform_points",
    "warp_affine",
]
