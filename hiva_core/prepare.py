"""`hiva_core prepare`: raw BP4D / DISFA / GFT trees -> aligned 256-px face crops + list files + folds.

Every labelled frame is read, its face detected (the largest, if several) and aligned with `hiva_core.faces.align`
(the same crop `hiva_core predict` makes), and written under OUT/images/. The list files that `hiva_core.data` reads
(the ME-GraphAU / MDHR format) go to OUT/lists/, so that training takes `--data bp4d:OUT/images --lists OUT/lists`.
Frames whose face is not found (or whose image is missing or unreadable) are left out of the lists and written to
OUT/prepare_report.csv; that is not an error. A second run skips crops already written (resumable); crops are written
through a temp file + rename, so a killed run leaves no half-written image behind.

Raw layouts read (the folder names are searched for anywhere under --root):

BP4D   AU coding  `F001_T1.csv`, ...: a header row, then one row per coded frame; the first column is the frame
                  number, the others are headed by AU numbers; 0 absent, 1 present, 9 unknown.
       frames     `.../F001/T1/<frame>.jpg` (e.g. BP4D's `Sequences/F001/T1/0643.jpg`; leading zeros optional).
       crops      `F001/T1/643.jpg`; lists `BP4D_{train,test}_img_path_fold{k}.txt`, `..._label_fold{k}.txt` and
                  `BP4D_train_weight_fold{k}.txt`, 12 AUs (1 2 4 6 7 10 12 14 15 17 23 24), 9 where unknown.
DISFA  labels     `SN001_au1.txt`, ...: one `frame,intensity` line per frame (frames from 1); intensity >= 2 is
                  present (the field's convention). The 8 AUs 1 2 4 6 9 12 25 26 are needed.
       frames     the left camera's video `LeftVideoSN001_comp.avi` (label frame N = the N-th decoded frame), or
                  frames extracted beforehand into a folder `.../SN001/` named by label frame number (`1.png`, ...,
                  as `ffmpeg -i LeftVideoSN001_comp.avi SN001/%d.png` writes them).
       crops      `SN001/SN001_<frame - 1>.png` (from 0, as in the MDHR lists); lists `DISFA_*_path_fold{k}.txt`...
GFT    AU coding  `AUCoding/<subject>.csv` or `AUCoding/<subject>_<sequence>.csv`, in the BP4D CSV format.
       frames     `.../<subject>/[<sequence>/]<frame>.jpg`, or a video `<subject>[_<sequence>].mp4|avi|...`
                  (label frame N = the N-th decoded frame).
       split      `test_subjects.txt` beside AUCoding/ (one subject a line: the official test subjects). Without
                  it, a deterministic stand-in (every fifth subject in sorted order is a test subject) is used and
                  a warning says so. Lists `GFT_{train,test}_img_path.txt`, `GFT_{train,test}_label.txt`, 10 AUs.

Folds (BP4D, DISFA): the subject-exclusive 3-fold partition of ME-GraphAU / MDHR (fold k's test subjects below;
train = the other two folds). A subject outside it (not part of the public datasets) is assigned to the folds in
sorted order, round robin, with a warning.

Your own videos (`prepare videos`): every video under --root with a label CSV of the same name beside it
(`S01/clip.mp4` + `S01/clip.csv`). The CSV has a frame column (`frame`, `frame_idx`, `frame_index`,
`frame_number`, ... in any case) numbering the video's frames from --frame-base (0: the first decoded frame is 0),
and AU columns read as a manifest's (`AU12`, `au12`; 0, 1, unknown: empty, 9, NaN, ...); an optional `subject`
column, else the subject is the video's folder under --root (the video's name when it lies in --root itself). Crops
go to OUT/images/<the video's path without its suffix>/<frame>.jpg and the labelled crops to OUT/manifest.csv
(path, subject, sequence, frame, fold, AU columns), folds 1-3 by subject in sorted order, round robin (none with one
subject): train with `--data OUT/manifest.csv`.
"""

from __future__ import annotations

import csv
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from augtext.errors import UserError
from augtext.facs import DATASET_AUS, au_label, parse_au_label
from augtext.io import check_output_dir
from hiva_core.faces.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, iter_video, read_image, write_image

