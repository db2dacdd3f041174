"""How much a set of descriptions means: measured with the embedding model, and used as a gate in validation.

A description is worth keeping when it is about its own AU and no other. Every measure here compares sentence
embeddings (unit vectors, so a dot product is a cosine):

- FACS reference texts: one text per FACS AU built from augtext/facs.py (name, muscles, visible changes). They are
  the fixed yardstick that needs no descriptions at all.
- Identifiability (a): the share of an AU's descriptions whose nearest FACS reference text (over every FACS AU) is
  their own AU's. (b): the same against leave-one-out centroids of the cache's own descriptions per AU (a text is
  compared with the mean of the *other* texts of its AU and with the full mean of every other AU in the cache).
- Specificity: similarity to the own reference minus the best similarity to any other AU's reference (> 0: the own
  AU is nearest; the larger, the clearer).
- Diversity: mean pairwise cosine distance (1 - cosine) among one AU's descriptions.

`SemanticGate` keeps a description only if it is close enough to its own AU's reference text and its own AU ranks
among the top k of all FACS AUs (not counting the AUs the text itself names: a context or contrast text is about them
too), judged whole or, failing that, clause by clause; last, a discriminator trained on labelled descriptions
overrules it where it is sure: a kept text it reads as another AU is dropped (`lookalike`), a dropped text it reads as
its own AU is kept (augtext.discriminator). Its defaults were set by measuring the
project's reference description set and real SmolLM2 answers (bench/bench_gate.py; README "Prior quality").
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augtext.discriminator import (
    LOOKALIKE_MARGIN,
    RESCUE_MIN_SIMILARITY,
    Discriminator,
    keeps,
    shipped_discriminator,
)
from augtext.facs import FACS, ActionUnit, scored_as
from augtext.levels import LEVEL_LEAD_RE
from augtext.movement import contrasted_aus, has_movement_words, own_clauses, states_own_movement
from augtext.validate import named_aus

GATE_MIN_SIMILARITY = 0.60
"""Similarity to the own AU's prototypes (see SemanticGate) below which a description is not about the AU
(`far_from_au`). Set by measurement with all-MiniLM-L6-v2: bench/bench_gate.py, bench/results/gate.json."""
GATE_TOP_K = 2
"""The own AU must be among the k FACS AUs whose reference texts are nearest (`other_au` otherwise)."""


def facs_reference_text(au: ActionUnit) -> str:
    """The AU's FACS facts as one text: name, visible changes, muscular basis (the yardstick of every measure)."""
    changes = "; ".join(au.appearance)
    return f"{au.name}: {changes}. Muscle: {au.muscles}."


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Encode with one intra-op thread. The gate encodes a few texts at a time, often beside other work (an LLM
    in another thread, other jobs): measured on the 2-core machine under load, 10 texts took 0.13 s with one thread
    and 0.9-1.5 s with two (spinning threads collapse when cores are shared); on an idle machine one thread costs
    little on batches this small. The setting is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _normalize(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


class TextEmbedder:
    """An encoder with a memo: each distinct text is encoded once per process (generate re-walks answers often)."""

    def __init__(self, encoder: Any, name: str) -> None:
        self.encoder = encoder
        self.name = name
        self._memo: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if todo:
            with _one_torch_thread():
                out = self.encoder.encode(
                    todo, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
                )
            for text, vec in zip(todo, _normalize(out), strict=True):
                self._memo[text] = vec
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])

    @functools.cached_property
    def dim(self) -> int:
        return int(self(["face"]).shape[1])

    @functools.cached_property
    def references(self) -> tuple[list[int], np.ndarray]:
        """(codes, (A, D) embeddings) of the FACS reference texts of every FACS AU, ascending codes."""
        codes = sorted(FACS)
        return codes, self([facs_reference_text(FACS[c]) for c in codes])


@functools.cache
def default_embedder(model: str | None = None) -> TextEmbedder:
    """The embedding model `augtext embed` uses by default (all-MiniLM-L6-v2, offline), loaded once per process."""
    from augtext.embed import load_encoder, resolve_model

    return TextEmbedder(load_encoder(model, device=None), resolve_model(model).name)  # CUDA when present


# -- the gate -------------------------------------------------------------------------------------------------------

_LABEL_RE = re.compile(r"\b(?:AU|action\s+unit)\s*-?\s*\d{1,2}\b(?:\s*\([^)]{0,60}\))?\s*:?", re.IGNORECASE)


