"""`augtext generate`: ask an LLM for many valid, diverse descriptions of each AU, cached request by request.

How a run works, per (AU, style) pair, all pairs at once under one concurrency limit:
1. The style's template is rendered for the AU (asking for `per_request` descriptions per answer).
2. Rounds: the answers for sample indices [0, cursor) are parsed, validated and de-duplicated in sample order; if
   fewer than `n` are kept, the next round asks for enough new sample indices to close the gap (estimated from the
   pair's yield so far), up to `max_rounds` rounds. Answers already in the log are reused, never re-sent, whatever
   their text; a failed request (retries exhausted) is not logged, so a rerun asks it again.
3. Every answer is appended to `cache/requests.jsonl` at once (flush + fsync), keyed by a hash of everything that
   determines it: template source, rendered messages, backend, model, sampling parameters, sample index and seed.
   Parsing is not in the key: `descriptions.parquet` is rebuilt from the whole log every run.

Because the plan of each round depends only on the answers to earlier rounds (never on timing), a run killed at any
point and rerun ends with exactly the rows of an uninterrupted run (given a backend that answers deterministically).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute, used by rebuild)

from augtext.backends import Backend, RequestFailed, RequestSpec
from augtext.errors import UserError
from augtext.facs import FACS, au_label
from augtext.io import atomic_path, atomic_write, remove_stale_temps, utc_now
from augtext.quality import SemanticGate
from augtext.reference import few_shot_examples, reference_texts
from augtext.templates import available_styles, render_messages
from augtext.validate import DUPLICATE, NearDuplicateFilter, ParseError, parse_response, validate_description

LOG_NAME = "requests.jsonl"
DESCRIPTIONS_NAME = "descriptions.parquet"
REJECTIONS_NAME = "rejections.json"
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
DEFAULT_PER_REQUEST = 5

Pair = tuple[int, str]  # (au, style): what a run is asked for
Source = tuple[int, str, str, str]  # (au, style, backend, model): the rows of one pair from one model in the cache


@dataclass(frozen=True)
class GenerateConfig:
    aus: tuple[int, ...]
    styles: tuple[str, ...]
    cache: Path
    n: int = 8
    per_request: int = DEFAULT_PER_REQUEST  # descriptions asked for in one prompt (at most n)
    concurrency: int = 8
    seed: int = 0
    max_rounds: int = 4
    temperature: float = 0.9
    max_tokens: int = 400
    prompts: Path | None = None
    progress: bool = True  # a live bar when stderr is a terminal, else a plain line every 30 s
    lenient: bool | None = None  # salvage texts from non-JSON answers; None: for hf answers only (small models)
    few_shot: int = 0  # reference descriptions shown in each prompt as examples
    gate: bool = True  # the semantic gate (augtext.quality.SemanticGate) after the rule checks

    def __post_init__(self) -> None:
        for option, value, low in (
            ("--n", self.n, 1),
            ("--per-request", self.per_request, 1),
            ("--concurrency", self.concurrency, 1),
            ("--max-rounds", self.max_rounds, 1),
            ("--max-tokens", self.max_tokens, 1),
            ("--few-shot", self.few_shot, 0),
        ):
            if value < low:
                raise UserError(f"{option} must be at least {low} (got {value})")

    @property
    def params(self) -> dict[str, Any]:
        """The sampling parameters that go into the request key and the rows' `params` column."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}


@dataclass
class GenerateReport:
    requests: int = 0  # requests the plan needed
    cached: int = 0  # of those, answered by the log
    sent: int = 0  # sent to the backend and answered
    failed: int = 0  # gave up after retries
    retries: int = 0
    kept: dict[Pair, int] = field(default_factory=dict)
    rejections: Counter = field(default_factory=Counter)
    shortfalls: list[tuple[int, str, int]] = field(default_factory=list)  # (au, style, kept) below n
    failures: list[str] = field(default_factory=list)  # one message per failed request (first few are shown)
    rows: int = 0  # rows in descriptions.parquet (whole log)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.shortfalls