CROP_SIZE = 256
UNKNOWN = 9
# Test subjects of folds 1-3 (the MDHR / ME-GraphAU list files; subject-exclusive).
BP4D_FOLDS = {
    1: ("F004", "F006", "F007", "F012", "F014", "F015", "F017", "F019", "F021", "M003", "M006", "M009", "M015"),
    2: ("F003", "F005", "F011", "F013", "F020", "F022", "M002", "M005", "M010", "M011", "M013", "M016", "M017", "M018"),
    3: ("F001", "F002", "F008", "F009", "F010", "F016", "F018", "F023", "M001", "M004", "M007", "M008", "M012", "M014"),
}
DISFA_FOLDS = {
    1: ("SN003", "SN004", "SN005", "SN007", "SN008", "SN017", "SN023", "SN025", "SN029"),
    2: ("SN006", "SN011", "SN012", "SN013", "SN018", "SN021", "SN024", "SN028", "SN031"),
    3: ("SN001", "SN002", "SN009", "SN010", "SN016", "SN026", "SN027", "SN030", "SN032"),
}
_BP4D_CSV = re.compile(r"^([FM]\d{3})_(T\d+)\.csv$", re.IGNORECASE)
_DISFA_LABEL = re.compile(r"^(SN\d{3})_au(\d+)\.txt$", re.IGNORECASE)
_DISFA_VIDEO = re.compile(r"^LeftVideo(SN\d{3})_comp$", re.IGNORECASE)
_NUMBER = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class FrameJob:
    frame: int  # the label file's frame number
    out_rel: str  # crop path under OUT/images
    labels: tuple[int, ...]  # 0 / 1 / 9 per AU, in DATASET_AUS order


@dataclass(frozen=True)
class SequenceJob:
    subject: str
    sequence: str
    frames_dir: Path | None  # images named by frame number ...
    video: Path | None  # ... or a video whose decoded frame i (from 0) is label frame i + video_offset
    video_offset: int
    frames: tuple[FrameJob, ...]

    @property
    def name(self) -> str:
        return f"{self.subject}/{self.sequence}" if self.sequence else self.subject


# ---------------------------------------------------------------------------------------------------------- scanning
class _Tree:
    """One walk over the raw tree: files by name, folders of images by their last two path parts, videos by stem."""

    def __init__(self, root: Path, skip: Path | None):
        self.files: list[Path] = []
        self.image_dirs: dict[tuple[str, ...], list[Path]] = {}
        self.videos: dict[str, Path] = {}
        skip = skip.resolve() if skip is not None else None
        for folder, dirs, files in os.walk(root):
            here = Path(folder)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != skip)
            if any(Path(f).suffix.lower() in IMAGE_SUFFIXES for f in files):
                self.image_dirs.setdefault((here.parent.name.lower(), here.name.lower()), []).append(here)
                self.image_dirs.setdefault((here.name.lower(),), []).append(here)
            for f in sorted(files):
                path = here / f
                self.files.append(path)
                if path.suffix.lower() in VIDEO_SUFFIXES:
                    self.videos.setdefault(path.stem.lower(), path)

    def frames_dir(self, *parts: str) -> Path | None:
        """The frame folder for e.g. ("F001", "T1"). Where several folders match (BP4D's 3D textures, DISFA's right
        camera), one under `Sequences` or with `left` in its path wins over one with `right`."""
        found = self.image_dirs.get(tuple(p.lower() for p in parts), [])

        def rank(path: Path) -> int:
            text = str(path).lower()
            return 2 * ("sequences" in text.split(os.sep)) + ("left" in text) - ("right" in text)

        return max(found, key=rank) if found else None


