"""AU intensity as an auxiliary target (`model.intensity`): manifests' AU<k>_int columns, the loss, a trained run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.hiva_core.conftest import train_argv, write_au_face
from tests.hiva_core.imagefix import write_manifest


def _manifest(root, n=48, with_int=True):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        labels = {au: int(rng.random() < 0.5) for au in (1, 2, 4)}
        rel = f"img/{i:03d}.png"
        write_au_face(root / rel, labels, seed=i)
        row = {"path": rel, **{f"AU{a}": v for a, v in labels.items()}, "fold": i % 3 + 1, "subject": f"S{i % 6}"}
        if with_int:  # present 0.3-1, absent 0-0.2, as SynthAU writes them; AU4 has no intensity column
            row |= {f"AU{a}_int": (0.3 + 0.7 * rng.random()) if v else 0.2 * rng.random() for a, v in labels.items()}
            del row["AU4_int"]
        rows.append(row)
    rows[0]["AU2"] = ""  # an unknown label: its intensity is unknown too
    return write_manifest(root / "manifest.csv", rows), rows


def test_manifest_reads_intensities_in_the_chosen_aus_order(tmp_path):
    from hiva_core.data import build_dataset

    path, rows = _manifest(tmp_path)
    ds = build_dataset(path, split="all", aus=[2, 4, 1])
    assert ds.intensity.shape == (len(rows), 3)
    np.testing.assert_allclose(ds.intensity[1:, 0], [r["AU2_int"] for r in rows[1:]], rtol=1e-6)
    np.testing.assert_allclose(ds.intensity[:, 2], [r["AU1_int"] for r in rows], rtol=1e-6)
    assert np.isnan(ds.intensity[:, 1]).all() and np.isnan(ds.intensity[0, 0])  # no AU4_int; AU2 unknown on row 0
    item = ds[0]
    assert item["intensity_mask"].tolist() == [False, False, True]
    plain, _ = _manifest(tmp_path / "plain", with_int=False)
    assert build_dataset(plain, split="all").intensity is None


@pytest.mark.parametrize("cell", [3, -1, 1.5, "strong", "B"])
def test_an_intensity_outside_0_1_is_an_error_naming_it(tmp_path, cell):
    """A 0-5 scale, a -1 or a word in an AU<k>_int column is an error naming the line and the value (it was clipped
    to 0 or 1, or left out, without a word); 9 and the label's unknown words are unknown, as in an AU<k> column."""
    from augtext.errors import UserError
    from hiva_core.data import build_dataset

    path, rows = _manifest(tmp_path)
    text = path.read_text().splitlines()
    header = text[0].split(",")
    column = header.index("AU1_int")
    for line, value in ((3, cell), (4, 9), (5, ""), (6, "N/A")):
        cells = text[line].split(",")
        cells[column] = str(value)
        text[line] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(UserError, match=rf"line 4: AU1_int = '{cell}' is not allowed; intensities are in \[0, 1\]"):
        build_dataset(path, split="all")
    cells = text[3].split(",")
    cells[column] = "0.4"
    text[3] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    intensity = build_dataset(path, split="all", aus=[1]).intensity[:, 0]
    assert intensity[2] == pytest.approx(0.4) and np.isnan(intensity[3:6]).all()


def test_intensity_loss_counts_known_cells_only():
    from hiva_core.models import create_model
    from hiva_core.task import AUTask

    torch.manual_seed(0)
    model = create_model("hiva", num_aus=2, text_dim=8, backbone="tiny", dim=16, heads=2, intensity=True).eval()
    task = AUTask(model, intensity_weight=1.0)
    text = torch.randn(2, 3, 8)
    batch = {
        "image": torch.randn(3, 3, 32, 32),
        "labels": torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]),
        "mask": torch.ones(3, 2, dtype=torch.bool),
        "intensity": torch.tensor([[0.8, 0.1], [0.0, 0.0], [0.5, 0.9]]),
        "intensity_mask": torch.tensor([[True, True], [False, False], [True, False]]),
    }
    out = task(batch, text)
    logits = model(batch["image"], text)["intensity"]
    assert logits.shape == (3, 2)
    each = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["intensity"], reduction="none")
    assert float(out["intensity"]) == pytest.approx(float(each[batch["intensity_mask"]].mean().detach()), rel=1e-5)
    changed = {**batch, "intensity": batch["intensity"].clone()}
    changed["intensity"][1] = 5.0  # an unknown cell's value does not count
    assert float(task(changed, text)["intensity"]) == pytest.approx(float(out["intensity"]), rel=1e-5)
    out["loss"].backward()
    assert model.intensity_head.weight.grad.abs().sum() > 0
    task.intensity_weight = 0.0  # off: no term
    assert float(task(batch, text)["intensity"]) == 0.0


