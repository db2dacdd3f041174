"""A face read beside a neutral frame of the same person (`model.reference`): SynthAU's neutral frames (`synth
--neutral`), the paired dataset, the model, and train / eval / predict / export / adapt of a run that reads them."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from augtext.errors import UserError
from hiva_core.synth import sampling
from hiva_core.synth.aumap import SYNTH_AUS
from tests.hiva_core.conftest import TINY_AUS, make_renderer, train_argv
from tests.hiva_core.imagefix import write_manifest

_BANDS = {1: (2, 11), 2: (15, 24), 4: (28, 37)}
LIFT = 40  # grey levels an AU adds to its band, against the person's own level at rest


def _band_face(levels: dict[int, float], labels: dict[int, int], rng: np.random.Generator, size: int = 40):
    image = rng.normal(0, 6, size=(size, size, 3)) + 30
    for au, (top, bottom) in _BANDS.items():
        image[top:bottom] += levels[au] + LIFT * labels.get(au, 0)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB")


def make_people(root, people: int = 48, frames: int = 3, seed: int = 0):
    """A manifest of `people` x `frames` faces whose AUs show only against the person at rest: each person's bands sit
    at levels of their own (spread far wider than an AU's lift), an AU lifts its band by LIFT; each face has a
    neutral frame (the same levels, new noise) in the `neutral` column. One face alone barely tells; beside its
    neutral frame it does. Folds are person-exclusive."""
    rng = np.random.default_rng(seed)
    rows = []
    for person in range(people):
        levels = {au: rng.uniform(40, 170) for au in TINY_AUS}
        for k in range(frames):
            labels = {au: int(rng.random() < 0.5) for au in TINY_AUS}
            face, rest = f"img/{person:03d}_{k}.png", f"rest/{person:03d}_{k}.png"
            for rel, lab in ((face, labels), (rest, {})):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                _band_face(levels, lab, rng).save(root / rel)
            rows.append(
                {
                    "path": face,
                    **{f"AU{au}": v for au, v in labels.items()},
                    "fold": person % 3 + 1,
                    "subject": f"P{person}",
                    "neutral": rest,
                }
            )
    return write_manifest(root / "manifest.csv", rows)


# --------------------------------------------------------------------------------------------- SynthAU neutral frames
def test_neutral_params_are_the_person_at_rest_near_the_pose():
    params = sampling.sample_params(0, 13)
    rest = sampling.neutral_params(params, 0)
    assert all(v == 0.0 for v in rest.au.values()) and rest.au_sides == {} and rest.expression == ""
    assert rest.identity == params.identity and rest.key_dir is params.key_dir and rest.occluders == params.occluders
    turned = np.array([rest.yaw - params.yaw, rest.pitch - params.pitch, rest.roll - params.roll])
    assert 0 < np.abs(turned).max() < 5 * sampling.NEUTRAL_POSE_SPREAD
    assert rest.align_jitter != params.align_jitter and rest.noise_seed != params.noise_seed
    again = sampling.neutral_params(sampling.sample_params(0, 13), 0)
    assert (again.yaw, again.align_jitter) == (rest.yaw, rest.align_jitter)  # deterministic
    shifts = [sampling.neutral_params(sampling.sample_params(0, i), 0) for i in range(200)]
    spread = np.std([s.yaw - sampling.sample_params(0, i).yaw for i, s in enumerate(shifts)])
    assert 0.6 * sampling.NEUTRAL_POSE_SPREAD < spread < 1.5 * sampling.NEUTRAL_POSE_SPREAD
    # the camera's draws, now shared with the neutral frame's alignment (sampling._jitter), are those of the sets
    # rendered before it (the values of 0bbe8cb's sampling, wide and narrow)
    for factors, distance, jitter in (
        ("all", 221.74494379779895, (1.000546537807594, -0.0157816079489617, 0.03274631707236536, 2.6047079888744813)),
        (
            "none",
            135.05180313521464,
            (1.0003279226845563, -0.00946896476937702, 0.019647790243419217, 1.3023539944372406),
        ),
    ):
        p = sampling.sample_params(0, 13, factors=factors)
        assert p.cam_distance == pytest.approx(distance, rel=1e-12) and p.align_jitter == pytest.approx(
            jitter, rel=1e-12
        )


def test_synth_neutral_frames_are_added_to_a_set_without_rendering_its_faces(face_model_path, tmp_path):
    from hiva_core.synth.writer import manifest_columns, run_synth

    out = tmp_path / "s"
    try:
        run_synth(out, n=6, size=64, seed=3, face_model=face_model_path, progress=False)
    except UserError as exc:
        pytest.skip(f"no offscreen OpenGL here: {exc}")
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "images").iterdir()}
    before = pd.read_csv(out / "manifest.csv")
    from hiva_core.cli import main

    flags = ["--n", "6", "--size", "64", "--seed", "3", "--face-model", str(face_model_path)]
    assert main(["synth", "--out", str(out), *flags, "--neutral"]) == 0
    df = pd.read_csv(out / "manifest.csv")
    assert list(df.columns) == manifest_columns(shifted=False, neutral=True)
    assert df["neutral"].tolist() == [f"neutral/{i:06d}.jpg" for i in range(6)]
    pd.testing.assert_frame_equal(df.drop(columns="neutral"), before)  # labels, poses, landmarks unchanged
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "images").iterdir()} == files
    assert json.loads((out / "synth.json").read_text())["neutral"] is True
    faces = [np.asarray(Image.open(out / p)).astype(float) for p in df["path"]]
    rests = [np.asarray(Image.open(out / p)).astype(float) for p in df["neutral"]]
    for i, (face, rest) in enumerate(zip(faces, rests, strict=True)):
        # the same scene, not the same image: nearer its own face than the same person's other frames are
        own = np.abs(face - rest).mean()
        assert rest.shape == face.shape and own > 0.5
        assert own < min(np.abs(face - other).mean() for j, other in enumerate(rests) if j != i)
    # a neutral frame is rendered again when it is lost; the set cannot be resumed without --neutral
    (out / "neutral" / "000002.jpg").unlink()
    run_synth(out, n=6, size=64, seed=3, face_model=face_model_path, progress=False, neutral=True)
    assert (out / "neutral" / "000002.jpg").is_file()
    with pytest.raises(UserError, match="--neutral"):
        run_synth(out, n=6, size=64, seed=3, face_model=face_model_path, progress=False)


def test_synth_neutral_frame_shows_no_expression(face_model_path):
    """The neutral frame of a smiling face drops the smile: its mouth corners sit where the person's rest."""
    renderer = make_renderer(face_model_path, 96)
    params = dataclasses.replace(sampling.sample_params(0, 4), au={a: (0.9 if a == 12 else 0.0) for a in SYNTH_AUS})
    rest = sampling.neutral_params(params, 0)
    smile = renderer.landmarks(*renderer.geometry(params)[::2][:2])[0]
    at_rest = renderer.landmarks(*renderer.geometry(rest)[::2][:2])[0]
    plain = renderer.neutral_landmarks(params)
    width = lambda lm: np.linalg.norm(lm[54] - lm[48]) / np.linalg.norm(lm[45] - lm[36])  # noqa: E731
    assert width(smile) > width(plain) + 0.05 and abs(width(at_rest) - width(plain)) < 0.03
    renderer.release()


# ------------------------------------------------------------------------------------------------- the paired dataset
@pytest.fixture(scope="module")
def people(tmp_path_factory):
    return make_people(tmp_path_factory.mktemp("people"))


def test_paired_items_stack_the_face_and_its_neutral_frame_under_one_draw(people, tmp_path):
    from hiva_core.data import build_dataset

    ds = build_dataset(str(people), split="train", fold=1, image_size=32, augment="strong")
    assert tuple(ds[0]["image"].shape) == (3, 32, 32)  # not paired unless asked
    assert ds.pair_references() is ds and tuple(ds[0]["image"].shape) == (6, 32, 32)
    # a face whose neutral frame is the very same file: one draw of the strong augmentation crops, flips, erases and
    # recolours both alike, so the two halves are equal
    df = pd.read_csv(people)
    df["neutral"] = df["path"]
    same = write_manifest(tmp_path / "same.csv", df.to_dict("records"))
    twin = build_dataset(str(same), split="train", fold=1, image_size=32, augment="strong").pair_references()
    # the item's paths are relative to the manifest's folder, which for same.csv is tmp_path: point it back
    twin.root = str(people.parent)
    torch.manual_seed(0)
    for i in range(8):
        image = twin[i]["image"]
        torch.testing.assert_close(image[:3], image[3:])
    sub = ds.subset([2, 0])  # the validation slice keeps the pairing
    assert sub.paired and sub.references == [ds.references[2], ds.references[0]]


def test_pairing_needs_a_neutral_frame_for_every_face(people, tmp_path):
    from hiva_core.data import build_dataset, check_images

    df = pd.read_csv(people)
    without = write_manifest(tmp_path / "without.csv", df.drop(columns="neutral").to_dict("records"))
    with pytest.raises(UserError, match="neutral"):
        build_dataset(str(without), split="train", fold=1, image_size=32).pair_references()
    df.loc[3, "neutral"] = ""
    gap = write_manifest(tmp_path / "gap.csv", df.to_dict("records"))
    with pytest.raises(UserError, match=r"1 of \d+ rows have no neutral frame"):
        build_dataset(str(gap), split="all", image_size=32).pair_references()
    df = pd.read_csv(people)
    df.loc[0, "neutral"] = "rest/missing.png"
    lost = write_manifest(people.parent / "lost.csv", df.to_dict("records"))
    ds = build_dataset(str(lost), split="all", image_size=32)
    check_images(ds)  # unpaired: the neutral frames are not read
    with pytest.raises(UserError, match="missing.png"):
        check_images(ds.pair_references())
    lost.unlink()


# -------------------------------------------------------------------------------------------------------- the model
def test_reference_model_reads_the_change_from_the_neutral_frame():
    from hiva_core.models import create_model

    model = create_model("hiva", num_aus=3, text_dim=8, backbone="tiny", dim=32, heads=4, reference=True).eval()
    plain = create_model("hiva", num_aus=3, text_dim=8, backbone="tiny", dim=32, heads=4).eval()
    assert model.proj[0].in_features == 2 * plain.proj[0].in_features
    face, rest = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    text = torch.randn(3, 2, 8)
    with torch.no_grad():
        tokens = model.forward_features(torch.cat([face, face], 1))
        c = tokens.shape[-1] // 2
        assert torch.equal(tokens[..., c:], torch.zeros_like(tokens[..., c:]))  # nothing changed from the neutral
        out = model(torch.cat([face, rest], 1), text)
        assert out["logits"].shape == (2, 3) and out["maps"] is not None
        alone = model(face[:1].repeat(1, 2, 1, 1), text)["logits"]
        beside = model(torch.cat([face[:1], rest[:1]], 1), text)["logits"]
    assert not torch.allclose(alone, beside)  # the neutral frame matters
    with pytest.raises(ValueError, match=r"\(B, 6, H, W\)"):
        model(face, text)
    linear = create_model("linear", num_aus=3, text_dim=8, backbone="tiny", reference=True)
    assert linear(torch.cat([face, rest], 1))["logits"].shape == (2, 3)


# ---------------------------------------------------------------------------------- a run that reads the neutral frame
@pytest.fixture(scope="module")
def reference_runs(people, text_cache, tmp_path_factory):
    """Three tiny runs on the people's folds 2-3: beside the neutral frame, of one face, and beside the neutral frame
    with a third of the faces read alone (model.reference_dropout): (reference run, plain run, dropout run)."""
    from hiva_core.cli import main

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ref_runs")
    runs = []
    reference = ["--set", "model.reference=true"]
    for name, extra in (
        ("ref", reference),
        ("plain", []),
        ("drop", [*reference, "--set", "model.reference_dropout=0.3", "--set", "data.val_fraction=0.25"]),
    ):
        argv = train_argv(text_cache, people, root / name, "--fold", "1", *extra, epochs=12)
        assert main(argv) == 0
        runs.append(root / name)
    return tuple(runs)


def test_a_run_with_the_neutral_frame_reads_what_one_face_cannot(reference_runs, people):
    """Held-out people whose AUs show only against their rest: the run beside the neutral frame ranks them well, the
    run of one face barely above chance."""
    from hiva_core.evaluate import evaluate_run

    ref, plain, _ = reference_runs
    assert json.loads((ref / "config.json").read_text())["model_config"]["reference"] is True
    with_rest = evaluate_run(ref, str(people), fold=1)
    alone = evaluate_run(plain, str(people), fold=1)
    assert with_rest["avg"]["auc"] > 0.85, with_rest["avg"]  # 0.89 here
    assert alone["avg"]["auc"] < 0.75, alone["avg"]  # 0.65
    assert with_rest["avg"]["auc"] > alone["avg"]["auc"] + 0.15
    some = evaluate_run(ref, str(people), fold=1, aus="1,4")  # a subset of its AUs
    assert list(some["per_au"]) == ["AU1", "AU4"]
    for au in ("AU1", "AU4"):
        assert some["per_au"][au]["auc"] == pytest.approx(with_rest["per_au"][au]["auc"])


def test_eval_predict_export_and_adapt_of_a_run_with_the_neutral_frame(reference_runs, people, tmp_path, capsys):
    from hiva_core.cli import main
    from hiva_core.predict import run_predict

    ref, plain, _ = reference_runs
    df = pd.read_csv(people)
    without = write_manifest(people.parent / "no_neutral.csv", df.drop(columns="neutral").to_dict("records"))
    assert main(["eval", "--run", str(ref), "--data", str(without)]) == 2
    assert "neutral" in capsys.readouterr().err
    without.unlink()

    row = df[df["fold"] == 1].iloc[0]
    face, rest = people.parent / row["path"], people.parent / row["neutral"]
    with pytest.raises(UserError, match="--neutral IMAGE"):
        run_predict([face], ref, detect=False)
    with pytest.raises(UserError, match="drop --neutral"):
        run_predict([face], plain, detect=False, neutral=rest)
    with pytest.raises(UserError, match="not an image"):
        run_predict([face], ref, detect=False, neutral=people)
    with pytest.raises(UserError, match="no face found"):  # found and aligned like the inputs: a band image has none
        run_predict([face], ref, neutral=rest)
    result = run_predict([face], ref, detect=False, neutral=rest, heatmaps=tmp_path / "maps")
    assert (tmp_path / "maps" / f"{face.stem}_{face.suffix[1:]}_face0.png").is_file()
    # the same probabilities as eval's batch of that face beside its neutral frame
    from hiva_core.checkpoint import load_run
    from hiva_core.data import build_dataset

    loaded = load_run(ref)
    ds = build_dataset(str(people), split="test", fold=1, image_size=loaded.image_size).pair_references()
    probs = loaded.predict(ds[0]["image"][None])["probs"][0].numpy()
    got = result.rows[[f"AU{a}_prob" for a in TINY_AUS]].to_numpy(float)[0]
    np.testing.assert_allclose(got, probs, atol=1e-5)

    assert main(["adapt", str(face), "--run", str(ref), "--out", str(tmp_path / "adapted"), "--no-detect"]) == 2
    assert "--data" in capsys.readouterr().err
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from hiva_core.export import export_onnx, run_onnx

    report = export_onnx(ref, tmp_path / "ref.onnx")
    onnx_probs = run_onnx(tmp_path / "ref.onnx", ds[0]["image"][None].numpy())["probs"][0]
    np.testing.assert_allclose(onnx_probs, probs, atol=1e-4)
    assert report["onnx"] == str(tmp_path / "ref.onnx")


# ------------------------------------------------------------------- a run that also reads faces alone (dropout)
def test_reference_dropout_model_reads_a_face_alone():
    from hiva_core.models import create_model

    kw = dict(num_aus=3, text_dim=8, backbone="tiny", dim=32, heads=4, reference=True)
    model = create_model("hiva", **kw, reference_dropout=0.5)
    face, rest, text = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32), torch.randn(3, 2, 8)
    torch.manual_seed(0)
    model(torch.cat([face, rest], 1), text)["logits"].sum().backward()
    assert model.no_reference.grad.abs().sum() > 0  # some of the faces were read without their neutral frame
    model.eval()
    with torch.no_grad():
        tokens = model.forward_features(face)
        c = tokens.shape[-1] // 2
        assert torch.equal(tokens[..., c:], model.no_reference.expand_as(tokens[..., c:]))
        alone = model(face, text)["logits"]
        beside = model(torch.cat([face, rest], 1), text)["logits"]
        again = model(torch.cat([face, rest], 1), text)["logits"]
    assert alone.shape == (4, 3) and not torch.allclose(alone, beside)
    assert torch.equal(beside, again)  # nothing dropped in eval
    assert create_model("linear", **kw, reference_dropout=0.3)(face)["logits"].shape == (4, 3)
    with pytest.raises(UserError, match="needs model.reference"):
        create_model("hiva", **{**kw, "reference": False}, reference_dropout=0.3)
    with pytest.raises(UserError, match=r"\[0, 1\)"):
        create_model("hiva", **kw, reference_dropout=1.0)


