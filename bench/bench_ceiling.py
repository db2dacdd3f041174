"""How far one face can take an AU reader on a SynthAU set: readers that see exactly what was rendered.

A model scores a SynthAU face from its pixels. Three readers here score the same faces from what SynthAU knows
exactly, each a gradient-boosted classifier per AU (scikit-learn), trained on the training faces of the set as a
model would be (the faces outside --fold; or another folder's, --train):
  - motion: the blendshape weights the face was rendered with (recomputed from the set's seed and the face's index,
    `hiva_core.synth.sampling.sample_params`, without rendering): every AU's motion, exactly, with the person's
    expressiveness and lopsided AUs. What it misses is what the AU table itself leaves ambiguous (AU23 and AU24 both
    press the lips) or what the label cut at 0.3 makes a coin toss; its F1 is the set's ceiling.
  - landmarks minus the neutral: the 68 landmarks of the face minus those of the same face without expression (the
    manifest's `neutral_landmarks`), and the head pose: the face's geometry, read against this person's own neutral.
  - landmarks: the 68 landmarks alone, and the head pose: what the geometry of one image tells a reader that has
    never seen this person's neutral face, which is a model's case on a photo of a stranger.
Landmarks are first put into one frame (a similarity fit of the eye corners and the nose to their mean on the
training faces). `--landmark-noise S` moves every landmark of every face and neutral face (training and test) by
Gaussian noise of S outer-eye-corner distances per coordinate, independently: the geometry as a landmark detector
would find it (mean point error ≈ 1.25 S of that distance, the 300-W normalised error), not as it was rendered.
Each reader's thresholds are chosen on a tenth of the training people, held out of its training, as `hiva_core
train` chooses a run's; F1 at them, and AUC. With --faces (hiva_core eval --per-face's file of a run on the same test
faces) the run's F1 (at its calls) and AUC stand beside the readers, face for face.

    python bench/bench_ceiling.py --data synth --fold 1 --faces held_faces.csv --name held_out
    python bench/bench_ceiling.py --train synth --data shifted --faces shifted_faces.csv --name shifted  # fold 1 out

Writes bench/results/ceiling.json (one entry per --name, merged) and bench/results/ceiling.md (every entry).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_breakdown import group_scores, join_faces, save_entry, scenes  # noqa: E402

from augtext.errors import UserError  # noqa: E402
from hiva_core.faces.align import similarity_transform, transform_points  # noqa: E402
from hiva_core.metrics import NAN_TEXT, choose_thresholds  # noqa: E402
from hiva_core.regions import parse_landmarks  # noqa: E402

BP4D_AUS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
READERS = ("motion", "landmarks minus the neutral", "landmarks")
STABLE = [27, 28, 29, 30, 36, 39, 42, 45]  # nose bridge and the four eye corners: AUs barely move them
VALIDATION_SHARE = 0.1


def motion(folder: Path, manifest: pd.DataFrame) -> np.ndarray:
    """(faces, blendshapes) weights each face was rendered with."""
    from hiva_core.synth.aumap import blendshape_weights
    from hiva_core.synth.facemodel import find_face_model

    recorded = Path(json.loads((folder / "synth.json").read_text()).get("face_model") or "")
    with np.load(recorded if recorded.is_file() else find_face_model(None)) as npz:
        names = [str(n) for n in npz["expression_names"]]
    weights = [
        blendshape_weights(p.au, names, p.extra, p.au_sides, p.identity.expressiveness)
        for p in scenes(folder, manifest)
    ]
    return np.stack(weights)


def points(folder: Path, column: pd.Series) -> np.ndarray:
    """(faces, 68, 2) from a manifest's landmark column."""
    parsed = [parse_landmarks(cell) for cell in column]
    if any(p is None for p in parsed):
        raise UserError(f"{folder}: a face without its 68 {column.name} in the manifest")
    return np.stack(parsed)


