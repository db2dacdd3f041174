"""The rebuilding of `descriptions.parquet`, `rejected.parquet` and `rejections.json` from the whole request log.

Owns the descriptions table's layout (`DESCRIPTIONS_SCHEMA`) and the walk that turns one pair's logged answers into
kept texts (parse, rule checks, the semantic gate, de-duplication, the cap): `walk_pair`, used by the generation
rounds to plan and by `rebuild` to write the rows of every source in the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute, used by rebuild)

from augtext.errors import UserError
from augtext.facs import FACS
from augtext.io import atomic_path, atomic_write
from augtext.quality import SemanticGate
from augtext.reference import reference_texts
from augtext.requestlog import RequestLog
from augtext.templates import render_messages
from augtext.validate import (
    DUPLICATE,
    NearDuplicateFilter,
    ParseError,
    ends_at_cut,
    parse_response,
    validate_description,
)

DESCRIPTIONS_NAME = "descriptions.parquet"
REJECTIONS_NAME = "rejections.json"
REJECTED_NAME = "rejected.parquet"
GATE_DIR = "gate"  # the semantic gate's prototype vectors, kept between runs (derived; safe to delete)
# One row per kept description, with its provenance (docs/INTERFACES.md "augtext cache layout").
DESCRIPTIONS_SCHEMA = pa.schema(
    [
        ("au", pa.int16()),
        ("text", pa.string()),
        ("text_sha256", pa.string()),
        ("style", pa.string()),
        ("template_sha256", pa.string()),
        ("backend", pa.string()),
        ("model", pa.string()),
        ("params", pa.string()),
        ("seed", pa.int64()),
        ("sample_idx", pa.int32()),
        ("request_key", pa.string()),
        ("created_utc", pa.string()),
        ("prompt_tokens", pa.int32()),
        ("completion_tokens", pa.int32()),
        ("latency_s", pa.float32()),
    ]
)

# One row per text (or whole answer) that was not kept, and why: what `rejections.json` counts, to read.
REJECTED_SCHEMA = pa.schema(
    [
        ("au", pa.int16()),
        ("style", pa.string()),
        ("backend", pa.string()),
        ("model", pa.string()),
        ("request_key", pa.string()),
        ("reason", pa.string()),  # validate.REJECTION_REASONS
        ("text", pa.string()),  # the description, or the whole answer (up to ANSWER_CHARS) when none was read in it
        ("similarity", pa.float32()),  # to its own AU, for the gate's reasons (GATE_REASONS); else null
        ("rival", pa.int16()),  # for `lookalike`: the AU the gate's discriminator read the text as; else null
    ]
)
ANSWER_CHARS = 2000
ADDED_COLUMNS = frozenset({"rival"})
"""Columns added to the tables above after caches were written: a cache's table without them is read with them null."""

Source = tuple[int, str, str, str]  # (au, style, backend, model): the rows of one pair from one model in the cache


# -- parsing the log into descriptions --------------------------------------------------------------------------------


@dataclass
class PairResult:
    kept: list[tuple[dict[str, Any], int, str]] = field(default_factory=list)  # (entry, position, text)
    # (key, reason, text, similarity, rival): the columns of rejected.parquet
    rejected: list[tuple[str, str, str, float | None, int | None]] = field(default_factory=list)
    answered: int = 0
    surplus: int = 0  # valid texts beyond the cap
    keys: frozenset[str] = frozenset()  # the answers it was computed from
    cap: int | None = None

    @property
    def rejections(self) -> Counter:
        """How many of the rejected texts each reason dropped (in the order the reasons first occur)."""
        return Counter(row[1] for row in self.rejected)


