from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from augtext.errors import UserError
from augtext.facs import DATASET_AUS
from hiva_core.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_dataset,
    build_transforms,
    check_images,
    denormalize,
    unwrap_worker_error,
)
from hiva_core.data.lists import frame_meta, read_label_list
from hiva_core.data.manifest import manifest_folds
from tests.hiva_core.imagefix import (
    sub_lists,
    write_image,
    write_images,
    write_list_pair,
    write_manifest,
    write_protocol_sample,
)

# /work/shared/data/README.md: frames per test fold, and the total (train + test) of every fold.
TEST_FRAMES = {"bp4d": [46_034, 50_182, 50_631], "disfa": [43_605, 43_605, 43_604]}
TOTAL_FRAMES = {"bp4d": 146_847, "disfa": 130_814}
BP4D_TEST_RATES = {
    1: 0.21,
    2: 0.17,
    4: 0.20,
    6: 0.46,
    7: 0.55,
    10: 0.60,
    12: 0.56,
    14: 0.47,
    15: 0.17,
    17: 0.34,
    23: 0.17,
    24: 0.15,
}
ALL_POSITIVE_F1 = {"bp4d": 48.0, "disfa": 18.6}
SIZE = 32


@pytest.fixture(scope="module")
def protocols(shared_data: Path) -> Path:
    return shared_data / "protocols"


@pytest.fixture(scope="module")
def real_folds(protocols: Path, tmp_path_factory) -> dict:
    """Every fold and split of the real BP4D and DISFA lists, read once for the tests below."""
    root = tmp_path_factory.mktemp("no_images")
    return {
        (name, fold, split): build_dataset(f"{name}:{root}", split=split, fold=fold, lists=protocols)
        for name in TEST_FRAMES
        for fold in (1, 2, 3)
        for split in ("train", "test")
    }


@pytest.mark.parametrize("name", ["bp4d", "disfa"])
@pytest.mark.parametrize("fold", [1, 2, 3])
def test_real_lists_counts_and_aus(real_folds, name, fold):
    test, train = real_folds[name, fold, "test"], real_folds[name, fold, "train"]
    assert len(test) == TEST_FRAMES[name][fold - 1]
    assert len(train) + len(test) == TOTAL_FRAMES[name]
    for ds in (train, test):
        assert ds.aus == DATASET_AUS[name]
        assert ds.labels.shape == (len(ds), len(DATASET_AUS[name])) and ds.labels.dtype == np.float32
        assert set(np.unique(ds.labels).tolist()) == {0.0, 1.0}
    # subject-exclusive protocol: no subject on both sides
    train_subjects = {train.meta(i)["subject"] for i in range(0, len(train), 97)}
    test_subjects = {test.meta(i)["subject"] for i in range(0, len(test), 97)}
    assert train_subjects and test_subjects and not train_subjects & test_subjects


def test_real_lists_label_facts(real_folds):
    rates = np.mean([real_folds["bp4d", k, "test"].labels.mean(0) for k in (1, 2, 3)], axis=0)
    for au, rate in zip(DATASET_AUS["bp4d"], rates, strict=True):
        assert abs(rate - BP4D_TEST_RATES[au]) < 0.015, f"AU{au}"
    for name, floor in ALL_POSITIVE_F1.items():
        f1 = [np.mean(2 * p / (1 + p)) for p in (real_folds[name, k, "test"].labels.mean(0) for k in (1, 2, 3))]
        assert abs(100 * np.mean(f1) - floor) < 0.15, name


def test_real_lists_meta(real_folds):
    bp4d, disfa = real_folds["bp4d", 1, "test"], real_folds["disfa", 1, "test"]
    assert {k: bp4d.meta(0)[k] for k in ("subject", "sequence", "frame")} == {
        "subject": "F007",
        "sequence": "T1",
        "frame": "643",
    }
    assert bp4d.meta(0)["path"].endswith("F007/T1/643.jpg")
    assert [disfa.meta(0)[k] for k in ("subject", "sequence", "frame")] == ["SN003", "", "0"]
    # DISFA's path files end without a newline: the last frame is still there and matches the label count
    assert disfa.meta(len(disfa) - 1)["path"].endswith(".png")
    assert frame_meta("/abs/data/F001/T8/0012.jpg", 2) == ("F001", "T8", "0012")


