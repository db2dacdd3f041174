"""Benchmark: the semantic gate and the reference set, measured (augtext.quality, augtext/reference/).

1. Pass rates of the gate over a grid of (min_similarity, top_k), on
   - the project's reference set (2,200 sentences, judged leave-one-out: a text is never its own prototype),
   - the labelled sentence set of the tests (tests/augtext/data/gate_set.json: correct descriptions of the 12 BP4D
     AUs, off-domain sentences that contain face words, descriptions of a different AU of the same region),
   - real LLM answers, if `--llm-cache DIR` points at caches made with `augtext generate --backend hf` (their
     requests.jsonl is re-walked with and without the gate: how many rule-valid sentences the gate drops, with
     samples of both sides to read).
   The defaults (augtext.quality.GATE_MIN_SIMILARITY, GATE_TOP_K) are marked in the table.
2. Identifiability of the reference set: `augtext score` on a cache written by `--backend reference`.
3. Cost: loading the model + encoding the prototypes (once per run; the prototypes are then kept in cache/gate/),
   checking 1,000 texts, and, for each LLM cache, the gate's seconds per 1,000 rule-valid texts (a gated re-walk of
   its answers minus a plain one) against the seconds the LLM took to write them (the log's own latencies).

    python bench/bench_gate.py [--llm-cache /tmp/llmbench/SmolLM2-135M-Instruct ...] [--out bench/results/gate.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_answers import kept  # noqa: E402  (what the gate keeps of (au, text) pairs, in order)

from augtext.descriptions import walk_pair  # noqa: E402
from augtext.facs import FACS  # noqa: E402
from augtext.generate import GenerateConfig, generate  # noqa: E402
from augtext.quality import (  # noqa: E402
    GATE_MIN_SIMILARITY,
    GATE_TOP_K,
    SemanticGate,
    TextEmbedder,
    default_embedder,
    score_cache,
)
from augtext.reference import reference_set  # noqa: E402
from augtext.requestlog import RequestLog  # noqa: E402
from augtext.validate import validate_description  # noqa: E402

GATE_SET = REPO / "tests" / "augtext" / "data" / "gate_set.json"
THRESHOLDS = (0.45, 0.5, 0.55, 0.6, 0.65)
TOP_KS = (1, 2, 3, 4, 5)


def decisions(gate: SemanticGate, items: list[tuple[int, str]]) -> np.ndarray:
    """(N, 2) own-AU similarity and rank of each (au, text)."""
    out = []
    for au in sorted({a for a, _ in items}):
        texts = [t for a, t in items if a == au]
        out += [(d.similarity, d.rank) for d in gate.check(texts, au)]
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def grid(sim_rank: np.ndarray) -> dict[str, float]:
    return {
        f"{t}/{k}": float(np.mean((sim_rank[:, 0] >= t) & (sim_rank[:, 1] <= k))) if len(sim_rank) else 0.0
        for t in THRESHOLDS
        for k in TOP_KS
    }


def llm_answers(cache: Path, embedder: TextEmbedder) -> dict:
    """Re-walk a cache's answers with and without the gate."""
    log = RequestLog(cache / "requests.jsonl")
    groups: dict[tuple[int, str], list[dict]] = {}
    for entry in log.entries.values():
        groups.setdefault((int(entry["au"]), str(entry["style"])), []).append(entry)
    gate = SemanticGate(TextEmbedder(embedder.encoder, embedder.name))  # its own memo: every text encoded here
    _ = gate.prototypes
    kept_rules, kept_gate, dropped = [], [], []
    walk_plain_s = walk_gate_s = 0.0
    reasons: dict[str, int] = {}
    for (au, _style), entries in sorted(groups.items()):
        t0 = time.perf_counter()
        plain = walk_pair(entries, au, None)
        t1 = time.perf_counter()
        gated = walk_pair(entries, au, None, gate=gate)
        walk_plain_s += t1 - t0
        walk_gate_s += time.perf_counter() - t1
        kept_rules += [(au, t) for _, _, t in plain.kept]
        kept_gate += [(au, t) for _, _, t in gated.kept]
        gated_texts = {t for _, _, t in gated.kept}
        dropped += [(au, t) for _, _, t in plain.kept if t not in gated_texts]
        for r in ("far_from_au", "other_au"):
            reasons[r] = reasons.get(r, 0) + gated.rejections.get(r, 0)
    model = next(iter(log.entries.values()))["model"] if log.entries else "?"
    seconds = sum(float(e.get("latency_s") or 0) for e in log.entries.values())
    return {
        "cache": str(cache),
        "model": model,
        "answers": len(log.entries),
        "kept_by_rules": len(kept_rules),
        "kept_with_gate": len(kept_gate),
        "gate_reasons": reasons,
        "llm_seconds_per_1000_kept": 1000 * seconds / max(len(kept_rules), 1),
        "gate_seconds_per_1000_kept": 1000 * (walk_gate_s - walk_plain_s) / max(len(kept_rules), 1),
        "samples_kept": [f"AU{a}: {t}" for a, t in kept_gate[:: max(1, len(kept_gate) // 8)][:8]],
        "samples_dropped": [f"AU{a}: {t}" for a, t in dropped[:: max(1, len(dropped) // 8)][:8]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llm-cache", type=Path, nargs="*", default=[])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gate.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg": os.getloadavg()},
        "defaults": {"min_similarity": GATE_MIN_SIMILARITY, "top_k": GATE_TOP_K},
    }

    t0 = time.perf_counter()
    embedder = default_embedder()
    embedder(["warm up"])
    load_s = time.perf_counter() - t0
    gate = SemanticGate(embedder)
    t0 = time.perf_counter()
    _ = gate.prototypes
    protos_s = time.perf_counter() - t0

    # 1. pass rates
    ref_items = [(au, t) for (au, _s), texts in reference_set().items() for t in texts]
    rule_ok = np.mean([validate_description(t, FACS[a]) is None for a, t in ref_items])
    probe = SemanticGate(embedder, min_similarity=-1.0, top_k=len(FACS))  # records similarity and rank only
    sets = {"reference_set": decisions(probe, ref_items)}
    labelled = json.loads(GATE_SET.read_text(encoding="utf-8"))
    for kind in ("correct", "off_domain", "wrong_au"):
        sets[kind] = decisions(probe, [(int(a), t) for a, t in labelled[kind]])
    result["pass_rates"] = {name: grid(sr) for name, sr in sets.items()}
    # The whole check a sentence meets in `augtext generate`: the rules (validate_description), then the gate at the
    # defaults (whole texts, then clause by clause; the grid above judges whole texts only).
    named = {"reference_set": ref_items} | {k: [(int(a), t) for a, t in labelled[k]] for k in sets if k in labelled}
    result["pipeline"] = {}
    for name, items in named.items():
        rules = np.array([validate_description(t, FACS[a]) is None for a, t in items])
        gate_ok = kept(gate, items)
        result["pipeline"][name] = {
            "sentences": len(items),
            "rules": float(rules.mean()),
            "gate": float(gate_ok.mean()),
            "rules_and_gate": float((rules & gate_ok).mean()),
        }
    result["reference_set"] = {"sentences": len(ref_items), "pass_rules": float(rule_ok), "pairs": len(reference_set())}
    result["similarity_quantiles"] = {
        name: [float(np.quantile(sr[:, 0], q)) for q in (0, 0.05, 0.5, 0.95, 1)] for name, sr in sets.items()
    }

    # 2. identifiability of the reference set, as `augtext score` reports it
    with tempfile.TemporaryDirectory() as tmp:
        from augtext.backends import ReferenceBackend

        aus = tuple(sorted({a for a, _ in ref_items}))
        styles = tuple(sorted({s for _, s in reference_set()}))
        config = GenerateConfig(aus=aus, styles=styles, cache=Path(tmp), n=10, progress=False, gate=False)
        generate(config, ReferenceBackend())
        score = score_cache(tmp, embedder=embedder)
        result["reference_score"] = {
            "overall": score.overall,
            "per_au": {
                f"AU{s.au}": {
                    "facs": s.identifiability_facs,
                    "loo": s.identifiability_loo,
                    "specificity": s.specificity,
                }
                for s in score.per_au
            },
        }

    # 3. LLM answers and cost
    result["llm"] = [llm_answers(c, embedder) for c in args.llm_cache]
    texts = [t for _, t in ref_items][:1000]
    fresh = TextEmbedder(embedder.encoder, embedder.name)  # no memo: every text encoded
    t0 = time.perf_counter()
    SemanticGate(fresh).check(texts, 12)
    check_s = time.perf_counter() - t0
    result["cost_s"] = {
        "load_model": load_s,
        "encode_prototypes": protos_s,
        "check_1000_texts_incl_prototypes": check_s,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(report(result))


def report(r: dict) -> str:
    t, k = r["defaults"]["min_similarity"], r["defaults"]["top_k"]
    key = f"{t}/{k}"
    lines = ["| set | kept at the defaults (" + key + ") |", "|---|---:|"]
    for name, rates in r["pass_rates"].items():
        lines.append(f"| {name} | {rates[key]:.2f} |")
    lines += [
        "",
        "| min_similarity / top_k | " + " | ".join(r["pass_rates"]) + " |",
        "|---|" + "---:|" * len(r["pass_rates"]),
    ]
    for g in next(iter(r["pass_rates"].values())):
        lines.append(f"| {g} | " + " | ".join(f"{rates[g]:.2f}" for rates in r["pass_rates"].values()) + " |")
    lines += [
        "",
        "| set | sentences | pass the rules | pass the gate | pass both (kept by generate) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, p in r["pipeline"].items():
        lines.append(f"| {name} | {p['sentences']} | {p['rules']:.2f} | {p['gate']:.2f} | {p['rules_and_gate']:.2f} |")
    o = r["reference_score"]["overall"]
    lines += [
        "",
        f"reference set: identifiability {o['identifiability_facs']:.3f} (FACS) / "
        f"{o['identifiability_loo']:.3f} (LOO), specificity {o['specificity']:+.3f}",
    ]
    for llm in r["llm"]:
        lines.append(
            f"{llm['model']}: {llm['kept_by_rules']} sentences pass the rules, {llm['kept_with_gate']} "
            f"the gate too ({llm['gate_reasons']}); per 1000 rule-valid texts: the LLM took "
            f"{llm['llm_seconds_per_1000_kept']:.0f} s, the gate {llm['gate_seconds_per_1000_kept']:.1f} s"
        )
    c = r["cost_s"]
    lines.append("cost (s): " + ", ".join(f"{k} {v:.2f}" for k, v in c.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
