"""augtext.prior: reading an embedded cache into a TextPrior, its errors, and the safetensors round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from augtext.embed import embed_cache
from augtext.errors import UserError
from augtext.prior import TextPrior, load_text_prior, read_text_prior, save_text_prior
from tests.textcache import make_text_cache, minilm, write_descriptions

AUS = [1, 2, 4, 12]
TABLE = Path("embeddings") / "all-MiniLM-L6-v2.parquet"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """Read-only: 4 AUs x (3 appearance + 3 anatomy) descriptions, embedded for real; AU4 gets one extra."""
    cache = tmp_path_factory.mktemp("prior_cache")
    make_text_cache(cache, AUS, per_au=3, styles=("appearance", "anatomy"), encoder=minilm())
    write_descriptions(
        cache, {4: ["Vertical furrows form between the lowered, drawn-together brows."]}, style="contrast", append=True
    )
    embed_cache(cache, encoder=minilm(), progress=False)
    return cache


@pytest.fixture
def cache(shared_cache, tmp_path) -> Path:
    """A private copy for tests that damage the cache."""
    return Path(shutil.copytree(shared_cache, tmp_path / "cache"))


def table_rows(cache: Path) -> list[dict]:
    return pq.read_table(cache / TABLE).to_pylist()


def test_shapes_mask_and_order(shared_cache):
    prior = load_text_prior(shared_cache, aus=[12, 1, 4])
    assert prior.aus == [12, 1, 4] and prior.num_aus == 3 and prior.dim == 384
    assert prior.embeddings.shape == (3, 7, 384) and prior.embeddings.dtype == np.float32
    assert prior.mask.dtype == bool and prior.mask.sum(axis=1).tolist() == [6, 6, 7]
    assert not prior.embeddings[~prior.mask].any()  # padding is zeros
    np.testing.assert_allclose(np.linalg.norm(prior.embeddings[prior.mask], axis=1), 1.0, atol=1e-5)
    assert prior.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert prior.fingerprint == json.loads((shared_cache / "manifest.json").read_text())["descriptions"]["fingerprint"]

    # Within an AU: ordered by (style, text_sha256), whatever order the descriptions were written in.
    rows = sorted((r for r in table_rows(shared_cache) if r["au"] == 4), key=lambda r: (r["style"], r["text_sha256"]))
    np.testing.assert_array_equal(prior.embeddings[2], np.array([r["embedding"] for r in rows], dtype=np.float32))
    assert load_text_prior(shared_cache, aus=[12, 1, 4]) == prior  # deterministic

    everything = load_text_prior(shared_cache)
    assert everything.aus == AUS and everything.embeddings.shape == (4, 7, 384)


def test_styles_and_cap(shared_cache):
    only = load_text_prior(shared_cache, aus=[1, 4], styles=["anatomy"])
    assert only.mask.sum(axis=1).tolist() == [3, 3]
    capped = load_text_prior(shared_cache, aus=[4], max_per_au=3)
    assert capped.embeddings.shape == (1, 3, 384)
    # The cap keeps the styles balanced: one of each of anatomy, appearance and contrast.
    by_style = {}
    for r in table_rows(shared_cache):
        if r["au"] == 4:
            by_style.setdefault(r["style"], []).append(r)
    firsts = [min(rs, key=lambda r: r["text_sha256"])["embedding"] for _, rs in sorted(by_style.items())]
    np.testing.assert_array_equal(capped.embeddings[0], np.array(firsts, dtype=np.float32))
    with pytest.raises(UserError, match=r"AU12 has no descriptions in style\(s\) contrast"):
        load_text_prior(shared_cache, aus=[4, 12], styles=["contrast"])


def test_missing_au_is_named(shared_cache):
    with pytest.raises(UserError, match=r"AU17 has no descriptions in .*; run `augtext generate --cache .* --au 17`"):
        load_text_prior(shared_cache, aus=[1, 17])
    with pytest.raises(UserError, match=r"AU6, AU17 have no descriptions .*--au 6,17`"):
        load_text_prior(shared_cache, aus=[6, 1, 17])


def test_an_au_facs_lacks_or_no_au_is_named_as_such(shared_cache, tmp_path):
    """Not "AU3 has no descriptions; run augtext generate --au 3": generate refuses AU3 too."""
    for aus in ([3], [1, 99]):
        with pytest.raises(UserError, match=rf"^AU{aus[-1]} is not a FACS action unit"):
            load_text_prior(shared_cache, aus=aus)
    with pytest.raises(UserError, match=r"^the AU list is empty"):
        load_text_prior(shared_cache, aus=[])
    styles = "anatomy, appearance, contrast"
    with pytest.raises(UserError, match=rf"^no description in .* has style 'mine'; its styles: {styles}$"):
        load_text_prior(shared_cache, styles=["mine"])


def test_aus_as_the_command_line_gives_them(shared_cache):
    """An AU spec ("1,2", "bp4d") or labels ("AU2") as well as codes; a bad one is the spec parser's error."""
    expected = load_text_prior(shared_cache, aus=[2, 1])
    assert load_text_prior(shared_cache, aus=["AU2", "au1"]).aus == expected.aus == [2, 1]
    assert load_text_prior(shared_cache, aus="1,2").aus == [1, 2]
    with pytest.raises(UserError, match=r"malformed AU 'b' in AU spec 'b'"):
        load_text_prior(shared_cache, aus="b")
    with pytest.raises(UserError, match=r"not an AU label: 'bp'"):
        load_text_prior(shared_cache, aus=["bp"])


