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
import math
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from augtext.backends import Backend, RequestFailed, RequestSpec
from augtext.descriptions import (
    DESCRIPTIONS_NAME,
    GATE_DIR,
    REJECTED_NAME,
    REJECTIONS_NAME,
    PairResult,
    rebuild,
    walk_pair,
)
from augtext.errors import UserError
from augtext.facs import au_label
from augtext.io import remove_stale_temps, utc_now
from augtext.quality import GateStopped, SemanticGate
from augtext.reference import LLM_INSTEAD, few_shot_examples, gaps_message, reference_gaps, reference_texts
from augtext.requestlog import LOG_NAME, RequestLog, request_key, sample_seed
from augtext.templates import available_styles, render_messages
from augtext.validate import GATE_REASONS, PARSE_REASONS

DEFAULT_PER_REQUEST = 5

Pair = tuple[int, str]  # (au, style): what a run is asked for


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
        if not 0.0 <= self.temperature <= 2.0:  # OpenAI's range; a server rejects every request outside it
            raise UserError(f"--temperature must be between 0 and 2 (got {self.temperature:g})")

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
    gated: int = 0  # texts of the short pairs that passed the rules and were dropped by the semantic gate
    lacking: list[Pair] = field(default_factory=list)  # pairs the backend has nothing for: not asked, none kept
    backend: str = ""  # the backend's name (the advice for a shortfall depends on it)
    failures: list[str] = field(default_factory=list)  # one message per failed request (first few are shown)
    rows: int = 0  # rows in descriptions.parquet (whole log)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.shortfalls and not self.lacking

    @property
    def none_answered(self) -> bool:
        """Requests were sent, every one failed, and the run ended short: the server or the options are wrong, not
        the answers (the CLI says so in one line, exit 2, instead of a shortfall)."""
        return bool(self.failed and not self.sent and self.shortfalls)


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

    async def run(self, pairs: list[Pair]) -> dict[Pair, PairResult]:
        tasks = [asyncio.ensure_future(self._pair_in_slot(au, style)) for au, style in pairs]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            if self.gate is not None and any(not t.cancelled() and t.exception() is not None for t in done):
                self.gate.stop()  # a pair failed (the server is down, refuses us): the run ends without judging more
        except BaseException:  # Ctrl-C or SIGTERM (this task cancelled): the gate stops making its prototypes, so
            if self.gate is not None:  # that the walker below and the warm-up thread end at once, not after them all
                self.gate.stop()
            raise
        finally:
            # A pair that raised (the server refuses us, a bug) or Ctrl-C: the other pairs stop before the backend
            # closes, so that none sends through a closed client or dies unreported at the loop's shutdown.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.walker.shutdown(wait=True, cancel_futures=True)
        errors = [task.exception() for task in tasks if not task.cancelled() and task.exception() is not None]
        if errors:  # the first pair's, in plan order; not a walk the stopped gate ended
            raise next((e for e in errors if not isinstance(e, GateStopped)), errors[0])
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
            if comp.cut:  # stopped at --max-tokens: the text it breaks off in is not kept (descriptions.walk_pair)
                entry["cut"] = True
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
    # The reference backend answers a pair its set lacks with empty lists only: such pairs are not asked at all.
    # Nothing else asked is bad input (exit 2, before the cache is touched); else the rest is generated.
    lacking = reference_gaps(config.aus, config.styles) if backend.name == "reference" else []
    skip = set(lacking)
    pairs = [(au, style) for au in config.aus for style in config.styles if (au, style) not in skip]
    if not pairs:
        raise UserError(gaps_message(lacking))
    check_writable(config.cache)  # before any request: an answer that cannot be logged is lost
    for name in (DESCRIPTIONS_NAME, REJECTED_NAME, REJECTIONS_NAME):
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
    report = GenerateReport(lacking=lacking, backend=backend.name)
    if lacking:  # said once, before the first request; the closing line (exit 1) points back here
        print(f"warning: {gaps_message(lacking)}. The rest is generated now", file=sys.stderr)

    # Each style once up front, so that a broken template stops the run before anything is sent; the other prompts
    # are rendered as their pairs start, overlapping with requests in flight.
    for style in config.styles:
        render_messages(style, config.aus[0], _per_request(config), config.prompts)
    gate = SemanticGate(store=config.cache / GATE_DIR) if config.gate else None
    # The embedding model loads while the first requests are in flight.
    warm_up = gate.warm_up() if gate is not None else None

    async def main() -> dict[Pair, PairResult]:
        try:
            with _Progress(config.progress) as progress:
                return await _Session(config, backend, log, report, progress, gate).run(pairs)
        finally:
            await backend.aclose()

    try:
        finals = _run_loop(main())
    finally:
        log.close()
        if warm_up is not None:
            # Joined whatever happened: a daemon thread still inside torch when the interpreter exits aborts the
            # process ("terminate called without an active exception", exit 134), e.g. when every request fails fast.
            warm_up.join()
    source = (backend.name, backend.model)
    caps = {(au, style, *source): config.n for au, style in pairs}
    known = {(au, style, *source): res for (au, style), res in finals.items()}
    report.rows, walked = rebuild(config.cache, log, caps, known, config.lenient, gate)
    for (au, style), res in sorted(finals.items()):
        res = walked.get((au, style, *source), res)  # what the table holds of the pair, its answers all counted
        report.kept[(au, style)] = len(res.kept)
        report.rejections.update(res.rejections)
        if len(res.kept) < config.n:
            report.shortfalls.append((au, style, len(res.kept)))
            report.gated += sum(res.rejections[r] for r in GATE_REASONS)
    report.elapsed_s = time.perf_counter() - t0
    return report