def read_au_csv(path: Path, aus: Sequence[int]) -> list[tuple[int, tuple[int, ...]]]:
    """A BP4D-style AU coding CSV -> [(frame, labels 0/1/9 in `aus` order)]; frames with every label 9 dropped."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read AU coding file {path}: {exc}") from None
    if not rows:
        raise UserError(f"{path} is empty; expected a header row (frame, AU numbers) and one row per frame")
    columns: dict[int, int] = {}
    for j, cell in enumerate(rows[0][1:], start=1):
        code = _au_code(cell)
        if code is not None:
            columns.setdefault(code, j)
    missing = [au_label(a) for a in aus if a not in columns]
    if missing:
        raise UserError(f"{path}: header has no column for {', '.join(missing)} (header: {','.join(rows[0][:8])}...)")
    out = []
    for i, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            frame = int(float(row[0]))
            values = [int(float(row[columns[a]])) for a in aus]
        except (ValueError, IndexError):
            raise UserError(
                f"{path}: line {i} is not a frame number followed by 0/1/9 AU codes: {','.join(row)[:80]}"
            ) from None
        bad = [v for v in values if v not in (0, 1, UNKNOWN)]
        if bad:
            raise UserError(f"{path}: line {i}: AU code {bad[0]} is not 0 (absent), 1 (present) or 9 (unknown)")
        if any(v != UNKNOWN for v in values):
            out.append((frame, tuple(values)))
    return out


def _au_code(cell: str) -> int | None:
    cell = cell.strip()
    if cell.isdigit():
        return int(cell)
    try:
        return parse_au_label(cell)
    except (UserError, ValueError):
        return None


def read_disfa_labels(files: dict[int, Path], aus: Sequence[int]) -> list[tuple[int, tuple[int, ...]]]:
    """DISFA `frame,intensity` files, one per AU -> [(frame, labels)], intensity >= 2 present; 9 where an AU file
    lacks the frame."""
    per_au: list[dict[int, int]] = []
    for au in aus:
        values: dict[int, int] = {}
        path = files[au]
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read DISFA label file {path}: {exc}") from None
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                frame, intensity = (int(float(v)) for v in re.split(r"[,\s]+", line.strip())[:2])
            except ValueError:
                raise UserError(f"{path}: line {i} is not 'frame,intensity': {line[:60]!r}") from None
            values[frame] = int(intensity >= 2)
        per_au.append(values)
    frames = sorted(set().union(*per_au))
    return [(f, tuple(v.get(f, UNKNOWN) for v in per_au)) for f in frames]


def scan(dataset: str, root: Path, skip: Path | None = None) -> tuple[list[SequenceJob], dict[str, int]]:
    """The raw tree -> sequence jobs and each subject's test fold (GFT: 1 = test, 0 = train)."""
    tree = _Tree(root, skip)
    aus = DATASET_AUS[dataset]
    jobs: list[SequenceJob] = []
    if dataset == "bp4d":
        for path in (p for p in tree.files if _BP4D_CSV.match(p.name)):
            subject, task = (s.upper() for s in _BP4D_CSV.match(path.name).groups())
            frames = [FrameJob(f, f"{subject}/{task}/{f}.jpg", lab) for f, lab in read_au_csv(path, aus)]
            jobs.append(SequenceJob(subject, task, tree.frames_dir(subject, task), None, 0, tuple(frames)))
        if not jobs:
            raise UserError(f"no BP4D AU coding files (F001_T1.csv, ...) under {root}")
        return jobs, _folds(sorted({j.subject for j in jobs}), BP4D_FOLDS, "BP4D")
    if dataset == "disfa":
        labels: dict[str, dict[int, Path]] = {}
        for path in tree.files:
            m = _DISFA_LABEL.match(path.name)
            if m:
                labels.setdefault(m.group(1).upper(), {})[int(m.group(2))] = path
        if not labels:
            raise UserError(f"no DISFA label files (SN001_au1.txt, ...) under {root}")
        videos = {m.group(1).upper(): p for stem, p in tree.videos.items() if (m := _DISFA_VIDEO.match(stem))}
        for subject, files in sorted(labels.items()):
            missing = [au_label(a) for a in aus if a not in files]
            if missing:
                raise UserError(
                    f"DISFA subject {subject} has no label file for {', '.join(missing)} "
                    f"(expected {subject}_au<N>.txt beside {next(iter(files.values()))})"
                )
            frames = [FrameJob(f, f"{subject}/{subject}_{f - 1}.png", lab) for f, lab in read_disfa_labels(files, aus)]
            jobs.append(SequenceJob(subject, "", tree.frames_dir(subject), videos.get(subject), 1, tuple(frames)))
        return jobs, _folds(sorted(labels), DISFA_FOLDS, "DISFA")
    # gft
    for path in (p for p in tree.files if p.parent.name.lower() == "aucoding" and p.suffix.lower() == ".csv"):
        subject, _, sequence = path.stem.partition("_")
        rel = f"{subject}/{sequence}_" if sequence else f"{subject}/"
        frames = [FrameJob(f, f"{rel}{f}.jpg", lab) for f, lab in read_au_csv(path, aus)]
        folder = tree.frames_dir(subject, sequence) if sequence else tree.frames_dir(subject)
        jobs.append(SequenceJob(subject, sequence, folder, tree.videos.get(path.stem.lower()), 1, tuple(frames)))
    if not jobs:
        raise UserError(f"no GFT AU coding files (AUCoding/<subject>.csv) under {root}")
    return jobs, _gft_split(root, sorted({j.subject for j in jobs}))