def test_an_au_missing_from_the_cache_suggests_the_command_that_writes_it(shared_cache):
    """The default backend (the reference set) has every FACS AU, AU45 too: the plain command writes it offline."""
    with pytest.raises(UserError) as info:
        load_text_prior(shared_cache, aus=[1, 45])
    assert f"`augtext generate --cache {shared_cache} --au 45`" in str(info.value)
    assert "--backend" not in str(info.value)


def test_stale_manifest(cache):
    write_descriptions(cache, {12: ["The lip corners rise and the cheeks lift into a broad smile."]}, append=True)
    with pytest.raises(
        UserError,
        match=r"all-MiniLM-L6-v2\.parquet is stale: .*descriptions\.parquet changed.*"
        r"run `augtext embed",
    ):
        load_text_prior(cache, aus=[12])
    embed_cache(cache, encoder=minilm(), progress=False)
    assert load_text_prior(cache, aus=[12]).mask.sum() == 7


def test_table_newer_than_manifest_is_stale(cache):
    manifest = json.loads((cache / "manifest.json").read_text())
    manifest["embeddings"]["all-MiniLM-L6-v2"]["descriptions_fingerprint"] = "0" * 64
    (cache / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="is stale"):
        load_text_prior(cache)


@pytest.mark.parametrize("edit", ["drop a row", "repeat rows", "a NaN"])
def test_a_table_edited_by_hand_is_refused(cache, edit):
    """The fingerprint covers the descriptions, not the table: a row removed or repeated, or an embedding that is not
    a number, would train on another prior than the run records (or stop it with a NaN loss mid-epoch)."""
    import pyarrow as pa

    path = cache / TABLE
    table = pq.read_table(path)
    if edit == "drop a row":
        table = table.slice(1)
    elif edit == "repeat rows":
        table = pa.concat_tables([table, table.slice(0, 3)])
    else:
        values = table.column("embedding").combine_chunks()
        flat = values.flatten().to_numpy().copy()
        flat[5] = np.nan
        array = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), values.type.list_size)
        table = table.set_column(table.schema.get_field_index("embedding"), table.schema.field("embedding"), array)
    pq.write_table(table, path)  # schema metadata (fingerprint, dim) kept
    expect = "holds 1 embedding.s. that are not finite" if edit == "a NaN" else "does not hold one embedding per desc"
    with pytest.raises(UserError, match=rf"all-MiniLM-L6-v2\.parquet {expect}.*delete it and run `augtext embed"):
        load_text_prior(cache)


def test_dim_metadata_disagrees_with_column(cache):
    path = cache / TABLE
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[b"dim"] = b"768"
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(UserError, match=r"metadata says dim=768 but the embedding column holds 384"):
        load_text_prior(cache)


def test_manifest_dim_disagrees_with_table(cache):
    manifest = json.loads((cache / "manifest.json").read_text())
    manifest["embeddings"]["all-MiniLM-L6-v2"]["dim"] = 512
    (cache / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"dim 512 but .*all-MiniLM-L6-v2\.parquet holds 384-d"):
        load_text_prior(cache)


def test_missing_and_corrupt_files(cache, tmp_path):
    with pytest.raises(UserError, match=r"text cache .*nowhere not found"):
        load_text_prior(tmp_path / "nowhere")
    table = cache / TABLE
    table.write_bytes(table.read_bytes()[:-100])
    with pytest.raises(UserError, match=r"all-MiniLM-L6-v2\.parquet is not a readable Parquet file"):
        load_text_prior(cache)
    table.unlink()
    with pytest.raises(UserError, match=r"all-MiniLM-L6-v2\.parquet not found"):
        load_text_prior(cache)
    (cache / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match=r"manifest\.json is not valid JSON"):
        load_text_prior(cache)
    (cache / "manifest.json").unlink()
    with pytest.raises(UserError, match=r"manifest\.json not found; run `augtext embed"):
        load_text_prior(cache)


