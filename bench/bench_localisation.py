"""Do the AU maps land on the AU? The localisation score on SynthAU: coarse (stride 32) against fine (stride 16) maps,
and fine maps trained with the region loss (train.region_weight).

Steps, each resumable from the work folder (default bench/work/localisation, git-ignored):
  1. render SynthAU (hiva_core.synth.run_synth; identity-exclusive folds, fold 1 = held-out identities);
  2. the reference prior for the training AUs (bench/prior_control.py's reference_cache);
  3. train hiva (MobileNetV2 with the offline ImageNet weights) once per --strides item, everything else equal:
     model.output_stride=32 is the model before issue 10 (4×4 maps at 128 px), 16 the new default (8×8); an item
     STRIDE:W also sets train.region_weight=W (each AU map asked to look inside the AU's region);
  4. evaluate on the held-out identities (hiva_core.evaluate.evaluate_run): F1 and the localisation score of
     hiva_core/regions.py (share of present AUs whose map peaks inside the AU's landmark region), per AU.
Writes bench/results/localisation.json and .md, and bench/results/localisation_s{stride}.png: the heatmap grid of
one held-out face per run, with each AU's region (margin included) outlined in white.

    python bench/bench_localisation.py [--n 1000] [--epochs 8] [--strides 32,16,16:1] [--threads 1] [--text-cache DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from argparse import Namespace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import limited_labels as ll  # noqa: E402
import numpy as np  # noqa: E402

from augtext.errors import UserError  # noqa: E402
from augtext.facs import au_label, parse_au_spec  # noqa: E402
from augtext.io import atomic_write  # noqa: E402
from hiva_core import run_folder  # noqa: E402
from hiva_core.serialize import write_json  # noqa: E402

TEST_FOLD = 1
RESULTS = REPO / "bench" / "results"


def render(args: Namespace, work: Path) -> Path:
    from hiva_core.synth import run_synth

    folder = work / "synth"
    ll.log(f"SynthAU: {args.n} faces at {args.render_size} px in {folder}")
    run_synth(
        folder, n=args.n, size=args.render_size, seed=args.synth_seed, labels=args.labels, progress=sys.stderr.isatty()
    )
    return folder


def train(args: Namespace, stride: int, region_weight: float, synth: Path, cache: Path, run: Path) -> dict:
    """Train (or skip when finished) the run of one stride and region-loss weight; returns its timing."""
    from hiva_core.train import fit

    same = ("aus", "synth_seed", "render_size", "image_size", "backbone", "epochs", "batch_size", "lr")
    plan = ll.Plan(
        **{key: getattr(args, key) for key in same},
        pretrained=args.pretrained,
        backbone_weights=None,
        dim=args.dim,
        align_weight=0.1,
        text_fingerprint="reference",
        extra=[
            f"model.output_stride={stride}",
            f"train.region_weight={region_weight:g}",
            f"data.fold={TEST_FOLD}",
            *args.extra,
        ],
    )
    timing = run / "timing.json"
    if not ll.finished(run, args.epochs):
        ll.log(f"training stride {stride}, region weight {region_weight:g} -> {run}")
        cfg = ll.train_config(args, plan, "hiva", synth, cache, args.seed, args.epochs)
        t0 = time.perf_counter()
        fit(cfg, run, resume=(run / run_folder.LAST).is_file())
        frames = json.loads((run / run_folder.CONFIG).read_text())["data"]["train_frames"]
        write_json(timing, {"train_s": time.perf_counter() - t0, "images": frames * args.epochs})
    return json.loads(timing.read_text()) if timing.is_file() else {}


def evaluate(run: Path, synth: Path) -> dict:
    from hiva_core.evaluate import evaluate_run

    path = run / "eval_localisation.json"
    if not path.is_file():
        write_json(path, evaluate_run(run, str(synth), fold=TEST_FOLD, device="cpu"))
    return json.loads(path.read_text())


def attribution_localisation(run: Path, synth: Path) -> dict:
    """The localisation score of gradient × activation maps (Grad-CAM-like: per token of each AU's AFG map, the AU
    logit's gradient times the token's feature), for the same run and faces: whether the model's evidence, not only
    its DDCA attention, sits on the AU. Uses a forward hook on the AFG, so the model runs its own forward."""
    import torch
    from torch.utils.data import DataLoader

    from hiva_core.checkpoint import load_run
    from hiva_core.data import build_dataset
    from hiva_core.regions import dataset_landmarks, localisation_score, map_peaks

    path = run / "eval_attribution.json"
    if path.is_file():
        return json.loads(path.read_text())
    loaded = load_run(run, device="cpu")
    model = loaded.model
    seen: dict = {}

    def keep(module, inputs, output):
        seen["maps"] = output

    hook = model.au_graph.afg.register_forward_hook(keep)
    data = build_dataset(str(synth), split="test", fold=TEST_FOLD, image_size=loaded.image_size, aus=loaded.aus)
    peaks, labels, mask = [], [], []
    try:
        for batch in DataLoader(data, batch_size=32):
            out = model(batch["image"], loaded.text_emb, loaded.text_mask)
            token_maps = seen["maps"]  # (B, A, L, d)
            evidence = torch.zeros(token_maps.shape[:3])
            for j in range(token_maps.shape[1]):  # AU j's logit against AU j's token map (the graph mixes AUs)
                (grad,) = torch.autograd.grad(out["logits"][:, j].sum(), token_maps, retain_graph=True)
                evidence[:, j] = (grad[:, j] * token_maps[:, j]).sum(-1).detach()
            peaks.append(map_peaks(evidence.unflatten(-1, tuple(out["maps"].shape[-2:])), loaded.image_size))
            labels.append(batch["labels"].numpy())
            mask.append(batch["mask"].numpy())
    finally:
        hook.remove()
    result = localisation_score(
        np.concatenate(peaks),
        dataset_landmarks(data, loaded.image_size),
        np.concatenate(labels),
        np.concatenate(mask),
        loaded.aus,
    )
    write_json(path, result)
    return result


def draw_example(run: Path, synth: Path, out: Path, aus: list[int]) -> str:
    """The heatmap grid of the held-out face with the most AUs present, each AU's region outlined; returns its path
    in the SynthAU folder."""
    import pandas as pd
    from PIL import Image, ImageDraw

    from hiva_core.checkpoint import load_run
    from hiva_core.data.transforms import build_transforms, denormalize
    from hiva_core.heatmaps import TITLE_HEIGHT, grid_shape, heatmap_grid
    from hiva_core.regions import AU_REGION, parse_landmarks, region_outline, to_model_frame

    df = pd.read_csv(synth / "manifest.csv", keep_default_na=False)
    test = df[df["fold"] == TEST_FOLD]
    row = test.loc[test[[au_label(a) for a in aus]].sum(axis=1).idxmax()]
    loaded = load_run(run, device="cpu")
    image = Image.open(synth / row["path"]).convert("RGB")
    x = build_transforms(loaded.image_size)(image)[None]
    out_ = loaded.predict(x)
    crop = (denormalize(x[0]).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # what the model saw
    tile = 192
    grid = heatmap_grid(crop, out_["maps"][0], loaded.aus, out_["probs"][0].tolist(), tile_size=tile)
    landmarks = to_model_frame(parse_landmarks(row["landmarks"]), *image.size, loaded.image_size)
    scale = tile / loaded.image_size
    draw = ImageDraw.Draw(grid)
    _, cols = grid_shape(len(loaded.aus))
    for i, au in enumerate(loaded.aus):
        if au not in AU_REGION:
            continue
        x0, y0 = (i % cols) * tile, (i // cols) * (tile + TITLE_HEIGHT) + TITLE_HEIGHT
        for poly in region_outline(landmarks, AU_REGION[au]):
            draw.polygon([(x0 + px * scale, y0 + py * scale) for px, py in poly], outline="white")
        if int(row[au_label(au)]) == 1:
            draw.text((x0 + tile - 52, y0 - 13), "present", fill="black")
    with atomic_write(out, "wb", fsync=False) as fh:
        grid.quantize(256).save(fh, format="PNG", optimize=True)  # a third of the size, same look
    return str(row["path"])


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def markdown(result: dict) -> str:
    s = result["settings"]
    runs = result["runs"]
    strides = list(runs)
    first = runs[strides[0]]
    head = " | ".join(f"s{k} maps | s{k} chance | s{k} grad×act" for k in strides)
    lines = [
        "# Localisation of the AU maps on SynthAU: coarse vs fine maps, with and without the region loss",
        "",
        f"`{result['command']}` (commit {result['commit']}). hiva, {s['backbone']}"
        f"{' with ImageNet weights' if s['pretrained'] else ''}, "
        f"{s['image_size']} px, {s['n']} renders ({s['train_frames']} training, {s['test_frames']} held-out "
        f"identities), {s['epochs']} epochs, batch {s['batch_size']}, lr {s['lr']}, "
        f"{'the reference prior' if s['text_cache'] is None else 'the prior in ' + s['text_cache']}.",
        "",
        "Per AU: the share of (held-out face, present AU) pairs whose map peaks inside the AU's region "
        f"(hiva_core/regions.py, margin {s['margin_iod']} IOD), for the DDCA maps (what `predict --heatmaps` draws), "
        "for chance (a peak on a random cell of the same grid) and for gradient × activation maps of the same model "
        "(where its evidence for the AU sits); s32 = model.output_stride 32, s16r1 = stride 16 trained with the "
        "region loss at train.region_weight 1 ("
        + ", ".join(f"s{k}: {runs[k]['grid']}" for k in strides)
        + " maps at this size).",
        "",
        f"| AU | region | pairs | {head} | " + " | ".join(f"F1 s{k}" for k in strides) + " |",
        "|---|---|---:|" + "---:|" * (4 * len(strides)),
    ]
    for au in first["localisation"]["per_au"]:
        cells = []
        for k in strides:
            loc, att = runs[k]["localisation"]["per_au"][au], runs[k]["attribution"]["per_au"][au]
            cells += [pct(loc["hit_rate"]), pct(loc.get("chance")), pct(att["hit_rate"])]
        loc0 = first["localisation"]["per_au"][au]
        lines.append(
            f"| {au} | {loc0['region'] or '–'} | {loc0['pairs']} | "
            + " | ".join(cells)
            + " | "
            + " | ".join(pct(runs[k]["f1"][au]) for k in strides)
            + " |"
        )
    avg = []
    for k in strides:
        r = runs[k]
        avg += [
            f"**{pct(r['localisation']['average'])}**",
            pct(r["localisation"].get("chance")),
            pct(r["attribution"]["average"]),
        ]
    lines.append(
        f"| **Avg** | | {first['localisation']['pairs']} | "
        + " | ".join(avg)
        + " | "
        + " | ".join(pct(runs[k]["avg_f1"]) for k in strides)
        + " |"
    )
    lines += [
        "",
        "| run | region weight | maps | train s/img (wall, whole run, shared machine) | F1 avg | localisation avg "
        "| chance |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for k in strides:
        r = runs[k]
        lines.append(
            f"| s{k} | {r.get('region_weight', 0):g} | {r['grid']} | {r['train_s_per_image']:.4f} | "
            f"{pct(r['avg_f1'])} | {pct(r['localisation']['average'])} | {pct(r['localisation'].get('chance'))} |"
        )
    lines += ["", f"Example face: `{result['example']}`; its heatmap grids: {', '.join(result['grids'])}.", ""]
    return "\n".join(lines)


def _variant(spec: str) -> tuple[str, int, float]:
    """ "16" -> ("16", 16, 0.0); "16:1" -> ("16r1", 16, 1.0): the run's name, output stride and region weight."""
    stride, _, weight = spec.strip().partition(":")
    w = float(weight or 0)
    return (f"{int(stride)}r{w:g}" if w else str(int(stride))), int(stride), w