def walk_pair(
    entries: list[dict[str, Any]],
    au: int,
    cap: int | None = None,
    lenient: bool | None = None,
    gate: SemanticGate | None = None,
) -> PairResult:
    """Parse, validate and de-duplicate one (AU, style) pair's answers in a fixed order: sample index, key, position.

    The same answers always give the same kept texts, so planning and the final table agree. `lenient` is passed
    to `parse_response`; None means lenient for answers of the hf backend (small local models) only. `gate` drops
    texts that passed the rule checks but are not about `au` (GATE_REASONS). LLM texts that copy one of the
    project's reference descriptions of the pair (e.g. a few-shot example) or the answer the prompt shows as its
    format example (`prompt_answers`: an LLM that echoes its prompt) count as duplicates. An answer logged as cut at
    its token limit (`"cut": true`) keeps the complete strings of the JSON it breaks off, and the text it breaks off in
    is rejected as cut_off.
    """
    result = PairResult(keys=frozenset(e["key"] for e in entries), cap=cap)
    unit = FACS[au]

    def reject(
        entry: dict[str, Any], reason: str, text: str, similarity: float | None = None, rival: int | None = None
    ) -> None:
        result.rejected.append((entry["key"], reason, text, similarity, rival))

    candidates: list[tuple[dict[str, Any], int, str]] = []
    for entry in sorted(entries, key=lambda e: (e["sample_idx"], e["key"])):
        result.answered += 1
        cut = bool(entry.get("cut"))
        try:
            texts = parse_response(
                entry["text"], lenient=entry["backend"] == "hf" if lenient is None else lenient, cut=cut
            )
        except ParseError as exc:  # a whole answer without descriptions; a plain refusal is counted as such
            refused = validate_description(entry["text"] or "", unit) == "refusal"
            reject(entry, "refusal" if refused else exc.reason, (entry["text"] or "")[:ANSWER_CHARS])
            continue
        for pos, text in enumerate(texts):
            at_cut = cut and pos == len(texts) - 1 and ends_at_cut(entry["text"], text)
            reason = "cut_off" if at_cut else validate_description(text, unit)
            if reason is not None:
                reject(entry, reason, text)
            else:
                candidates.append((entry, pos, text))
    decisions = gate.check([c[2] for c in candidates], au) if gate is not None and candidates else []
    seen: dict[str, NearDuplicateFilter] = {}
    for i, (entry, pos, text) in enumerate(candidates):
        if decisions and decisions[i].reason is not None:
            reject(entry, decisions[i].reason, text, decisions[i].similarity, decisions[i].rival)
            continue
        style = str(entry["style"])
        if style not in seen:
            copies = (
                (*reference_texts(au, style), *prompt_answers(au, style)) if entry["backend"] != "reference" else ()
            )
            seen[style] = NearDuplicateFilter(copies)
        if seen[style].is_duplicate(text):
            reject(entry, DUPLICATE, text)
        elif cap is not None and len(result.kept) >= cap:
            result.surplus += 1
        else:
            seen[style].add(text)
            result.kept.append((entry, pos, text))
    return result


@functools.cache
def prompt_answers(au: int, style: str) -> tuple[str, ...]:
    """The descriptions that the package's prompt for (`au`, `style`) itself shows as an answer: its format example
    (`["When AU12 (Lip Corner Puller) shows, the mouth takes the shape of a smile."]`). An LLM that echoes its
    prompt answers with exactly these; () for a style the package does not have."""
    try:
        messages, _ = render_messages(style, au, 1)
        return tuple(parse_response(messages[-1]["content"]))
    except (UserError, ParseError):
        return ()


def _source_entries(log: RequestLog) -> dict[Source, list[dict[str, Any]]]:
    groups: dict[Source, list[dict[str, Any]]] = defaultdict(list)
    for entry in log.entries.values():
        groups[(int(entry["au"]), str(entry["style"]), str(entry["backend"]), str(entry["model"]))].append(entry)
    return groups


def _answers_sha(entries: list[dict[str, Any]]) -> str:
    """Identifies the answers a source's rows were computed from."""
    return hashlib.sha256("\n".join(sorted(e["key"] for e in entries)).encode()).hexdigest()


