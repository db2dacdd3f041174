"""What the `augtext` commands print: terminal rendering of the library's results, used by cli.py only.

The library modules (embed, stats, quality, templates) compute and return; these functions call them and show the
result (rich tables on a terminal, wide plain tables when piped), so that no library function prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augtext.descriptions import REJECTED_NAME
from augtext.embed import EmbedReport, embed_cache
from augtext.facs import au_label
from augtext.quality import CacheScore, score_cache
from augtext.stats import AUStats, compute_stats, rejected_samples
from augtext.templates import PACKAGE_PROMPTS, _style_files, render_messages, style_description

SHOWN_CHARS = 240  # a rejected whole answer (up to descriptions.ANSWER_CHARS) is cut to this in `augtext stats`


def run_embed(cache: Path, model: str | None = None, batch_size: int = 64, device: str | None = None) -> EmbedReport:
    """The `augtext embed` command: embed_cache plus a one-line summary."""
    report = embed_cache(cache, model=model, batch_size=batch_size, device=device)
    state = "written" if report.written else "already up to date"
    # The same text in several styles is encoded once: say so, or the counts do not add up to the rows.
    n = report.shared
    shared = f", {n} repeated text{'s share' if n > 1 else ' shares'} a vector" if n else ""
    print(
        f"{report.rows} descriptions -> {report.path} ({report.dim}-d, {report.model}): {report.encoded} encoded, "
        f"{report.reused} reused{shared}, {report.dropped} dropped; {state} in {report.seconds:.1f} s"
    )
    return report


def run_stats(cache: Path, samples: int = 2) -> list[AUStats]:
    """CLI: print per-AU counts, per-style counts, rejections by reason, diversity and sample texts."""
    from rich.console import Console
    from rich.table import Table

    rows, source = compute_stats(cache, samples)
    console = Console(highlight=False)
    if not console.is_terminal:  # piped or captured: do not squeeze the tables into 80 columns
        console = Console(highlight=False, width=max(console.width, 160))
    styles = sorted({st for r in rows for st in r.by_style})
    reasons = sorted({reason for r in rows for reason in r.rejected})

    table = Table(
        title=f"{cache}: descriptions per AU",
        caption=f"distinct-2: distinct word 2-grams / all 2-grams; cos: mean pairwise cosine of {source}",
    )
    table.add_column("AU", no_wrap=True)
    table.add_column("kept", justify="right")
    for st in styles:
        table.add_column(st, justify="right")
    table.add_column("rejected", justify="right")
    table.add_column("distinct-2", justify="right")
    table.add_column("cos", justify="right")
    for r in rows:
        cos = "-" if r.mean_cosine is None else f"{r.mean_cosine:.3f}"
        table.add_row(
            au_label(r.au),
            str(r.kept),
            *(str(r.by_style.get(st, 0)) for st in styles),
            str(sum(r.rejected.values())),
            f"{r.distinct_2:.3f}",
            cos,
        )
    total_kept = sum(r.kept for r in rows)
    table.add_section()
    table.add_row(
        "all",
        str(total_kept),
        *(str(sum(r.by_style.get(st, 0) for r in rows)) for st in styles),
        str(sum(sum(r.rejected.values()) for r in rows)),
        "",
        "",
    )
    console.print(table)

    if reasons:
        rej = Table(title="rejected by reason")
        rej.add_column("AU", no_wrap=True)
        for reason in reasons:
            rej.add_column(reason, justify="right")
        for r in rows:
            if r.rejected:
                rej.add_row(au_label(r.au), *(str(r.rejected.get(reason, 0)) for reason in reasons))
        console.print(rej)

    dropped = rejected_samples(Path(cache), samples)
    if dropped:  # what the rules and the gate dropped, so that a reader can judge them (all: rejected.parquet)
        drp = Table(title=f"sample rejected texts (all of them, with their requests: {Path(cache) / REJECTED_NAME})")
        drp.add_column("AU", no_wrap=True)
        drp.add_column("reason", no_wrap=True)
        drp.add_column("sim.", justify="right")
        drp.add_column("text")
        for d in dropped:
            sim = "" if d["similarity"] is None else f"{d['similarity']:.2f}"
            text = d["text"] if len(d["text"]) <= SHOWN_CHARS else d["text"][: SHOWN_CHARS - 1] + "…"
            reason = d["reason"] if d["rival"] is None else f"{d['reason']} (read as {au_label(d['rival'])})"
            drp.add_row(au_label(d["au"]), reason, sim, text)
        console.print(drp)

    if samples > 0:
        smp = Table(title="sample texts", show_lines=False)
        smp.add_column("AU", no_wrap=True)
        smp.add_column("text")
        for r in rows:
            for text in r.samples:
                smp.add_row(au_label(r.au), text)
        console.print(smp)

    print(score_cache(cache).summary(), flush=True)  # what `augtext score` measures, in one line
    return rows


def run_score(cache: Any, json_path: Any = None, model: str | None = None) -> CacheScore:
    """CLI: a per-AU table and the summary line; the whole score as JSON to `json_path` if given."""
    import json

    from rich.console import Console
    from rich.table import Table

    from augtext.io import atomic_write, check_output_file

    if json_path is not None:
        check_output_file(json_path, "--json", "score.json")  # before the work, not after it
    result = score_cache(cache, model)
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 140))

    def f(value: float | None, fmt: str = ".2f") -> str:
        return "-" if value is None else format(value, fmt)

    table = Table(
        title=f"{cache}: prior quality ({result.model})",
        caption="ident.: share whose nearest AU is their own (FACS reference texts / leave-one-out "
        "centroids); spec.: own minus best other similarity; div.: mean pairwise cosine distance; "
        "valid: valid (kept or beyond --n) / candidate sentences",
    )
    for name in ("AU", "n", "ident. FACS", "ident. LOO", "spec.", "div.", "valid", "most confused with"):
        table.add_column(name, justify="left" if name in ("AU", "most confused with") else "right", no_wrap=True)
    for s in result.per_au:
        v = result.validity.get(s.au, {})
        table.add_row(
            au_label(s.au),
            str(s.n),
            f(s.identifiability_facs),
            f(s.identifiability_loo),
            f(s.specificity, "+.3f"),
            f(s.diversity, ".3f"),
            f(v.get("rate")),
            au_label(s.confused_with) if s.confused_with else "",
        )
    console.print(table)
    print(result.summary(), flush=True)
    if json_path is not None:
        with atomic_write(json_path, "w") as fh:
            json.dump(result.to_json(), fh, indent=1)
    return result


def run_templates(show: str | None, au: int | str, prompts: str | Path | None, n: int = 8) -> None:
    """CLI: list the styles with their descriptions, or print one style's messages rendered for each AU of `au` (an
    AU code or any spec `--au` takes elsewhere: "AU12", "1,2,4", "bp4d")."""
    from rich.console import Console
    from rich.table import Table

    from augtext.facs import parse_au_spec

    console = Console(highlight=False, soft_wrap=True)
    if show is None:
        files = _style_files(prompts)
        table = Table(title="description styles")
        table.add_column("style", no_wrap=True)
        table.add_column("description")
        table.add_column("from")
        for style in sorted(files):
            source = "package" if files[style].parent == PACKAGE_PROMPTS else str(files[style].parent)
            table.add_row(style, style_description(style, prompts), source)
        console.print(table)
        return
    for i, code in enumerate(parse_au_spec(str(au))):
        messages, sha = render_messages(show, code, n, prompts)
        if i:
            console.print()
        console.print(f"# style {show}, {au_label(code)}, n={n}, template sha256 {sha}", markup=False)
        for message in messages:
            console.print(f"\n--- {message['role']} ---", markup=False)
            console.print(message["content"], markup=False)