def parse_args(argv: list[str] | None) -> Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="SynthAU renders (fold 1, a third, is held out)")
    ap.add_argument(
        "--strides",
        default="32,16,16:1",
        help="one run each: model.output_stride, or STRIDE:W with train.region_weight W (the region loss)",
    )
    ap.add_argument("--aus", default="bp4d")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--render-size", type=int, default=None, help="SynthAU size (default: --image-size)")
    ap.add_argument("--backbone", default="mobilenetv2")
    ap.add_argument("--no-pretrained", dest="pretrained", action="store_false", help="start from random weights")
    ap.add_argument("--dim", type=int, default=None, help="model.dim (default: the model's)")
    ap.add_argument("--text-cache", default=None, help="an embedded augtext cache to use (default: make one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synth-seed", type=int, default=0)
    ap.add_argument("--labels", default="bp4d", help=ll.LABELS_HELP)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (1 on a shared machine)")
    ap.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--embed-model", default=None)
    ap.add_argument("--set", dest="extra", action="append", default=[], help="any trainer config key=value")
    ap.add_argument("--work", default=str(REPO / "bench" / "work" / "localisation"))
    ap.add_argument("--out", default=str(RESULTS / "localisation.json"))
    args = ap.parse_args(argv)
    args.aus = parse_au_spec(args.aus)
    args.strides = [_variant(s) for s in args.strides.split(",") if s.strip()]
    args.render_size = args.render_size or args.image_size
    args.pretrained = args.pretrained and args.backbone != "tiny"  # the test net has no ImageNet weights
    return args


