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
    lines = ["predict: " + ", ".join(parts) + (f" -> {out}" if out else "")]
    source = summary.get("thresholds", {}).get("source", "")
    if source.startswith(("the run's", "the per-AU")):  # not the plain 0.5 of earlier versions: say so
        lines[0] += f"; AU labels at {source} (--threshold 0.5 for 0.5)"
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
        + f"\ntrain with: --data {summary['dataset']}:{summary['images']} --lists {summary['list_dir']}",
        file=sys.stderr,
    )
