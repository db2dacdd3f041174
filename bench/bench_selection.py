"""Which epoch to keep: train.select's validation criteria against the last epoch and the test split's own choice.

Every epoch of a run is scored on the test split (F1 at 0.5) and on the validation slice (F1 at thresholds chosen on
those same rows, and AUC); the log line says all three. From one run per seed this bench reads, for each criterion,
the epoch it keeps and that epoch's test F1:
  - val_auc: the best validation avg AUC;
  - val: the best validation avg F1 at its own per-AU thresholds;
  - last: the final epoch (no selection; the default of train.select);
  - test: the best test F1 (the field's choice: an oracle, optimistic by construction).
Each run is trained with train.select=val_auc, so its model.safetensors is the val_auc choice (checked).

    python bench/bench_selection.py --data SYNTH --text-cache CACHE --work bench/work/selection --name small \\
        --seeds 0,1,2 --epochs 10 --image-size 96

Runs trained elsewhere are read from their train logs instead (stderr of `hiva_core train`; no training, and no
check of what the run kept, which its own train.select decided):

    python bench/bench_selection.py --name full_scale --logs runs/def_s0.log runs/int_s0.log ...

Writes bench/results/selection.json (one entry per --name, merged) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augtext.io import atomic_write  # noqa: E402

CRITERIA = ("val_auc", "val", "last", "test")
SKIP = ("out", "work", "logs")  # arguments that are not part of a trained setting
EPOCH_RE = re.compile(
    r"epoch (?P<epoch>\d+)/\d+ .*test avg F1 (?P<test>[\d.]+|nan) +val F1 (?P<vf1>[\d.]+|nan) AUC (?P<vauc>[\d.]+|nan)"
)


def parse_epochs(text: str) -> list[dict]:
    """The per-epoch scores of a train log (x100, as logged); epochs that were not evaluated are left out."""
    rows = []
    for m in EPOCH_RE.finditer(text):
        rows.append(
            {"epoch": int(m["epoch"]), "test": float(m["test"]), "val": float(m["vf1"]), "val_auc": float(m["vauc"])}
        )
    return rows


def choose(rows: list[dict], criterion: str) -> dict:
    """The row a criterion keeps: the first best (a tie keeps the earlier epoch, as the trainer does)."""
    if criterion == "last":
        return rows[-1]
    best = max(r[criterion] for r in rows)
    return next(r for r in rows if r[criterion] == best)


def train(args, seed: int, out: Path) -> str:
    """Train one run (unless its log exists) and return its log text."""
    log_file = out.with_suffix(".log")
    if (out / "metrics.json").is_file() and log_file.is_file():
        return log_file.read_text()
    cmd = [
        str(Path(sys.executable).with_name("hiva_core")), "train", "--text-cache", args.text_cache, "--data", args.data,
        "--fold", str(args.fold), "--out", str(out), "--model", args.model, "--epochs", str(args.epochs),
        "--batch-size", "32", "--lr", str(args.lr), "--image-size", str(args.image_size),
        "--set", f"data.aus={args.aus}", "--set", "model.backbone=mobilenetv2", "--set", "model.pretrained=true",
        "--set", f"train.seed={seed}", "--set", "train.progress=false", "--set", "data.num_workers=1",
        "--set", "train.select=val_auc",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    with atomic_write(log_file, "w") as fh:
        fh.write(proc.stdout + proc.stderr)
    if proc.returncode:
        raise SystemExit(f"training failed ({out}): see {log_file}")
    return log_file.read_text()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="a SynthAU folder (identity folds) or manifest")
    p.add_argument("--text-cache")
    p.add_argument("--logs", nargs="+", help="read these train logs (one run each, named by the file) instead")
    p.add_argument("--work", default=str(REPO / "bench" / "work" / "selection"))
    p.add_argument("--name", required=True, help="this setting's key in the results")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--fold", type=int, default=1)
    p.add_argument("--model", default="hiva")
    p.add_argument("--aus", default="bp4d")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "selection.json"))
    args = p.parse_args(argv)
    if not args.logs and not (args.data and args.text_cache):
        p.error("give --data and --text-cache (train the runs), or --logs (read runs trained elsewhere)")

    seeds = []
    if args.logs:
        runs = [(Path(f).stem, Path(f).read_text(), None) for f in args.logs]
    else:
        work = Path(args.work) / args.name
        work.mkdir(parents=True, exist_ok=True)
        runs = [(int(s), train(args, int(s), work / f"seed{s}"), work / f"seed{s}") for s in args.seeds.split(",")]
    for seed, text, run in runs:
        rows = parse_epochs(text)
        chosen = {c: choose(rows, c) for c in CRITERIA}
        if run is not None:
            if len(rows) != args.epochs:
                raise SystemExit(f"{run}: {len(rows)} scored epochs in its log, expected {args.epochs}")
            kept = json.loads((run / "metrics.json").read_text())
            if kept["best_epoch"] != chosen["val_auc"]["epoch"]:
                raise SystemExit(f"{run}: kept epoch {kept['best_epoch']}, the log's best val AUC: {chosen['val_auc']}")
        val_how = re.search(r"chosen on (.*)", text)
        seeds.append({"seed": seed, "epochs": rows, "chosen": chosen, "validation": val_how and val_how[1].strip()})

    mean = {c: sum(s["chosen"][c]["test"] for s in seeds) / len(seeds) for c in CRITERIA}
    record = {
        "setting": {"logs": args.logs} if args.logs else {k: v for k, v in vars(args).items() if k not in SKIP},
        "seeds": seeds,
        "mean_test_f1": mean,
    }
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results[args.name] = record
    with atomic_write(out, "w") as fh:
        fh.write(json.dumps(results, indent=2) + "\n")

    print(f"{args.name}: validation slice {seeds[0]['validation']}")
    names = [f"seed {s['seed']}" if isinstance(s["seed"], int) else s["seed"] for s in seeds]
    print("| criterion | " + " | ".join(f"{name}: epoch, test F1" for name in names) + " | mean test F1 |")
    print("|---|" + "---:|" * (len(seeds) + 1))
    for c in CRITERIA:
        cells = " | ".join(f"{s['chosen'][c]['epoch']}, {s['chosen'][c]['test']:.1f}" for s in seeds)
        print(f"| {c} | {cells} | {mean[c]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