@pytest.fixture
def bp4d_small(protocols: Path, tmp_path: Path):
    """20 real BP4D rows (first and last 10 of each split of fold 1) as small list pairs, with JPEG images."""
    root, lists = write_protocol_sample(protocols, tmp_path, "bp4d", n=20, size=(40, 48))
    paths = (lists / "BP4D" / "BP4D_test_img_path_fold1.txt").read_text().splitlines()
    labels = np.loadtxt(lists / "BP4D" / "BP4D_test_label_fold1.txt", dtype=np.float32)
    real = (protocols / "BP4D" / "BP4D_test_img_path_fold1.txt").read_text().splitlines()
    assert paths == real[:10] + real[-10:]
    return root, lists, paths, labels


@pytest.mark.parametrize("augment", [False, True])
def test_list_images_load(bp4d_small, augment):
    root, lists, paths, labels = bp4d_small
    ds = build_dataset(f"bp4d:{root}", split="test", fold=1, lists=lists, image_size=SIZE, augment=augment)
    assert len(ds) == 20 and ds.paths[0] == root / paths[0]
    np.testing.assert_array_equal(ds.labels, labels)
    item = ds[3]
    assert item["image"].shape == (3, SIZE, SIZE) and item["image"].dtype == torch.float32
    assert torch.equal(item["labels"], torch.from_numpy(labels[3])) and item["mask"].all()
    assert item["meta"]["subject"] == paths[3].split("/")[0]
    batch = next(iter(DataLoader(ds, batch_size=8)))
    assert batch["image"].shape == (8, 3, SIZE, SIZE) and batch["labels"].shape == (8, 12)
    assert batch["mask"].dtype == torch.bool and len(batch["meta"]["frame"]) == 8
    assert check_images(ds) == []


def test_lists_folder_itself_and_aus_subset(bp4d_small):
    root, lists, _, labels = bp4d_small
    ds = build_dataset(f"BP4D:{root}", split="test", lists=lists / "BP4D", aus=[12, 1])  # fold defaults to 1
    assert ds.aus == [12, 1]
    np.testing.assert_array_equal(ds.labels, labels[:, [6, 0]])
    assert ds[0]["labels"].shape == (2,)
    with pytest.raises(UserError, match=r"AU9 not labelled.*AU1, AU2, AU4"):
        build_dataset(f"bp4d:{root}", split="test", lists=lists, aus=[9])


def test_missing_and_broken_images(bp4d_small):
    root, lists, paths, _ = bp4d_small
    ds = build_dataset(f"bp4d:{root}", split="test", fold=1, lists=lists, image_size=SIZE)
    (root / paths[2]).unlink()
    (root / paths[5]).write_bytes(b"not a jpeg at all")
    with pytest.raises(UserError, match=rf"1 of 20 .*missing.*{paths[2]}"):
        check_images(ds)
    assert check_images(ds, raise_missing=False) == [str(root / paths[2])]
    assert check_images(ds, limit=3, raise_missing=False) == []  # rows 0, 9, 19
    with pytest.raises(UserError, match=rf"image not found: .*{paths[2]}"):
        ds[2]
    with pytest.raises(UserError, match=rf"cannot read image .*{paths[5]}"):
        ds[5]


def test_check_images_opens_headers_when_asked(bp4d_small):
    """`headers`: an empty or non-image file fails the check, naming it, instead of failing once a loader reads it
    (in `train`: after a whole epoch, for a test image)."""
    root, lists, paths, _ = bp4d_small
    ds = build_dataset(f"bp4d:{root}", split="test", fold=1, lists=lists, image_size=SIZE)
    assert check_images(ds, headers=True) == []
    (root / paths[5]).write_bytes(b"not a jpeg at all")
    assert check_images(ds) == []  # existence only
    with pytest.raises(UserError) as caught:
        check_images(ds, headers=True)
    assert f"1 of 20 images cannot be read ({ds.source}): {root / paths[5]} is not an image file" in str(caught.value)
    assert str(caught.value).endswith(f"replace the file, or remove its row from {ds.source}")
    (root / paths[7]).write_bytes(b"")
    with pytest.raises(UserError, match=r"2 of 20 images cannot be read .* \(1 more after it\); replace the files"):
        check_images(ds, headers=True)