# -- keys and seeds -------------------------------------------------------------------------------------------------


def _sha256_json(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def sample_seed(base_seed: int, au: int, style: str, sample_idx: int) -> int:
    """The per-request seed derived from the run's base seed (31 bits, accepted by every server)."""
    digest = hashlib.sha256(f"{base_seed}:{au}:{style}:{sample_idx}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def request_key(
    template_sha256: str,
    messages: list[dict[str, str]],
    backend: str,
    model: str,
    params: dict[str, Any],
    sample_idx: int,
    seed: int,
) -> str:
    """sha256 of everything that determines an answer (never the API key, the server URL or the parsing)."""
    return _sha256_json(
        {
            "template_sha256": template_sha256,
            "messages": messages,
            "backend": backend,
            "model": model,
            "params": params,
            "sample_idx": sample_idx,
            "seed": seed,
        }
    )


# -- the request log ------------------------------------------------------------------------------------------------


class RequestLog:
    """Append-only JSONL of answered requests. Loading ignores (and cuts off) a last line truncated by a kill."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.skipped = 0  # corrupt lines other than a truncated tail
        self.truncated = False  # the last line was cut short (and is dropped)
        self._fh = None
        self._written = self._synced = 0  # appends handed to sync() / covered by a finished fsync
        self._inflight: asyncio.Future | None = None
        if path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        end = len(data)
        if data and not data.endswith(b"\n"):
            end = data.rfind(b"\n") + 1  # a line cut short by a kill: drop it (its request is asked again)
            self.truncated = True
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                os.fsync(fh.fileno())
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                key = entry["key"]
                if not isinstance(entry["text"], str):  # e.g. a list or null logged by an older version: ask again
                    raise TypeError("text")
            except (ValueError, KeyError, TypeError):
                self.skipped += 1
                continue
            self.entries.setdefault(key, entry)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def append(self, entry: dict[str, Any]) -> int:
        """Write one line and flush it to the OS (a kill -9 after this loses nothing); returns the fd to fsync."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab")
        self._fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True).encode() + b"\n")
        self._fh.flush()
        self.entries.setdefault(entry["key"], entry)
        return self._fh.fileno()

    async def sync(self, fd: int) -> None:
        """Return once an fsync begun after the latest append has finished. Group commit: appends made while an
        fsync runs in its worker thread share the next one, so 32 answers at once do not queue 32 fsyncs."""
        self._written += 1
        target = self._written
        while self._synced < target:
            if self._inflight is None or self._inflight.done():
                self._inflight = asyncio.ensure_future(self._fsync(fd, self._written))
            await asyncio.shield(self._inflight)

    async def _fsync(self, fd: int, upto: int) -> None:
        await asyncio.to_thread(os.fsync, fd)
        self._synced = max(self._synced, upto)

    def close(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


# -- parsing the log into descriptions --------------------------------------------------------------------------------


@dataclass
class PairResult:
    kept: list[tuple[dict[str, Any], int, str]] = field(default_factory=list)  # (entry, position, text)
    rejections: Counter = field(default_factory=Counter)
    answered: int = 0
    surplus: int = 0  # valid texts beyond the cap
    keys: frozenset[str] = frozenset()  # the answers it was computed from
    cap: int | None = None


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
    texts that passed the rule checks but are not about `au` (far_from_au, other_au). LLM texts that copy one of the
    project's reference descriptions of the pair (e.g. a few-shot example) or the answer the prompt shows as its
    format example (`prompt_answers`: an LLM that echoes its prompt) count as duplicates.
    """
    result = PairResult(keys=frozenset(e["key"] for e in entries), cap=cap)
    unit = FACS[au]
    candidates: list[tuple[dict[str, Any], int, str]] = []
    for entry in sorted(entries, key=lambda e: (e["sample_idx"], e["key"])):
        result.answered += 1
        try:
            texts = parse_response(entry["text"], lenient=entry["backend"] == "hf" if lenient is None else lenient)
        except ParseError as exc:  # a whole answer without descriptions; a plain refusal is counted as such
            refused = validate_description(entry["text"] or "", unit) == "refusal"
            result.rejections["refusal" if refused else exc.reason] += 1
            continue
        for pos, text in enumerate(texts):
            reason = validate_description(text, unit)
            if reason is not None:
                result.rejections[reason] += 1
            else:
                candidates.append((entry, pos, text))
    decisions = gate.check([c[2] for c in candidates], au) if gate is not None and candidates else []
    seen: dict[str, NearDuplicateFilter] = {}
    for i, (entry, pos, text) in enumerate(candidates):
        if decisions and decisions[i].reason is not None:
            result.rejections[decisions[i].reason] += 1
            continue
        style = str(entry["style"])
        if style not in seen:
            copies = (
                (*reference_texts(au, style), *prompt_answers(au, style)) if entry["backend"] != "reference" else ()
            )
            seen[style] = NearDuplicateFilter(copies)
        if seen[style].is_duplicate(text):
            result.rejections[DUPLICATE] += 1
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
    import pyarrow.parquet as pq

    try:
        report = json.loads((cache / REJECTIONS_NAME).read_text(encoding="utf-8"))
        records = {(int(p["au"]), str(p["style"]), str(p["backend"]), str(p["model"])): p for p in report["pairs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}, None
    try:
        table = pq.read_table(cache / DESCRIPTIONS_NAME)
        table = table if table.schema.equals(DESCRIPTIONS_SCHEMA) else None
    except (OSError, pa.ArrowException):
        table = None
    return records, table


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
) -> int:
    """Rewrite descriptions.parquet and rejections.json from the whole log; returns the number of rows.

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
    tables: list[pa.Table] = []
    pairs: list[dict[str, Any]] = []
    totals: Counter = Counter()
    for g, es in sorted(_source_entries(log).items()):
        if g[0] not in FACS:
            continue
        answers = _answers_sha(es)
        previous = records.get(g)
        if g not in caps and previous is not None and previous.get("answers") == answers and old_table is not None:
            mask = pa.compute.and_(
                pa.compute.and_(pa.compute.equal(old_table["au"], g[0]), pa.compute.equal(old_table["style"], g[1])),
                pa.compute.and_(
                    pa.compute.equal(old_table["backend"], g[2]), pa.compute.equal(old_table["model"], g[3])
                ),
            )
            tables.append(old_table.filter(mask))
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
        tables.append(_rows_table(g, res))
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
    report = {"version": 1, "pairs": pairs, "rejected_total": dict(sorted(totals.items()))}
    with atomic_write(cache / REJECTIONS_NAME, "w") as fh:
        json.dump(report, fh, indent=1)
    return table.num_rows


# -- the engine ------------------------------------------------------------------------------------------------------


class _Progress:
    """Rich progress on stderr (requests done/total, kept, retries, failures, ETA), or nothing when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.bar = None
        self.plain = False  # not a terminal (a log file, CI): a plain line every PLAIN_EVERY_S instead of a live bar
        # The first plain line comes PLAIN_EVERY_S after the start, once many pairs have planned their requests (at
        # once it would always read "0/2 requests": the first pair's plan only); the summary closes the run.
        self.last_line = time.monotonic()
        self.last = ""  # the latest plain line, printed at the end
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            console = Console(stderr=True)
            self.plain = not console.is_terminal
            if self.plain:
                return
            self.bar = Progress(
                TextColumn("generate"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("kept {task.fields[kept]} · retries {task.fields[retries]} · failed {task.fields[failed]}"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self.task = self.bar.add_task("requests", total=0, kept=0, retries=0, failed=0)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
        if self.plain and self.last and exc[0] is None:
            print(self.last, file=sys.stderr, flush=True)  # the final state, whatever the time since the last line

    PLAIN_EVERY_S = 30.0

    def update(self, report: GenerateReport, kept: int) -> None:
        if self.plain:
            self.last = (
                f"generate: {report.cached + report.sent + report.failed}/{report.requests} requests, "
                f"kept {kept}, retries {report.retries}, failed {report.failed}"
            )
            if time.monotonic() - self.last_line >= self.PLAIN_EVERY_S:
                self.last_line = time.monotonic()
                print(self.last, file=sys.stderr, flush=True)
        if self.bar is not None:
            self.bar.update(
                self.task,
                total=report.requests,
                completed=report.cached + report.sent + report.failed,
                kept=kept,
                retries=report.retries,
                failed=report.failed,
            )


def _per_request(config: GenerateConfig) -> int:
    return max(1, min(config.per_request, config.n))


def plan_round(kept: int, answered: int, n: int, per_request: int) -> int:
    """How many new sample indices the next round of a pair asks for: enough to close the gap to `n` at the pair's
    yield so far (kept texts per answer; optimistic, `per_request`, before the first answer), bounded so that a pair
    whose answers are all rejected does not ask for hundreds at once. 0 when the pair has `n`."""
    deficit = n - kept
    if deficit <= 0:
        return 0
    rate = kept / answered if answered else per_request
    return min(math.ceil(deficit / max(rate, 0.5)), 4 * math.ceil(n / per_request) + 4)


@dataclass
class _PairRequests:
    """One pair's rendered prompt and the keys and seeds of its sample indices (computed once each)."""

    au: int
    style: str
    messages: list[dict[str, str]]
    template_sha256: str
    backend: Backend
    config: GenerateConfig
    _keys: dict[int, tuple[str, int]] = field(default_factory=dict)

    def key(self, idx: int) -> tuple[str, int]:
        """(request key, seed) of sample `idx`."""
        if idx not in self._keys:
            seed = sample_seed(self.config.seed, self.au, self.style, idx)
            self._keys[idx] = (
                request_key(
                    self.template_sha256,
                    self.messages,
                    self.backend.name,
                    self.backend.model,
                    self.config.params,
                    idx,
                    seed,
                ),
                seed,
            )
        return self._keys[idx]


class _Session:
    """One run's shared state: the backend, the log, the report, the progress, the limits; `run` drives every pair.

    Requests go out under one concurrency limit; each pair's answers are walked (parse, rules, gate) in a single
    worker thread, so the gate's encoding never stalls the event loop while other answers arrive.
    """

    def __init__(
        self,
        config: GenerateConfig,
        backend: Backend,
        log: RequestLog,
        report: GenerateReport,
        progress: _Progress,
        gate: SemanticGate | None,
    ) -> None:
        self.config, self.backend, self.log, self.report, self.progress, self.gate = (
            config,
            backend,
            log,
            report,
            progress,
            gate,
        )
        self.per_request = _per_request(config)
        self.requests = asyncio.Semaphore(config.concurrency)
        # Pairs start as slots free up: started all at once, every pair would render its prompt before the first
        # request could go out (their request tasks queue behind all of them).
        self.pair_slots = asyncio.Semaphore(2 * config.concurrency)
        self.walker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="walk")  # the encoder runs serially
        self.kept_now: dict[Pair, int] = {}
        self.finals: dict[Pair, PairResult] = {}

    def _update(self) -> None:
        self.report.retries = self.backend.retries
        self.progress.update(self.report, sum(self.kept_now.values()))

    async def run(self) -> dict[Pair, PairResult]:
        try:
            await asyncio.gather(
                *(self._pair_in_slot(au, style) for au in self.config.aus for style in self.config.styles)
            )
        finally:
            self.walker.shutdown(wait=True, cancel_futures=True)
        return self.finals

    async def _pair_in_slot(self, au: int, style: str) -> None:
        async with self.pair_slots:
            await self._pair(au, style)

    async def _pair(self, au: int, style: str) -> None:
        config, log, report = self.config, self.log, self.report
        messages, tsha = render_messages(
            style, au, self.per_request, config.prompts, examples=few_shot_examples(au, style, config.few_shot)
        )
        pair = _PairRequests(au, style, messages, tsha, self.backend, config)
        cursor = 0
        result = PairResult()
        for _round in range(config.max_rounds):
            count = plan_round(len(result.kept), result.answered, config.n, self.per_request)
            if count == 0:
                break
            idxs = list(range(cursor, cursor + count))
            cursor += count
            report.requests += count
            todo = []
            for idx in idxs:
                key, seed = pair.key(idx)
                if key in log:
                    report.cached += 1
                else:
                    todo.append((idx, key, seed))
            self._update()
            step = max(1, self.backend.max_samples_per_call)
            calls = [todo[i : i + step] for i in range(0, len(todo), step)]
            oks = await asyncio.gather(*(self._ask(pair, c) for c in calls))
            entries = [log.entries[k] for k in (pair.key(i)[0] for i in range(cursor)) if k in log]
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self.walker, walk_pair, entries, au, config.n, config.lenient, self.gate
            )
            self.kept_now[(au, style)] = len(result.kept)
            self._update()
            if calls and not any(oks):
                break  # every request of the round failed: the server is down or refuses us; stop asking
        self.finals[(au, style)] = result

    async def _ask(self, pair: _PairRequests, call: list[tuple[int, str, int]]) -> bool:
        """One backend call for the given (sample index, key, seed)s; logs each answer. False if it failed."""
        idxs, keys, seeds = [c[0] for c in call], [c[1] for c in call], [c[2] for c in call]
        config, backend = self.config, self.backend
        async with self.requests:
            try:
                completions = await backend.complete(
                    pair.messages,
                    n_samples=len(idxs),
                    seed=seeds[0],
                    temperature=config.temperature,
                    max_tokens=config.max_tokens,
                    request=RequestSpec(pair.au, pair.style, idxs[0], self.per_request),
                )
            except RequestFailed as exc:
                self.report.failed += len(idxs)
                self.report.failures.append(f"{au_label(pair.au)}/{pair.style} sample {idxs[0]}: {exc}")
                self._update()
                return False
        fd = None
        for j, (idx, key, seed, comp) in enumerate(zip(idxs, keys, seeds, completions, strict=False)):
            entry = {
                "key": key,
                "au": pair.au,
                "style": pair.style,
                "text": comp.text,
                "prompt_tokens": comp.prompt_tokens,
                "completion_tokens": comp.completion_tokens,
                "latency_s": round(comp.latency_s, 6),
                "created_utc": utc_now(),
                "backend": backend.name,
                "model": backend.model,
                "params": config.params,
                "seed": seed,
                "sample_idx": idx,
                "template_sha256": pair.template_sha256,
            }
            if len(idxs) > 1:  # several samples from one seeded call: record how to reproduce them
                entry["call"] = {"seed": seeds[0], "n_samples": len(idxs), "position": j}
            fd = self.log.append(entry)
        if fd is not None:
            await self.log.sync(fd)
        self.report.sent += len(idxs)
        self._update()
        return True