def _folds(subjects: list[str], table: dict[int, tuple[str, ...]], name: str) -> dict[str, int]:
    known = {s: k for k, members in table.items() for s in members}
    extra = [s for s in subjects if s not in known]
    if extra:
        print(
            f"warning: {name} subject(s) {', '.join(extra)} are not in the standard 3-fold partition; "
            "assigned to folds 1, 2, 3 in turn",
            file=sys.stderr,
        )
    known.update({s: 1 + i % 3 for i, s in enumerate(extra)})
    return {s: known[s] for s in subjects}


def _gft_split(root: Path, subjects: list[str]) -> dict[str, int]:
    candidates = sorted(root.rglob("test_subjects.txt"))
    if candidates:
        test = {line.strip() for line in candidates[0].read_text(encoding="utf-8").splitlines() if line.strip()}
        unknown = sorted(test - set(subjects))
        if unknown:
            print(f"warning: {candidates[0]} names subject(s) without AU coding: {', '.join(unknown)}", file=sys.stderr)
        return {s: int(s in test) for s in subjects}
    print(
        f"warning: no test_subjects.txt under {root}: GFT's official split is not known here, so every fifth subject "
        "(sorted) is a test subject; write the official test subjects into test_subjects.txt for comparable numbers",
        file=sys.stderr,
    )
    return {s: int(i % 5 == 4) for i, s in enumerate(subjects)}


# --------------------------------------------------------------------------------------------------- your own videos
VIDEOS = "videos"
# The names a label CSV's frame column may have (compared lower-case, spaces and dashes as underscores).
FRAME_COLUMNS = (
    "frame", "frame_idx", "frame_index", "frame_number", "frame_no", "frame_num", "frame_id", "frameindex",
    "framenumber", "frames",
)  # fmt: skip


def read_video_labels(path: Path, frame_base: int) -> tuple[list[int], dict[int, np.ndarray], str | None]:
    """A video's label CSV -> (frame numbers, {AU code: labels 1/0/NaN per row}, its subject column's one value or
    None). A missing frame column, a frame number that is not a whole number at least `frame_base`, a frame listed
    twice, or a `subject` column with several values is a UserError naming the file (and line)."""
    from hiva_core.data.manifest import _labels, au_columns, read_label_manifest

    df = read_label_manifest(path)
    names = {str(c).strip().lower().replace(" ", "_").replace("-", "_"): c for c in df.columns}
    column = next((names[n] for n in FRAME_COLUMNS if n in names), None)
    if column is None:
        raise UserError(
            f"{path} has no frame column ({', '.join(FRAME_COLUMNS[:4])}, ...: each row's frame number in the video "
            f"beside it); its columns: {', '.join(map(str, df.columns[:10]))}"
        )
    frames = pd.to_numeric(df[column], errors="coerce")
    bad = frames.isna() | (frames != frames.round()) | (frames < frame_base)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(
            f"{path}: line {row + 2}: {column} = {df[column].iloc[row]!r} is not a frame number (whole, from "
            f"--frame-base {frame_base})"
        )
    frames = frames.astype(np.int64).tolist()
    seen: dict[int, int] = {}
    for i, frame in enumerate(frames):
        if frame in seen:
            raise UserError(f"{path}: line {i + 2}: frame {frame} is listed again (first on line {seen[frame] + 2})")
        seen[frame] = i
    columns = au_columns(df, path)
    labels = _labels(df, columns, path)
    subject = None
    if "subject" in names:
        values = sorted({str(v).strip() for v in df[names["subject"]] if str(v).strip()})
        if len(values) > 1:
            raise UserError(f"{path}: its subject column names {', '.join(values[:4])}: one video, one subject")
        subject = values[0] if values else None
    return frames, {code: labels[:, j] for j, code in enumerate(columns)}, subject