def test_check_images_finds_a_cut_off_file(bp4d_small):
    """A JPEG cut off mid-way opens (its header is whole) but lacks its end: the check decodes it and names it. Data
    appended after a whole image's end (some cameras do) or zero padding is no reason to refuse it."""
    root, lists, paths, _ = bp4d_small
    ds = build_dataset(f"bp4d:{root}", split="test", fold=1, lists=lists, image_size=SIZE)
    whole = (root / paths[3]).read_bytes()
    (root / paths[3]).write_bytes(whole + b"trailer written by a camera" + bytes(100))
    (root / paths[4]).write_bytes(whole + bytes(10))
    assert check_images(ds, headers=True) == []
    (root / paths[3]).write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(UserError) as caught:
        check_images(ds, headers=True)
    assert (
        f"1 of 20 images cannot be read ({ds.source}): {root / paths[3]} is cut off or damaged (image file is"
        in str(caught.value)
    )


def test_worker_errors_unwrap(bp4d_small):
    root, lists, paths, _ = bp4d_small
    ds = build_dataset(f"bp4d:{root}", split="test", fold=1, lists=lists, image_size=SIZE)
    (root / paths[0]).unlink()
    with pytest.raises(UserError) as info:
        next(iter(DataLoader(ds, batch_size=2, num_workers=1)))
    assert "Traceback" in str(info.value)
    assert (
        str(unwrap_worker_error(info.value)) == f"image not found: {root / paths[0]} (frame 0 of {ds.source}); "
        "check the image root"
    )
    plain = UserError("x")
    assert unwrap_worker_error(plain) is plain


def test_disfa_no_trailing_newline_png(protocols, tmp_path):
    src = protocols / "DISFA"
    n = TEST_FRAMES["disfa"][2]
    paths, labels = sub_lists(
        src / "DISFA_test_path_fold3.txt", src / "DISFA_test_label_fold3.txt", [0, 1, n - 2, n - 1]
    )
    write_list_pair(
        tmp_path / "DISFA_test_path_fold3.txt",
        tmp_path / "DISFA_test_label_fold3.txt",
        paths,
        labels,
        trailing_newline=False,
    )
    write_images(tmp_path / "img", paths)
    ds = build_dataset(f"disfa:{tmp_path / 'img'}", split="test", fold=3, lists=tmp_path, image_size=SIZE)
    assert len(ds) == 4 and ds.aus == DATASET_AUS["disfa"]
    assert ds[3]["image"].shape == (3, SIZE, SIZE) and ds[3]["meta"]["path"].endswith(".png")


def test_gft_lists_and_unknown_labels(tmp_path):
    paths = [f"{s}/{s}_{i}.jpg" for s in ("001A", "002B") for i in range(3)]
    labels = [[1, 0, 9, 0, 1, 0, 0, 0, 0, 0]] * 6
    write_list_pair(
        tmp_path / "GFT" / "GFT_train_img_path.txt", tmp_path / "GFT" / "GFT_train_label.txt", paths, labels
    )
    write_images(tmp_path / "img", paths)
    ds = build_dataset(f"gft:{tmp_path / 'img'}", split="train", lists=tmp_path, image_size=SIZE, augment=True)
    assert ds.aus == DATASET_AUS["gft"] and np.isnan(ds.labels[:, 2]).all()
    item = ds[4]
    assert item["mask"].tolist() == [True, True, False] + [True] * 7
    assert item["labels"].tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]  # unknown -> 0 under a False mask
    assert item["meta"]["subject"] == "002B" and item["meta"]["frame"] == "1"
    with pytest.raises(UserError, match="no folds"):
        build_dataset(f"gft:{tmp_path / 'img'}", split="train", fold=2, lists=tmp_path)


def _pair(tmp_path: Path, label_lines: list[str], n_paths: int | None = None, fold: int = 1):
    n = len(label_lines) if n_paths is None else n_paths
    folder = tmp_path / "lists"
    write_list_pair(
        folder / f"DISFA_train_path_fold{fold}.txt",
        folder / f"DISFA_train_label_fold{fold}.txt",
        [f"SN001/SN001_{i}.png" for i in range(n)],
        label_lines,
    )
    return folder


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["0 0 0 0 0 0 0 0", "0 1 0 0 2 0 0 0"], r"DISFA_train_label_fold1\.txt: line 2: label '2' for AU9 .*0.*1.*9"),
        (["0 0 0 0 0 0 0 0", "-1 0 0 0 0 0 0 0"], r"line 2: label '-1' for AU1 is not allowed"),
        (["0 0 0 0 0 0 0 0", "0 0 0 0 0 0 0 0", "0 0 0 0 0 0 0"], r"label_fold1\.txt: line 3 has 7 values, expected 8"),
        (["0 0 0 0 0 0 0 0", "", "0 0 0 0 0 0 0 0"], r"line 2 has 0 values"),
        (["0 0 0 0 0 0 0 0", "0 0 0 0 0 0 0 1.0"], r"line 2: label '1\.0' for AU26"),
    ],
)
def test_bad_label_lines(tmp_path, lines, message):
    with pytest.raises(UserError, match=message):
        build_dataset(f"disfa:{tmp_path}", split="train", lists=_pair(tmp_path, lines))