def to_frame(faces: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each face's landmarks moved by the similarity that best fits its stable points onto `reference`."""
    return np.stack([transform_points(f, similarity_transform(f[STABLE], reference)) for f in faces])


def detected(faces: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """`faces` (N, 68, 2) each moved by N(0, noise × its outer-eye-corner distance) per coordinate."""
    if noise <= 0:
        return faces
    eyes = np.linalg.norm(faces[:, 36] - faces[:, 45], axis=1)[:, None, None]
    return faces + rng.normal(size=faces.shape) * noise * eyes


def features(
    folder: Path,
    manifest: pd.DataFrame,
    reference: np.ndarray,
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    pose = manifest[["yaw", "pitch", "roll"]].to_numpy(dtype=np.float64)
    shown = {}
    for column in ("landmarks", "neutral_landmarks"):
        shown[column] = to_frame(detected(points(folder, manifest[column]), noise, rng), reference)
    face, neutral = (shown[c].reshape(len(manifest), -1) for c in ("landmarks", "neutral_landmarks"))
    return {
        "motion": motion(folder, manifest),
        "landmarks minus the neutral": np.hstack([face - neutral, pose]),
        "landmarks": np.hstack([face, pose]),
    }


def ceiling(
    train: pd.DataFrame, test: pd.DataFrame, train_folder: Path, test_folder: Path, aus: list[int], noise: float = 0.0
) -> dict:
    """Each reader trained on `train`'s faces, scored on `test`'s: {reader: {f1, auc, per_au}}; `noise`: landmarks as
    detected (`detected`)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    reference = points(train_folder, train["landmarks"])[:, STABLE].mean(0)
    rng = np.random.default_rng(0)
    x_train = features(train_folder, train, reference, noise, rng)
    x_test = features(test_folder, test, reference, noise, rng)
    people = train["subject"].astype(str).unique()
    held = set(np.random.default_rng(0).permutation(people)[: max(1, round(len(people) * VALIDATION_SHARE))])
    val = train["subject"].astype(str).isin(held).to_numpy()
    out = {}
    for reader in READERS:
        scored = {}  # as eval --per-face writes them: each AU's label, call and probability
        for au in aus:
            y_train, y_test = train[f"AU{au}"].to_numpy(), test[f"AU{au}"].to_numpy()
            if not y_test.any() or not y_train[~val].any() or y_train[~val].all():
                continue
            clf = HistGradientBoostingClassifier(max_iter=300, random_state=0)
            clf.fit(x_train[reader][~val], y_train[~val])
            cut = choose_thresholds(clf.predict_proba(x_train[reader][val])[:, 1:], y_train[val, None], None, [au])
            p = clf.predict_proba(x_test[reader])[:, 1]
            scored |= {f"AU{au}_label": y_test, f"AU{au}": (p >= cut[f"AU{au}"]).astype(int), f"AU{au}_prob": p}
        fitted = [c[: -len("_label")] for c in scored if c.endswith("_label")]
        out[reader] = group_scores(pd.DataFrame(scored), fitted)
    return out


def markdown(results: dict) -> str:
    lines = []
    for name, entry in results.items():
        columns = [*entry["readers"], *(["the run"] if "run" in entry else [])]
        scored = {**entry["readers"], **({"the run": entry["run"]} if "run" in entry else {})}
        lines += [f"### {name}", "", entry["what"], "", "F1 (AUC):", ""]
        lines += ["| AU | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
        aus = list(next(iter(entry["readers"].values()))["per_au"])
        for au in [*aus, "avg"]:
            cells = []
            for c in columns:
                v = scored[c] if au == "avg" else scored[c]["per_au"].get(au)
                auc = NAN_TEXT if v is None or v["auc"] is None else f"{100 * v['auc']:.1f}"
                cells.append(NAN_TEXT if v is None else f"{100 * v['f1']:.1f} ({auc})")
            label = "**avg**" if au == "avg" else au
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the SynthAU folder of the test faces")
    p.add_argument("--fold", type=int, help="the test faces are --data's faces of this fold (default: all of them)")
    p.add_argument("--train", help="the SynthAU folder of the training faces (default: --data)")
    p.add_argument("--train-fold", type=int, default=1, help="the fold of --train left out of training (default 1)")
    p.add_argument("--train-faces", type=int, help="train on the first N training faces only (how it scales)")
    p.add_argument("--faces", help="hiva_core eval --per-face's file of a run on these test faces: scored beside")
    p.add_argument("--aus", default=",".join(map(str, BP4D_AUS)), help="AUs to read (default: the 12 of BP4D)")
    p.add_argument(
        "--landmark-noise",
        type=float,
        default=0.0,
        help="landmarks as a detector finds them: Gaussian noise of this many outer-eye-corner distances (default 0)",
    )
    p.add_argument("--name", required=True, help="this entry's key in the results")
    p.add_argument("--out-json", default=str(REPO / "bench" / "results" / "ceiling.json"))
    p.add_argument("--out-md", default=str(REPO / "bench" / "results" / "ceiling.md"))
    args = p.parse_args(argv)
    if not 0 <= args.landmark_noise < 1:
        raise UserError(f"--landmark-noise {args.landmark_noise}: a share of the eye distance in [0, 1)")
    test_folder, train_folder = Path(args.data), Path(args.train or args.data)
    for folder in {test_folder, train_folder}:
        if not (folder / "synth.json").is_file():
            raise UserError(f"{folder} is not a SynthAU folder (no synth.json): the readers need its renders' scenes")
    try:
        aus = [int(a) for a in args.aus.split(",")]
    except ValueError:
        raise UserError(f"--aus {args.aus!r} is not a comma-separated list of AU numbers") from None
    test = pd.read_csv(test_folder / "manifest.csv")
    train = pd.read_csv(train_folder / "manifest.csv")
    held_out = args.fold if args.train is None else args.train_fold
    if args.train is None and args.fold is None:
        raise UserError("give --fold (the test faces of --data) or --train (another folder's faces to train on)")
    if train_folder.resolve() == test_folder.resolve() and args.fold != held_out:
        raise UserError(f"--train is --data: its test faces must be the fold left out of training (--fold {held_out})")
    train = train[train["fold"] != held_out].reset_index(drop=True)
    if args.train_faces is not None:
        if not 0 < args.train_faces <= len(train):
            raise UserError(f"--train-faces {args.train_faces}: {train_folder} has {len(train)} training faces")
        train = train.iloc[: args.train_faces]
    if args.fold is not None:
        test = test[test["fold"] == args.fold].reset_index(drop=True)
    for folder, faces in ((test_folder, test), (train_folder, train)):
        missing = [f"AU{a}" for a in aus if f"AU{a}" not in faces.columns]
        if missing or faces.empty:
            what = f"no {', '.join(missing)} label in its manifest" if missing else "no faces"
            raise UserError(f"{folder}: {what}")

    entry = {"what": f"trained on {train_folder} (fold {held_out} left out, {len(train)} faces), "}
    if args.faces:
        run = join_faces(pd.read_csv(args.faces), test_folder)
        outside = run["fold"] != args.fold if args.fold is not None else np.zeros(len(run), bool)
        if outside.any():
            raise UserError(f"{args.faces} scores faces outside fold {args.fold} of {test_folder}: give its --fold")
        test = run.drop(columns=[c for c in run.columns if c.endswith("_manifest")]).assign(
            **{f"AU{a}": run[f"AU{a}_manifest"] for a in aus if f"AU{a}_manifest" in run},
            subject=run["subject_manifest"],
        )  # the manifest's labels (an AU the run did not score keeps its own name in the join)
        entry["run"] = group_scores(run, [f"AU{a}" for a in aus if f"AU{a}_label" in run])
        aus = [int(au[2:]) for au in entry["run"]["per_au"]]
    scope = f"fold {args.fold}" if args.fold is not None else "all"
    entry["what"] += f"scored on {test_folder} ({scope}: {len(test)} faces)"
    entry["what"] += f"; the run: {args.faces}" if args.faces else ""
    if args.landmark_noise:
        entry["what"] += f"; landmarks as detected: noise {args.landmark_noise} outer-eye-corner distances"
        entry["landmark_noise"] = args.landmark_noise
    entry["readers"] = ceiling(train, test, train_folder, test_folder, aus, args.landmark_noise)

    title = "How far one face takes a reader (bench/bench_ceiling.py)"
    save_entry(args.out_json, args.out_md, args.name, entry, title, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