def strip_labels(text: str) -> str:
    """The text without AU labels ("AU12", "AU12 (Lip Corner Puller)", "action unit 4:") and without the intensity
    level it starts with ("At level B (slight) of AU4, ..."): the gate judges what a text says about the face, not
    the label or level an LLM copied from its prompt (a label alone pulls any text, right or wrong, toward that AU's
    prototypes; a level phrase pulls every text of the intensity style toward one another). Unchanged if nothing
    else would be left."""
    stripped = " ".join(re.sub(r"\(\s*\)", " ", _LABEL_RE.sub(" ", text)).split())
    stripped = LEVEL_LEAD_RE.sub("", stripped, count=1)
    return stripped if any(c.isalpha() for c in stripped) else text


def facs_prototypes(au: ActionUnit) -> list[str]:
    """Texts that stand for the AU in the gate: its reference text, each visible change and its muscular basis."""
    return [
        facs_reference_text(au),
        *(f"{au.name}: {fact}." for fact in au.appearance),
        f"{au.name}: the {au.muscles} acts on the {au.region}.",
    ]


@dataclass(frozen=True)
class GateDecision:
    reason: str | None  # None: keep; else one of GATE_REASONS
    similarity: float  # the own AU's prototype similarity (mean of the best GATE_TOP_M)
    rank: int  # 1 = the own AU is the nearest
    clause: str | None = None  # the clause that was judged, where the whole text failed and one of its clauses passed
    rival: int | None = None  # `lookalike`: the AU the discriminator reads the text as
    overruled: str | None = None  # kept: the reason the similarity ranking gave, which the discriminator overruled


def _rescuable(decision: GateDecision) -> bool:
    """Dropped by the similarity ranking, and near enough its AU for the discriminator to keep it."""
    far = decision.reason == "far_from_au" and decision.similarity >= RESCUE_MIN_SIMILARITY
    return far or decision.reason == "other_au"


_CLAUSE_SPLIT_RE = re.compile(r",?\s+(?:while|whereas)\s+|;\s*|:\s+|,\s+(?:and|but)\s+", re.IGNORECASE)
CLAUSE_MIN_WORDS = 4
"""A part shorter than this ("with AU6", "but not much") is not judged as a clause on its own."""


def clauses(text: str) -> list[str]:
    """The clauses of a sentence that has more than one: split at "while", "whereas", ";", ":", ", and", ", but".
    Parts of fewer than CLAUSE_MIN_WORDS words are left out; [] unless two clauses are left."""
    parts = [p.strip(" ,.") for p in _CLAUSE_SPLIT_RE.split(text)]
    parts = [p for p in parts if len(p.split()) >= CLAUSE_MIN_WORDS]
    return parts if len(parts) > 1 else []


def _not_counted(text: str, au: int) -> set[int]:
    """The AUs that do not outrank `au` for `text`: those it names besides its own (by code, or by a muscle it sets
    aside: `movement.contrasted_aus`, "unlike a frown made by the corrugator, ..." names AU4) and, where its own
    clauses state `au`'s own movement (`states_own_movement`):
    - the FACS look-alikes of the AUs it names. A context or contrast text ("together with AU1, the lip corners are
      pulled down ...", "unlike AU25, which only parts the lips, AU26 lowers the jaw") sits near what it names and
      near that AU's neighbours (AU2 and AU4 beside AU1);
    - every AU with movement words (`has_movement_words`) whose movement it does not state: "the cheeks puff slightly
      as the lip corners are pulled up in a sharp, narrow angle" (AU13) sits near the cheek puff (AU34) in the
      embedding, but says nothing of air held in the mouth; "the lip corners are pressed into the cheeks" (AU14) sits
      near the smile (AU12, its look-alike) but pulls nothing up. A look-alike whose movement the text states stays
      counted (a sharp lip pull and a smile both pull the corners up).
    One that states no movement of its own AU ("with AU6, the cheeks are lifted ..." sent as AU1) is judged as
    before."""
    named = (named_aus(text) | contrasted_aus(text)) - {au}
    if au not in FACS or not states_own_movement(text, FACS[au]):
        return named
    named |= {look for code in named if code in FACS for look in FACS[code].lookalikes}
    named |= {
        code for code, other in FACS.items() if has_movement_words(other) and not states_own_movement(text, other)
    }
    return named - {au}