T = TypeVar("T")
SHUTDOWN_GRACE_S = 30.0
"""After Ctrl-C or SIGTERM, how long the run's tasks get to finish their cancellation before the loop is closed."""


def _run_loop(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` with a bounded shutdown. Ctrl-C and SIGTERM raise KeyboardInterrupt wherever the main
    thread is (cliutil.run_app), even inside the loop's own machinery; asyncio.run then cancels every task and waits
    for all of them without end, and one that absorbed its cancellation (httpx's shielded close) or waits on a
    callback the interrupt cut off hangs the exit (seen once in CI). Here the tasks left get SHUTDOWN_GRACE_S to
    finish, then the loop is closed anyway: every answer is already in the log, flushed line by line."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                _, stuck = loop.run_until_complete(asyncio.wait(pending, timeout=SHUTDOWN_GRACE_S))
                if stuck:  # abandoned: no "Task was destroyed but it is pending!" when they are collected
                    loop.set_exception_handler(lambda _loop, _context: None)
            loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), SHUTDOWN_GRACE_S))
            loop.run_until_complete(asyncio.wait_for(loop.shutdown_default_executor(), SHUTDOWN_GRACE_S))
        finally:
            asyncio.set_event_loop(None)
            loop.close()


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
    texts = [(r, c) for r, c in report.rejections.most_common() if r not in PARSE_REASONS]
    answers = [(r, c) for r, c in report.rejections.most_common() if r in PARSE_REASONS]
    if texts:
        lines.append("rejected descriptions: " + ", ".join(f"{r} {c}" for r, c in texts))
    if answers:  # whole answers that gave no description at all
        lines.append("answers that gave none: " + ", ".join(f"{r} {c}" for r, c in answers))
    if texts or answers:
        lines.append(f"each of them, with its reason: {config.cache / REJECTED_NAME}")
    if advice := unread_advice(report, config):
        lines.append(advice)
    if cut := report.rejections.get("cut_off"):
        lines.append(
            f"{cut} text(s) broke off unfinished (cut_off), most often where an answer reached --max-tokens "
            f"({config.max_tokens}): raise it to keep more of each answer"
        )
    if thinking := report.rejections.get("reasoning_only"):
        lines.append(
            f"{thinking} answer(s) held only the model's reasoning (<think>...), cut short or with nothing after it: "
            "raise --max-tokens (a reasoning model may think for thousands of tokens), or turn its thinking off"
        )
    if report.failures:  # not logged, so the next run asks them again
        more = f" (and {len(report.failures) - 3} more)" if len(report.failures) > 3 else ""
        lines.append("failed requests: " + "; ".join(report.failures[:3]) + more)
    return "\n".join(lines)


def unread_advice(report: GenerateReport, config: GenerateConfig) -> str:
    """What to do about answers augtext could not read, when strict parsing left some (None otherwise): answers in no
    format it reads (`no_json`, `no_list`) and broken or cut-off JSON (`malformed_json`) are re-read by --lenient from
    the log, without asking again; cut-off JSON also says to raise --max-tokens."""
    if config.lenient:
        return ""
    unread = sum(report.rejections.get(r, 0) for r in ("no_json", "no_list"))
    broken = report.rejections.get("malformed_json", 0)
    parts = []
    if unread:
        parts.append(
            f"{unread} answer(s) were in no format augtext reads (a JSON list, numbered or bulleted lines, ...): "
            "--lenient takes their sentences"
        )
    if broken:
        parts.append(
            f"{broken} answer(s) held JSON that breaks off (often the token limit): raise --max-tokens, or --lenient "
            "keeps their complete strings"
        )
    return "; ".join(parts) + " (a rerun re-reads the logged answers without asking again)" if parts else ""


def shortfall_message(report: GenerateReport, config: GenerateConfig) -> str:
    """The one line that explains exit status 1: which pairs ended short of --n, and what to do. A rerun helps only
    when requests failed (they are asked again); otherwise it replays the same cached rounds and ends the same, and
    with the reference backend more rounds add nothing either (its set is finite). Pairs the backend has nothing
    for (`report.lacking`) were explained by the warning at the start and are only named here."""
    parts = []
    if report.shortfalls:
        short = ", ".join(f"{au_label(au)}/{style} ({k}/{config.n})" for au, style, k in report.shortfalls)
        if report.failures:
            parts.append(
                f"too few valid descriptions for {short}; {report.failed} request(s) failed (see above). Rerun "
                "to continue (answered requests are reused, failed ones asked again), or raise --max-rounds"
            )
        elif report.backend == "reference":
            most = max(len(reference_texts(au, style)) for au, style, _ in report.shortfalls)
            parts.append(
                f"too few valid descriptions for {short}: the reference set holds at most {most} per AU and style, "
                f"and more rounds add none once they are used up. Lower --n, or generate more with {LLM_INSTEAD}"
            )
        elif unread_advice(report, config):
            parts.append(
                f"too few valid descriptions for {short} after {config.max_rounds} round(s) of requests: answers "
                "augtext could not read (see above); rerun with --lenient (or raise --max-tokens for JSON cut off), "
                "raise --max-rounds, or lower --n"
            )
        else:
            parts.append(
                f"too few valid descriptions for {short} after {config.max_rounds} round(s) of requests, none of "
                "which failed (a rerun with the same options ends the same). Raise --max-rounds to ask for more "
                "answers, or lower --n"
            )
    if report.gated:
        parts.append(
            f"the semantic gate dropped {report.gated} of their texts as not about their AU (each with its similarity "
            f"in {config.cache / REJECTED_NAME}): if they read right to you, rerun with --no-gate to keep them (the "
            "logged answers are re-read, not asked again)"
        )
    if report.lacking:
        parts.append(f"{_pairs_label(report.lacking, config)} not generated: the reference set has none (see above)")
    return "error: " + "; ".join(parts) + "."


def _pairs_label(pairs: list[Pair], config: GenerateConfig) -> str:
    """The pairs named briefly: `AU45` for an AU that lacks every asked style, `AU12/mine` for a single pair."""
    whole = [au for au in config.aus if all((au, style) in pairs for style in config.styles)]
    rest = [f"{au_label(au)}/{style}" for au, style in pairs if au not in whole]
    return ", ".join([*map(au_label, whole), *rest])


def none_answered_message(report: GenerateReport) -> str:
    """The one line for a run in which every request sent failed (`report.none_answered`): the first failure says
    what is wrong with the server or the options."""
    return (
        f"the server answered none of the {report.failed} request(s) sent; the first failure: {report.failures[0]}. "
        "Fix that and rerun (answers already in the cache are kept)"
    )
