"""`data.align`: labelled raw images (photos, video frames) detected and aligned on the fly, as `hiva_core predict`
aligns new faces, so that training, evaluation and prediction see one framing (`hiva_core.faces.align.TEMPLATE`).

Each image goes through predict's own face stream (`hiva_core.faces.stream.FaceStream`: the same reader, MTCNN call and
256-px similarity alignment); when it holds several faces the largest is kept, as `hiva_core prepare` does. Crops
are cached as PNG files in a folder (default `hiva_aligned/` beside the manifest, or under the list files' image
root; `data.align_cache` names another), one file per image named by a hash of the image's absolute path, its
modification time and size, and the alignment (template, crop size, detector settings): an edited image or another
template is aligned again, everything else is reused across epochs, runs, `train` and `eval`. Files are written
atomically (temp file + rename), so a killed run leaves no half-written crop.

An image in which no face is found is left out, with a warning that names it (a marker in the cache remembers it, so
it is not searched again); a split in which no image has a face is a UserError. An unreadable image is a UserError,
as it is without alignment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from augtext.errors import UserError
from augtext.io import atomic_write, check_output_dir
from hiva_core.data.dataset import AUDataset
from hiva_core.faces.align import DEFAULT_SIZE, TEMPLATE

CACHE_NAME = "hiva_aligned"  # default cache folder, beside the manifest / under the image root
MIN_FACE = 20.0  # smallest face searched for (pixels): predict's default
CHUNK = 64  # images per face-stream pass
SHOW = 10  # images named one by one in the warnings; the rest are counted


def alignment_id(min_face: float = MIN_FACE) -> str:
    """What a crop depends on besides its image: template, crop size (predict's), detector and the face picked."""
    spec = {"template": TEMPLATE.round(6).tolist(), "size": DEFAULT_SIZE, "detector": "mtcnn", "min_face": min_face}
    # version 2: landmarks refined at fixed scales (faces.detect.refine) and large photos filtered before the warp
    return json.dumps({**spec, "min_score": 0.9, "pick": "largest", "version": 2}, sort_keys=True)


class CropCache:
    """Aligned crops of image files, in `folder`; keyed by image (path, mtime, size) and the alignment."""

    def __init__(self, folder: str | os.PathLike, min_face: float = MIN_FACE):
        self.folder = Path(folder)
        self.min_face = min_face
        self._alignment = alignment_id(min_face)

    def key(self, image: str | os.PathLike) -> str:
        path = os.path.realpath(image)
        stat = os.stat(path)
        text = f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\0{self._alignment}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def crop_file(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.png"

    def no_face_file(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.noface"

    def write_no_face(self, key: str, image: str) -> None:
        with atomic_write(self.no_face_file(key), "w") as fh:
            fh.write(f"{image}\n")


def default_cache(dataset: AUDataset) -> Path:
    return Path(dataset.root or ".") / CACHE_NAME


def align_dataset(
    dataset: AUDataset,
    cache: str | os.PathLike | None = None,
    *,
    device=None,
    progress: bool | None = None,
    split: str = "",
) -> AUDataset:
    """`dataset` with each image replaced by its aligned face crop (cached), rows without a face left out.

    Neutral frames (a manifest's `neutral` column) are aligned alike, each file once however many rows name it; a row
    whose neutral frame has no face is left out too. `cache`: the crop folder (None: `hiva_aligned/` under the
    dataset's root). `split` names the rows in messages."""
    from hiva_core.data.dataset import check_images

    # absolute: the crops' paths replace the rows' files, which are joined to the dataset's root (a relative folder
    # would be joined to it twice)
    folder = (Path(cache) if cache is not None else default_cache(dataset)).absolute()
    check_output_dir(folder, "data.align_cache")
    check_images(dataset, progress=False)  # a missing file is an error, as without alignment
    store = CropCache(folder)
    faces = [dataset.path(i) for i in range(len(dataset))]
    refs = dataset.references or [""] * len(dataset)
    rests = [dataset.reference_path(i) if str(r).strip() else "" for i, r in enumerate(refs)]
    images = list(dict.fromkeys([*faces, *filter(None, rests)]))  # each file once, in order
    keys = {path: store.key(path) for path in images}
    todo = [p for p in images if not store.crop_file(keys[p]).is_file() and not store.no_face_file(keys[p]).is_file()]
    if todo:
        _align_images(todo, keys, store, device, progress, dataset.source)
    found = {p for p in images if store.crop_file(keys[p]).is_file()}
    keep = [i for i in range(len(dataset)) if faces[i] in found and (not rests[i] or rests[i] in found)]
    where = f"the {split} rows of {dataset.source}" if split else dataset.source
    missed = [p for p in faces if p not in found] + [f"{p} (a neutral frame)" for p in rests if p and p not in found]
    missed = list(dict.fromkeys(missed))  # a neutral frame of many rows named once
    for path in missed[:SHOW]:
        print(f"warning: data.align: no face found in {path}; left out of {where}", file=sys.stderr)
    if len(missed) > SHOW:
        print(
            f"warning: data.align: {len(missed) - SHOW} more images without a face left out of {where}", file=sys.stderr
        )
    if not keep:
        raise UserError(
            f"data.align found no face in any of the {len(dataset)} images of {where}; are they photos of faces? "
            "(already aligned crops need no data.align)"
        )
    crop = lambda path: str(store.crop_file(keys[path])) if path else ""  # noqa: E731
    return dataset.subset(
        keep,
        files=[crop(faces[i]) for i in keep],
        source=f"{dataset.source} (aligned, {folder})",
        references=None if dataset.references is None else [crop(rests[i]) for i in keep],
    )


FRAMING_SAMPLE = 16  # images `measure_framing` looks at, spread evenly over a set
FRAMED_SCALE = (0.8, 1.25)  # a framed face: aligning would scale it by no more than this ...
FRAMED_SHIFT = 0.12  # ... and find it no further than this share of the side from the template's place (medians)


@dataclasses.dataclass(frozen=True)
class Framing:
    """How the faces of a set sit in their images against the template, from a sample: `scale`, the median factor
    aligning would enlarge a face by (1: as the template frames it; 2: the face is half the template's size);
    `shift`, the median distance from the face's centre (the mean of its five points) to the template's, as a share
    of the image's side; `found` of `sampled` images had a face."""

    scale: float
    shift: float
    found: int
    sampled: int

    @property
    def framed(self) -> bool:
        """Faces framed as `hiva_core.faces.align.TEMPLATE` frames them (SynthAU, `prepare`, `data.align` crops):
        SynthAU's own renders, turned up to 45 degrees, measure 0.87-1.19 (5th to 95th percentile) and at most 0.08
        one by one, 1.00 and 0.05 as a set."""
        return FRAMED_SCALE[0] <= self.scale <= FRAMED_SCALE[1] and self.shift <= FRAMED_SHIFT

    def describe(self) -> str:
        return (
            f"faces at {1 / self.scale:.2f} times the template's size, {self.shift:.2f} of the image's side from its "
            f"place (median of {self.found} of {self.sampled} images sampled)"
        )


def measure_framing(paths: list[str], device=None, sample: int = FRAMING_SAMPLE) -> Framing | None:
    """How faces sit in the images `paths` (an evenly spread sample of `sample`): each one's largest face's five
    points fitted to the template at the image's size (`faces.align.similarity_transform`). None when the sample
    holds no face the detector finds (drawings, crops too small to detect), or the detector is not installed (train
    and eval do not need it otherwise)."""
    from hiva_core.faces.align import similarity_transform, template_points
    from hiva_core.faces.detect import detect_faces_batch, get_detector
    from hiva_core.faces.media import read_image

    try:
        get_detector(device)
    except UserError:  # facenet-pytorch is missing: nothing to measure with
        return None
    chosen = [paths[i] for i in sorted({int(k) for k in np.linspace(0, len(paths) - 1, min(sample, len(paths)))})]
    images = []
    for path in chosen:
        with contextlib.suppress(OSError, ValueError):  # an unreadable image is said where images are checked
            images.append(read_image(path))
    scales, shifts = [], []
    for image, faces in zip(images, detect_faces_batch(images, device=device), strict=True):
        if not faces:
            continue
        face = max(faces, key=lambda f: f.size)
        height, width = image.shape[:2]
        side = min(height, width)  # the template over the image's largest centred square: identity if framed
        target = template_points(side) + [(width - side) / 2, (height - side) / 2]
        m = similarity_transform(face.landmarks, target)
        scales.append(float(np.sqrt(abs(np.linalg.det(m[:, :2])))))
        shifts.append(float(np.linalg.norm(face.landmarks.mean(axis=0) - target.mean(axis=0))) / side)
    if not scales:
        return None
    return Framing(float(np.median(scales)), float(np.median(shifts)), len(scales), len(chosen))


def framing_record(dataset: AUDataset, device=None) -> dict[str, float] | None:
    """`measure_framing` of a dataset's images as a run records it (config.json's data.framing); None where no face
    is found in the sample or the detector is not installed."""
    framing = measure_framing([dataset.path(i) for i in range(len(dataset))], device=device)
    return None if framing is None else dataclasses.asdict(framing)


def unaligned_note(framing: dict | None, align: bool) -> str:
    """What to say of a run whose training faces (`framing`, config.json's data.framing) are not framed as the
    template and were not aligned (`align`: data.align), e.g. raw video frames: `predict` aligns new faces to the
    template, so it reads them framed otherwise than the run learnt. "" for every other run (and without a record)."""
    measured = Framing(**framing) if framing else None
    if measured is None or align or measured.framed:
        return ""
    return (
        f"the run's training faces were not aligned ({measured.describe()}; `--set data.align=true` aligns them as "
        "predict aligns new faces)"
    )


def _align_images(paths: list[str], keys: dict[str, str], store: CropCache, device, progress, source: str) -> None:
    """Detect and align the images `paths` through predict's face stream; write their crops (or no-face markers)."""
    from hiva_core.faces.media import write_image
    from hiva_core.faces.stream import FaceStream, StageTimer, largest_faces
    from hiva_core.progress import progress_bar

    timer = StageTimer()
    with progress_bar("aligning faces", len(paths), progress) as advance:
        for start in range(0, len(paths), CHUNK):
            chunk = paths[start : start + CHUNK]
            sources = [(Path(p), "image") for p in chunk]
            stream = FaceStream(sources, timer, min_face=store.min_face, device=device, on_frames=advance)
            best = largest_faces(
                stream,
                lambda row: UserError(
                    f"cannot read image {row['source']} ({row['error']}); replace or remove it from {source}"
                ),
            )
            for path, (image, _) in zip(chunk, sources, strict=True):
                crop = best.get(str(image))
                if crop is None:
                    store.write_no_face(keys[path], str(image))
                else:
                    write_image(store.crop_file(keys[path]), np.asarray(crop))  # atomic