def _parts(text: str, stripped: str, au: int) -> list[str]:
    """What of a text that failed whole is judged again: its clauses (`clauses`) and, for a text that names other
    AUs, what is left without its clauses about them (movement.own_clauses: "Unlike AU17, where the chin boss is
    pushed up ..., in AU15 the mouth turns down at the corners" leaves "in AU15 the mouth turns down at the corners",
    which the split at "while", ";", ", and" does not isolate). `stripped`: the text without labels."""
    parts = clauses(stripped)
    if au in FACS and named_aus(text) - {au}:
        own = strip_labels(own_clauses(text, FACS[au])).strip(" ,.;:")
        if own != stripped.strip(" ,.;:") and len(own.split()) >= CLAUSE_MIN_WORDS and own not in parts:
            parts.append(own)
    return parts


GATE_TOP_M = 3
"""An AU's similarity to a text is the mean of its GATE_TOP_M most similar prototypes (robust to one lucky match)."""
PROTOTYPE_CHUNK = 256
"""Prototypes are encoded this many at a time: the first run in a cache encodes about 2,500 (half a minute on 2
cores), and a run interrupted meanwhile stops at the next chunk (`SemanticGate.stop`) instead of after all of them."""


class GateStopped(RuntimeError):
    """The gate was stopped (`SemanticGate.stop`) before its prototypes were made."""


