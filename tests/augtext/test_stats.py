"""`augtext stats` on a cache written by `augtext generate` against the loopback server."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from augtext.cli import main
from augtext.embed import embed_cache
from augtext.errors import UserError
from augtext.prior import load_text_prior
from augtext.stats import compute_stats, distinct_bigram_ratio, mean_pairwise_cosine
from tests.llm_server import LLMServer, generate_args


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """One generated cache for the module (each test gets its own copy)."""
    out = tmp_path_factory.mktemp("generated")
    with LLMServer() as server:
        server.script(["refusal", "offtopic"])
        args = generate_args(server, out, "1,12", "--styles", "appearance,contrast", "--n", "4", "--concurrency", "1")
        rc = main(args)
    assert rc == 0
    return out


@pytest.fixture
def cache(generated, tmp_path):
    return Path(shutil.copytree(generated, tmp_path / "cache"))


def test_distinct_bigrams():
    assert distinct_bigram_ratio(["a b c", "a b c"]) == 0.5
    assert distinct_bigram_ratio(["a b c", "d e f"]) == 1.0
    assert distinct_bigram_ratio(["single"]) == 0.0


def test_mean_pairwise_cosine():
    assert mean_pairwise_cosine(np.eye(3)) == pytest.approx(0.0)
    assert mean_pairwise_cosine(np.ones((4, 2))) == pytest.approx(1.0)
    assert mean_pairwise_cosine(np.ones((1, 2))) is None


def test_stats_counts_rejections_and_diversity(cache):
    rows, source = compute_stats(cache, samples=2)
    assert source == "TF-IDF"
    assert [r.au for r in rows] == [1, 12]
    assert all(r.kept == 8 and r.by_style == {"appearance": 4, "contrast": 4} for r in rows)
    rejected = sum((r.rejected for r in rows), start=Counter())
    assert rejected["refusal"] == 1 and rejected["off_topic"] >= 1
    assert all(0 < r.distinct_2 <= 1 and 0 < r.mean_cosine < 1 for r in rows)
    assert all(len(r.samples) == 2 for r in rows)


class FixedEncoder:
    """Stands in for an embedding model: the same vector for every text (cosine 1.0, unlike TF-IDF's), or a
    different random one for each (`varied`)."""

    def __init__(self, varied: bool = False):
        self.rng = np.random.default_rng(0) if varied else None

    def encode(self, sentences, **kwargs):
        if self.rng is not None:
            return self.rng.standard_normal((len(sentences), 4)).astype(np.float32)
        return np.tile(np.array([1, 0, 0, 0], np.float32), (len(sentences), 1))


def test_stats_uses_embeddings_when_present(cache):
    embed_cache(cache, model="test/tiny", encoder=FixedEncoder(), progress=False)
    rows, source = compute_stats(cache)
    assert source == "embeddings (tiny.parquet)"
    assert all(r.mean_cosine == pytest.approx(1.0) for r in rows)


def test_stats_takes_the_table_the_manifest_names(cache, capsys):
    """Two tables: stats reads manifest.json as load_text_prior does (its first table by default), not the folder."""
    embed_cache(cache, model="test/zeta", encoder=FixedEncoder(), progress=False)
    embed_cache(cache, model="test/alpha", encoder=FixedEncoder(varied=True), progress=False)
    assert sorted(p.name for p in (cache / "embeddings").iterdir()) == ["alpha.parquet", "zeta.parquet"]
    with pytest.warns(UserWarning, match="several embedding models"):
        assert load_text_prior(cache).model == "test/zeta"
    rows, source = compute_stats(cache)
    assert source == "embeddings (zeta.parquet)"
    assert all(r.mean_cosine == pytest.approx(1.0) for r in rows)

    manifest = json.loads((cache / "manifest.json").read_text())
    del manifest["embeddings"]["zeta"]  # the manifest now names alpha only; zeta.parquet stays in the folder
    (cache / "manifest.json").write_text(json.dumps(manifest))
    rows, source = compute_stats(cache)
    assert source == "embeddings (alpha.parquet)"
    assert all(r.mean_cosine < 0.9 for r in rows)
    assert main(["stats", "--cache", str(cache), "--samples", "0"]) == 0
    assert "alpha.parquet" in capsys.readouterr().out

    (cache / "manifest.json").unlink()  # not embedded (as far as the manifest goes): TF-IDF, like before embed
    assert compute_stats(cache)[1] == "TF-IDF"
    (cache / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="manifest.json is not valid JSON"):
        compute_stats(cache)


def test_stats_cli_prints_tables(cache, capsys):
    assert main(["stats", "--cache", str(cache), "--samples", "1"]) == 0
    out = capsys.readouterr().out
    for word in ("AU1", "AU12", "appearance", "contrast", "refusal", "distinct-2", "sample texts"):
        assert word in out


def test_missing_or_corrupt_cache_is_a_user_error(cache, tmp_path_factory, capsys):
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(UserError, match="descriptions.parquet"):
        compute_stats(empty)
    assert main(["stats", "--cache", str(empty)]) == 2
    assert "descriptions.parquet" in capsys.readouterr().err
    (cache / "rejections.json").write_text("{not json")
    with pytest.raises(UserError, match="rejections.json"):
        compute_stats(cache)
    (cache / "rejections.json").write_text(json.dumps({"version": 1, "pairs": []}))
    (cache / "descriptions.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(UserError, match="descriptions.parquet"):
        compute_stats(cache)


def test_damaged_embeddings_table_says_rerun_embed(cache, capsys):
    assert main(["embed", "--cache", str(cache)]) == 0
    table = next((cache / "embeddings").glob("*.parquet"))
    table.write_bytes(b"PAR1 garbage")
    capsys.readouterr()
    assert main(["stats", "--cache", str(cache)]) == 2
    err = capsys.readouterr().err
    assert "augtext embed" in err and "augtext generate" not in err


def test_stats_ends_with_the_prior_quality_line(cache, capsys):
    assert main(["stats", "--cache", str(cache), "--samples", "1"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("prior quality: ")


def test_stats_shows_sample_rejected_texts_per_reason(cache, capsys):
    # The scripted refusal and off-topic answers were dropped: stats shows one of each (--samples 1) with its AU and
    # reason, and names rejected.parquet, which holds them all.
    import pyarrow.parquet as pq

    from augtext.stats import rejected_samples

    table = pq.read_table(cache / "rejected.parquet").to_pandas()
    reasons = table["reason"].value_counts()
    samples = rejected_samples(cache, 1)
    assert [s["reason"] for s in samples] == list(reasons.index)
    assert all(s["text"] in set(table["text"]) and s["au"] in (1, 12) for s in samples)
    assert len(rejected_samples(cache, 2)) == sum(min(2, n) for n in reasons)
    assert main(["stats", "--cache", str(cache), "--samples", "1"]) == 0
    out = capsys.readouterr().out
    assert "sample rejected texts" in out and "rejected.parquet" in out
    for s in samples:
        assert s["reason"] in out and s["text"][:30] in out


def test_stats_without_or_with_a_damaged_rejected_parquet(cache, capsys):
    from augtext.stats import rejected_samples

    (cache / "rejected.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(UserError, match="rejected.parquet is corrupt"):
        rejected_samples(cache, 2)
    assert main(["stats", "--cache", str(cache)]) == 2
    assert "rejected.parquet" in capsys.readouterr().err
    (cache / "rejected.parquet").unlink()  # a cache from before the file: no sample table, the rest as before
    assert rejected_samples(cache, 2) == []
    assert main(["stats", "--cache", str(cache)]) == 0
    assert "sample rejected texts" not in capsys.readouterr().out
