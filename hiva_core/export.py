"""`hiva_core export`: a trained run → one self-contained ONNX file.

The text prior is folded in: its (A, K, D) embeddings and (A, K) mask become constants of the graph, and constant
folding evaluates the text branch on them at export time, so the ONNX model takes only images:

    input   images  float32 (batch, 3, S, S), ImageNet-normalised aligned face crops (S = the run's image_size);
                    (batch, 6, S, S) for a run with model.reference: each face, then its neutral frame
    output  probs   float32 (batch, A)        AU probabilities (sigmoid of the logits), AUs in the run's order
    output  maps    float32 (batch, A, h, w)  DDCA text→vision attention maps (absent for models without DDCA)

The images are faces aligned as hiva_core aligns them (`hiva_core.faces.align`: five landmarks to the 256-px
template, what `hiva_core predict` crops), each resized to a shorter side of round(S·256/224), centre-cropped to S,
scaled to [0, 1] and normalised with the ImageNet mean and std (`hiva_core.data.transforms.build_transforms(S)`).

The ONNX metadata (`metadata_props`) says how to feed it and read it: `hiva.aus` (JSON list of AU codes, the order
of the outputs), `hiva.image_size` (S), `hiva.mean` and `hiva.std` (JSON lists, RGB), `hiva.outputs`, `hiva.run`,
and the calls `hiva_core predict` makes: `hiva.thresholds` (JSON object {"AU1": t, ...}: an AU is present when its
probability is at or above t; 0.5 for an AU the run has no threshold for) with `hiva.thresholds_source` (where they
come from), and for a run with `model.reference_dropout` `hiva.thresholds_alone` (for faces fed without their
neutral frame). Needs `pip install onnx onnxscript` (torch's exporter) and, to check the file against PyTorch,
`onnxruntime`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from augtext.errors import UserError, short_error

OPSET = 18
# The lowest opset torch's (dynamo) exporter implements: asked for less, it writes 18 anyway after a failed
# conversion, and onnx's version converter cannot take this model lower either (LayerNormalization is new in 17,
# ReduceMean changed in 18). The highest is the installed onnx package's newest.
MIN_OPSET = 18
FOLD_LIMIT = 1 << 26  # elements: constant-fold tensors up to 64 M values (256 MB of float32)
INSTALL_HINT = "pip install onnx onnxscript onnxruntime"


class PriorFolded(nn.Module):
    """The model with its text prior as buffers: `forward(images) -> (probs, maps)` (or `(probs,)` without maps)."""

    def __init__(self, model: nn.Module, text_emb: torch.Tensor, text_mask: torch.Tensor, with_maps: bool):
        super().__init__()
        self.model = model
        self.register_buffer("text_emb", text_emb.detach().clone())
        self.register_buffer("text_mask", text_mask.detach().clone())
        self.with_maps = with_maps

    def forward(self, images: torch.Tensor):
        out = self.model(images, self.text_emb, self.text_mask)
        probs = torch.sigmoid(out["logits"].float())
        return (probs, out["maps"].float()) if self.with_maps else (probs,)


def export_onnx(
    run, onnx: str | os.PathLike, *, opset: int = OPSET, verify: bool = True, atol: float = 1e-4
) -> dict[str, Any]:
    """Export run folder `run` (or a LoadedRun) to `onnx` (written atomically); returns a small report.

    verify=True (and onnxruntime installed) runs the file on a random batch and compares with PyTorch: a difference
    above `atol` is an error. The report holds the path, outputs, AUs, image size, the per-AU thresholds written to
    the metadata and the largest difference seen.
    """
    try:
        import onnx as onnx_lib  # torch.onnx needs it; fail early with the install line
        import onnxscript  # noqa: F401
    except ImportError:
        raise UserError(f"ONNX export needs the onnx and onnxscript packages: {INSTALL_HINT}") from None
    from augtext.io import atomic_path, check_output_file
    from hiva_core.checkpoint import LoadedRun, load_run
    from hiva_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from hiva_core.serialize import check_finite

    onnx = Path(onnx)
    newest = onnx_lib.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise UserError(
            f"--opset {opset}: the ONNX exporter of torch {torch.__version__.split('+')[0]} writes opsets "
            f"{MIN_OPSET} to {newest}; use one of them (the default {OPSET} runs on any recent "
            "onnxruntime)"
        )
    if onnx.suffix.lower() != ".onnx":
        raise UserError(f"--onnx {onnx}: the output file must end in .onnx")
    check_output_file(onnx, "--onnx", "model.onnx")
    loaded = run if isinstance(run, LoadedRun) else load_run(run, device="cpu")
    model = loaded.model.to("cpu").eval()
    check_finite(model.state_dict(), f"the model of {loaded.run_dir}")  # also a LoadedRun changed in memory
    size = loaded.image_size
    example = torch.randn(2, loaded.channels, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        probe = model(example, loaded.text_emb.cpu(), loaded.text_mask.cpu())
    if not bool(torch.isfinite(probe["logits"]).all()):
        raise UserError(
            f"the model of {loaded.run_dir} gives non-finite outputs (NaN/inf) on a random batch; nothing to export"
        )
    with_maps = probe.get("maps") is not None
    wrapper = PriorFolded(model, loaded.text_emb.cpu(), loaded.text_mask.cpu(), with_maps).eval()
    outputs = ["probs", "maps"] if with_maps else ["probs"]
    thresholds, source = loaded.au_thresholds()
    metadata = {
        "hiva.aus": json.dumps(loaded.aus),
        "hiva.image_size": str(size),
        "hiva.mean": json.dumps(list(IMAGENET_MEAN)),
        "hiva.std": json.dumps(list(IMAGENET_STD)),
        "hiva.run": str(loaded.run_dir),
        "hiva.outputs": json.dumps(outputs),
        "hiva.thresholds": _by_au(loaded.aus, thresholds),
        "hiva.thresholds_source": source,
    }
    if loaded.reference and loaded.alone_thresholds:  # faces fed without their neutral frame
        metadata["hiva.thresholds_alone"] = _by_au(loaded.aus, loaded.au_thresholds(alone=True)[0])
    with atomic_path(onnx) as tmp:
        _export(wrapper, example, tmp, outputs, opset)
        _add_metadata(tmp, opset, metadata)
    report: dict[str, Any] = {
        "onnx": str(onnx),
        "outputs": outputs,
        "aus": loaded.aus,
        "image_size": size,
        "thresholds": json.loads(metadata["hiva.thresholds"]),
        "opset": opset,
        "max_abs_diff": None,
    }
    if verify:
        report["max_abs_diff"] = check_parity(wrapper, onnx, example, atol=atol)
    return report


def _by_au(aus: list[int], thresholds: list[float]) -> str:
    """Per-AU thresholds as the metadata holds them: a JSON object {"AU1": t, ...} in the AUs' order."""
    from augtext.facs import au_label

    return json.dumps({au_label(a): float(t) for a, t in zip(aus, thresholds, strict=True)})


