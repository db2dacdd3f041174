"""How a person's face moves when it makes an AU: SynthAU's `motion` factor.

ICT's blendshapes give every face one way of making each AU: the same points move in the same directions, in
proportion. Faces differ there (anatomy, the depth of the tissue), and so do face models: another artist sculpts
another brow lowering (MakeHuman's lowers the brows without drawing them together; ICT's draws them together). A run
trained on one way learns that way's incidentals. With `motion` on, each person gets smooth random fields over the
face that change, in the face's plane (x sideways, y up), the mix of every point's movement (each part scaled on its
own, about 0.3-3.3 times, then the whole brought back to its length: the brows of one person lower more than they draw
together, another's the other way), turn its direction a little (about 15 degrees on average, never more than
MAX_TURN) and scale how far it goes (about 0.67-1.5 times; depth with it). The fields vary over several centimetres,
so the brows and the mouth, the left and the right, each vary on their own, and a point still moves the way its AU
moves it: up stays up, towards the midline stays towards it, never back. The labels are the AU intensities, as
before; only the expression's displacement changes (never the person at rest, the gaze, the eyeballs or the teeth).

A field is a sum of WAVES plane waves on the neutral mesh (cm): variance 1, wavelengths WAVELENGTH. The axes are the
face model's: x sideways, y up, z out of the face; depth keeps ICT's share (the lips stay in front of the teeth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WAVES = 6
WAVELENGTH = (5.0, 12.0)  # cm: the brows of one side vary apart from those of the other and from the mouth
MIX = 0.6  # log-scale per unit of field, x and y (before the length is restored): 0.3-3.3 at two std
TURN = 0.25  # radians per unit of field: the in-plane turn
MAX_TURN = 0.6  # radians (34 degrees): a point's movement never turns far from its AU's direction
SIZE = 0.2  # log-scale per unit of field of the movement's length: 0.67-1.5 at two standard deviations
FIELDS = 4  # the x and y mixes, the turn, the size


@dataclass(frozen=True)
class Motion:
    """FIELDS fields (the x and y mixes, the turn, the size) of WAVES plane waves each."""

    directions: np.ndarray  # (FIELDS, WAVES, 3) unit vectors
    wavelengths: np.ndarray  # (FIELDS, WAVES) cm
    phases: np.ndarray  # (FIELDS, WAVES) radians


def sample_motion(rng: np.random.Generator) -> Motion:
    d = rng.standard_normal((FIELDS, WAVES, 3))
    return Motion(
        directions=d / np.linalg.norm(d, axis=-1, keepdims=True),
        wavelengths=rng.uniform(*WAVELENGTH, (FIELDS, WAVES)),
        phases=rng.uniform(0, 2 * np.pi, (FIELDS, WAVES)),
    )


def motion_fields(motion: Motion, rest: np.ndarray, still: np.ndarray | None = None) -> np.ndarray:
    """The fields at `rest` (V, 3) cm: (V, 4) x mix, y mix, turn (radians), size. `still` (V,) bool marks points
    that keep ICT's motion (the eyeballs turn with the gaze, not an AU; the teeth with the jaw)."""
    phase = 2 * np.pi * np.einsum("vc,fkc->fvk", rest, motion.directions) / motion.wavelengths[:, None]
    field = np.sqrt(2.0 / WAVES) * np.cos(phase + motion.phases[:, None]).sum(-1)  # (FIELDS, V), variance 1
    out = np.stack(
        [
            np.exp(MIX * field[0]),
            np.exp(MIX * field[1]),
            np.clip(TURN * field[2], -MAX_TURN, MAX_TURN),
            np.exp(SIZE * field[3]),
        ],
        axis=1,
    )
    if still is not None:
        out[still] = (1.0, 1.0, 0.0, 1.0)
    return out.astype(np.float32)


def vary(displacement: np.ndarray, fields: np.ndarray) -> np.ndarray:
    """Each point's displacement (V, 3): its in-plane part re-mixed (its length kept) and turned, then the whole
    scaled by its size."""
    xy = displacement[:, :2]
    mixed = xy * fields[:, :2]
    mixed *= np.linalg.norm(xy, axis=1, keepdims=True) / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12)
    c, s = np.cos(fields[:, 2]), np.sin(fields[:, 2])
    turned = np.stack([c * mixed[:, 0] - s * mixed[:, 1], s * mixed[:, 0] + c * mixed[:, 1]], axis=1)
    return np.concatenate([turned, displacement[:, 2:]], axis=1) * fields[:, 3:]