def generate(config: GenerateConfig, backend: Backend) -> GenerateReport:
    """Run the generation for `config` with `backend`; write the log, descriptions.parquet and rejections.json."""
    t0 = time.perf_counter()
    check_writable(config.cache)  # before any request: an answer that cannot be logged is lost
    for name in (DESCRIPTIONS_NAME, REJECTIONS_NAME):
        remove_stale_temps(config.cache / name)
    log = RequestLog(config.cache / LOG_NAME)
    if log.skipped:
        print(f"warning: skipped {log.skipped} unreadable line(s) in {log.path}", file=sys.stderr)
    if log.truncated:
        print(
            f"warning: the last line of {log.path} was cut short (a run killed while writing it); "
            "its request is asked again",
            file=sys.stderr,
        )
    report = GenerateReport()

    # Each style once up front, so that a broken template stops the run before anything is sent; the other prompts
    # are rendered as their pairs start, overlapping with requests in flight.
    for style in config.styles:
        render_messages(style, config.aus[0], _per_request(config), config.prompts)
    gate = SemanticGate(store=config.cache / GATE_DIR) if config.gate else None
    if gate is not None:
        gate.warm_up()  # the embedding model loads while the first requests are in flight

    async def main() -> dict[Pair, PairResult]:
        try:
            with _Progress(config.progress) as progress:
                return await _Session(config, backend, log, report, progress, gate).run()
        finally:
            await backend.aclose()

    try:
        finals = asyncio.run(main())
    finally:
        log.close()
    source = (backend.name, backend.model)
    caps = {(au, style, *source): config.n for au in config.aus for style in config.styles}
    known = {(au, style, *source): res for (au, style), res in finals.items()}
    report.rows = rebuild(config.cache, log, caps, known, config.lenient, gate)
    for (au, style), res in sorted(finals.items()):
        report.kept[(au, style)] = len(res.kept)
        report.rejections.update(res.rejections)
        if len(res.kept) < config.n:
            report.shortfalls.append((au, style, len(res.kept)))
    report.elapsed_s = time.perf_counter() - t0
    return report


