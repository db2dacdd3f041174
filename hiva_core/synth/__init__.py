"""SynthAU: faces rendered from the ICT-FaceKit model with exact Action Unit labels.

`run_synth(out, n, size, seed, face_model, workers, shifted, factors)` writes `out/images/*.jpg` + `out/manifest.csv`
(see `hiva_core.synth.writer`); `import_ict(src_dir, out_npz)` converts the upstream OBJ folder into the face model.
The AU -> blendshape table is `hiva_core.synth.aumap.AU_BLENDSHAPES`; the factors of variation (`--factors`) are in
`factors`, the scene draws in `sampling`, the BP4D calibration in `calibration`, a person's look in `look`, the
shaders in `shading`, occluders and camera effects in `overlays`.
"""

from __future__ import annotations

from hiva_core.synth.aumap import AU_BLENDSHAPES, OCCURRENCE_THRESHOLD, SYNTH_AUS
from hiva_core.synth.writer import manifest_columns, run_synth


def import_ict(src_dir, out_npz, partial: bool = False):
    """Convert the upstream ICT-FaceKit FaceXModel folder into the npz face model (see synth.import_ict)."""
    from hiva_core.synth.import_ict import import_ict as _import

    return _import(src_dir, out_npz, partial=partial)


__all__ = ["AU_BLENDSHAPES", "OCCURRENCE_THRESHOLD", "SYNTH_AUS", "import_ict", "manifest_columns", "run_synth"]