class SemanticGate:
    """Keep a description only if it is about its own AU.

    Every FACS AU has prototypes: its FACS facts (`facs_prototypes`) and, where the project's reference set has
    them, its reference descriptions. A text's similarity to an AU is the mean cosine of the AU's GATE_TOP_M most
    similar prototypes, never counting a prototype identical to the text itself (so the reference set is judged
    leave-one-out). Kept: similarity to the own AU at least `min_similarity` (else `far_from_au`: about something
    else, e.g. a shop that sells lip balm), and the own AU among the `top_k` most similar AUs, AUs the text names
    besides its own not counted, nor, where the text states its own AU's movement, their look-alikes and the AUs whose
    movement it does not state (`_not_counted`), and AUs FACS 2002 scores as one action (`scored_as`) counting once
    (else `other_au`: a description of a different action, e.g. pressed lips labelled as a jaw drop). A text that fails
    whole is kept if one of its clauses passes, or what is left of it without its clauses about the AUs it names
    (`_parts`). Last, `discriminator` (by default the package's for the embedding model, none for another model;
    False: off) reads each text whole, not counting the same AUs as above: a kept text it reads as another AU by
    LOOKALIKE_MARGIN is dropped as `lookalike`; an `other_au` text, or a `far_from_au` one at RESCUE_MIN_SIMILARITY
    or more, that it reads as its own AU by RESCUE_MARGIN over every other AU and over NOT_A_DESCRIPTION is kept.
    """

    def __init__(
        self,
        embedder: TextEmbedder | None = None,
        min_similarity: float = GATE_MIN_SIMILARITY,
        top_k: int = GATE_TOP_K,
        use_reference_set: bool = True,
        store: Path | None = None,
        judge_clauses: bool = True,
        discriminator: Discriminator | bool = True,
    ) -> None:
        self._embedder = embedder
        self.store = store  # a folder to keep the prototype vectors in between runs (None: encode every run)
        self._lock = threading.Lock()  # the model and prototypes are made once, by whichever thread needs them first
        self._stop = threading.Event()
        self._prototypes: tuple[list[int], np.ndarray, np.ndarray] | None = None
        self.min_similarity = min_similarity
        self.top_k = top_k
        self.use_reference_set = use_reference_set
        self.judge_clauses = judge_clauses
        self._discriminator = discriminator  # True: the package's for the embedding model (none for another model)

    @property
    def embedder(self) -> TextEmbedder:
        """The embedding model, loaded on first use."""
        with self._lock:
            if self._embedder is None:
                self._embedder = default_embedder()
            return self._embedder

    @property
    def discriminator(self) -> Discriminator | None:
        """The last check (`lookalike`, and keeping what the ranking dropped): the given one, the package's for this
        embedding model, or None (off)."""
        if self._discriminator is True:
            self._discriminator = shipped_discriminator(self.embedder.name) or False
        return self._discriminator or None

    def warm_up(self) -> threading.Thread:
        """Load the model and encode the prototypes in a background thread (generate starts this before its first
        request, so that loading overlaps with waiting for answers). The caller joins the thread before it returns:
        a thread still inside torch when the interpreter exits aborts the process. A failure to load is not
        reported from here (no thread traceback): the first use of the gate raises it again, as a UserError."""

        def load() -> None:
            try:
                _ = self.prototypes
            except Exception:
                pass  # raised again where the gate is used

        thread = threading.Thread(target=load, name="gate-warm-up", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop making the prototypes (a run interrupted by Ctrl-C or SIGTERM): a thread making them raises
        GateStopped at its next chunk, and so does every later use of the gate that needs them; made ones stay."""
        self._stop.set()

    @property
    def prototypes(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        """(codes, prototype AU per row (P,), prototype vectors (P, D))."""
        embedder = self.embedder
        with self._lock:
            if self._prototypes is None:
                self._prototypes = self._make_prototypes(embedder)
            return self._prototypes

    def _make_prototypes(self, embedder: TextEmbedder) -> tuple[list[int], np.ndarray, np.ndarray]:
        from augtext.reference import reference_texts

        codes = sorted(FACS)
        owners, texts = [], []
        for code in codes:
            extra = reference_texts(code) if self.use_reference_set else ()
            for text in (*facs_prototypes(FACS[code]), *extra):
                owners.append(code)
                texts.append(text)
        return codes, np.asarray(owners, dtype=np.int64), self._stored_vectors(embedder, texts)

    def _stored_vectors(self, embedder: TextEmbedder, texts: list[str]) -> np.ndarray:
        """The prototypes' vectors, from `store` when it holds them for this model and these exact texts."""
        if self.store is None:
            return self._encode(embedder, texts)
        import hashlib

        from augtext.io import atomic_path
        from augtext.prior import model_slug

        key = hashlib.sha256("\n".join([embedder.name, *texts]).encode("utf-8")).hexdigest()
        path = Path(self.store) / f"prototypes-{model_slug(embedder.name)}.npz"
        try:
            with np.load(path) as data:
                if str(data["key"]) == key:
                    return data["vectors"]
        except (OSError, KeyError, ValueError):
            pass  # missing, stale or damaged: encode again
        vectors = self._encode(embedder, texts)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, key=np.asarray(key), vectors=vectors)
        return vectors

    def _encode(self, embedder: TextEmbedder, texts: list[str]) -> np.ndarray:
        """`embedder(texts)`, PROTOTYPE_CHUNK texts at a time, GateStopped before any chunk once `stop` was called."""
        chunks = []
        for start in range(0, len(texts), PROTOTYPE_CHUNK):
            if self._stop.is_set():
                raise GateStopped("the semantic gate was stopped before its prototypes were made")
            chunks.append(embedder(texts[start : start + PROTOTYPE_CHUNK]))
        return np.concatenate(chunks)

    def au_similarities(self, vectors: np.ndarray, sources: np.ndarray | None = None) -> np.ndarray:
        """(N, A) similarity of each text to each FACS AU (A = every FACS code, ascending). A text is never compared
        with a prototype identical to itself, or to its `sources` row (the whole text a clause was taken from)."""
        codes, owners, protos = self.prototypes
        sims = vectors @ protos.T
        sims[(sims if sources is None else sources @ protos.T) > 0.9999] = -1.0
        out = np.empty((len(vectors), len(codes)), dtype=np.float32)
        for j, code in enumerate(codes):
            block = sims[:, owners == code]
            m = min(GATE_TOP_M, block.shape[1])
            out[:, j] = np.sort(block, axis=1)[:, -m:].mean(axis=1)
        return out

    def check(self, texts: Sequence[str], au: int) -> list[GateDecision]:
        """One decision per text. A text is judged whole; one that fails is judged again clause by clause (see
        `clauses`; not with `judge_clauses=False`) and kept if one of its clauses passes: an LLM often joins what the
        AU does to what a companion or look-alike does ("the lip corners are pulled down, while the inner brows
        rise"), and the whole sentence then sits between the two AUs."""
        if not texts:
            return []
        stripped = [strip_labels(t) for t in texts]
        named = [_not_counted(t, au) for t in texts]
        vectors = self.embedder(stripped)
        out = self._judge(self.au_similarities(vectors), named, au)
        if not self.judge_clauses:
            return out
        parts = [(i, c) for i, d in enumerate(out) if d.reason is not None for c in _parts(texts[i], stripped[i], au)]
        if parts:
            rows = [i for i, _ in parts]
            sims = self.au_similarities(self.embedder([c for _, c in parts]), sources=vectors[rows])
            for (i, clause), d in zip(parts, self._judge(sims, [set()] * len(rows), au), strict=True):
                if d.reason is None and out[i].reason is not None:
                    out[i] = GateDecision(None, d.similarity, d.rank, clause)
        return self._discriminate(out, vectors, named, au)

    def _discriminate(
        self, out: list[GateDecision], vectors: np.ndarray, named: list[set[int]], au: int
    ) -> list[GateDecision]:
        """Kept texts that the discriminator reads as another AU by LOOKALIKE_MARGIN or more become `lookalike`;
        `other_au` texts, and `far_from_au` ones at RESCUE_MIN_SIMILARITY or more, that it reads as their own AU by
        RESCUE_MARGIN over every rival and over NOT_A_DESCRIPTION are kept (`GateDecision.overruled`). The AUs not
        counted against a text here are those the similarity ranking does not count (`_not_counted`)."""
        judge = self.discriminator
        if judge is None:
            return out
        keep = [i for i, d in enumerate(out) if d.reason is None]
        if keep:
            margins, rivals = judge.margins(vectors[keep], au, [named[i] for i in keep])
            for i, margin, rival in zip(keep, margins.tolist(), rivals.tolist(), strict=True):
                if margin < -LOOKALIKE_MARGIN:
                    out[i] = dataclasses.replace(out[i], reason="lookalike", rival=int(rival))
        again = [i for i, d in enumerate(out) if _rescuable(d)]
        if again:
            margins, _ = judge.margins(vectors[again], au, [named[i] for i in again], description=True)
            for i, margin in zip(again, margins.tolist(), strict=True):
                if keeps(margin):
                    out[i] = dataclasses.replace(out[i], reason=None, overruled=out[i].reason)
        return out

    def _judge(self, sims: np.ndarray, named: list[set[int]], au: int) -> list[GateDecision]:
        """Decisions from (N, A) AU similarities; `named`: per text, the other AUs it names."""
        codes = self.prototypes[0]
        own = sims[:, codes.index(au)].copy()
        # An AU the text names besides its own does not outrank it: a context text ("with AU4, ...") or a contrast
        # ("unlike AU17, ...") is about that AU too by design. What it says of its own AU must still be near it.
        for i, others in enumerate(named):
            for code in others:
                if code in codes:
                    sims[i, codes.index(code)] = -np.inf
        # AUs that FACS 2002 scores as one action (`scored_as`: squint as the lid tightener, slit and lid droop as eyes
        # closed) are one competitor, and none for a text about that action: "the palpebral orbicularis oculi tenses
        # the lids and narrows the eyes" is AU7 and AU44 alike, and a slit is between a squint and closed eyes.
        action = scored_as(au)
        groups: dict[int, list[int]] = {}
        for j, code in enumerate(codes):
            if scored_as(code) != action:
                groups.setdefault(scored_as(code), []).append(j)
        best = np.stack([sims[:, cols].max(axis=1) for cols in groups.values()], axis=1)
        ranks = 1 + (best > own[:, None]).sum(axis=1)
        out = []
        for s, r in zip(own.tolist(), ranks.tolist(), strict=True):
            reason = "far_from_au" if s < self.min_similarity else "other_au" if r > self.top_k else None
            out.append(GateDecision(reason, float(s), int(r)))
        return out


