"""A person's face beyond ICT's identity space: SynthAU's `shape` factor (on trial).

ICT's 100 identity modes span the faces ICT scanned. Another face model's people lie partly outside that span (a brow
ridge that juts or recedes, flatter cheekbones, a deeper eye socket), and a run that reads AU4 from how ICT's brow
region is shaded may not read it on a face shaped otherwise. With `shape` on, each person's face at rest is sculpted
by a smooth random field along its surface normals: a sum of WAVES plane waves (wavelengths WAVELENGTH cm, variance
1) times AMPLITUDE cm (a person's amplitude drawn in AMPLITUDE). The lids and the lips' inner edges stay as ICT's
(the field fades out near the eyeballs and the mouth's opening), and the eyeballs, teeth and sockets never move. The
same sculpting is under every expression of the person: the AUs move the face as before, the labels are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WAVES = 8
WAVELENGTH = (4.0, 12.0)  # cm: the size of a brow ridge, a cheekbone, a nose bridge
AMPLITUDE = (0.08, 0.25)  # cm per unit of field: at two standard deviations a 0.15-0.5 cm bump or hollow
EYE_FADE = (1.4, 2.3)  # cm from an eye's centre: no change inside, the full field outside
MOUTH_FADE = (0.3, 1.1)  # cm from the lips' inner edge


@dataclass(frozen=True)
class Shape:
    directions: np.ndarray  # (WAVES, 3) unit vectors
    wavelengths: np.ndarray  # (WAVES,) cm
    phases: np.ndarray  # (WAVES,) radians
    amplitude: float  # cm


def sample_shape(rng: np.random.Generator) -> Shape:
    d = rng.standard_normal((WAVES, 3))
    return Shape(
        directions=d / np.linalg.norm(d, axis=-1, keepdims=True),
        wavelengths=rng.uniform(*WAVELENGTH, WAVES),
        phases=rng.uniform(0, 2 * np.pi, WAVES),
        amplitude=float(rng.uniform(*AMPLITUDE)),
    )


def sculpt(shape: Shape, verts: np.ndarray, normals: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """`verts` (V, 3) cm moved along `normals` by the field, times `weight` (V,) in [0, 1]."""
    phase = 2 * np.pi * (verts @ shape.directions.T) / shape.wavelengths
    field = np.sqrt(2.0 / WAVES) * np.cos(phase + shape.phases).sum(-1)
    return verts + (shape.amplitude * field * weight)[:, None] * normals