def scan_videos(root: Path, skip: Path | None, frame_base: int) -> tuple[list[SequenceJob], dict[str, int], list[int]]:
    """The videos under `root` with a label CSV beside them -> sequence jobs, each subject's fold (1-3 in sorted
    order, round robin; 0 for all when there is one subject) and the AUs labelled (the union of the CSVs' columns: an
    AU a CSV lacks is unknown, 9, in its rows)."""
    tree = _Tree(root, skip)
    videos = [p for p in tree.files if p.suffix.lower() in VIDEO_SUFFIXES]
    labelled = [(v, v.with_suffix(".csv")) for v in videos if v.with_suffix(".csv").is_file()]
    unlabelled = [v for v in videos if not v.with_suffix(".csv").is_file()]
    if not labelled:
        raise UserError(
            f"no video with a label CSV beside it under {root} (clip.mp4 + clip.csv: a frame column and AU columns)"
            + (f"; found {len(videos)} video(s) without one, e.g. {videos[0]}" if videos else "")
        )
    if unlabelled:
        names = ", ".join(str(v.relative_to(root)) for v in unlabelled[:5])
        print(
            f"warning: {len(unlabelled)} video(s) without a label CSV beside them left out: {names}"
            + (", ..." if len(unlabelled) > 5 else ""),
            file=sys.stderr,
        )
    read = [(video, *read_video_labels(csv_path, frame_base)) for video, csv_path in labelled]
    aus = sorted({code for _, _, labels, _ in read for code in labels})
    jobs = []
    for video, frames, labels, subject in read:
        sequence = video.relative_to(root).with_suffix("").as_posix()
        if subject is None:
            parts = video.relative_to(root).parts
            subject = parts[0] if len(parts) > 1 else video.stem
        codes = np.full((len(frames), len(aus)), UNKNOWN, dtype=np.int64)
        for j, code in enumerate(aus):
            if code in labels:
                column = labels[code]
                codes[~np.isnan(column), j] = column[~np.isnan(column)].astype(np.int64)
        frame_jobs = tuple(
            FrameJob(f, f"{sequence}/{f}.jpg", tuple(int(v) for v in row)) for f, row in zip(frames, codes, strict=True)
        )
        jobs.append(SequenceJob(subject, sequence, None, video, frame_base, frame_jobs))
    subjects = sorted({j.subject for j in jobs})
    folds = {s: (1 + i % min(3, len(subjects)) if len(subjects) > 1 else 0) for i, s in enumerate(subjects)}
    return jobs, folds, aus


def write_video_manifest(path: Path, jobs: list[SequenceJob], folds: dict[str, int], aus: Sequence[int], ok: set[str]):
    """OUT/manifest.csv: one row per cropped frame (path under OUT, subject, sequence, frame, fold unless there is
    one subject, AU<k> as 1 / 0 / empty for unknown); returns the rows written."""
    from augtext.io import atomic_write

    rows = [
        {
            "path": f"images/{fj.out_rel}",
            "subject": job.subject,
            "sequence": job.sequence,
            "frame": fj.frame,
            **({"fold": folds[job.subject]} if len(set(folds.values())) > 1 else {}),
            **{f"AU{a}": ("" if v == UNKNOWN else v) for a, v in zip(aus, fj.labels, strict=True)},
        }
        for job in jobs
        for fj in job.frames
        if fj.out_rel in ok
    ]
    with atomic_write(path, "w") as fh:
        pd.DataFrame(rows, columns=list(rows[0]) if rows else ["path"]).to_csv(fh, index=False, lineterminator="\n")
    return len(rows)