# -- scores ---------------------------------------------------------------------------------------------------------


@dataclass
class AUScore:
    au: int
    n: int
    identifiability_facs: float  # share whose nearest FACS reference is their own AU
    identifiability_loo: float | None  # share whose nearest leave-one-out centroid is their own AU (None: n < 2)
    specificity: float  # mean of own-reference similarity minus best other-reference similarity
    similarity: float  # mean similarity to the own reference
    diversity: float | None  # mean pairwise cosine distance (None: n < 2)
    confused_with: int | None  # the AU most often nearest instead (FACS references), if any


def score_embeddings(aus: Sequence[int], vectors: np.ndarray, embedder: TextEmbedder) -> list[AUScore]:
    """Per-AU scores of descriptions `vectors` (N, D, unit rows) labelled with `aus` (N,)."""
    aus_arr = np.asarray(aus, dtype=np.int64)
    vectors = _normalize(vectors)
    codes, refs = embedder.references
    col = {c: i for i, c in enumerate(codes)}
    sims = vectors @ refs.T  # (N, A)
    own_idx = np.array([col[int(a)] for a in aus_arr], dtype=np.int64)
    own = sims[np.arange(len(aus_arr)), own_idx]
    others = sims.copy()
    others[np.arange(len(aus_arr)), own_idx] = -np.inf
    best_other = others.max(axis=1) if len(codes) > 1 else np.full(len(aus_arr), -1.0)
    nearest = np.asarray(codes)[sims.argmax(axis=1)] if len(aus_arr) else np.zeros(0, dtype=np.int64)
    loo = _loo_nearest(aus_arr, vectors)

    scores = []
    for au in sorted(set(aus_arr.tolist())):
        rows = np.flatnonzero(aus_arr == au)
        wrong = nearest[rows][nearest[rows] != au]
        confused = int(np.bincount(wrong).argmax()) if len(wrong) else None
        loo_rows = loo[rows]
        loo_known = loo_rows[loo_rows >= 0]
        v = vectors[rows]
        div = None
        if len(rows) >= 2:
            g = v @ v.T
            div = float(1.0 - (g.sum() - np.trace(g)) / (len(rows) * (len(rows) - 1)))
        scores.append(
            AUScore(
                au=int(au),
                n=len(rows),
                identifiability_facs=float(np.mean(nearest[rows] == au)),
                identifiability_loo=float(np.mean(loo_known == au)) if len(loo_known) else None,
                specificity=float(np.mean(own[rows] - best_other[rows])),
                similarity=float(np.mean(own[rows])),
                diversity=div,
                confused_with=confused,
            )
        )
    return scores