def check_writable(cache: Path) -> None:
    """UserError unless `cache` is (or can be made) a folder in which files can be created and the log appended."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache):
            pass
        log = cache / LOG_NAME
        if log.exists():
            with open(log, "ab"):
                pass
    except FileExistsError:
        raise UserError(f"--cache {cache} is a file, not a folder; pass a folder (it is created if missing)") from None
    except OSError as exc:
        raise UserError(
            f"cannot write to the cache folder {cache} ({exc.strerror or exc}); pass a writable --cache"
        ) from None


def resolve_styles(styles: str | None, prompts: Path | None) -> tuple[str, ...]:
    known = available_styles(prompts)
    if not styles:
        return tuple(known)
    wanted = tuple(dict.fromkeys(s.strip() for s in styles.split(",") if s.strip()))
    unknown = [s for s in wanted if s not in known]
    if unknown or not wanted:
        raise UserError(
            f"unknown description style(s) {', '.join(unknown) or repr(styles)}; "
            f"available: {', '.join(known)} (see `augtext templates`)"
        )
    return wanted


def format_summary(report: GenerateReport, config: GenerateConfig) -> str:
    kept = sum(report.kept.values())
    lines = [
        f"requests: {report.requests} planned, {report.cached} from cache, {report.sent} sent, "
        f"{report.failed} failed, {report.retries} retries ({report.elapsed_s:.1f} s)",
        f"kept {kept} descriptions for {len(report.kept)} AU/style pairs (target {config.n} each); "
        f"{report.rows} rows in {config.cache / DESCRIPTIONS_NAME}",
    ]
    if report.rejections:
        lines.append("rejected: " + ", ".join(f"{r} {c}" for r, c in report.rejections.most_common()))
    if report.failures:  # not logged, so the next run asks them again
        more = f" (and {len(report.failures) - 3} more)" if len(report.failures) > 3 else ""
        lines.append("failed requests: " + "; ".join(report.failures[:3]) + more)
    return "\n".join(lines)


def shortfall_message(report: GenerateReport, config: GenerateConfig) -> str:
    """The one line that explains exit status 1: which pairs ended short of --n, and what to do."""
    short = ", ".join(f"{au_label(au)}/{style} ({k}/{config.n})" for au, style, k in report.shortfalls)
    why = f"; {report.failed} request(s) failed (see above)" if report.failures else ""
    return (
        f"error: too few valid descriptions for {short}{why}. Rerun to continue (answered requests are "
        "reused, failed ones asked again), or raise --max-rounds."
    )