def test_label_file_layouts(tmp_path):
    aus = DATASET_AUS["gft"][:3]
    canonical = tmp_path / "a.txt"
    canonical.write_text("0 1 9\n1 1 0\n")
    loose = tmp_path / "b.txt"
    loose.write_text("0  1 9 \r\n1\t1 0\r\n\n")  # CRLF, doubled spaces, a tab, a blank line at the end: slow path
    for path in (canonical, loose):
        np.testing.assert_array_equal(read_label_list(path, aus), [[0, 1, np.nan], [1, 1, 0]])


def test_bad_list_pairs(tmp_path):
    with pytest.raises(UserError, match=r"DISFA_train_path_fold1\.txt has 3 image lines but .*label_fold1\.txt has 2"):
        build_dataset(f"disfa:{tmp_path}", split="train", lists=_pair(tmp_path, ["0 0 0 0 0 0 0 0"] * 2, n_paths=3))
    with pytest.raises(UserError, match=r"no DISFA_test_path_fold1\.txt"):
        build_dataset(f"disfa:{tmp_path}", split="test", lists=tmp_path / "lists")
    with pytest.raises(UserError, match=r"no DISFA_train_path_fold4\.txt.*DISFA_train_label_fold1\.txt"):
        build_dataset(f"disfa:{tmp_path}", split="train", fold=4, lists=tmp_path / "lists")
    with pytest.raises(UserError, match="--lists"):
        build_dataset(f"disfa:{tmp_path}", split="train")
    with pytest.raises(UserError, match="unknown dataset 'ck'"):
        build_dataset(f"ck:{tmp_path}", split="train", lists=tmp_path)
    with pytest.raises(UserError, match="image root not found"):
        build_dataset(f"bp4d:{tmp_path / 'nowhere'}", split="train", lists=tmp_path)
    with pytest.raises(UserError, match="split must be"):
        build_dataset(f"disfa:{tmp_path}", split="dev", lists=tmp_path / "lists")
    with pytest.raises(UserError, match="disfa list files hold train and test splits only, not 'val'"):
        build_dataset(f"disfa:{tmp_path}", split="val", lists=tmp_path / "lists")
    empty = tmp_path / "empty"
    write_list_pair(empty / "DISFA_train_path_fold1.txt", empty / "DISFA_train_label_fold1.txt", [], [])
    with pytest.raises(UserError, match="lists no images"):
        build_dataset(f"disfa:{tmp_path}", split="train", lists=empty)


