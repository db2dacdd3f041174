"""Train the semantic gate's discriminator (augtext.discriminator) and measure it with each answer set left out.

Training rows: the project's reference set (each text under its AU) and the labelled answer sets of bench_answers'
SETS (each correct text under its AU, each `wrong_au` text that records the AU it really describes, `true_au`, under
that AU, each `off_domain` text under NOT_A_DESCRIPTION; `wrong_fact` texts are judged, never trained on), every text
with its AU labels stripped as the gate strips them, embedded with the gate's model.

    python bench/train_discriminator.py             # writes augtext/reference/discriminator-<model>.npz
    python bench/train_discriminator.py --evaluate  # bench/results/discriminator.{json,md}

`--evaluate` trains once per answer set without it (the reference set and the other sets), and scores that set's
texts with it: of those the rules and the rest of the gate keep, how many the discriminator drops at several margins,
and of those the similarity ranking drops, how many it keeps. bench/data/once (sets measured once, never trained
on) is scored by the discriminator trained on every set. The figures are those of a discriminator that never saw
the voice it judges.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_answers import DATA, SETS, answer_sets  # noqa: E402

MARGINS = (1.0, 1.5, 2.0, 3.0)
KINDS = ("correct", "wrong_au", "wrong_fact", "off_domain")
ONCE = DATA / "once"


def answer_rows(path: Path) -> list[dict]:
    """A set's texts: set, kind, au (as sent), true_au (the class it is trained under: None where not recorded and
    for wrong_fact texts; NOT_A_DESCRIPTION for off_domain texts), text."""
    from augtext.discriminator import NOT_A_DESCRIPTION

    data = json.loads(path.read_text(encoding="utf-8"))
    name = path.name.removesuffix("_answers.json")
    rows = [
        dict(set=name, kind="correct", au=int(x["au"]), true_au=int(x["au"]), text=x["text"]) for x in data["correct"]
    ]
    for kind, true_au in (("wrong_fact", None), ("off_domain", NOT_A_DESCRIPTION)):
        rows += [
            dict(set=name, kind=kind, au=int(x["au"]), true_au=true_au, text=x["text"]) for x in data.get(kind, [])
        ]
    for x in data.get("wrong_au", []):
        true = x.get("true_au")
        rows.append(
            dict(
                set=name, kind="wrong_au", au=int(x["au"]), true_au=None if true is None else int(true), text=x["text"]
            )
        )
    return rows


def reference_rows() -> list[dict]:
    from augtext.reference import reference_set

    return [
        dict(set="reference", kind="correct", au=au, true_au=au, text=t)
        for (au, _style), texts in reference_set().items()
        for t in texts
    ]


def labelled_rows() -> list[dict]:
    """What the shipped discriminator learns from: the reference set and every set of SETS (bench/data/once not)."""
    return reference_rows() + [r for name in SETS for r in answer_rows(DATA / f"{name}.json")]


def training_pairs(rows: list[dict]) -> list[tuple[int, str]]:
    return [(r["true_au"], r["text"]) for r in rows if r["true_au"] is not None]


def fit(embedder, rows: list[dict], vectors: np.ndarray):
    from augtext.discriminator import train, training_key

    mask = [r["true_au"] is not None for r in rows]
    pairs = training_pairs(rows)
    return train(embedder.name, vectors[mask], [au for au, _ in pairs], training_key(embedder.name, pairs))


def write(embedder) -> None:
    from augtext.discriminator import discriminator_path
    from augtext.quality import strip_labels

    rows = labelled_rows()
    model = fit(embedder, rows, embedder([strip_labels(r["text"]) for r in rows]))
    path = discriminator_path(embedder.name)
    model.save(path)
    print(f"{path}: {len(model.classes)} AUs, trained on {sum(r['true_au'] is not None for r in rows)} texts")


def evaluate(embedder, out: Path) -> None:
    from augtext.discriminator import LOOKALIKE_MARGIN, RESCUE_MARGIN, RESCUE_MIN_SIMILARITY, keeps
    from augtext.facs import FACS
    from augtext.quality import SemanticGate, _not_counted, _rescuable, strip_labels
    from augtext.validate import validate_description

    ref = reference_rows()
    sets = {name.removesuffix("_answers"): answer_rows(DATA / f"{name}.json") for name in SETS}
    once = {name.removesuffix("_answers"): answer_rows(ONCE / f"{name}.json") for name in answer_sets(ONCE)}
    gate = SemanticGate(embedder, discriminator=False)
    vec = {id(r): v for r, v in zip(ref, embedder([strip_labels(r["text"]) for r in ref]), strict=True)}
    judged: list[dict] = []
    for group, groups in (("left out", sets), ("once", once)):
        for rows in groups.values():
            for r, v in zip(rows, embedder([strip_labels(r["text"]) for r in rows]), strict=True):
                vec[id(r)] = v
            for au in sorted({r["au"] for r in rows}):
                mine = [r for r in rows if r["au"] == au]
                for r, d in zip(mine, gate.check([r["text"] for r in mine], au), strict=True):
                    rule = validate_description(r["text"], FACS[au])
                    r.update(
                        group=group,
                        kept=rule is None and d.reason is None,
                        rescuable=rule is None and _rescuable(d),
                        not_counted=_not_counted(r["text"], au),
                    )
            judged += rows
        print(f"{group}: judged by the rules and the gate", flush=True)

    def margins(model, rows: list[dict]) -> None:
        for au in sorted({r["au"] for r in rows}):
            mine = [r for r in rows if r["au"] == au]
            x, skip = np.stack([vec[id(r)] for r in mine]), [r["not_counted"] for r in mine]
            m, rival = model.margins(x, au, skip)
            own, _ = model.margins(x, au, skip, description=True)
            for r, a, b, c in zip(mine, m.tolist(), rival.tolist(), own.tolist(), strict=True):
                r.update(margin=a, rival=int(b), rescued=r["rescuable"] and keeps(c))

    everything = ref + [r for rows in sets.values() for r in rows]
    for name, rows in sets.items():
        train_rows = [r for r in everything if r["set"] != name]
        margins(fit(embedder, train_rows, np.stack([vec[id(r)] for r in train_rows])), rows)
        print(f"{name}: scored with the discriminator trained without it", flush=True)
    margins(
        fit(embedder, everything, np.stack([vec[id(r)] for r in everything])), [r for rs in once.values() for r in rs]
    )

    def tally(rows: list[dict]) -> dict:
        out: dict = {}
        for kind in KINDS:
            mine = [r for r in rows if r["kind"] == kind]
            kept = [r for r in mine if r["kept"]]
            out[kind] = {"n": len(mine), "kept_before": len(kept), "rescued": sum(r["rescued"] for r in mine)}
            for t in MARGINS:
                out[kind][f"kept_at_{t}"] = sum(r["margin"] >= -t for r in kept)
            out[kind]["kept_after"] = out[kind][f"kept_at_{LOOKALIKE_MARGIN}"] + out[kind]["rescued"]
        return out

    result = {
        "margin": LOOKALIKE_MARGIN,
        "rescue": {"margin": RESCUE_MARGIN, "min_similarity": RESCUE_MIN_SIMILARITY},
        "sets": {name: tally(rows) for name, rows in {**sets, **once}.items()},
        "pooled": {
            "left out (35 sets)": tally([r for r in judged if r["group"] == "left out"]),
            "once (bench/data/once)": tally([r for r in judged if r["group"] == "once"]),
        },
        "dropped": [
            {k: r[k] for k in ("set", "kind", "au", "true_au", "rival", "margin", "text")}
            for r in judged
            if r["kept"] and r["margin"] < -LOOKALIKE_MARGIN
        ],
        "rescued": [{k: r[k] for k in ("set", "kind", "au", "true_au", "text")} for r in judged if r["rescued"]],
    }
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(report(result) + "\n", encoding="utf-8")
    print(report(result))


def report(result: dict) -> str:
    head = " | ".join(f"margin {t}" for t in MARGINS)
    rescue = result["rescue"]
    lines = [
        "Of the texts the rules and the similarity ranking keep: kept without the discriminator, then with it at each "
        f"margin; of those the ranking drops (`other_au`, `far_from_au` at similarity >= {rescue['min_similarity']}): "
        f"kept by it (own AU ahead by {rescue['margin']}); kept in all at the default margin {result['margin']}",
        "",
        f"| texts | kind | n | kept before | {head} | kept by it | kept after |",
        "|---|---|---:|---:|" + "---:|" * (len(MARGINS) + 2),
    ]
    for name, entry in result["pooled"].items():
        for kind, e in entry.items():

            def share(count: int, n: int = max(e["n"], 1)) -> str:
                return f"{count} ({count / n:.1%})"

            cells = " | ".join(share(e[f"kept_at_{t}"]) for t in MARGINS)
            lines.append(
                f"| {name} | {kind} | {e['n']} | {share(e['kept_before'])} | {cells} | {e['rescued']} "
                f"| {share(e['kept_after'])} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evaluate", action="store_true", help="measure with each set left out (writes no weights)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "discriminator.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from augtext.quality import default_embedder

    embedder = default_embedder()
    if args.evaluate:
        evaluate(embedder, args.out)
    else:
        write(embedder)


if __name__ == "__main__":
    main()
