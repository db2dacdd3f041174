"""What the `hiva_core` commands print: terminal rendering of the library's results, used by cli.py only.

The library modules (predict, prepare) compute, write their files and return; cli.py hands their results to these
functions (a rich table on a terminal, CSV when piped; summaries on stderr), so that no library function prints a
result. Progress bars are the library's own (`hiva_core.progress`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from augtext.facs import au_label

if TYPE_CHECKING:
    import pandas as pd


def print_predict_table(table: pd.DataFrame, aus: Sequence[int], threshold: float | Sequence[float]) -> None:
    """`hiva_core predict` without --out: the rows on stdout. On a terminal a rich table of probabilities (bold where
    at or above the AU's threshold: one for all, or one per AU); otherwise (piped, redirected) CSV, the same as
    `--out FILE.csv`, which a narrow pipe cannot garble."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from hiva_core.predict import write_csv

    if not sys.stdout.isatty():
        write_csv(table, sys.stdout)
        return
    view = Table(show_lines=False)
    for name in ("source", "frame", "time", "face", "status", *[au_label(a) for a in aus]):
        view.add_column(name, justify="left" if name in ("source", "status") else "right", overflow="fold")
    limits = [float(threshold)] * len(aus) if isinstance(threshold, (int, float)) else list(threshold)
    for r in table.itertuples(index=False):
        cells = [
            Path(r.source).name,
            "" if r.kind == "image" else str(r.frame),
            "" if pd.isna(r.time_s) else f"{r.time_s:.2f}",
            "" if pd.isna(r.face) else str(r.face),
            r.status,
        ]
        for au, limit in zip(aus, limits, strict=True):
            p = getattr(r, f"{au_label(au)}_prob")
            cells.append("" if pd.isna(p) else (f"[bold]{p:.2f}[/bold]" if p >= limit else f"{p:.2f}"))
        view.add_row(*cells)
    Console(soft_wrap=False).print(view)


def _first_faces(faces: list[dict[str, Any]], detail: str) -> str:
    """The first three faces of a summary list by file name (and frame), each with `detail` formatted from it."""
    names = ", ".join(
        Path(f["source"]).name + (f" frame {f['frame']}" if f["kind"] == "video" else "") + f" ({detail.format(**f)})"
        for f in faces[:3]
    )
    return names + (", ..." if len(faces) > 3 else "")


def print_predict_summary(summary: dict[str, Any], out: Path | None) -> None:
    """`hiva_core predict`: what was read and found, on stderr (the first ten frames without a face and unreadable
    files by name)."""
    parts = [
        f"{summary['images']} image(s)",
        f"{summary['videos']} video(s)",
        f"{summary['frames_read']} frame(s) read",
        f"{summary['faces']} face(s)",
        f"{summary['frames_without_face']} without a face",
        f"{len(summary['unreadable'])} unreadable",
    ]
    skipped = summary.get("skipped", [])
    if skipped:  # what the folders given hold besides images and videos: other files, hidden files, subfolders
        names = ", ".join(Path(s).name for s in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        parts.append(f"{len(skipped)} other file(s) in the folders skipped ({names})")
    lines = ["predict: " + ", ".join(parts) + (f" -> {out}" if out else "")]
    source = summary.get("thresholds", {}).get("source", "")
    if source.startswith(("the run's", "the per-AU")):  # not the plain 0.5 of earlier versions: say so
        lines[0] += f"; AU labels at {source} (--threshold 0.5 for 0.5)"
    partial = summary.get("partial_faces", [])
    if partial:  # faces the frame cuts off: the crop is black where the image ends
        from hiva_core.predict import PARTIAL_BELOW

        lines.append(
            f"  {len(partial)} face(s) partly outside the image (under {PARTIAL_BELOW:.0%} of the face inside, column "
            f"face_in_image; their AUs read less reliably): {_first_faces(partial, '{face_in_image:.0%}')}"
        )
    small = summary.get("small_faces", [])
    if small:  # faces with few pixels: their AUs drift
        lines.append(
            f"  {len(small)} face(s) small in the image (eyes under {summary['small_below_px']:.0f} px apart, column "
            f"eye_px; their AUs read less reliably): {_first_faces(small, '{eye_px:.0f} px')}"
        )
    weak = summary.get("weak_aus", {})
    if weak:  # the run's AUs that its validation faces found little better than chance
        from hiva_core.predict import WEAK_AUC

        names = ", ".join(f"{name} ({auc:.2f})" for name, auc in weak.items())
        lines.append(
            f"  weak on the run's validation faces, AUC below {WEAK_AUC:.2f}: {names}; their 0/1 labels are often "
            "wrong (read the probabilities, or train longer or on more faces)"
        )
    by_source: dict[str, int] = {}
    for item in summary["no_face"]:
        by_source[item["source"]] = by_source.get(item["source"], 0) + 1
    for source, n in list(by_source.items())[:10]:
        lines.append(f"  no face: {source}" + (f" ({n} frames)" if n > 1 else ""))
    for item in summary["unreadable"][:10]:
        lines.append(f"  unreadable: {item['source']}: {item['error']}")
    for source, where in list(summary.get("resting_frames", {}).items())[:10]:
        at = f"frame {where['frame']} ({where['time_s']:.2f} s, " if "frame" in where else f"{where['image']} ("
        lines.append(f"  resting frame of {source}: {at}mean AU probability {where['mean_prob']:.2f} read alone)")
    print("\n".join(lines), file=sys.stderr)


def print_prepare_summary(summary: dict[str, Any]) -> None:
    """`hiva_core prepare`: frames cropped, frames left out (see the report) and the options to train with, on
    stderr."""
    problems = summary["problems"]
    detail = ", ".join(f"{n} {s}" for s, n in sorted(problems.items()))
    print(
        f"prepare {summary['dataset']}: {summary['cropped']}/{summary['frames']} labelled frames cropped"
        + (f"; not used: {detail} (see {summary['report']})" if problems else "")
        + (
            f"\ntrain with: --data {summary['manifest']} ({summary['rows']} rows, {summary['subjects']} subject(s), "
            f"folds {', '.join(map(str, summary['folds'])) or 'none: one subject'})"
            if "manifest" in summary
            else f"\ntrain with: --data {summary['dataset']}:{summary['images']} --lists {summary['list_dir']}"
        ),
        file=sys.stderr,
    )


def eval_header(result: dict[str, Any]) -> str:
    """The line above an `eval` table: the run, the data, which rows (one fold, or every fold each by its own run) and
    how many frames, and the thresholds the F1 is at."""
    mirrored = "; each face averaged with its mirror image" if result.get("flip") else ""
    frames = "frames in all" if "mean" in result else "frames"
    return (
        f"{result['run']} on {result['data']} ({result['rows']}, {result['n']} {frames}; {result['thresholds']}"
        f"{mirrored})"
    )


def format_fold_summary(summary: dict[str, Any]) -> str:
    """The `--folds all` table (hiva_core.metrics.format_folds_table of evaluate.fold_summary): every Avg cell is the
    mean of its column above — a fold's own average, and under the mean columns the mean over AUs of each AU's mean
    over folds, the figure to report. When the mean of the folds' own averages differs (an AU without a known label
    in some fold), a note says what each number is."""
    from hiva_core.metrics import format_folds_table

    table = format_folds_table(summary)
    mean, folds = summary["mean"], summary["folds"]
    of_folds = mean.get("avg_of_folds", {}).get("f1")
    avg = mean["avg"]["f1"]
    if of_folds is None or avg is None or abs(of_folds - avg) < 5e-4:
        return table
    fewer = ", ".join(
        f"{name} averages {len(m['per_au']) - len(m['unlabelled'])} of {len(m['per_au'])} AUs"
        for name, m in folds.items()
        if m.get("unlabelled")
    )
    return (
        f"{table}\n\nAvg of the F1 mean column, {100 * avg:.1f}: each AU's F1 averaged over the folds where it is "
        f"labelled, then over the AUs — the figure to report (as ME-GraphAU and MDHR report BP4D/DISFA; JSON "
        f"mean.avg). The mean of the folds' own averages is {100 * of_folds:.1f} (mean.avg_of_folds): {fewer}."
    )


def train_result_line(result: dict[str, Any]) -> str:
    """The line above a trained run's table: the kept epoch and what chose it, the test split's average F1 at 0.5
    (said once when it is also the kept epoch's score), and where per-AU thresholds are scored."""
    other = (
        f"; `hiva_core eval --run {result['out']}` scores it at the run's per-AU thresholds"
        if result["thresholds"]
        else ""
    )
    kept = f"{result['out']}: epoch {result['best_epoch']} kept ({result['selected_on']} {100 * result['best_f1']:.1f}"
    if "test avg F1" in result["selected_on"]:  # the kept epoch's score is the test F1 itself
        return f"{kept}; the table below, at 0.5{other})"
    return f"{kept}); test avg F1 at 0.5 {100 * result['metrics']['avg']['f1']:.1f} (the table below, at 0.5{other})"


# The library's messages name its keyword arguments; the command line's users type options.
CLI_SPELLINGS = {
    "backbone_weights=PATH": "--backbone-weights FILE",
    "backbone='mobilenetv2'": "--backbone mobilenetv2",
}


def cli_words(message: str) -> str:
    """A library error message in the words of the `hiva_core` command line (CLI_SPELLINGS)."""
    for library, option in CLI_SPELLINGS.items():
        message = message.replace(library, option)
    return message