def test_a_dropout_run_reads_beside_the_neutral_frame_and_alone(reference_runs, people, tmp_path):
    """The dropout run reads the held-out people beside their neutral frames about as well as the reference run, and
    a manifest without the column alone (as a run of one face does) instead of refusing it."""
    from hiva_core.evaluate import evaluate_run

    ref, plain, drop = reference_runs
    assert json.loads((drop / "config.json").read_text())["model_config"]["reference_dropout"] == 0.3
    beside = evaluate_run(drop, str(people), fold=1)
    assert beside["avg"]["auc"] > 0.8, beside["avg"]
    df = pd.read_csv(people)
    without = write_manifest(people.parent / "alone.csv", df.drop(columns="neutral").to_dict("records"))
    alone = evaluate_run(drop, str(without), fold=1)
    assert alone["avg"]["auc"] < beside["avg"]["auc"] - 0.1, (alone["avg"], beside["avg"])
    without.unlink()
    # thresholds of its own for each reading, chosen on the validation rows read both ways
    record = json.loads((drop / "thresholds.json").read_text())
    assert record["alone"]["validation"].endswith("each face read without its neutral frame")
    assert record["alone"]["frames"] == record["frames"] and record["alone"]["thresholds"] != record["thresholds"]
    assert beside["thresholds"] == "the run's per-AU thresholds"
    assert alone["thresholds"] == "the run's per-AU thresholds for faces read alone"
    from hiva_core.checkpoint import load_run

    loaded = load_run(drop)
    assert loaded.alone_thresholds == {int(k[2:]): v for k, v in record["alone"]["thresholds"].items()}