def _loo_nearest(aus: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """For each row, the AU whose centroid (its own AU's without the row itself) is nearest; -1 where the own AU
    has no other description (nothing to compare with) or the cache holds a single AU."""
    labels = sorted(set(aus.tolist()))
    out = np.full(len(aus), -1, dtype=np.int64)
    if len(labels) < 2:
        return out
    sums = np.stack([vectors[aus == a].sum(axis=0) for a in labels])  # (U, D)
    counts = np.array([(aus == a).sum() for a in labels], dtype=np.float32)
    index = {a: i for i, a in enumerate(labels)}
    centroids = _normalize(sums / counts[:, None])
    for i, (a, v) in enumerate(zip(aus.tolist(), vectors, strict=True)):
        j = index[a]
        if counts[j] < 2:
            continue
        sims = centroids @ v
        own = sums[j] - v
        sims[j] = float(own @ v / max(np.linalg.norm(own), 1e-12))
        out[i] = labels[int(sims.argmax())]
    return out


def overall(scores: Sequence[AUScore]) -> dict[str, float | None]:
    """Description-weighted means over AUs (what one summary line reports)."""
    n = sum(s.n for s in scores)
    if not n:
        return {
            "n": 0,
            "identifiability_facs": None,
            "identifiability_loo": None,
            "specificity": None,
            "diversity": None,
        }

    def mean(values: list[tuple[float | None, int]]) -> float | None:
        known = [(v, w) for v, w in values if v is not None]
        total = sum(w for _, w in known)
        return sum(v * w for v, w in known) / total if total else None

    return {
        "n": n,
        "identifiability_facs": mean([(s.identifiability_facs, s.n) for s in scores]),
        "identifiability_loo": mean([(s.identifiability_loo, s.n) for s in scores]),
        "specificity": mean([(s.specificity, s.n) for s in scores]),
        "diversity": mean([(s.diversity, s.n) for s in scores]),
    }


# -- a cache's score --------------------------------------------------------------------------------------------------


@dataclass
class CacheScore:
    cache: str
    model: str
    per_au: list[AUScore]
    overall: dict[str, float | None]
    validity: dict[int, dict[str, Any]]  # au -> {"kept", "valid", "candidates", "rate", "rejected": {reason: n}}
    vectors_from: str  # "cache" (the embeddings table) or "encoded"

    @property
    def validity_rate(self) -> float | None:
        valid = sum(v["valid"] for v in self.validity.values())
        total = sum(v["candidates"] for v in self.validity.values())
        return valid / total if total else None

    def summary(self) -> str:
        o = self.overall

        def f(value: float | None, fmt: str = ".2f") -> str:
            return "-" if value is None else format(value, fmt)

        return (
            f"prior quality: {o['n']} descriptions of {len(self.per_au)} AUs; identifiability "
            f"{f(o['identifiability_facs'])} (FACS references) / {f(o['identifiability_loo'])} (leave-one-out); "
            f"specificity {f(o['specificity'], '+.3f')}; diversity {f(o['diversity'], '.3f')}; "
            f"validity {f(self.validity_rate)} (valid / candidate sentences)"
        )

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "cache": self.cache,
            "model": self.model,
            "vectors_from": self.vectors_from,
            "overall": {**self.overall, "validity": self.validity_rate},
            "per_au": [{**asdict(s), "validity": self.validity.get(s.au)} for s in self.per_au],
            "validity_without_rows": {
                str(a): v for a, v in self.validity.items() if a not in {s.au for s in self.per_au}
            },
        }


