"""hiva_core: the HiVA facial Action Unit detector, its trainer, evaluator and predictor."""

from __future__ import annotations

__version__ = "0.1.0"


def load(run_dir, device=None):
    """Rebuild a trained model from a run folder for inference (no text cache needed). See hiva_core.checkpoint."""
    from hiva_core.checkpoint import load_run

    return load_run(run_dir, device=device)