# -------------------------------------------------------------------------------------------------------- processing
def process_sequence(job: SequenceJob, images: Path, device: str | None = None, chunk: int = 8) -> list[tuple]:
    """Crop every frame of one sequence not cropped yet -> [(frame, status, detail)] with status
    ok / no_face / missing_frame / unreadable."""
    from hiva_core.faces.align import align
    from hiva_core.faces.detect import detect_faces_batch

    todo = [f for f in job.frames if not (images / f.out_rel).is_file()]
    results = [(f.frame, "ok", "") for f in job.frames if (images / f.out_rel).is_file()]
    if not todo:
        return results
    pending: list[tuple[FrameJob, np.ndarray]] = []

    def flush() -> None:
        if not pending:
            return
        h, w = pending[0][1].shape[:2]
        found = detect_faces_batch([im for _, im in pending], min_size=max(20.0, 0.1 * min(h, w)), device=device)
        for (fj, image), faces in zip(pending, found, strict=True):
            if not faces:
                results.append((fj.frame, "no_face", ""))
                continue
            face = max(faces, key=lambda f: f.size)
            crop, _ = align(image, face.landmarks, size=CROP_SIZE)
            write_image(images / fj.out_rel, crop)
            results.append((fj.frame, "ok", ""))
        pending.clear()

    for fj, image, error in _frames(job, todo):
        if image is None:
            results.append((fj.frame, *error))
            continue
        if pending and pending[0][1].shape != image.shape:
            flush()
        pending.append((fj, image))
        if len(pending) >= chunk:
            flush()
    flush()
    return results


def _frames(job: SequenceJob, todo: list[FrameJob]):
    """(frame job, image or None, (status, detail)) for every frame still to do."""
    if job.frames_dir is not None:
        by_number = {
            int(m.group(1)): p
            for p in job.frames_dir.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and (m := _NUMBER.search(p.stem))
        }
        for fj in todo:
            path = by_number.get(fj.frame)
            if path is None:
                yield fj, None, ("missing_frame", f"no image numbered {fj.frame} in {job.frames_dir}")
                continue
            try:
                yield fj, read_image(path), None
            except Exception as exc:  # noqa: BLE001 - any decoding failure: report the frame, go on
                yield fj, None, ("unreadable", f"{path}: {type(exc).__name__}: {exc}")
        return
    if job.video is None:
        for fj in todo:
            yield fj, None, ("missing_frame", f"no frame folder or video found for {job.name}")
        return
    wanted = {fj.frame - job.video_offset: fj for fj in todo}
    last = max(wanted)
    try:
        for index, _, image in iter_video(job.video):
            if index in wanted:
                yield wanted.pop(index), image, None
            if index >= last:
                break
    except Exception as exc:  # noqa: BLE001 - a broken video: the remaining frames are reported unreadable
        for fj in wanted.values():
            yield fj, None, ("unreadable", f"{job.video}: {type(exc).__name__}: {exc}")
        return
    for fj in wanted.values():
        yield fj, None, ("missing_frame", f"{job.video} ends before frame {fj.frame}")


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------------------- writing
def write_lists(dataset: str, jobs: list[SequenceJob], folds: dict[str, int], ok: set[str], lists: Path) -> dict:
    """The list files (paths, labels, per-AU weights) of every split for the frames cropped; returns counts.

    File names come from `hiva_core.data.lists.LIST_FORMATS`, the reader's own table; the weights from
    `hiva_core.losses.au_weights`, the trainer's."""
    import torch

    from augtext.io import atomic_write
    from hiva_core.data.lists import LIST_FORMATS
    from hiva_core.losses import au_weights

    fmt = LIST_FORMATS[dataset]
    rows = [(fj.out_rel, fj.labels, folds[job.subject]) for job in jobs for fj in job.frames if fj.out_rel in ok]
    if fmt.folds:  # fold k: test = its subjects, train = the others
        splits = {
            k: {"train": [r for r in rows if r[2] != k], "test": [r for r in rows if r[2] == k]} for k in (1, 2, 3)
        }
    else:  # one official split: subjects marked 0 train, 1 test
        splits = {None: {"train": [r for r in rows if r[2] == 0], "test": [r for r in rows if r[2] == 1]}}
    counts = {}
    for fold, parts in splits.items():
        for split, items in parts.items():
            paths_name, labels_name = fmt.file_names(split, fold)
            with atomic_write(lists / paths_name, "w") as fh:
                fh.writelines(f"{rel}\n" for rel, _, _ in items)
            with atomic_write(lists / labels_name, "w") as fh:
                fh.writelines(" ".join(map(str, lab)) + "\n" for _, lab, _ in items)
            counts[split if fold is None else f"{split}_fold{fold}"] = len(items)
        train = np.asarray([lab for _, lab, _ in parts["train"]], dtype=np.float64)
        train[train == UNKNOWN] = np.nan
        weights = au_weights(train, dtype=torch.float64).tolist() if len(train) else []
        with atomic_write(lists / fmt.weights_name(fold), "w") as fh:
            fh.write("\t".join(f"{w:.6f}" for w in weights) + "\n")
    return counts