def _manifest_rows(root: Path) -> list[dict]:
    """Six faces of three identities, fold = identity + 1, split train/test, one absolute path, unknowns."""
    rows = []
    for i in range(6):
        rel = f"faces/id{i // 2}/{i:03d}.png"
        write_image(root / rel, seed=i)
        rows.append(
            {
                "path": str(root / rel) if i == 5 else rel,
                "AU1": i % 2,
                "AU12": [1, 0, None, 1, 9, 0][i],
                "AU4": 1,
                "AU12_int": 0.7,
                "identity": f"id{i // 2}",
                "fold": i // 2 + 1,
                "split": "test" if i >= 4 else "train",
            }
        )
    return rows


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_manifest_folds_splits_paths(tmp_path, suffix):
    rows = _manifest_rows(tmp_path)
    manifest = write_manifest(tmp_path / f"labels{suffix}", rows)
    test = build_dataset(str(manifest), split="test", fold=2, image_size=SIZE)
    assert test.aus == [1, 4, 12]  # sorted by code; AU12_int ignored
    assert len(test) == 2 and [test.meta(i)["subject"] for i in range(2)] == ["id1", "id1"]
    np.testing.assert_array_equal(test.labels, [[0, 1, np.nan], [1, 1, 1]])
    train = build_dataset(manifest, split="train", fold=2, image_size=SIZE, augment=True)
    assert len(train) == 4 and np.isnan(train.labels[2, 2])  # rows 0, 1, 4, 5: the 9 of row 4 is unknown
    assert train[2]["mask"].tolist() == [True, True, False] and train[2]["labels"].tolist() == [0, 1, 0]
    item = train[3]  # the absolute path
    assert item["image"].shape == (3, SIZE, SIZE) and item["mask"].all()
    assert item["meta"]["frame"] == "005" and item["meta"]["path"] == rows[5]["path"]
    # no fold given: the split column decides
    by_split = build_dataset(manifest, split="test", aus=[12, 1], image_size=SIZE)
    assert by_split.aus == [12, 1] and len(by_split) == 2
    np.testing.assert_array_equal(by_split.labels, [[np.nan, 0], [0, 1]])
    assert check_images(by_split) == []
    assert manifest_folds(manifest) == [1, 2, 3]
    with pytest.raises(UserError, match=r"no rows with fold=7.*\[1, 2, 3\]"):
        build_dataset(manifest, split="test", fold=7)
    with pytest.raises(UserError, match=r"AU6 not labelled in .*labels.*AU1, AU4, AU12"):
        build_dataset(manifest, split="test", aus=[6])


def test_manifest_folder_and_no_split_columns(tmp_path):
    drop = ("fold", "split", "identity")
    rows = [{k: v for k, v in row.items() if k not in drop} for row in _manifest_rows(tmp_path)]
    write_manifest(tmp_path / "manifest.csv", rows)
    with pytest.warns(UserWarning, match="no fold or split column"):
        ds = build_dataset(tmp_path, split="train", image_size=SIZE)
    assert len(ds) == 6 and ds.meta(0)["subject"] == "id0"  # parent folder when there is no subject column
    assert ds[0]["image"].shape == (3, SIZE, SIZE)
    with pytest.raises(UserError, match="no fold column"):
        build_dataset(tmp_path, split="train", fold=1)
    with pytest.raises(UserError, match="no fold column"):
        manifest_folds(tmp_path)
    with pytest.raises(UserError, match="no manifest.parquet or manifest.csv"):
        build_dataset(tmp_path / "faces", split="train")


def test_columns_that_start_with_au_without_a_code_are_ignored(tmp_path):
    """AUs, AU_notes: no AU code in them, so not a mistyped AU column; the labels are read as without them."""
    rows = [{"path": "a.png", "AU1": 1, "AU12": 0, "AUs": "1", "AU_notes": "x"}, {"path": "b.png", "AU1": 0, "AU12": 1}]
    write_manifest(tmp_path / "m.csv", rows)
    assert build_dataset(tmp_path / "m.csv", split="all").aus == [1, 12]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"AU3": 1}, r"bad\.csv: column AU3: AU3 is not a FACS action unit"),
        ({"AU12": 2}, r"bad\.csv: line 2: AU12 = 2 is not allowed"),
        ({"AU12": "yes"}, r"bad\.csv: line 2: AU12 = 'yes' is not allowed"),
        ({"AU12": 0.5}, r"line 2: AU12 = 0\.5 is not allowed"),
        ({"path": None}, r"bad\.csv: line 2: empty path"),
        ({"fold": "x"}, r"line 2: fold = 'x' is not an integer"),
        ({"AU01": 1}, r"columns AU1 and AU01 are both AU1"),
        ({"au1": 1}, r"columns AU1 and au1 are both AU1"),
        # a column that starts with AU but is no AU column: a mistyped AU was silently left out of training
        ({"AUl2": 1}, r"bad\.csv: column 'AUl2' is not an AU column; .*AU<number> \(0/1 labels\) or AU<number>_int"),
        ({"AU_12": 1}, r"column 'AU_12' is not an AU column; .*rename any other"),
        ({"au12_c": 1}, r"column 'au12_c' is not an AU column"),
        ({"AU6_prob": 0.2}, r"column 'AU6_prob' has no label column AU6 beside it"),
    ],
)
def test_bad_manifests(tmp_path, change, message):
    rows = [{"path": "a.png", "AU1": 1, "AU12": 0, "fold": 1}, {"path": "b.png", "AU1": 0, "AU12": 1, "fold": 2}]
    rows[0].update(change)
    write_manifest(tmp_path / "bad.csv", rows)
    with pytest.raises(UserError, match=message):
        build_dataset(tmp_path / "bad.csv", split="train")