def score_cache(cache: Any, model: str | None = None, embedder: TextEmbedder | None = None) -> CacheScore:
    """Score the descriptions in `cache` (see the module docstring). The vectors come from the cache's embeddings
    table when it was made by the same model from the same descriptions, else they are encoded here."""
    from collections import Counter

    from augtext.errors import UserError
    from augtext.prior import (
        DESCRIPTIONS,
        EMBEDDINGS_DIR,
        cache_folder,
        descriptions_fingerprint,
        embedding_matrix,
        model_slug,
        read_descriptions,
        read_parquet,
        table_dim,
        table_metadata,
    )
    from augtext.stats import read_rejections

    cache = cache_folder(cache)
    path = cache / DESCRIPTIONS
    table = read_descriptions(cache, ["au", "text", "text_sha256"])
    aus = [int(a) for a in table.column("au").to_pylist()]
    texts = table.column("text").to_pylist()
    shas = table.column("text_sha256").to_pylist()
    if not texts:
        raise UserError(f"{path} has no descriptions to score; run `augtext generate --cache {cache} --au SPEC`")
    unknown = sorted({a for a in aus if a not in FACS})
    if unknown:
        raise UserError(f"{path} holds rows for {', '.join(f'AU{a}' for a in unknown)}, which FACS lacks")
    embedder = embedder or default_embedder(model)

    vectors, source = None, "encoded"
    emb_path = cache / EMBEDDINGS_DIR / f"{model_slug(embedder.name)}.parquet"
    if emb_path.is_file():
        try:
            emb = read_parquet(emb_path, fix="")
            meta = table_metadata(emb.schema)
            if meta.get("embed_model") == embedder.name and meta.get(
                "descriptions_fingerprint"
            ) == descriptions_fingerprint(shas):
                index = {s: i for i, s in enumerate(emb.column("text_sha256").to_pylist())}
                matrix = embedding_matrix(emb.column("embedding"), table_dim(emb_path, emb.schema))
                vectors, source = matrix[[index[s] for s in shas]], "cache"
                if not np.isfinite(vectors).all():  # edited or damaged: encode instead, as below
                    vectors, source = None, "encoded"
        except (UserError, KeyError):
            vectors = None  # unusable table: encode instead (augtext embed reports what is wrong with it)
    if vectors is None:
        vectors = embedder(texts)
    per_au = score_embeddings(aus, vectors, embedder)

    validity: dict[int, dict[str, Any]] = {}
    for p in (read_rejections(cache) or {}).get("pairs", []):
        v = validity.setdefault(p["au"], {"kept": 0, "valid": 0, "candidates": 0, "rejected": Counter()})
        v["kept"] += p["kept"]
        v["valid"] += p["kept"] + p["surplus"]  # surplus: valid, beyond --n
        v["candidates"] += p["kept"] + p["surplus"] + sum(p["rejected"].values())
        v["rejected"].update(p["rejected"])
    for v in validity.values():
        v["rate"] = v["valid"] / v["candidates"] if v["candidates"] else None
        v["rejected"] = dict(sorted(v["rejected"].items()))
    return CacheScore(
        cache=str(cache),
        model=embedder.name,
        per_au=per_au,
        overall=overall(per_au),
        validity=validity,
        vectors_from=source,
    )