def run_prepare(
    dataset: str,
    root: str | os.PathLike,
    out: str | os.PathLike,
    workers: int = 1,
    *,
    device: str | None = None,
    progress: bool | None = None,
    frame_base: int | None = None,
) -> dict:
    """Raw tree -> OUT/images (aligned 256-px crops), OUT/lists (list files; `videos`: OUT/manifest.csv),
    OUT/prepare_report.csv; returns a summary (frames per status, list sizes, where things went;
    `hiva_core.views.print_prepare_summary` shows it). `device`: the face detector's (default: auto, CUDA when
    present). `frame_base` (videos only): the number of a video's first frame in its label CSV (default 0)."""
    dataset = dataset.lower()
    if dataset not in (*DATASET_AUS, VIDEOS):
        raise UserError(f"unknown dataset {dataset!r}; use bp4d, disfa, gft or videos (your own, with label CSVs)")
    if frame_base is not None and dataset != VIDEOS:
        raise UserError(f"--frame-base is for `prepare videos` (label CSVs beside your videos), not {dataset}")
    frame_base = 0 if frame_base is None else frame_base
    if frame_base < 0:
        raise UserError(f"--frame-base must be 0 or more (the number of a video's first frame), got {frame_base}")
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise UserError(f"raw dataset folder not found: {root}")
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    check_output_dir(out, "--out")
    from hiva_core.device import pick_device

    device = str(pick_device(device))
    t0 = time.perf_counter()
    if dataset == VIDEOS:
        jobs, folds, aus = scan_videos(root, out, frame_base)
    else:
        jobs, folds = scan(dataset, root, skip=out)
    images = out / "images"
    total = sum(len(j.frames) for j in jobs)
    results: dict[str, list[tuple]] = {}
    from hiva_core.progress import progress_bar

    with progress_bar("prepare", total, progress) as advance:
        if workers == 1:
            for job in jobs:
                results[job.name] = process_sequence(job, images, device)
                advance(len(job.frames))
        else:
            _run_pool(jobs, images, device, workers, results, advance)
    ok = {fj.out_rel for j in jobs for fj, (_, status, _) in _pairs(j, results[j.name]) if status == "ok"}
    if dataset == VIDEOS:
        manifest = out / "manifest.csv"
        outputs = {"manifest": str(manifest), "rows": write_video_manifest(manifest, jobs, folds, aus, ok)}
        outputs |= {"aus": aus, "subjects": len(folds), "folds": sorted(set(folds.values()) - {0})}
    else:
        outputs = {"lists": write_lists(dataset, jobs, folds, ok, out / "lists"), "list_dir": str(out / "lists")}
    report = out / "prepare_report.csv"
    problems = _write_report(report, jobs, results)
    summary = {
        "dataset": dataset,
        "frames": total,
        "cropped": len(ok),
        "problems": problems,
        **outputs,
        "images": str(images),
        "report": str(report),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return summary


def _run_pool(jobs, images, device, workers, results, advance: Callable[[int], None]) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(threads,)
    ) as pool:
        futures = {pool.submit(process_sequence, job, images, device): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            results[job.name] = future.result()
            advance(len(job.frames))


def _pairs(job: SequenceJob, result: list[tuple]):
    by_frame = {frame: (frame, status, detail) for frame, status, detail in result}
    return [(fj, by_frame[fj.frame]) for fj in job.frames]


def _write_report(path: Path, jobs: list[SequenceJob], results: dict[str, list[tuple]]) -> dict[str, int]:
    from augtext.io import atomic_write

    problems: dict[str, int] = {}
    with atomic_write(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["subject", "sequence", "frame", "crop", "status", "detail"])
        for job in jobs:
            for fj, (_, status, detail) in _pairs(job, results[job.name]):
                if status != "ok":
                    problems[status] = problems.get(status, 0) + 1
                    writer.writerow([job.subject, job.sequence, fj.frame, fj.out_rel, status, detail])
    return problems