def test_manifest_au_columns_in_any_case(tmp_path):
    """au1 is AU1 and aU12_INT AU12's intensity; predict's and eval --per-face's AU12_prob / AU12_label beside AU12
    are ignored."""
    rows = [
        {"path": "a.png", "au1": 1, "Au12": 0, "aU12_INT": 0.2, "AU12_prob": 0.4, "AU12_label": 0, "fold": 1},
        {"path": "b.png", "au1": 0, "Au12": 1, "aU12_INT": 0.9, "AU12_prob": 0.7, "AU12_label": 1, "fold": 2},
    ]
    write_manifest(tmp_path / "m.csv", rows)
    ds = build_dataset(tmp_path / "m.csv", split="all")
    assert ds.aus == [1, 12]
    np.testing.assert_array_equal(ds.labels, [[1, 0], [0, 1]])
    np.testing.assert_allclose(ds.intensity, [[np.nan, 0.2], [np.nan, 0.9]])


def test_manifest_unknown_spellings(tmp_path):
    (tmp_path / "m.csv").write_text(
        "path,AU1,AU2,split\na.png,NaN,1,train\nb.png,nan,0.0,train\nc.png,NA,1.0,train\nd.png,,9,train\n"
    )
    ds = build_dataset(tmp_path / "m.csv", split="train")
    assert np.isnan(ds.labels[:, 0]).all()
    np.testing.assert_array_equal(ds.labels[:, 1], [1, 0, 1, np.nan])


def test_manifest_spec_errors(tmp_path):
    write_manifest(tmp_path / "nolabels.csv", [{"path": "a.png", "AU12_int": 0.3}])
    with pytest.raises(UserError, match="no AU label columns"):
        build_dataset(tmp_path / "nolabels.csv", split="train")
    write_manifest(tmp_path / "nopath.parquet", [{"file": "a.png", "AU1": 1}])
    with pytest.raises(UserError, match="no 'path' column"):
        build_dataset(tmp_path / "nopath.parquet", split="train")
    write_manifest(tmp_path / "s.parquet", [{"path": "a.png", "AU1": 1, "split": "train"}])
    with pytest.raises(UserError, match=r"no rows with split=test.*\['train'\]"):
        build_dataset(tmp_path / "s.parquet", split="test")
    with pytest.raises(UserError, match="manifest not found"):
        build_dataset(tmp_path / "missing.csv", split="train")
    with pytest.raises(UserError, match=r"must be a \.csv or \.parquet"):
        build_dataset(tmp_path / "labels.txt", split="train")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(UserError, match="cannot read manifest"):
        build_dataset(tmp_path / "broken.parquet", split="train")


def test_transforms_shapes_and_denormalize(tmp_path):
    colour = (200, 30, 90)
    image = Image.new("RGB", (80, 60), colour)
    for augment in (False, True):
        out = build_transforms(SIZE, augment)(image)
        assert out.shape == (3, SIZE, SIZE) and out.dtype == torch.float32
    out = build_transforms(SIZE, False)(image)
    expected = [(c / 255 - m) / s for c, m, s in zip(colour, IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    assert torch.allclose(out.mean(dim=(1, 2)), torch.tensor(expected), atol=1e-3)
    back = denormalize(out.unsqueeze(0))[0]
    assert torch.allclose(back[:, 5, 5] * 255, torch.tensor(colour, dtype=torch.float32), atol=0.5)
    # augment: the flip is random, but over 20 draws of an asymmetric image both orientations must show up
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1)), "L").convert("RGB")
    train = build_transforms(SIZE, True)
    signs = {math.copysign(1, float(t[0, :, -1].mean() - t[0, :, 0].mean())) for t in (train(ramp) for _ in range(20))}
    assert signs == {1.0, -1.0}