def main(argv: list[str] | None = None) -> dict:
    from prior_control import reference_cache

    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    synth = render(args, work)
    cache = Path(args.text_cache) if args.text_cache else reference_cache(args, work)
    out = Path(args.out)
    runs: dict[str, dict] = {}
    example, grids = "", []
    for name, stride, weight in args.strides:
        run = work / "runs" / f"hiva_s{name}_e{args.epochs}_seed{args.seed}"
        timing = train(args, stride, weight, synth, cache, run)
        metrics = evaluate(run, synth)
        loc = metrics.get("localisation")
        if loc is None:
            raise UserError(f"{run}: eval reported no localisation (no maps, or no landmarks in {synth})")
        attribution = attribution_localisation(run, synth)
        png = out.with_name(f"{out.stem}_s{name}.png").resolve()
        grids.append(str(png.relative_to(REPO)) if png.is_relative_to(REPO) else str(png))
        example = draw_example(run, synth, png, args.aus)
        config = json.loads((run / run_folder.CONFIG).read_text())
        runs[name] = {
            "run": str(run),
            "region_weight": weight,
            "grid": "×".join(map(str, loc["grid"])),
            "output_stride": config["model_config"]["output_stride"],
            "localisation": loc,
            "attribution": attribution,
            "f1": {k: v["f1"] for k, v in metrics["per_au"].items()},
            "avg_f1": metrics["avg"]["f1"],
            "train_s": timing.get("train_s"),
            "train_images": timing.get("images"),
            "train_s_per_image": timing["train_s"] / timing["images"] if timing else float("nan"),
            "train_frames": config["data"]["train_frames"],
            "test_frames": metrics["n"],
        }
        ll.log(f"s{name}: localisation {pct(loc['average'])}, F1 {pct(metrics['avg']['f1'])}")
    first = next(iter(runs.values()))
    result = {
        "command": "python bench/bench_localisation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": ll.commit(),
        "settings": {
            "n": args.n,
            "image_size": args.image_size,
            "backbone": args.backbone,
            "pretrained": args.pretrained,
            "text_cache": args.text_cache,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "aus": args.aus,
            "seed": args.seed,
            "train_frames": first["train_frames"],
            "test_frames": first["test_frames"],
            "margin_iod": first["localisation"]["margin_iod"],
        },
        "environment": ll.environment(),
        "example": example,
        "grids": grids,
        "runs": runs,
    }
    with atomic_write(out, "w") as fh:
        json.dump(result, fh, indent=1)
    with atomic_write(out.with_suffix(".md"), "w") as fh:
        fh.write(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