def test_predict_neutral_auto_reads_each_video_beside_its_resting_frame(reference_runs, people, tmp_path, capsys):
    """--neutral auto: a first pass reads every frame alone and takes the least expressive as the video's resting
    frame; the video's faces are then read beside it, as with --neutral of that frame; photos are read alone."""
    import av

    from hiva_core.cli import main
    from hiva_core.predict import run_predict
    from tests.hiva_core.test_predict import write_video

    ref, plain, drop = reference_runs
    df = pd.read_csv(people)
    person = df[df["subject"] == df[df["fold"] == 1]["subject"].iloc[0]]
    paths = [*person["path"], person["neutral"].iloc[0], *person["path"]]
    frames = [np.asarray(Image.open(people.parent / p).convert("RGB").resize((48, 48))) for p in paths]
    video = tmp_path / "clip.mp4"
    write_video(video, frames)
    photo = people.parent / person["path"].iloc[0]

    alone = run_predict([video, photo], drop, detect=False)  # the run reads every frame alone
    probs = alone.rows[[f"AU{a}_prob" for a in TINY_AUS]].to_numpy(float)
    rest = int(np.argmin(probs[: len(frames)].mean(1)))
    assert alone.summary["thresholds"]["source"] == "the run's per-AU thresholds for faces read alone"
    auto = run_predict([video, photo], drop, detect=False, neutral="auto")
    assert auto.summary["thresholds"]["source"] == "the run's per-AU thresholds"
    assert auto.summary["thresholds_alone"]["source"] == "the run's per-AU thresholds for faces read alone"
    limits = [auto.summary["thresholds_alone"][f"AU{a}"] for a in TINY_AUS]
    calls = auto.rows[[f"AU{a}" for a in TINY_AUS]].to_numpy(int)[-1]  # the photo, alone: at the alone thresholds
    np.testing.assert_array_equal(calls, (probs[-1] >= np.asarray(limits)).astype(int))
    where = auto.summary["resting_frames"][str(video)]
    assert where["frame"] == rest and where["mean_prob"] == pytest.approx(probs[rest].mean(), abs=1e-4)
    got = auto.rows[[f"AU{a}_prob" for a in TINY_AUS]].to_numpy(float)
    np.testing.assert_allclose(got[-1], probs[-1], atol=1e-6)  # the photo: alone
    with av.open(str(video)) as container:  # the same frame, decoded, given as --neutral
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    Image.fromarray(decoded[rest]).save(tmp_path / "rest.png")
    given = run_predict([video], drop, detect=False, neutral=tmp_path / "rest.png")
    np.testing.assert_allclose(got[:-1], given.rows[[f"AU{a}_prob" for a in TINY_AUS]].to_numpy(float), atol=1e-5)

    out = tmp_path / "aus.csv"
    assert main(["predict", str(video), "--run", str(drop), "--no-detect", "--neutral", "auto", "--out", str(out)]) == 0
    assert f"resting frame of {video}: frame {rest}" in capsys.readouterr().err
    for run, match in ((ref, "cannot read a face without"), (plain, "drop --neutral")):
        with pytest.raises(UserError, match=match):
            run_predict([video], run, detect=False, neutral="auto")
    from hiva_core.neutral import run_neutral

    with pytest.raises(UserError, match="cannot read one alone"):  # nor choose a data set's resting frames
        run_neutral(str(people), run=ref, out=tmp_path / "n.csv")
    # a dropout run reads a photo without --neutral, and adapts on photos alone
    assert len(run_predict([photo], drop, detect=False).rows) == 1
    adapted = tmp_path / "adapted"
    assert main(["adapt", str(photo.parent), "--run", str(drop), "--out", str(adapted), "--no-detect"]) == 0
    assert (adapted / "config.json").is_file()