def test_strong_augmentation(tmp_path):
    """strong: RandAugment, grey-scale and random erasing on top of basic; valid, varied, and only for training."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    strong, basic = build_transforms(SIZE, "strong"), build_transforms(SIZE, "basic")
    outs = [strong(image) for _ in range(24)]
    assert all(o.shape == (3, SIZE, SIZE) and torch.isfinite(o).all() for o in outs)
    spread = torch.stack(outs).std(0).mean()
    assert spread > 1.3 * torch.stack([basic(image) for _ in range(24)]).std(0).mean()  # wider than basic
    grey = [o for o in outs if torch.allclose(denormalize(o)[0], denormalize(o)[1], atol=1e-3)]
    erased = [o for o in outs if (o == 0).all(0).float().mean() > 0.01]  # erased to 0 (the mean colour)
    assert grey or erased  # some draw shows the grey-scale or erasing steps
    assert torch.equal(build_transforms(SIZE, "none")(image), build_transforms(SIZE, False)(image))
    with pytest.raises(ValueError, match="augment must be one of strong, basic, none"):
        build_transforms(SIZE, "heavy")


def test_list_reading_is_fast(protocols, tmp_path):
    """Reading a big fold must stay vectorised (the fixed-width fast path): BP4D train fold 1 under a second."""
    start = time.perf_counter()
    ds = build_dataset(f"bp4d:{tmp_path}", split="train", fold=1, lists=protocols)
    assert len(ds) == 100_813 and time.perf_counter() - start < 1.0


UNKNOWN_SPELLINGS = ["", "9", "9.0", "NaN", "nan", "NA", "N/A", "n/a", "None", "null", "NULL", " none "]


def test_manifest_unknown_label_spellings_are_exactly_the_documented_ones(tmp_path):
    """README "Data": an unknown label is an empty cell, 9, NaN, NA, N/A, None or null (any case); anything else
    (pandas' other missing-value words such as #N/A or <NA>, -1, ?) is an error naming the line and the spellings."""
    rows = "".join(f"{i}.png,{cell},1,train\n" for i, cell in enumerate(UNKNOWN_SPELLINGS))
    (tmp_path / "m.csv").write_text("path,AU1,AU2,split\n" + rows)
    ds = build_dataset(tmp_path / "m.csv", split="train")
    assert np.isnan(ds.labels[:, 0]).all() and (ds.labels[:, 1] == 1).all()
    write_manifest(
        tmp_path / "m.parquet",
        [
            {"path": "a.png", "AU1": None, "AU2": 1.0, "split": "train"},
            {"path": "b.png", "AU1": 9.0, "AU2": 0.0, "split": "train"},
        ],
    )
    assert np.isnan(build_dataset(tmp_path / "m.parquet", split="train").labels[:, 0]).all()
    for cell in ("#N/A", "<NA>", "-1", "?", "unknown", "-nan", "inf"):
        (tmp_path / "bad.csv").write_text(f"path,AU1,AU2,split\na.png,1,0,train\nb.png,{cell},1,train\n")
        with pytest.raises(UserError, match=r"bad\.csv: line 3: AU1 = .* is not allowed.*N/A, None"):
            build_dataset(tmp_path / "bad.csv", split="train")


# ------------------------------------------------------------------- list files: each image once, subject-exclusive
def _bp4d_fold(folder: Path, train: list[str], test: list[str], fold: int = 1) -> Path:
    """BP4D list pairs of one fold (all labels 0) under `folder`; returns it."""
    for split, paths in (("train", train), ("test", test)):
        write_list_pair(
            folder / f"BP4D_{split}_img_path_fold{fold}.txt",
            folder / f"BP4D_{split}_label_fold{fold}.txt",
            paths,
            [[0] * 12] * len(paths),
        )
    return folder


def test_a_list_that_names_an_image_twice_is_an_error_naming_the_file_and_lines(tmp_path):
    """As a manifest that lists an image twice: the frame would count twice in training and in the metrics."""
    paths = ["F001/T1/1.jpg", "F001/T1/2.jpg", "F001/T1/3.jpg", "F001/T1/1.jpg", "F001/T1/2.jpg"]
    lists = _bp4d_fold(tmp_path / "lists", paths, ["M001/T1/1.jpg"])
    write_images(tmp_path / "img", [*paths[:3], "M001/T1/1.jpg"], size=16)
    with pytest.raises(UserError) as info:
        build_dataset(f"bp4d:{tmp_path / 'img'}", split="train", fold=1, lists=lists)
    assert str(info.value).startswith(
        f"{lists / 'BP4D_train_img_path_fold1.txt'}: line 4 names 'F001/T1/1.jpg' again (first on line 1) "
        "(1 more repeated line(s) after it); list each image once"
    )
    assert len(build_dataset(f"bp4d:{tmp_path / 'img'}", split="test", fold=1, lists=lists)) == 1


def test_train_and_test_lists_of_a_fold_must_not_share_a_subject(tmp_path, protocols):
    """The BP4D/DISFA folds are subject-exclusive: a test subject also in the training list is an error naming the
    subjects (with their frames) and both list files; an image in both, without subject folders, too. The shipped
    lists pass, all three folds."""
    from hiva_core.data.lists import check_subject_exclusive

    lists = _bp4d_fold(
        tmp_path / "overlap", ["F001/T1/1.jpg", "F002/T1/1.jpg", "M003/T2/5.jpg"], ["M003/T1/1.jpg", "M004/T1/1.jpg"]
    )
    with pytest.raises(UserError) as info:
        check_subject_exclusive("bp4d", lists, 1)
    assert str(info.value).startswith(
        f"1 subject(s) of {lists / 'BP4D_test_img_path_fold1.txt'} are also in "
        f"{lists / 'BP4D_train_img_path_fold1.txt'}: M003 (1 test / 1 training frames); BP4D's protocol is "
        "subject-exclusive, and fold 1's test F1 would score faces of people it trained on"
    )
    flat = tmp_path / "flat"
    for split, paths in (("train", ["a.png", "b.png"]), ("test", ["c.png", "a.png"])):
        write_list_pair(flat / f"GFT_{split}_img_path.txt", flat / f"GFT_{split}_label.txt", paths, [[0] * 10] * 2)
    with pytest.raises(
        UserError,
        match=r"1 image\(s\) of .*GFT_test_img_path\.txt are also in .*GFT_train_img_path"
        r"\.txt \(the first on line 2: 'a\.png'\)",
    ):
        check_subject_exclusive("gft", flat, None)
    check_subject_exclusive("bp4d", _bp4d_fold(tmp_path / "good", ["F001/T1/1.jpg"], ["M001/T1/1.jpg"]), 1)
    # every image in one folder (no subject folders, the subject in the file name): one shared "subject" is no overlap
    one_folder = _bp4d_fold(tmp_path / "one_folder", ["images/F001_T1_1.jpg"], ["images/M001_T1_1.jpg"])
    check_subject_exclusive("bp4d", one_folder, 1)
    with pytest.raises(UserError, match=r"1 image\(s\) of .* are also in"):
        check_subject_exclusive("bp4d", _bp4d_fold(tmp_path / "same", ["images/a.jpg"], ["images/a.jpg"]), 1)
    (flat / "GFT_train_img_path.txt").unlink()
    (flat / "GFT_train_label.txt").unlink()
    check_subject_exclusive("gft", flat, None, need_train=False)  # eval of test lists alone: nothing to compare
    with pytest.raises(UserError, match="no GFT_train_img_path.txt"):
        check_subject_exclusive("gft", flat, None)
    for name in ("bp4d", "disfa"):
        for fold in (1, 2, 3):
            check_subject_exclusive(name, protocols, fold)


def test_images_under_root_images_say_did_you_mean(tmp_path):
    """`hiva_core prepare` writes OUT/images and OUT/lists: `--data bp4d:OUT` finds none of the images, and the error
    names OUT/images; with a few images missing only, it is check_images' usual error."""
    paths = [f"F001/T1/{i}.jpg" for i in range(6)]
    out = tmp_path / "out"
    lists = _bp4d_fold(out / "lists", ["M001/T1/1.jpg"], paths)
    write_images(out / "images", paths, size=16)
    with pytest.raises(UserError) as info:
        build_dataset(f"bp4d:{out}", split="test", fold=1, lists=out / "lists")
    assert f"6 of 6 images of {lists / 'BP4D_test_img_path_fold1.txt'} checked are missing under the image root " in (
        str(info.value)
    )
    assert f"did you mean {out / 'images'}? (--data bp4d:{out / 'images'};" in str(info.value)
    assert len(build_dataset(f"bp4d:{out / 'images'}", split="test", fold=1, lists=out / "lists")) == 6
    (out / "F001" / "T1").mkdir(parents=True)  # most images found under the root: no guess
    for rel in paths[:5]:
        write_image(out / rel, size=16)
    ds = build_dataset(f"bp4d:{out}", split="test", fold=1, lists=out / "lists")
    with pytest.raises(UserError, match=r"1 of 6 checked images are missing"):
        check_images(ds)
