"""Session-scoped fixtures for the hiva_core tests: a real text cache and a tiny, learnable labelled face set.

Both are built once per session and are read-only: a test that changes one copies it under its own tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hiva_core.imagefix import write_manifest

TINY_AUS = (1, 2, 4)
TINY_PX = 40  # written size; models train on 32 px crops of it
# Each AU paints a coloured band at its own height: a pattern a tiny CNN learns in a few epochs, and one that
# survives the training transforms (resize, random crop of a few pixels, horizontal flip, colour jitter).
_BANDS = {1: ((2, 11), (255, 60, 60)), 2: ((15, 24), (60, 255, 60)), 4: ((28, 37), (60, 60, 255))}


def write_au_face(path: Path, labels: dict[int, int], seed: int, size: int = TINY_PX) -> Path:
    """A dark noisy image with a bright band per present AU."""
    rng = np.random.default_rng(seed)
    image = rng.normal(50, 15, size=(size, size, 3))
    for au, present in labels.items():
        if present:
            (top, bottom), colour = _BANDS[au]
            image[top:bottom] = np.asarray(colour) + rng.normal(0, 10, size=(bottom - top, size, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB").save(path)
    return path


def make_tiny_faces(root: Path, n: int = 96, folds: int = 3, seed: int = 0) -> Path:
    """`root/manifest.csv` (path, AU1, AU2, AU4, fold, subject) + n PNGs; every AU present in about half the
    frames, each fold holds its own subjects. Returns the manifest path."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        labels = {au: int(rng.random() < 0.5) for au in TINY_AUS}
        rel = f"img/{i:03d}.png"
        write_au_face(root / rel, labels, seed=seed * 100_000 + i)
        fold = i % folds + 1
        rows.append(
            {"path": rel, **{f"AU{au}": v for au, v in labels.items()}, "fold": fold, "subject": f"S{fold}{i % 4}"}
        )
    return write_manifest(root / "manifest.csv", rows)


@pytest.fixture(scope="session")
def text_cache(tmp_path_factory) -> Path:
    """A real augtext cache (descriptions + offline MiniLM embeddings, 384-d) for AU1, AU2, AU4 and AU6."""
    from tests.textcache import make_text_cache

    return make_text_cache(tmp_path_factory.mktemp("text_cache"), aus=[*TINY_AUS, 6], per_au=4)


@pytest.fixture(scope="session")
def tiny_faces(tmp_path_factory) -> Path:
    """The manifest of 96 learnable 40-px faces with AU1/AU2/AU4 labels and a fold column (3 folds)."""
    return make_tiny_faces(tmp_path_factory.mktemp("tiny_faces"))


# ------------------------------------------------------------------------------------------------------ SynthAU
@pytest.fixture(scope="session")
def face_model_path(shared_data) -> Path:
    """The ICT-FaceKit light face model of ../shared, or a skip without it."""
    path = shared_data / "ict-facekit" / "ict_facekit_light.npz"
    if not path.is_file():
        pytest.skip(f"no face model at {path}")
    return path


def make_renderer(face_model_path: Path, size: int):
    """A SynthAU Renderer, or a skip where there is no offscreen OpenGL."""
    from augtext.errors import UserError
    from hiva_core.synth.facemodel import load_face_model
    from hiva_core.synth.render import Renderer

    try:
        return Renderer(load_face_model(face_model_path), size)
    except UserError as exc:
        pytest.skip(f"no offscreen OpenGL here: {exc}")


# ------------------------------------------------------------------------------------------- tiny training runs
def train_argv(text_cache: Path, data: Path, out: Path, *extra: str, epochs: int = 6) -> list[str]:
    """`hiva_core train` arguments for a tiny, fast run (tiny backbone, d=32, 32-px crops, no workers/bars).

    Every training subject is trained on (`data.val_fraction=0`: no validation slice, no thresholds.json), so that
    step counts and learning speed are those the tests count on; `--set data.val_fraction=F` (a later --set wins)
    holds a slice out to choose per-AU thresholds (tests/hiva_core/test_thresholds.py). The basic augmentation, not
    the default strong one: the toy faces are learnable in a few epochs under it."""
    return [
        "train",
        "--text-cache",
        str(text_cache),
        "--data",
        str(data),
        "--out",
        str(out),
        "--backbone",
        "tiny",
        "--no-pretrained",
        "--epochs",
        str(epochs),
        "--batch-size",
        "16",
        "--lr",
        "3e-3",
        "--image-size",
        "32",
        "--set",
        "data.num_workers=0",
        "--set",
        "model.dim=32",
        "--set",
        "model.heads=4",
        "--set",
        "train.progress=false",
        "--set",
        "train.tensorboard=false",
        "--set",
        "data.val_fraction=0",
        "--set",
        "data.augment=basic",  # the 40-px toy faces are learnable in 6 epochs under the basic recipe
        *extra,
    ]


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from intra-op threads, and threads spin badly on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, text_cache, tiny_faces):
    """A run folder trained on fold 1 of the tiny faces, plus a copy of the best model as it was when saved.

    Returns (run_dir, best_model): best_model is the in-memory model the trainer wrote to model.safetensors.
    """
    import copy

    import torch

    from hiva_core import run_folder
    from hiva_core.cli import main

    out = tmp_path_factory.mktemp("runs") / "tiny"
    saved = {}
    real_save = run_folder.save_model

    def spy(module, path):
        saved["model"] = copy.deepcopy(module).eval()
        real_save(module, path)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_folder, "save_model", spy)
        rc = main(train_argv(text_cache, tiny_faces, out, "--fold", "1"))
    torch.set_num_threads(threads)
    assert rc == 0
    return out, saved["model"]


REPO = Path(__file__).resolve().parents[2]
