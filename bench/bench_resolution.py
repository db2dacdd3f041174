"""How much of a run's score rests on the pixels' resolution: the same test faces captured at fewer pixels.

Each test face (and its neutral frame, for a run with model.reference) is resized to S pixels wide and back to its
own size (bicubic both ways, saved as PNG: nothing changes but the detail a camera of S pixels would have kept), and
the run is evaluated on those copies as `hiva_core eval` would (its thresholds, its alignment), beside the faces as
they are. A run that reads detail finer than S pixels loses F1 at S; one that does not, keeps it. The native size
(S = the images' width) gives the originals' scores back to the digit: the copies are lossless.

    python bench/bench_resolution.py --run runs/ref --data synth --fold 1 --sizes 96,64,48 --name ref_held

Writes bench/results/resolution.json (one entry per --name, merged) and bench/results/resolution.md (every entry).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_breakdown import save_entry  # noqa: E402
from limited_labels import cli  # noqa: E402

from augtext.errors import UserError  # noqa: E402

IMAGE_COLUMNS = ("path", "neutral")  # a face and, for a run with model.reference, its neutral frame


def captured(image: Image.Image, size: int) -> Image.Image:
    """``image`` as a camera of ``size`` pixels across would have caught it, at its own size again."""
    image = image.convert("RGB")
    width, height = image.size
    small = image.resize((size, max(1, round(size * height / width))), Image.BICUBIC)
    return small.resize((width, height), Image.BICUBIC)


def captured_set(manifest: pd.DataFrame, root: Path, size: int, out: Path) -> Path:
    """``out/manifest.csv``: ``manifest``'s rows (image paths relative to ``root``, or absolute) with every image of
    IMAGE_COLUMNS replaced by its copy `captured` at ``size`` (``out/<column>/<n>.png``); every other column kept."""
    rows = manifest.copy()
    for column in IMAGE_COLUMNS:
        if column not in rows:
            continue
        copies = {}
        for n, rel in enumerate(rows[column].dropna().unique()):
            if not rel:
                continue
            source, copy = root / rel, Path(column, f"{n:06d}.png")
            try:
                with Image.open(source) as image:
                    if size > image.width:
                        raise UserError(f"--sizes {size}: wider than {source} ({image.width} px); give smaller sizes")
                    picture = captured(image, size)
            except (OSError, ValueError) as exc:
                raise UserError(f"cannot read image {source}: {exc}") from exc
            (out / copy).parent.mkdir(parents=True, exist_ok=True)
            picture.save(out / copy)
            copies[rel] = str(copy)
        rows[column] = rows[column].map(lambda rel, c=copies: c.get(rel, rel))
    rows.to_csv(out / "manifest.csv", index=False)
    return out / "manifest.csv"


def scores(result: dict) -> dict:
    """avg F1 (at the run's thresholds and at 0.5) and AUC, and per AU, from evaluate_run's result."""
    avg = result["avg"]
    return {
        "f1": avg["f1"],
        "f1_at_05": avg.get("f1_at_05"),
        "auc": avg["auc"],
        "per_au": {au: {"f1": v["f1"], "auc": v["auc"]} for au, v in result["per_au"].items()},
    }


def markdown(results: dict) -> str:
    lines = []
    for name, entry in results.items():
        sizes = [("as they are", entry["native"])] + [(f"{s} px", entry["sizes"][s]) for s in entry["sizes"]]
        aus = list(entry["native"]["per_au"])
        lines += [f"### {name}", "", entry["what"], "", "F1 at the run's thresholds (AUC):", ""]
        lines.append("| faces captured at | " + " | ".join(aus) + " | **avg** |")
        lines.append("|---|" + "---:|" * (len(aus) + 1))
        for label, s in sizes:
            cells = [f"{100 * s['per_au'][au]['f1']:.1f} ({100 * s['per_au'][au]['auc']:.1f})" for au in aus]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {100 * s['f1']:.1f} ({100 * s['auc']:.1f}) |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the run folder to evaluate")
    p.add_argument("--data", required=True, help="the test set: a manifest (.csv, .parquet) or a folder holding one")
    p.add_argument("--fold", type=int, help="only the faces of this fold (default: as hiva_core eval picks them)")
    p.add_argument("--sizes", default="96,64,48", help="widths in pixels to capture the faces at (default 96,64,48)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--name", required=True, help="this entry's key in the results")
    p.add_argument("--out-json", default=str(REPO / "bench" / "results" / "resolution.json"))
    p.add_argument("--out-md", default=str(REPO / "bench" / "results" / "resolution.md"))
    args = p.parse_args(argv)
    from hiva_core.data.manifest import find_manifest, read_label_manifest
    from hiva_core.evaluate import evaluate_run

    try:
        sizes = sorted({int(s) for s in args.sizes.split(",")}, reverse=True)
    except ValueError:
        raise UserError(f"--sizes {args.sizes!r} is not a comma-separated list of pixel widths") from None
    if not sizes or sizes[-1] < 4:
        raise UserError(f"--sizes {args.sizes!r}: widths of at least 4 pixels")
    source = find_manifest(args.data)
    manifest = read_label_manifest(source)
    if args.fold is not None:
        if "fold" not in manifest:
            raise UserError(f"{source} has no fold column: leave --fold out")
        manifest = manifest[pd.to_numeric(manifest["fold"], errors="coerce") == args.fold].reset_index(drop=True)
        if manifest.empty:
            raise UserError(f"{source} has no faces in fold {args.fold}")

    def evaluate(data: Path) -> dict:
        return scores(evaluate_run(args.run, str(data), fold=args.fold, batch_size=args.batch_size))

    entry = {
        "what": f"{args.run} on {source} ({f'fold {args.fold}' if args.fold is not None else 'as eval picks'}: "
        f"{len(manifest)} faces), each face"
        + (" and its neutral frame" if "neutral" in manifest else "")
        + " resized to S px wide and back (bicubic, PNG)",
        "run": str(args.run),
        "native": evaluate(source),
        "sizes": {},
    }
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix=f"resolution_{size}_") as tmp:
            entry["sizes"][str(size)] = evaluate(captured_set(manifest, source.parent, size, Path(tmp)))
        print(f"{size} px: F1 {100 * entry['sizes'][str(size)]['f1']:.1f}", flush=True)

    title = "How much of a run's score rests on resolution (bench/bench_resolution.py)"
    save_entry(args.out_json, args.out_md, args.name, entry, title, markdown)
    return 0


if __name__ == "__main__":
    cli(main)