def _export(wrapper: nn.Module, example: torch.Tensor, path: Path, outputs: list[str], opset: int) -> None:
    import onnxscript.optimizer

    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        program = torch.onnx.export(
            wrapper,
            (example,),
            input_names=["images"],
            output_names=outputs,
            opset_version=opset,
            dynamo=True,
            dynamic_shapes={"images": {0: batch}},
            optimize=False,
            verbose=False,
        )
        # Constant folding with limits large enough for the prior (A x K x D) and the text MLP's weights, so the
        # text branch is evaluated here, once, instead of in every inference call (the default limits skip it).
        quiet = logging.getLogger("onnxscript")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            onnxscript.optimizer.optimize(program.model, input_size_limit=FOLD_LIMIT, output_size_limit=FOLD_LIMIT)
        finally:
            quiet.setLevel(level)
        program.save(str(path))
    except Exception as exc:  # noqa: BLE001 - exporter errors are many types; say which model failed and why
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"ONNX export failed for this model ({type(exc).__name__}: {first})") from exc


def _add_metadata(path: Path, opset: int, items: dict[str, str]) -> None:
    """Check that the file holds the opset asked for, add the metadata."""
    import onnx as onnx_lib

    proto = onnx_lib.load(str(path))
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != opset:
        raise UserError(
            f"--opset {opset}: torch's exporter wrote opset {written} instead; nothing was written "
            f"(export with --opset {written})"
        )
    for key, value in items.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx_lib.checker.check_model(proto)
    onnx_lib.save(proto, str(path))


def run_onnx(path: str | os.PathLike, images: np.ndarray) -> dict[str, np.ndarray]:
    """Run an exported file with onnxruntime (CPU) on normalised images (B, 3, S, S) -> {"probs", "maps"?}."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError(f"running ONNX files needs onnxruntime: {INSTALL_HINT}") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"images": images.astype(np.float32)}), strict=True))


def check_parity(wrapper: nn.Module, path: str | os.PathLike, images: torch.Tensor, atol: float = 1e-4) -> float | None:
    """Largest |PyTorch - onnxruntime| over all outputs; UserError above `atol`; None without onnxruntime."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    with torch.no_grad():
        expected = [t.numpy() for t in wrapper(images)]
    try:
        got = run_onnx(path, images.numpy())
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors (e.g. an opset newer than it knows) are many types
        raise UserError(
            f"onnxruntime cannot run {path} ({short_error(exc)}); export with an older --opset, or "
            "skip this check with --no-verify"
        ) from None
    diff = max(float(np.abs(got[name] - ref).max()) for name, ref in zip(got, expected, strict=True))
    if not np.isfinite(diff) or diff > atol:
        raise UserError(f"{path}: onnxruntime differs from PyTorch by {diff:.2e} (> {atol:.0e}); the export is wrong")
    return diff