def test_intensity_is_on_by_default_where_the_data_has_it_and_reloads(tmp_path, text_cache, one_thread):
    """Left to the default, hiva learns the intensities of data that has them (and the run reloads with the head,
    its config saying so); on data without them it is off, and asking for it there is a UserError."""
    import json

    from hiva_core.checkpoint import load_run
    from hiva_core.cli import main
    from hiva_core.run_folder import RunFolder

    path, _ = _manifest(tmp_path / "faces")
    out = tmp_path / "run"
    assert main(train_argv(text_cache, path, out, "--fold", "1", epochs=2)) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_config"]["intensity"] is True
    loaded = load_run(out, device="cpu")
    assert loaded.model.intensity_head is not None
    assert loaded.predict(torch.randn(2, 3, 32, 32))["probs"].shape == (2, 3)
    log = (out / "log.csv").read_text().splitlines()
    assert float(log[1].split(",")[log[0].split(",").index("intensity")]) > 0  # the term was trained
    assert RunFolder(out).read_train_config().model.intensity is True  # what --resume rebuilds

    plain, _ = _manifest(tmp_path / "plain", with_int=False)
    assert main(train_argv(text_cache, plain, tmp_path / "plain_run", "--fold", "1", epochs=1)) == 0
    assert json.loads((tmp_path / "plain_run" / "config.json").read_text())["model_config"]["intensity"] is False
    argv = train_argv(text_cache, plain, tmp_path / "asked", "--fold", "1", "--set", "model.intensity=true", epochs=1)
    assert main(argv) == 2
    off = train_argv(text_cache, path, tmp_path / "off", "--fold", "1", "--set", "model.intensity=false", epochs=1)
    assert main(off) == 0 and load_run(tmp_path / "off", device="cpu").model.intensity_head is None


def test_models_without_per_au_nodes_refuse_intensity():
    from augtext.errors import UserError
    from hiva_core.models import create_model

    for name in ("linear", "hiva_open"):
        with pytest.raises(UserError, match="cannot learn AU intensities"):
            create_model(name, num_aus=3, text_dim=8, backbone="tiny", dim=16, heads=2, intensity=True)
        create_model(name, num_aus=3, text_dim=8, backbone="tiny", dim=16, heads=2)  # the default: off


def test_unknown_traces_leaves_absent_labels_with_an_intensity_unknown(tmp_path):
    """`AUDataset.unknown_traces`: an absent label beside an intensity above 0 (a sub-threshold trace) becomes
    unknown, label and intensity; present labels, absent ones at intensity 0 and AUs without intensities stay."""
    from hiva_core.data import build_dataset

    path, rows = _manifest(tmp_path)
    rows[1]["AU1_int"] = 0.0  # an absent AU with no trace at all (written below; _manifest drew 0-0.2)
    path = write_manifest(tmp_path / "manifest.csv", rows)
    ds = build_dataset(path, split="all", aus=[1, 2, 4])
    labels, intensity = ds.labels.copy(), ds.intensity.copy()
    traces = (labels == 0) & (intensity > 0)
    assert traces[:, :2].sum() > 10 and not traces[:, 2].any()  # AU4 has no intensity column
    assert labels[1, 0] == 0 and not traces[1, 0]
    assert ds.unknown_traces() == int(traces.sum())
    assert np.isnan(ds.labels[traces]).all() and np.isnan(ds.intensity[traces]).all()
    kept = ~traces
    np.testing.assert_array_equal(np.nan_to_num(ds.labels[kept], nan=-1), np.nan_to_num(labels[kept], nan=-1))
    assert ds.unknown_traces() == 0  # nothing left to change
    plain, _ = _manifest(tmp_path / "plain", with_int=False)
    without = build_dataset(plain, split="all")
    before = without.labels.copy()
    assert without.unknown_traces() == 0
    np.testing.assert_array_equal(np.nan_to_num(without.labels, nan=-1), np.nan_to_num(before, nan=-1))


def test_data_traces_unknown_in_the_training_rows_only(tmp_path, text_cache, one_thread, capsys):
    """`data.traces=unknown`: the training and validation rows leave traces unknown (the run says how many), the test
    split keeps its labels; the default keeps them absent; a data set without intensities is told it changes
    nothing; another value is a UserError (exit status 2)."""
    import json

    from hiva_core.cli import main
    from hiva_core.config import DataSection, TrainConfig
    from hiva_core.distributed import DistInfo
    from hiva_core.train_data import build_datasets

    path, _ = _manifest(tmp_path / "faces", n=60)

    def splits(traces: str):
        data = DataSection(spec=str(path), fold=1, image_size=32, val_fraction=0.2, traces=traces)
        return build_datasets(TrainConfig(data=data), DistInfo())

    plain, masked = splits("absent"), splits("unknown")
    assert plain.traces == 0 and masked.traces > 0
    counted = 0
    for name in ("train", "val"):
        before, after = getattr(plain, name), getattr(masked, name)
        traces = (before.labels == 0) & (before.intensity > 0)
        assert traces.any() and np.isnan(after.labels[traces]).all() and np.isnan(after.intensity[traces]).all()
        counted += int(traces.sum())
    assert masked.traces == counted
    np.testing.assert_array_equal(np.nan_to_num(masked.test.labels, nan=-1), np.nan_to_num(plain.test.labels, nan=-1))

    out = tmp_path / "run"
    assert main(train_argv(text_cache, path, out, "--fold", "1", "--set", "data.traces=unknown", epochs=1)) == 0
    assert "absent labels beside a visible intensity left unknown in training" in capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["config"]["data"]["traces"] == "unknown"
    bare, _ = _manifest(tmp_path / "bare", with_int=False)
    argv = train_argv(text_cache, bare, tmp_path / "bare_run", "--fold", "1", "--set", "data.traces=unknown", epochs=1)
    assert main(argv) == 0
    assert "data.traces=unknown changes nothing" in capsys.readouterr().err
    wrong = train_argv(text_cache, path, tmp_path / "wrong", "--fold", "1", "--set", "data.traces=maybe", epochs=1)
    assert main(wrong) == 2
    assert "data.traces must be absent or unknown" in capsys.readouterr().err
