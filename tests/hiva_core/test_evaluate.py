"""hiva_core eval's per-face file: which faces were missed, named as the user's manifest names them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.hiva_core.test_predict import AUS


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from tests.hiva_core.test_predict import tiny_run

    return tiny_run(tmp_path_factory)


def test_per_face_path_is_the_manifests_own_value(run_dir, tmp_path, capsys):
    """A manifest beside its images' folder (`../mydata/imgs/face_000.png`): `path` is that value, character for
    character, so that it joins to the user's own table of the images; `file` is the file that was read."""
    from hiva_core.cli import main

    rng = np.random.default_rng(0)
    rows = []
    (tmp_path / "mydata" / "imgs").mkdir(parents=True)
    (tmp_path / "manif").mkdir()
    for i in range(4):
        name = f"../mydata/imgs/face_{i:03d}.png"
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "manif" / name)
        rows.append({"path": name, "subject": f"S{i % 2}", **{f"AU{a}": int(rng.random() < 0.5) for a in AUS}})
    pd.DataFrame(rows).to_csv(tmp_path / "manif" / "m.csv", index=False)
    faces = tmp_path / "faces.csv"
    argv = ["eval", "--run", str(run_dir), "--data", str(tmp_path / "manif" / "m.csv"), "--per-face", str(faces)]
    assert main(argv) == 0
    capsys.readouterr()
    table = pd.read_csv(faces)
    assert list(table.columns[:5]) == ["path", "subject", "sequence", "frame", "file"]
    assert list(table["path"]) == [r["path"] for r in rows]
    assert [Path(f).resolve() for f in table["file"]] == [(tmp_path / "manif" / r["path"]).resolve() for r in rows]
    own = pd.DataFrame({"path": [r["path"] for r in rows], "camera": ["a", "b", "a", "b"]})  # the user's metadata
    assert list(table.merge(own, on="path")["camera"]) == ["a", "b", "a", "b"]


def test_an_aligned_rows_path_is_its_photos_as_the_manifest_names_it(tmp_path):
    """With --align a row's image is its cached crop; `path` names the photo as the manifest does (relative, or
    absolute when the manifest says so), `file` the photo that was aligned."""
    from hiva_core.data.dataset import AUDataset
    from hiva_core.evaluate import face_table

    photos = ["../imgs/a.jpg", str(tmp_path / "b.jpg"), "imgs/c.jpg"]
    raw = AUDataset(photos, np.zeros((3, 1), np.float32), [1], root=str(tmp_path / "manif"))
    aligned = raw.subset([2, 0, 1], files=[str(tmp_path / "cache" / f"{k}.png") for k in "cab"])
    out = {"probs": np.full((3, 1), 0.7), "labels": np.ones((3, 1)), "mask": np.ones((3, 1), bool)}
    table = face_table(aligned, out, [1], [0.5])
    assert list(table["path"]) == ["imgs/c.jpg", "../imgs/a.jpg", str(tmp_path / "b.jpg")]
    assert list(table["file"]) == [raw.path(2), raw.path(0), raw.path(1)]
    assert list(table["AU1"]) == [1, 1, 1]


def test_no_output_is_written_over_what_the_command_reads(run_dir, tmp_path, capsys):
    """The user's manifest and the run's own files are inputs: `--per-face data.csv` or `--json RUN/config.json`
    (also through a link) is refused before any work, the files as they were; the run's thresholds.json is what
    `--save-thresholds` may replace on purpose."""
    import os

    from hiva_core.cli import main

    rng = np.random.default_rng(1)
    (tmp_path / "imgs").mkdir()
    rows = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
        rows.append({"path": f"imgs/{i}.png", **{f"AU{a}": i % 2 for a in AUS}})
    manifest = tmp_path / "m.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    (tmp_path / "link.json").symlink_to(run_dir / "config.json")
    before = {p: p.read_bytes() for p in (manifest, run_dir / "config.json")}
    cases = [
        (["--per-face", str(manifest)], f"--per-face {manifest} is the manifest read, which this command reads"),
        (["--json", str(run_dir / "config.json")], f"is run {run_dir}'s config.json, which this command reads"),
        (["--json", str(tmp_path / "link.json")], f"is run {run_dir}'s config.json"),
        (["--save-thresholds", str(manifest)], "is the manifest read"),
    ]
    for extra, message in cases:
        assert main(["eval", "--run", str(run_dir), "--data", str(manifest), *extra]) == 2
        assert message in capsys.readouterr().err
    argv = [
        "predict",
        str(tmp_path / "imgs"),
        "--run",
        str(run_dir),
        "--no-detect",
        "--out",
        str(run_dir / "config.json"),
    ]
    assert main(argv) == 2
    assert f"is run {run_dir}'s config.json, which this command reads" in capsys.readouterr().err
    assert all(p.read_bytes() == content for p, content in before.items())
    assert os.path.islink(tmp_path / "link.json")