def _previous(cache: Path) -> tuple[dict[Source, dict[str, Any]], pa.Table | None]:
    """The per-source records of the last rejections.json and the last descriptions table (empty/None if unusable)."""
    try:
        report = json.loads((cache / REJECTIONS_NAME).read_text(encoding="utf-8"))
        records = {(int(p["au"]), str(p["style"]), str(p["backend"]), str(p["model"])): p for p in report["pairs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}, None
    return records, _read_table(cache / DESCRIPTIONS_NAME, DESCRIPTIONS_SCHEMA)


def _read_table(path: Path, schema: pa.Schema) -> pa.Table | None:
    """The table at `path` if it reads with exactly `schema`, or with `schema` less some of ADDED_COLUMNS (a cache
    written before them: those columns come back null), else None."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException):
        return None
    missing = [f for f in schema if f.name not in table.schema.names]
    if not table.schema.equals(pa.schema([f for f in schema if f not in missing])):
        return None
    if any(f.name not in ADDED_COLUMNS for f in missing):
        return None
    for f in missing:
        table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table.select(schema.names)


def _of_source(table: pa.Table, source: Source) -> pa.Table:
    """The rows of `table` (au, style, backend and model columns) that belong to `source`."""
    pc = pa.compute
    au, style, backend, model = source
    mask = pc.and_(
        pc.and_(pc.equal(table["au"], au), pc.equal(table["style"], style)),
        pc.and_(pc.equal(table["backend"], backend), pc.equal(table["model"], model)),
    )
    return table.filter(mask)


def _rejected_table(source: Source, res: PairResult) -> pa.Table:
    columns = list(zip(*res.rejected, strict=True)) or [[]] * 5
    n = len(res.rejected)
    values = {
        "au": [source[0]] * n,
        "style": [source[1]] * n,
        "backend": [source[2]] * n,
        "model": [source[3]] * n,
        "request_key": columns[0],
        "reason": columns[1],
        "text": columns[2],
        "similarity": columns[3],
        "rival": columns[4],
    }
    return pa.table({f.name: pa.array(values[f.name], type=f.type) for f in REJECTED_SCHEMA}, schema=REJECTED_SCHEMA)


def _rows_table(source: Source, res: PairResult) -> pa.Table:
    au, style = source[0], source[1]
    rows: dict[str, list[Any]] = defaultdict(list)
    for entry, _pos, text in res.kept:
        rows["au"].append(au)
        rows["text"].append(text)
        rows["text_sha256"].append(hashlib.sha256(text.encode("utf-8")).hexdigest())
        rows["style"].append(style)
        rows["template_sha256"].append(entry["template_sha256"])
        rows["backend"].append(entry["backend"])
        rows["model"].append(entry["model"])
        rows["params"].append(json.dumps(entry["params"], sort_keys=True))
        rows["seed"].append(int(entry["seed"]))
        rows["sample_idx"].append(int(entry["sample_idx"]))
        rows["request_key"].append(entry["key"])
        rows["created_utc"].append(entry["created_utc"])
        rows["prompt_tokens"].append(int(entry.get("prompt_tokens") or 0))
        rows["completion_tokens"].append(int(entry.get("completion_tokens") or 0))
        rows["latency_s"].append(float(entry.get("latency_s") or 0.0))
    return pa.table(
        {f.name: pa.array(rows.get(f.name, []), type=f.type) for f in DESCRIPTIONS_SCHEMA}, schema=DESCRIPTIONS_SCHEMA
    )


def rebuild(
    cache: Path,
    log: RequestLog,
    caps: dict[Source, int],
    known: dict[Source, PairResult] | None = None,
    lenient: bool | None = None,
    gate: SemanticGate | None = None,
) -> tuple[int, dict[Source, PairResult]]:
    """Rewrite descriptions.parquet, rejected.parquet and rejections.json from the whole log; returns the number of
    rows and what this run's sources hold (walked over all their logged answers: a rerun with fewer rounds than the
    run that logged them still counts every answer, as the table does).

    The rows of one source (a pair from one backend and model) are a function of its answers, its cap and whether
    the gate judged them. This run's sources (`caps`; `known`: already walked by it) are walked with this run's
    settings. Every other source keeps exactly the rows it had: carried over from the last table when its answers
    are unchanged, else walked with the cap and gate recorded in rejections.json (so a run never changes the rows
    of pairs it was not asked about).
    """
    import pyarrow.parquet as pq

    known = known or {}
    judge = gate
    records, old_table = _previous(cache)
    old_rejected = _read_table(cache / REJECTED_NAME, REJECTED_SCHEMA)  # None: a cache from before the file
    tables: list[pa.Table] = []
    rejected: list[pa.Table] = []
    pairs: list[dict[str, Any]] = []
    totals: Counter = Counter()
    results: dict[Source, PairResult] = {}
    for g, es in sorted(_source_entries(log).items()):
        if g[0] not in FACS:
            continue
        answers = _answers_sha(es)
        previous = records.get(g)
        if g not in caps and previous is not None and previous.get("answers") == answers and old_table is not None:
            tables.append(_of_source(old_table, g))
            if old_rejected is not None:
                rejected.append(_of_source(old_rejected, g))
            pairs.append(previous)
            totals.update(previous.get("rejected", {}))
            continue
        cap = caps[g] if g in caps else (previous or {}).get("cap")
        gated = gate is not None if g in caps else bool((previous or {}).get("gate", gate is not None))
        if gated and judge is None:  # a source gated before, re-walked by a run with --no-gate
            judge = SemanticGate(store=cache / GATE_DIR)
        res = known.get(g)
        if res is None or res.cap != cap or res.keys != frozenset(e["key"] for e in es):
            res = walk_pair(es, g[0], cap, lenient, judge if gated else None)
        if g in caps:
            results[g] = res
        tables.append(_rows_table(g, res))
        rejected.append(_rejected_table(g, res))
        pairs.append(
            {
                "au": g[0],
                "style": g[1],
                "backend": g[2],
                "model": g[3],
                "cap": res.cap,
                "gate": gated,
                "answers": answers,
                "answered": res.answered,
                "kept": len(res.kept),
                "surplus": res.surplus,
                "rejected": dict(sorted(res.rejections.items())),
            }
        )
        totals.update(res.rejections)
    table = pa.concat_tables(tables) if tables else DESCRIPTIONS_SCHEMA.empty_table()
    with atomic_path(cache / DESCRIPTIONS_NAME) as tmp:
        pq.write_table(table, tmp)
    with atomic_path(cache / REJECTED_NAME) as tmp:
        pq.write_table(pa.concat_tables(rejected) if rejected else REJECTED_SCHEMA.empty_table(), tmp)
    report = {"version": 1, "pairs": pairs, "rejected_total": dict(sorted(totals.items()))}
    with atomic_write(cache / REJECTIONS_NAME, "w") as fh:
        json.dump(report, fh, indent=1)
    return table.num_rows, results
