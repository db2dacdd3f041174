"""Benchmark: what `augtext generate` keeps of LLM-style answers (the rules, then the semantic gate).

Labelled answer sets in bench/data, each with correct descriptions (per AU and style), another AU's descriptions
sent as this AU (`wrong_au`) or this AU's with a wrong fact (`wrong_fact`), and off-domain text, plus the project's
reference set:
- scripted_answers.json: what a scripted OpenAI-compatible server (a user-tester's, AUs 1-26) answered one run; the
  development set of the gate's clause judging and of the contrast-clause rule;
- heldout_answers.json: written to measure (AUs 1-28), without seeing the gate or its prototypes; its misses were
  read to find the contrast-clause rule and the lip-shape look-alikes, so it is no longer blind for those;
- blind_answers.json: written blind (the 17 BP4D/DISFA AUs, several model voices), measured once;
- blind_intensity_answers.json: the intensity style only (the level first, as its prompt asks, in many forms), written
  blind to the gate to measure the level phrase's removal before judging (quality.strip_labels), measured once.
- blind_bp4d_answers.json: the 12 BP4D AUs, 10 correct texts each in the five styles (4 appearance), 36 of another AU
  (mostly look-alikes) and 20 off-domain, written blind to the gate and to the other sets, measured once (4ca8f94).
- user49_answers.json: what user test 49's scripted server sent (a development set since its misses were fixed).
- blind50_answers.json: 18 AUs (the 12 BP4D and 5, 9, 20, 25, 26, 43), 10 correct texts each, 48 of another AU or the
  opposite movement, 40 off-domain (half naming the part and a change: cosmetics, surgery, grooming), written blind
  and measured once (6fbfc61's rules: see the README); its misses then gave the rule on what is done to a face and the
  self-contrast rule, so it is a development set for those.
- blind51_answers.json: the ten rarer AUs of 1-28 no blind set held (8, 11, 13, 16, 18, 19, 21, 22, 27, 28), 10 correct
  texts each in the five styles, 40 of another AU (mostly look-alikes) and 30 off-domain, written blind and measured
  once (see the README).
- user51_answers.json: user test 51's labelled bank (a scripted server's, AUs 1-26, mostly the less common ones;
  another AU's texts and the AU's own opposite movement under wrong_au), measured once blind (see the README).
- blind52_answers.json: the AUs of 29-46 no set held (29-39, 41, 42, 44-46: the jaw, cheeks, tongue, nostrils and
  lids), 8 correct texts each in the five styles, 48 of another AU (look-alikes and opposite movements) and 30
  off-domain, written blind and measured once (see the README).
- blind53_answers.json: 16 AUs of 1-43 (4, 6, 7, 9-15, 17, 20, 23, 24, 26, 43) against the look-alikes of 29-46 that
  the complete reference set brought in: 8 correct texts each in the five styles, 48 of another AU (at least two per
  AU from 29-46: squint or slit as AU7, cheek puff as AU13, cheek suck as AU14, ...) and 24 off-domain, written blind
  and measured once (see the README).
- blind54_answers.json: 24 AUs, 5 correct texts each (most naming the AU's muscle, many a second muscle correctly),
  72 wrong facts under the AU (`wrong_fact`: the movement credited to a muscle that does not make it, or the own
  muscle moving the wrong way) and 20 off-domain (muscle trivia), written blind and measured once (d16176a: see the
  README); its misses gave the muscle rule and three more, so it is a development set for those.
- blind55_answers.json: the 12 BP4D AUs in context (8 correct texts each, most naming a companion's, a look-alike's or
  an antagonist's muscle beside the AU's, often without its code) and 19 rarer AUs with named muscles (4 each), 62
  wrong facts and 20 off-domain, written blind and measured once (cdb8867: see the README).
- blind56_answers.json: the intensity style for 16 AUs, 6 correct texts each (levels A-E and a range, the level
  stated at the start, in the middle, at the end or in words), 56 wrong facts (`wrong_level`: the AU's movement at a
  degree the level stated contradicts, or the scale misstated) and 12 off-domain (about intensity scoring), written
  blind and measured once (943bb0c and the first level rule: see the README); its misses then gave the rule's level
  phrases, so it is a development set for those.
- blind59_answers.json: emotions and look-alikes. 16 AUs (1, 2, 4-7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 26) in context
  texts, 7 correct each (6 in an emotion the AU belongs to, 1 naming another only to set it apart), 64 wrong facts
  (`wrong_emotion`: the AU's movement put in an emotion EMFACS does not put it in); 27 correct texts of nine AUs
  (25-27, 33, 34, 41-43, 45) and 40 of a look-alike sent as its neighbour (33/34, 41/42/43/45, 25/26/27, 5 as 1); 20
  off-domain (about emotions, no movement). Written blind and measured once (the emotion rule was written before the
  set was seen: see the README); its misses then gave the degree, called-name and companion rules, so it is a
  development set for those.
- blind59b_answers.json: the test set of those rules. 40 correct texts of the jaw's and lids' eight AUs (25-27, 41-43,
  45, 46) and 48 of a neighbour sent as its look-alike, in both directions of twelve pairs; 36 correct texts of the 12
  BP4D AUs in other styles than context that name an emotion in passing, and 24 `wrong_emotion`; 10 off-domain (eye,
  jaw and sleep physiology). Written blind and measured once (see the README).
- blind60_answers.json: a general set in the voice of a mid-sized model: the 12 BP4D AUs (8 correct texts each, all
  five styles) and AUs 5, 9, 20, 25, 26, 43, 45 (4 each), 50 of another AU (the usual confusions), 36 wrong facts (a
  wrong muscle, movement, emotion or level) and 14 off-domain (software, trivia, a refusal). Written blind and measured
  once (e25d32f's rules; 5911e7c's decide it the same: see the README); its misses then gave the lip-corner, funnel,
  nostril-flare, blink and "by-product" rules, so it is a development set for those.
- blind60b_answers.json: the lower face's look-alikes (AU10, 12-17, 20, 23, 24), 10 correct texts each (a third in
  the contrast style, many with the look-alike's part named and the own clause's "them"), 50 of a look-alike, 20
  wrong facts and 10 off-domain. Written blind and measured once, on e25d32f's rules and on the session's last (see
  the README); its misses then gave the lower-case name, both-lips and companion-clause rules, so it is a development
  set for those.
- blind61_answers.json: look-alikes over the whole face, the AU named five ways (code, capitalised name, lower-case
  name as the subject, muscle, "this action unit"): 130 correct texts of 18 AUs (1, 2, 4-7, 9, 10, 12, 14, 15, 17,
  23, 24 in all five styles; 20, 25, 26, 43), 70 of a look-alike, 30 wrong facts and 12 off-domain. Written blind
  and measured once, on 7d7860c's rules and after blind60b's (see the README); its misses then gave the region, AU14
  lips, AU23 chin, two-word name, sharp-smile and marked-level rules, so it is a development set for those.
- blind61b_answers.json: the test set of those rules, in the same shape: 120 correct texts (18 AUs x 6 in four or five
  styles, a third contrasts; 12 of AUs 13, 18, 22, 27, 28, 41, 43, 45), 72 of a look-alike (the AU named six ways,
  some in the intensity and context styles), 30 wrong facts and 12 off-domain. Written blind and measured once, on
  7d7860c's rules and on 58c38b9's (see the README); its misses then gave the pronoun, setting, heading and stare
  rules, so it is a development set for those.
- blind61c_answers.json: the test set of all of those, in another voice: 112 correct texts (16 AUs x 7, a third
  contrasts, many context texts listing an emotion's AUs with the companions' codes in parentheses), 64 of a
  look-alike, 24 wrong facts, 10 off-domain. Written blind and measured once, on 7d7860c's rules and on eb7079a's
  (see the README); its misses then gave the companion-label, "this AU" and heading rules.
- blind61d_answers.json: the test set of the session's final rules: 120 correct texts (17 AUs x 6 in all five styles,
  18 of AUs 13, 16, 18, 22, 27, 28, 41, 43, 45), 72 of a look-alike (both directions of the usual pairs), 24 wrong
  facts, 10 off-domain. Written blind and measured once, on 7d7860c's rules and on a362f9f's (see the README).
- blind62_answers.json: a small model's voice (stock openers, hedges, the AU named by code, name, lower-case name or
  "this action unit"): 120 correct texts (17 AUs x 6 in all five styles, 18 of AUs 11, 13, 16, 18, 22, 28, 41, 43,
  46; a third contrasts), 72 of a look-alike or the opposite movement, 24 wrong facts (6 per kind) and 20 off-domain
  (14 naming a face part). Written blind and measured once, on 7d7860c's rules and on abd8eac's (see the README); its
  misses then gave the own-name clause, narrowed-eyes, both-lips and stare rules, so it is a development set for those.
- blind62b_answers.json: a large model's voice (glabella, philtrum, palpebral fissure; dashes and semicolons), the same
  shape (AUs 1, 2, 4, 6, 7, 9, 10, 12, 14, 15, 17, 18, 20, 23, 24, 26, 43 x 6; 18 of AUs 5, 8, 19, 21, 25, 27, 38, 42,
  45), 20 off-domain (13 naming a face part). Written blind and measured once, on 7d7860c's and abd8eac's rules; its
  misses gave the dash, still-clause, AU42 and bone rules.
- blind62c_answers.json: a mid-sized model's voice (plain, "In the image, ..."), the same shape (AUs 1, 2, 4-7, 9, 10,
  12, 14-17, 20, 23, 24, 26 x 6; 18 of AUs 11, 13, 18, 22, 25, 27, 28, 43, 45), 20 off-domain (17 naming a face part).
  Written blind and measured once, on 7d7860c's and abd8eac's rules and on fca2669's (blind62's and blind62b's rules);
  its misses gave the "this AU differs from" and agent-spelling rules.
- blind62d_answers.json: the test set of those rules, three voices mixed (a tiny model's broken grammar, a clinical
  one, a casual second-person one): 126 correct texts (AUs 1, 2, 4-7, 9, 10, 12, 14, 15, 17, 20, 23-26, 43 x 6; 18 of
  AUs 8, 11, 13, 16, 18, 22, 27, 28, 45), 76 of a look-alike, 24 wrong facts, 20 off-domain (15 naming a face part).
  Written blind and measured once, on 7d7860c's, abd8eac's and c2232f8's rules (see the README); its misses gave
  the name-as-subject, name-beside-code and levelled-degree rules.
- blind62e_answers.json: the test set of the session's rules, four voices mixed (non-native English, textbook, a terse
  annotator's, storytelling: "Picture someone who ..."): 126 correct texts (AUs 1, 2, 4-7, 9, 10, 12, 14-17, 20, 23,
  24, 26, 45 x 6; 18 of AUs 11, 13, 18, 22, 25, 27, 28, 41, 43), 76 of a look-alike, 24 wrong facts, 20 off-domain.
  Written blind and measured once, on 7d7860c's, abd8eac's and 68ed0b3's rules (see the README); its misses gave the
  bare still-part, sagging-lid, over-teeth and flick rules.
- blind62f_answers.json: the test set of those, four voices mixed (parentheticals, a British FACS coder's jargon, the
  emotion first, metaphors): 126 correct texts (AUs 1, 2, 4-7, 9, 10, 12, 14, 15, 17, 18, 20, 23-26 x 6; 18 of AUs
  8, 11, 13, 16, 22, 27, 28, 43, 45), 76 of a look-alike, 24 wrong facts, 20 off-domain. Written blind and measured
  once, on 7d7860c's, abd8eac's and dcc4f26's rules (see the README); its misses gave the lip-tightness, forced-parting
  and cheek-puff rules.
- blind62g_answers.json: the test set of those, three voices mixed (one echoing the prompt's label, name and muscle
  before the movement, a terse assertive one, an observer of a video frame or photo): 126 correct texts (AUs 1, 2,
  4-7, 9, 10, 12, 14-17, 20, 23, 24, 26, 43 x 6; 18 of AUs 8, 11, 13, 18, 22, 25, 27, 28, 45), 76 of a look-alike
  (many naming the labelled AU's correct name and muscle first), 24 wrong facts, 20 off-domain. Written blind and
  measured once, on 7d7860c's, abd8eac's and 4fce0dc's rules (see the README).
- blind63_answers.json, blind63b_answers.json, blind63c_answers.json: three sets written blind in the same shape (126
  correct texts, 76 of a look-alike, 24 wrong facts, 20 off-domain each), in twelve new voices: an acting coach's
  imperatives, hedged academic prose, markdown labels, corrections first ("Not to be confused with AU2, AU1 ...");
  questions answered in one sentence, semicolon chains, prose translated from German or Spanish, a data sheet's
  fragments ("Jaw drop (AU26), level A: lips just separated, ..."); a chatty assistant ("Sure, so AU15 ..."), a
  lecture, a formal specification, literary prose. All three measured once on 7d7860c's and 46eb6de's rules before
  any was read; their misses gave the rules of c729717, 7b7188e and 6b62e5a (see the README).
- blind64_answers.json, blind64b_answers.json, blind64c_answers.json: three more in the same shape, in twelve more
  voices: a reasoning model's leftovers ("Okay, so AU4 -- let me recall -- ..."), wrapped output (list numbers,
  "Sentence 4:", a JSON field's name), lower-case texting with shorthand ("jaw n teeth stay closed"), asides on
  history and coding practice; measurements in mm and ms, facial-nerve and EMG talk, a children's book, live sports
  commentary; a mirror exercise, comparison with the resting face, laterality ("R12", "a one-sided AU14"), a
  forensic interviewer's micro-expressions. All three measured once on 7d7860c's and 6b62e5a's rules before any was
  read; their misses gave the rules of 9b1c542, 36008b6, 0780fd0 and f94e7c1 (see the README).

Not measured here: bench/data/once/blind64{d,e,f}_answers.json, a second batch in the same shape measured once on
c386a96 (bench/results/answers_blind64_once.json), kept out of these sets so that a later session can measure its rules
on them once more before using them for development (judged as `measure` judges a set: the rules, the gate, both).

Texts cut short: the correct texts of the sets that pass the rules whole (nine words or more), each cut after a
random word from the sixth to the last but one (`random.Random(0)`, full stop dropped), as an answer that reached
`--max-tokens` leaves its last text when the server does not say it cut it. The share passing the rules, and the
share rejected as `cut_off` (`validate.breaks_off`: the last word is one no sentence ends on).

For each set: the share passing the rules (`validate_description`), the gate (at its defaults), both (kept), and
the same with the gate judging whole texts only (`judge_clauses=False`, where the package has it). Per AU and per
style for the correct descriptions. `--package DIR` measures another checkout's augtext (an older commit: `git
worktree add /tmp/before <rev>`), with these same sets.

    python bench/bench_answers.py [--package DIR] [--out bench/results/answers.json] [--data bench/data/once]

`--data DIR` measures every `*_answers.json` of another folder instead of SETS (bench/data/once: sets kept out of the
development sets, to be measured once).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "bench" / "data"
SETS = (
    "scripted_answers",
    "heldout_answers",
    "blind_answers",
    "blind_intensity_answers",
    "blind_bp4d_answers",
    "user49_answers",
    "blind50_answers",
    "blind51_answers",
    "user51_answers",
    "blind52_answers",
    "blind53_answers",
    "blind54_answers",
    "blind55_answers",
    "blind56_answers",
    "blind59_answers",
    "blind59b_answers",
    "blind60_answers",
    "blind60b_answers",
    "blind61_answers",
    "blind61b_answers",
    "blind61c_answers",
    "blind61d_answers",
    "blind62_answers",
    "blind62b_answers",
    "blind62c_answers",
    "blind62d_answers",
    "blind62e_answers",
    "blind62f_answers",
    "blind62g_answers",
    "blind63_answers",
    "blind63b_answers",
    "blind63c_answers",
    "blind64_answers",
    "blind64b_answers",
    "blind64c_answers",
)

WRONG = ("wrong_au", "wrong_fact", "off_domain")
"""The kinds of text a set may hold besides correct ones: another AU's description under this AU, this AU's with a
wrong fact (a muscle that does not make it, the opposite movement), text that describes no facial action."""


def kept(gate, items: list[tuple[int, str]]) -> np.ndarray:
    """Whether the gate keeps each (au, text), in the order given."""
    out = np.zeros(len(items), dtype=bool)
    for au in sorted({a for a, _ in items}):
        rows = [i for i, (a, _) in enumerate(items) if a == au]
        out[rows] = [d.reason is None for d in gate.check([items[i][1] for i in rows], au)]
    return out


def answer_sets(data: Path) -> tuple[str, ...]:
    """The sets measured from `data`: SETS from bench/data, every `*_answers.json` of any other folder."""
    if data.resolve() == DATA.resolve():
        return SETS
    names = tuple(p.stem for p in sorted(data.glob("*_answers.json")))
    if not names:
        raise SystemExit(f"{data}: no *_answers.json to measure")
    return names


def measure(package: Path, data: Path = DATA) -> dict:
    sys.path.insert(0, str(package))
    from augtext.facs import FACS
    from augtext.quality import SemanticGate, default_embedder
    from augtext.reference import reference_set
    from augtext.validate import validate_description

    embedder = default_embedder()
    gates = {"gate": SemanticGate(embedder)}
    if "judge_clauses" in inspect.signature(SemanticGate).parameters:
        gates["gate_whole"] = SemanticGate(embedder, judge_clauses=False)
    sets = answer_sets(data)
    groups = {"reference_set": {"correct": [(au, t, style) for (au, style), ts in reference_set().items() for t in ts]}}
    for name in sets:
        answers = json.loads((data / f"{name}.json").read_text(encoding="utf-8"))
        groups[name] = {
            "correct": [(int(x["au"]), x["text"], x["style"]) for x in answers["correct"]],
            **{kind: [(int(x["au"]), x["text"], None) for x in answers.get(kind, [])] for kind in WRONG},
        }
    rev = subprocess.run(["git", "-C", str(package), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    result: dict = {"package": str(package), "commit": rev.stdout.strip() or None, "sets": {}}
    for name, kinds in groups.items():
        for kind, rows in kinds.items():
            if not rows:
                continue
            items = [(a, t) for a, t, _ in rows]
            rules = np.array([validate_description(t, FACS[a]) is None for a, t in items])
            entry: dict = {"sentences": len(items), "rules": float(rules.mean())}
            for gate_name, gate in gates.items():
                ok = kept(gate, items)
                entry[gate_name] = float(ok.mean())
                entry[f"kept{gate_name[4:]}"] = float((rules & ok).mean())
                if kind == "correct" and gate_name == "gate":
                    aus, styles = np.array([a for a, _ in items]), np.array([s for _, _, s in rows])
                    entry["kept_per_au"] = {f"AU{a}": float((rules & ok)[aus == a].mean()) for a in sorted(set(aus))}
                    entry["kept_per_style"] = {s: float((rules & ok)[styles == s].mean()) for s in sorted(set(styles))}
            result["sets"][f"{name}:{kind}"] = entry
    result["cut_short"] = cut_short([(a, t) for name in sets for a, t, _ in groups[name]["correct"]], FACS)
    return result


def cut_short(items: list[tuple[int, str]], facs: dict, seed: int = 0) -> dict:
    """The texts of `items` the rules pass, nine words or more, each cut after a random word from the sixth to the last
    but one (no full stop): how many the rules still pass, and how many they reject as unfinished (`cut_off`)."""
    from augtext.validate import validate_description

    rng, verdicts = random.Random(seed), []
    for au, text in items:
        words = text.split()
        if len(words) < 9 or validate_description(text, facs[au]) is not None:
            continue
        cut = " ".join(words[: rng.randint(6, len(words) - 1)]).rstrip(".,;:")
        verdicts.append(validate_description(cut, facs[au]))
    n = max(len(verdicts), 1)
    return {
        "texts": len(verdicts),
        "seed": seed,
        "cut_pass_rules": sum(v is None for v in verdicts) / n,
        "cut_off": sum(v == "cut_off" for v in verdicts) / n,
    }


def report(r: dict) -> str:
    lines = [
        f"augtext of {r['commit'] or r['package']}",
        "",
        "| sentences | n | pass the rules | the gate | kept (both) | kept, gate on whole texts only |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, e in r["sets"].items():
        whole = f"{e['kept_whole']:.3f}" if "kept_whole" in e else "—"
        lines.append(f"| {name} | {e['sentences']} | {e['rules']:.3f} | {e['gate']:.3f} | {e['kept']:.3f} | {whole} |")
    for name, e in r["sets"].items():
        if "kept_per_au" in e and not name.startswith("reference"):
            low = {k: v for k, v in e["kept_per_au"].items() if v < 0.8}
            lines.append(
                f"{name}: kept per style "
                + ", ".join(f"{k} {v:.2f}" for k, v in e["kept_per_style"].items())
                + "; AUs under 0.80: "
                + (", ".join(f"{k} {v:.2f}" for k, v in low.items()) or "none")
            )
    if c := r.get("cut_short"):
        lines.append(
            f"cut short ({c['texts']} correct texts the rules pass, nine words or more, cut after a random word): "
            f"pass the rules {c['cut_pass_rules']:.3f}, rejected as cut_off {c['cut_off']:.3f}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", type=Path, default=REPO, help="a checkout whose augtext is measured (default: this)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "answers.json")
    ap.add_argument(
        "--data", type=Path, default=DATA, help="measure every *_answers.json of this folder instead (bench/data/once)"
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = measure(args.package.resolve(), args.data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    text = report(result)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
