"""`run_synth`: render N samples into a SynthAU folder, resumably, with one or more render processes.

Folder layout:
    out/images/000000.jpg ...   the faces (JPEG at the sample's quality)
    out/manifest.csv            one row per image (see MANIFEST COLUMNS below), read by hiva_core.data
    out/synth.json              how the set was made (seed, size, split, factors, face model, AU table, calibration)

While rendering, and when stopped before the last image, the rows so far are in out/manifest.partial.csv (every
FLUSH_EVERY_S seconds); manifest.csv is written once every image is done, so that no reader takes a part of a set for
the set. Resuming: rows of the old manifests whose image is valid are kept; an image without a row (a run killed between
manifest writes) keeps its file and gets its row recomputed from (seed, index) without
rendering; missing or unreadable images are rendered again (deterministic: the same bytes).

Manifest columns: `path` (relative to the manifest), `AU<code>` occurrence 0/1 for every SYNTH_AUS code,
`AU<code>_int` intensity in [0, 1], `subject` (one synthetic identity), `identity`, then `fold` (1..3, identity-
exclusive: identity % 3 + 1) for the normal set or `split` = test for the shifted set, `expression` (sets
with posed faces: `synth --labels posed` or a mix with it, hiva_core.synth.expressions; empty for other faces of a
mix), `label_kind` (mixed sets only: bp4d, independent or posed, how the face's AUs were drawn), `index`, `yaw`,
`pitch`, `roll` (degrees), `box_x0, box_y0, box_x1, box_y1` (landmark box, pixels), `landmarks` (a JSON list of
136 numbers, x0, y0, x1, y1, ... of the 68 Multi-PIE landmarks in pixels) and `neutral_landmarks` (the same person's
68 landmarks with no AU, in the same pose and frame: what hiva_core.geometry measures an expression from; a set
written before this column gains it on resume, from each image's parameters, without rendering anything again);
with `synth --neutral`, `neutral` (the path of the same person's neutral frame, out/neutral/000000.jpg ...: every AU at
0, the head a few degrees off the face's pose, framed by an alignment of its own, the scene the same: what a model
with `model.reference` reads the face beside; sampling.neutral_params). Resuming a set with --neutral adds the
neutral frames to it, without rendering its faces again.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from augtext.errors import UserError
from augtext.facs import au_label
from augtext.io import atomic_write, utc_now
from hiva_core.data.manifest import MANIFEST_PARTIAL
from hiva_core.synth.aumap import AU_BLENDSHAPES, OCCURRENCE_THRESHOLD, SYNTH_AUS
from hiva_core.synth.calibration import FALLBACK_SOURCE, bp4d_combinations
from hiva_core.synth.factors import FACTORS, factors_label, parse_factors
from hiva_core.synth.sampling import (
    DEFAULT_LABELS,
    SAMPLES_PER_IDENTITY,
    SampleParams,
    labels_label,
    neutral_params,
    parse_labels,
    sample_params,
)

MANIFEST = "manifest.csv"
META = "synth.json"
# 4: a lopsided AU's middle shapes at full strength, the background's noise apart from the degradations, the face's
# size in the frame from the neutral face, a hand's shadow without wrap-around; 3: creases on 60 % of people, the
# rest smooth (look.SMOOTH_SHARE); 2: the factors of variation
# (hiva_core.synth.factors); 1: before them (`--factors none` ranges)
FORMAT_VERSION = 4
FLUSH_EVERY_S = 30.0


def manifest_columns(shifted: bool, labels: str = DEFAULT_LABELS, neutral: bool = False) -> list[str]:
    kinds = [kind for kind, _ in parse_labels(labels)]
    aus = [au_label(a) for a in SYNTH_AUS]
    return [
        "path",
        *aus,
        *[f"{a}_int" for a in aus],
        "subject",
        "identity",
        "split" if shifted else "fold",
        *(["expression"] if "posed" in kinds else []),
        *(["label_kind"] if len(kinds) > 1 else []),
        "index",
        "yaw",
        "pitch",
        "roll",
        "box_x0",
        "box_y0",
        "box_x1",
        "box_y1",
        "landmarks",
        "neutral_landmarks",
        *(["neutral"] if neutral else []),
    ]


def image_name(index: int) -> str:
    return f"images/{index:06d}.jpg"


def neutral_name(index: int) -> str:
    return f"neutral/{index:06d}.jpg"


def _points(landmarks) -> str:
    return json.dumps([round(float(x), 2) for x in landmarks.reshape(-1)])


def make_row(params: SampleParams, landmarks, box, shifted: bool, neutral) -> dict:
    row: dict = {"path": image_name(params.index)}
    labels = params.labels
    row.update({au_label(a): labels[a] for a in SYNTH_AUS})
    row.update({f"{au_label(a)}_int": round(params.au[a], 4) for a in SYNTH_AUS})
    ident = params.identity.identity
    row.update(subject=f"{'X' if shifted else 'S'}{ident:05d}", identity=ident)
    if shifted:
        row["split"] = "test"
    else:
        row["fold"] = params.fold
    if params.expression:
        row["expression"] = params.expression
    row["label_kind"] = params.label_kind  # written only by a mixed set (manifest_columns)
    row.update(index=params.index, yaw=round(params.yaw, 3), pitch=round(params.pitch, 3), roll=round(params.roll, 3))
    row.update({k: round(float(v), 2) for k, v in zip(("box_x0", "box_y0", "box_x1", "box_y1"), box, strict=True)})
    row["landmarks"] = _points(landmarks)
    row["neutral_landmarks"] = _points(neutral)
    return row


class _Worker:
    """A renderer bound to one set; lives in the main process (workers=1) or once per render process."""

    def __init__(
        self,
        out: Path,
        size: int,
        seed: int,
        face_model: Path,
        shifted: bool,
        msaa: int,
        factors: tuple[str, ...],
        labels: str = DEFAULT_LABELS,
        neutral_frames: bool = False,
    ):
        from hiva_core.synth.facemodel import load_face_model
        from hiva_core.synth.render import Renderer

        self.out, self.seed, self.shifted, self.factors, self.labels = out, seed, shifted, factors, labels
        self.neutral_frames = neutral_frames
        self.renderer = Renderer(load_face_model(face_model), size, samples=msaa)

    def __call__(self, index: int) -> dict:
        params = sample_params(self.seed, index, self.shifted, self.factors, self.labels)
        path = self.out / image_name(index)
        neutral = self.renderer.neutral_landmarks(params)
        if self.neutral_frames:
            rest = self.out / neutral_name(index)
            if not _valid_image(rest, self.renderer.size):
                _write_jpeg(rest, self.renderer.render(neutral_params(params, self.seed, self.shifted)).image, params)
        if _valid_image(path, self.renderer.size):  # rendered before the manifest was last written: labels only
            verts, _, mvp, _ = self.renderer.geometry(params)
            row = make_row(params, *self.renderer.landmarks(verts, mvp), self.shifted, neutral)
        else:
            result = self.renderer.render(params)
            _write_jpeg(path, result.image, params)
            row = make_row(params, result.landmarks, result.box, self.shifted, neutral)
        if self.neutral_frames:
            row["neutral"] = neutral_name(index)
        return row


def _write_jpeg(path: Path, image, params: SampleParams) -> None:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=params.jpeg_quality)
    with atomic_write(path, "wb", fsync=False) as fh:
        fh.write(buf.getvalue())


_WORKER: _Worker | None = None


def _init_worker(*args) -> None:
    global _WORKER
    _WORKER = _Worker(*args)


def _work(index: int) -> dict:
    assert _WORKER is not None
    return _WORKER(index)


def _valid_image(path: Path, size: int) -> bool:
    try:
        with Image.open(path) as im:
            if im.size != (size, size):
                return False
            im.verify()
        return True
    except Exception:  # noqa: BLE001 - any unreadable file is simply rendered again
        return False


def _read_rows(manifest: Path) -> dict[int, dict]:
    if not manifest.is_file():
        return {}
    import pandas as pd

    try:
        df = pd.read_csv(manifest, keep_default_na=False)
    except Exception:  # noqa: BLE001 - a damaged manifest is rebuilt from the images' parameters
        return {}
    return {int(r["index"]): r for r in df.to_dict("records")}


def _write_manifest(path: Path, rows: dict[int, dict], columns: list[str]) -> None:
    import pandas as pd

    df = pd.DataFrame([rows[i] for i in sorted(rows)], columns=columns)
    with atomic_write(path, "w") as fh:
        df.to_csv(fh, index=False)


_PLAIN_FLAGS = ("labels", "seed", "size", "msaa")  # synth.json keys that are also `synth --KEY VALUE`


def _check_meta(out: Path, meta: dict) -> None:
    path = out / META
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except ValueError:
        return
    keys = ("seed", "size", "shifted", "labels", "format_version", "factors", "msaa", "bp4d_calibration", "neutral")
    for key in keys:
        was, now = old.get(key), meta[key]
        if key == "labels":  # a set made before --labels existed has BP4D rows
            was = was or "bp4d"
        if key == "bp4d_calibration":  # the lists may move with a checkout; what the labels are drawn from may not
            was, now = was == FALLBACK_SOURCE, now == FALLBACK_SOURCE
        if key == "neutral":  # --neutral adds the neutral frames to a set without them
            was, now = bool(was), bool(was) and bool(now)
        if was != now:
            value = old.get("factors_spec") if key == "factors" else (was if key in _PLAIN_FLAGS else None)
            resume = f"--{key} {value}" if value is not None else "the same settings"  # the flag that resumes it
            resume = "--neutral" if key == "neutral" else resume
            raise UserError(
                f"{out} already holds a SynthAU set made with {key}={old.get(key)!r} (now {meta[key]!r}): "
                f"use another --out, or {resume} to resume"
            )


def run_synth(
    out: str | os.PathLike,
    n: int,
    size: int = 128,
    seed: int = 0,
    face_model: str | os.PathLike | None = None,
    workers: int = 1,
    shifted: bool = False,
    msaa: int = 4,
    progress: bool = True,
    factors: str | tuple[str, ...] | None = "all",
    labels: str = DEFAULT_LABELS,
    neutral: bool = False,
) -> Path:
    """Render samples 0..n-1 into `out` (skipping valid existing images) and write `out/manifest.csv`; returns it.

    `factors`: the factors of variation that are on, a SPEC (`all`, `none`, `-occluders,-pose`, `pose,lighting`) or
    names; see hiva_core.synth.factors. `labels` (sampling.parse_labels): how each face's AUs are drawn — BP4D label
    rows, each AU on its own, a posed expression (hiva_core.synth.expressions), or a mix of them with weights
    (`bp4d:2,posed:1`); the people and scenes are the same. `neutral`: also render each face's neutral frame (the
    same person at rest, sampling.neutral_params) into out/neutral/, named by the manifest's `neutral` column."""
    from hiva_core.synth.facemodel import find_face_model, load_face_model

    if n < 1:
        raise UserError(f"--n must be at least 1 (got {n})")
    if not 16 <= size <= 2048:
        raise UserError(f"--size must be between 16 and 2048 pixels (got {size})")
    if workers < 1:
        raise UserError(f"--workers must be at least 1 (got {workers})")
    if msaa < 0 or msaa & (msaa - 1):
        raise UserError(f"--msaa must be 0 (off) or a power of two (2, 4, 8, ...), got {msaa}")
    try:
        labels = labels_label(parse_labels(labels))
    except ValueError as exc:
        raise UserError(f"--labels {labels!r}: {exc} (e.g. posed, or a mix: bp4d:2,posed:1)") from None
    factors = parse_factors(factors) if isinstance(factors, str) or factors is None else tuple(factors)
    unknown = [f for f in factors if f not in FACTORS]
    if unknown:
        raise UserError(f"unknown SynthAU factor(s) {', '.join(unknown)}; valid: {', '.join(FACTORS)}")
    out = Path(out)
    model_path = find_face_model(face_model)
    load_face_model(model_path)  # a damaged file fails here, before --out is made (cached: the renderer reuses it)
    meta = {
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "size": size,
        "shifted": shifted,
        "split": "shifted test" if shifted else "3 identity-exclusive folds",
        "labels": labels,
        "factors": list(factors),
        "factors_spec": factors_label(factors),
        "face_model": str(model_path),
        "aus": SYNTH_AUS,
        "occurrence_threshold": OCCURRENCE_THRESHOLD,
        "au_blendshapes": {au_label(k): v for k, v in AU_BLENDSHAPES.items()},
        "samples_per_identity": SAMPLES_PER_IDENTITY,
        "bp4d_calibration": bp4d_combinations()[3],
        "msaa": msaa,
        "neutral": neutral,
    }
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    _check_meta(out, meta)
    if meta["bp4d_calibration"] == FALLBACK_SOURCE:  # a set rendered beside ../shared would draw other labels
        print(
            "warning: synth: BP4D label lists not found (HIVA_BP4D_LISTS, ../shared/data/protocols/BP4D): the 12 BP4D "
            "AUs are drawn from the built-in table of BP4D label combinations (the same rates, other faces' labels "
            "than a set rendered with the lists); synth.json records it",
            file=sys.stderr,
        )
    folders = ["images", *(["neutral"] if neutral else [])]
    for folder in folders:
        (out / folder).mkdir(parents=True, exist_ok=True)
        for stale in (out / folder).glob(".*.tmp"):  # a killed run's half-written image
            stale.unlink(missing_ok=True)
    meta["created_utc"] = utc_now()
    with atomic_write(out / META, "w") as fh:
        json.dump(meta, fh, indent=1)

    columns = manifest_columns(shifted, labels, neutral)
    manifest, partial = out / MANIFEST, out / MANIFEST_PARTIAL
    old = {**_read_rows(manifest), **_read_rows(partial)}  # an unfinished run's rows are the newer

    def done(i: int, row: dict) -> bool:
        # a row without neutral landmarks (written before that column) is made again from its image's parameters
        if not (i < n and row.get("neutral_landmarks") and _valid_image(out / image_name(i), size)):
            return False
        return not neutral or (bool(row.get("neutral")) and _valid_image(out / neutral_name(i), size))

    rows = {i: r for i, r in old.items() if done(i, r)}
    todo = [i for i in range(n) if i not in rows]
    args = (out, size, seed, model_path, shifted, msaa, factors, labels, neutral)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), disable=not progress)
    last_flush = time.monotonic()
    try:
        with bar:
            task = bar.add_task("render", total=n, completed=n - len(todo))
            if workers == 1 or len(todo) <= 1:
                results = map(_Worker(*args), todo) if todo else iter(())
                pool = None
            else:
                import multiprocessing as mp

                pool = ProcessPoolExecutor(
                    min(workers, len(todo)), mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=args
                )
                results = pool.map(_work, todo, chunksize=max(1, min(16, len(todo) // (4 * workers))))
            try:
                for row in results:
                    rows[int(row["index"])] = row
                    bar.advance(task)
                    if time.monotonic() - last_flush > FLUSH_EVERY_S:
                        _write_manifest(partial, rows, columns)
                        last_flush = time.monotonic()
            finally:
                if pool is not None:
                    pool.shutdown(cancel_futures=True)
    finally:
        if len(rows) == n:  # the set is whole: only now a manifest that train and eval read
            _write_manifest(manifest, rows, columns)
            partial.unlink(missing_ok=True)
        else:  # Ctrl-C, an error: the rows so far, for the resumed run (data readers name it as unfinished)
            _write_manifest(partial, rows, columns)
    return manifest