@pytest.mark.parametrize("command", ["embed", "stats", "score"])
def test_cache_that_is_a_file_says_so(tmp_path, capsys, command):
    """`--cache FILE` said "FILE/descriptions.parquet not found" although FILE exists; it is a file, not a cache
    folder (exit 2, the file untouched). The same check serves load_text_prior (`hiva_core train --text-cache`)."""
    from augtext.cli import main

    file = tmp_path / "cache.csv"
    file.write_text("au,text\n1,brows up\n")
    assert main([command, "--cache", str(file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: text cache {file} is a file, not a cache folder; pass the folder that holds descriptions.parquet "
        "(`augtext generate --cache DIR` makes one)"
    )
    assert file.read_text() == "au,text\n1,brows up\n" and sorted(tmp_path.iterdir()) == [file]
    with pytest.raises(UserError, match=rf"text cache {file}/sub lies under {file}, a file, not a cache folder"):
        load_text_prior(file / "sub")


def test_model_selection(tmp_path):
    cache = make_text_cache(tmp_path / "cache", [1, 12], per_au=2, encoder=minilm())
    assert load_text_prior(cache, model="all-MiniLM-L6-v2").model == "sentence-transformers/all-MiniLM-L6-v2"
    assert load_text_prior(cache, model="sentence-transformers/all-MiniLM-L6-v2").dim == 384
    # Each table named with the model that made it and its width (a slug may be another model's folder name).
    has = r"it has: all-MiniLM-L6-v2 \(sentence-transformers/all-MiniLM-L6-v2, 384-d\)\)"
    with pytest.raises(UserError, match=rf"no embeddings for model 'bge-small' .*{has}") as info:
        load_text_prior(cache, model="bge-small")
    # Advice every caller can follow (eval/predict take the run's model: they cannot pick another table).
    assert str(info.value).endswith(
        f"run `augtext embed --cache {cache} --model bge-small` to embed the descriptions there with that model"
    )
    # Same slug, another model: its own table, chosen by name, never mistaken for the first.
    embed_cache(cache, model="other-org/all-MiniLM-L6-v2", encoder=minilm(), progress=False)
    with pytest.warns(UserWarning, match="several embedding models"):
        assert load_text_prior(cache).model == "sentence-transformers/all-MiniLM-L6-v2"  # the first listed
    assert load_text_prior(cache, model="other-org/all-MiniLM-L6-v2").model == "other-org/all-MiniLM-L6-v2"
    with pytest.raises(UserError, match="no embeddings for model 'third-org/all-MiniLM-L6-v2'"):
        load_text_prior(cache, model="third-org/all-MiniLM-L6-v2")
    # A local folder "mini" (slug mini) and a hub id "mini" (slug mini-<hash>): the name "mini" fits both.
    local = tmp_path / "mini"
    local.mkdir()
    embed_cache(cache, model=str(local), encoder=minilm(), progress=False)
    embed_cache(cache, model="mini", encoder=minilm(), progress=False)
    assert load_text_prior(cache, model=str(local)).model == str(local.resolve())
    with pytest.raises(UserError, match="model 'mini' is ambiguous"):
        load_text_prior(cache, model="mini")


def test_save_read_round_trip(shared_cache, tmp_path):
    prior = load_text_prior(shared_cache, aus=[4, 1])
    path = tmp_path / "run" / "text_prior.safetensors"
    save_text_prior(prior, path)
    back = read_text_prior(path)
    assert back == prior and back.aus == [4, 1] and back.embeddings.dtype == np.float32 and back.mask.dtype == bool
    assert back != TextPrior(
        aus=[4, 1], embeddings=prior.embeddings, mask=prior.mask, model="x", fingerprint=prior.fingerprint
    )
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UserError, match=r"text_prior\.safetensors is not a readable safetensors file"):
        read_text_prior(path)
    with pytest.raises(UserError, match="not found"):
        read_text_prior(tmp_path / "missing.safetensors")


def test_text_prior_checks_shapes():
    with pytest.raises(ValueError, match="do not fit 2 AUs"):
        TextPrior(aus=[1, 2], embeddings=np.zeros((1, 3, 4)), mask=np.ones((1, 3), bool), model="m", fingerprint="f")