def test_predict_neutral_auto_frames_reads_a_folder_of_frames_as_one_clip(reference_runs, people, tmp_path, capsys):
    """--neutral auto --frames: the images of a folder are the frames of one clip, read beside the one the run finds
    least expressive alone, as with --neutral of that image; a folder of one frame, and photos without --frames, are
    read alone."""
    from hiva_core.cli import main
    from hiva_core.predict import run_predict

    _, _, drop = reference_runs
    df = pd.read_csv(people)
    person = df[df["subject"] == df[df["fold"] == 1]["subject"].iloc[0]]
    clip, single = tmp_path / "clip", tmp_path / "single"
    clip.mkdir()
    single.mkdir()
    for i, p in enumerate([*person["path"], person["neutral"].iloc[0]]):
        Image.open(people.parent / p).convert("RGB").save(clip / f"{i:03d}.png")
    Image.open(people.parent / person["path"].iloc[1]).convert("RGB").save(single / "photo.png")
    names = [f"AU{a}_prob" for a in TINY_AUS]

    alone = run_predict([clip, single], drop, detect=False)
    probs = alone.rows[names].to_numpy(float)
    rest = int(np.argmin(probs[:-1].mean(1)))
    auto = run_predict([clip, single], drop, detect=False, neutral="auto", frames=True)
    assert auto.summary["resting_frames"] == {
        str(clip): {"image": str(clip / f"{rest:03d}.png"), "mean_prob": pytest.approx(probs[rest].mean(), abs=1e-4)}
    }
    got = auto.rows[names].to_numpy(float)
    np.testing.assert_allclose(got[-1], probs[-1], atol=1e-6)  # the folder of one photo: alone
    given = run_predict([clip], drop, detect=False, neutral=clip / f"{rest:03d}.png")
    np.testing.assert_allclose(got[:-1], given.rows[names].to_numpy(float), atol=1e-5)
    assert np.abs(got[:-1] - probs[:-1]).max() > 0.01  # beside the resting frame is not alone
    photos = run_predict([clip], drop, detect=False, neutral="auto")  # without --frames: photos, each alone
    np.testing.assert_allclose(photos.rows[names].to_numpy(float), probs[:-1], atol=1e-6)
    assert photos.summary["resting_frames"] == {}
    assert photos.summary["thresholds_alone"]["source"] == "the run's per-AU thresholds for faces read alone"

    capsys.readouterr()
    argv = ["predict", str(clip), "--run", str(drop), "--no-detect", "--neutral", "auto", "--frames"]
    assert main([*argv, "--out", str(tmp_path / "aus.csv")]) == 0
    assert f"resting frame of {clip}: {clip / f'{rest:03d}.png'} (mean AU probability" in capsys.readouterr().err
    assert main(["predict", str(clip), "--run", str(drop), "--no-detect", "--frames"]) == 2
    assert "give --neutral auto too" in capsys.readouterr().err
