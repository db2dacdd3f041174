"""What SynthAU draws in the image after the face: the background, occluders and camera degradations.

Occluders are drawn from the projected 68 landmarks, supersampled 4x and anti-aliased: glasses (frames, tinted or dark
lenses, a glare), a hand (palm, fingers, thumb; skin colour taken from the rendered face, a soft shadow) and a face
mask (cloth over nose, mouth and chin, shaded, with pleats and ear loops). Facial hair is drawn by the shader on the
skin (hiva_core.synth.shading). An occluded AU keeps its label, as in real data.

Degradations, in camera order: white balance and gamma, defocus and motion blur, low resolution, sensor noise (JPEG
compression is the writer's, at the sample's quality).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SUPERSAMPLE = 4
GLASSES_P, HAND_P, MASK_P = 0.2, 0.08, 0.05
MASK_COLOURS = np.array(
    [[0.55, 0.72, 0.88], [0.92, 0.92, 0.90], [0.08, 0.08, 0.09], [0.45, 0.46, 0.5], [0.8, 0.6, 0.7]]
)
FRAME_COLOURS = np.array([[0.03, 0.03, 0.03], [0.25, 0.14, 0.07], [0.6, 0.6, 0.62], [0.7, 0.55, 0.25], [0.5, 0.1, 0.1]])


def sample_occluders(rng: np.random.Generator) -> tuple[dict, ...]:
    """Occluders of one sample (the `occluders` factor): each kind independently, every draw made either way."""
    dark = rng.uniform() < 0.2
    glasses = {
        "kind": "glasses",
        "power": float(rng.choice([2.0, 3.0, 5.0])),  # lens outline: ellipse .. rounded rectangle
        "scale": float(rng.uniform(1.4, 1.85)),  # lens width / eye width
        "aspect": float(rng.uniform(0.6, 0.95)),
        "lift": float(rng.uniform(-0.1, 0.2)),
        "thickness": float(rng.uniform(0.03, 0.11)),  # of the eye distance
        "frame": FRAME_COLOURS[rng.integers(len(FRAME_COLOURS))].tolist(),
        "tint": (rng.uniform(0.0, 0.25, 3) if dark else rng.uniform(0.7, 1.0, 3)).tolist(),
        "opacity": float(rng.uniform(0.75, 0.93) if dark else rng.uniform(0.0, 0.12)),
        "glare": float(rng.uniform(0.0, 0.3)),
    }
    anchor = str(rng.choice(["chin", "mouth", "cheek"]))
    hand = {
        "kind": "hand",
        "anchor": anchor,
        "side": int(rng.choice([-1, 1])),
        "angle": float(rng.normal(0, 18)),  # degrees off the anchor's own direction
        "size": float(rng.uniform(0.75, 1.0)),  # of the face width
        "shift": rng.normal(0, 0.06, 2).tolist(),  # of the face width
        "spread": float(rng.uniform(0.0, 8.0)),  # degrees between fingers
        "tone": float(rng.uniform(0.85, 1.1)),
    }
    mask = {
        "kind": "mask",
        "rgb": (MASK_COLOURS[rng.integers(len(MASK_COLOURS))] * rng.uniform(0.85, 1.1)).clip(0, 1).tolist(),
        "top": float(rng.uniform(0.35, 0.75)),  # from the nose tip up towards the bridge
        "pleats": bool(rng.uniform() < 0.6),
    }
    chosen = [occ for occ, p in ((mask, MASK_P), (glasses, GLASSES_P), (hand, HAND_P)) if rng.uniform() < p]
    return tuple(chosen)


# ---------------------------------------------------------------------------------------------------------- drawing
class _Canvas:
    """A supersampled greyscale mask; `alpha()` gives it back at image size in [0, 1]."""

    def __init__(self, size: int):
        self.size, self.ss = size, SUPERSAMPLE
        self.image = Image.new("L", (size * self.ss, size * self.ss), 0)
        self.draw = ImageDraw.Draw(self.image)

    def _pts(self, pts) -> list[tuple[float, float]]:
        return [(float(x) * self.ss, float(y) * self.ss) for x, y in np.asarray(pts).reshape(-1, 2)]

    def polygon(self, pts, value: int = 255) -> None:
        self.draw.polygon(self._pts(pts), fill=value)

    def line(self, pts, width: float, value: int = 255) -> None:
        pts = self._pts(pts)
        w = max(1, round(width * self.ss))
        self.draw.line(pts, fill=value, width=w, joint="curve")
        for x, y in (pts[0], pts[-1]):  # round caps
            self.draw.ellipse([x - w / 2, y - w / 2, x + w / 2, y + w / 2], fill=value)

    def alpha(self, blur: float = 0.0) -> np.ndarray:
        img = self.image.filter(ImageFilter.GaussianBlur(float(blur * self.ss))) if blur > 0 else self.image
        return np.asarray(img.resize((self.size, self.size), Image.Resampling.BOX), dtype=np.float64)[..., None] / 255


def _rot(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _superellipse(centre, half_w: float, half_h: float, power: float, angle: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    pts = np.stack([half_w * np.sign(c) * np.abs(c) ** (2 / power), half_h * np.sign(s) * np.abs(s) ** (2 / power)], 1)
    return pts @ _rot(angle).T + np.asarray(centre)


def _scene_light(img: np.ndarray, alpha: np.ndarray, skin) -> float:
    """How bright the face came out relative to its albedo (to light flat occluders alike)."""
    face = img[alpha[..., 0] > 0.99]
    if len(face) == 0:
        return 1.0
    return float(np.clip(np.median(face.mean(1)) / max(np.mean(skin), 0.05), 0.35, 1.4))


def _blend(img: np.ndarray, alpha: np.ndarray, colour) -> np.ndarray:
    return img * (1 - alpha) + np.asarray(colour, dtype=np.float64) * alpha


def _glasses(img, lm, occ, light) -> np.ndarray:
    eyes = [lm[36:42].mean(0), lm[42:48].mean(0)]
    widths = [np.linalg.norm(lm[39] - lm[36]), np.linalg.norm(lm[45] - lm[42])]
    axis = eyes[1] - eyes[0]
    iod = max(np.linalg.norm(axis), 1.0)
    angle = np.arctan2(axis[1], axis[0])
    up = np.array([np.sin(angle), -np.cos(angle)])  # image up, perpendicular to the eye line
    size = img.shape[0]
    lens, ring, arms = _Canvas(size), _Canvas(size), _Canvas(size)
    thick = occ["thickness"] * iod
    outlines = []
    for eye, width in zip(eyes, widths, strict=True):
        half_w = max(width, 0.25 * iod) * occ["scale"] / 2
        half_h = half_w * occ["aspect"]
        centre = eye + up * occ["lift"] * half_h
        pts = _superellipse(centre, half_w, half_h, occ["power"], angle)
        outlines.append(pts)
        lens.polygon(pts)
        ring.line(np.vstack([pts, pts[:1]]), thick)
    inner = [outlines[0][np.argmax(outlines[0] @ axis)], outlines[1][np.argmin(outlines[1] @ axis)]]
    mid = (inner[0] + inner[1]) / 2 + up * 0.12 * iod
    ring.line([inner[0] + up * 0.05 * iod, mid, inner[1] + up * 0.05 * iod], thick * 0.8)
    for pts, ear, sign in ((outlines[0], lm[0], -1), (outlines[1], lm[16], 1)):
        outer = pts[np.argmax(sign * (pts @ axis))]
        if sign * ((ear - outer) @ axis) > 0:  # the temple arm is seen only where the ear side faces the camera
            arms.line([outer, outer + (ear + up * 0.25 * iod - outer) * 0.9], thick * 0.7)
    a_lens = lens.alpha()
    img = _blend(img, a_lens * occ["opacity"], np.asarray(occ["tint"]) * light)
    # A soft glare band across the lenses.
    yy, xx = np.mgrid[0:size, 0:size]
    band = np.exp(-(((xx - yy) - (eyes[0][0] - eyes[0][1]) - 0.2 * iod) ** 2) / (2 * (0.12 * iod) ** 2))
    img = np.clip(img + a_lens * band[..., None] * occ["glare"], 0, 1)
    frame = np.asarray(occ["frame"]) * light
    return _blend(img, np.clip(ring.alpha() + arms.alpha(), 0, 1), frame)


def _skin_colour(img: np.ndarray, face: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """The median rendered colour of the cheeks (face pixels between the eyes' and the mouth's height)."""
    size = img.shape[0]
    y0, y1 = (int(np.clip(v, 0, size - 1)) for v in (lm[29, 1], lm[33, 1] + 1))
    x0, x1 = (int(np.clip(v, 0, size - 1)) for v in (lm[2, 0], lm[14, 0] + 1))
    region = img[y0:y1, x0:x1][face[y0:y1, x0:x1, 0] > 0.99]
    if len(region):
        return np.median(region, axis=0)
    return img[int(np.clip(lm[30, 1], 0, size - 1)), int(np.clip(lm[30, 0], 0, size - 1))]  # the nose tip's pixel


def _hand(img, face, lm, occ, light_dir) -> np.ndarray:
    size = img.shape[0]
    face_w = max(np.linalg.norm(lm[16] - lm[0]), 4.0) * occ["size"]
    side = occ["side"]
    if occ["anchor"] == "chin":  # palm under the chin, fingers up along the jaw
        knuckles, direction = lm[8] + np.array([0.15 * side, -0.05]) * face_w, -90.0 + 25.0 * side
    elif occ["anchor"] == "mouth":  # fingers across the mouth from one side
        knuckles, direction = lm[62] + np.array([0.3 * side, 0.05]) * face_w, 90.0 + 90.0 * side
    else:  # a hand against one cheek, fingers up
        knuckles, direction = lm[3 if side < 0 else 13] + np.array([-0.05 * side, 0.0]) * face_w, -90.0 - 10.0 * side
    knuckles = knuckles + np.asarray(occ["shift"]) * face_w
    rot = _rot(np.radians(direction + occ["angle"]))
    u, v = rot @ np.array([1.0, 0.0]), rot @ np.array([0.0, 1.0])  # along the fingers, across them

    def at(a: float, b: float) -> np.ndarray:
        return knuckles + (a * u + b * v) * face_w

    palm = [at(0.02, -0.21), at(0.02, 0.21), at(-0.55, 0.19), at(-1.2, 0.17), at(-1.2, -0.17), at(-0.5, -0.2)]
    body, seams = _Canvas(size), _Canvas(size)
    body.polygon(palm)
    finger_w = 0.095 * face_w
    offsets, lengths = (-0.15, -0.05, 0.05, 0.15), (0.3, 0.37, 0.35, 0.27)
    tips = []
    for k, (offset, length) in enumerate(zip(offsets, lengths, strict=True)):
        tips.append(at(0, offset) + (_rot(np.radians(occ["spread"] * (k - 1.5))) @ u) * length * face_w)
        body.line([at(0, offset), tips[-1]], finger_w)
    for k in range(1, 4):  # the dark seams between neighbouring fingers
        root = at(0.0, (offsets[k - 1] + offsets[k]) / 2)
        seams.line([root, root + ((tips[k - 1] + tips[k]) / 2 - root) * 0.8], 0.012 * face_w)
    thumb_base = at(-0.42, -0.2 * side)
    body.line([thumb_base, thumb_base + (_rot(np.radians(-40 * side)) @ u) * 0.3 * face_w], finger_w * 1.1)
    a = body.alpha()
    # Skin colour from the rendered cheek (the face's own light), a soft shadow on the face beside the hand.
    tone = np.clip(_skin_colour(img, face, lm) * occ["tone"], 0, 1)
    shift = np.array([-light_dir[0], light_dir[1]]) * 0.04 * face_w
    shadow = _shifted(a, int(round(shift[1])), int(round(shift[0])))
    img = img * (1 - 0.35 * _soft(shadow, 0.02 * face_w))
    yy = np.mgrid[0:size, 0:size][0][..., None] / size
    hand = np.clip(tone * (0.85 + 0.25 * (1 - yy)), 0, 1)  # brighter towards the top, as under a light from above
    img = _blend(img, a, hand)
    return _blend(img, seams.alpha() * a * 0.6, tone * 0.5)


def _shifted(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`a` moved by (dy, dx) pixels, zeros coming in at the edges (np.roll would wrap them round)."""
    out = np.zeros_like(a)
    h, w = a.shape[:2]
    if abs(dy) < h and abs(dx) < w:
        out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[
            max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
        ]
    return out


def _soft(alpha: np.ndarray, sigma: float) -> np.ndarray:
    img = Image.fromarray((alpha[..., 0] * 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(float(max(sigma, 0.5))))
    return np.asarray(img, dtype=np.float64)[..., None] / 255


def _mask(img, lm, occ, light, light_dir) -> np.ndarray:
    size = img.shape[0]
    face_w = max(np.linalg.norm(lm[16] - lm[0]), 4.0)
    top = lm[30] + occ["top"] * (lm[28] - lm[30])
    centre = lm[27:31, 0].mean()
    left, right = lm[1] + (lm[1] - top) * 0.05, lm[15] + (lm[15] - top) * 0.05
    t = np.linspace(0, 1, 9)[1:-1, None]
    upper = [(1 - t) ** 2 * left + 2 * (1 - t) * t * (top + (top - (left + right) / 2) * 0.3) + t**2 * right]
    jaw = lm[2:15][::-1]
    out = (jaw - lm[30]) * 1.04 + lm[30]  # a little beyond the jaw line
    out[len(out) // 2] += np.array([0.0, 0.04 * face_w])  # under the chin
    poly = np.vstack([left, *upper, right, out])
    canvas = _Canvas(size)
    canvas.polygon(poly)
    a = canvas.alpha()
    xx = np.mgrid[0:size, 0:size][1] / size
    half = max(abs(right[0] - left[0]) / 2 / size, 0.05)
    across = np.clip((xx - centre / size) / half, -1, 1)
    shade = (0.72 + 0.28 * np.cos(across * np.pi / 2.2)) * (1 + 0.2 * light_dir[0] * across)
    cloth = np.clip(np.asarray(occ["rgb"]) * light * shade[..., None], 0, 1)
    img = _blend(img, a, cloth)
    if occ["pleats"]:
        pleats = _Canvas(size)
        for k in (0.3, 0.5, 0.7):
            y0 = top[1] + (lm[8, 1] - top[1]) * k
            pleats.line(
                [(left[0] + 0.05 * face_w, y0), (centre, y0 + 0.02 * face_w), (right[0] - 0.05 * face_w, y0)],
                0.012 * face_w,
            )
        img = _blend(img, pleats.alpha() * a * 0.5, cloth.mean((0, 1)) * 0.5)
    loops = _Canvas(size)
    for corner, ear in ((left, lm[0]), (right, lm[16])):
        loops.line([corner, ear + (ear - top) * 0.03], 0.012 * face_w)
    return _blend(img, loops.alpha() * (1 - a) * 0.8, np.asarray(occ["rgb"]) * light)


def draw_occluders(img: np.ndarray, alpha: np.ndarray, landmarks: np.ndarray, params) -> np.ndarray:
    """Draw the sample's occluders over the (H, W, 3) float image in [0, 1]; `alpha` is the face's coverage."""
    if not params.occluders:
        return img
    light = _scene_light(img, alpha, params.identity.skin)
    for occ in params.occluders:
        if occ["kind"] == "mask":
            img = _mask(img, landmarks, occ, light, params.key_dir)
        elif occ["kind"] == "glasses":
            img = _glasses(img, landmarks, occ, light)
        elif occ["kind"] == "hand":
            img = _hand(img, alpha, landmarks, occ, params.key_dir)
        else:
            raise ValueError(f"unknown occluder kind {occ['kind']!r}")
    return np.clip(img, 0, 1)


# ------------------------------------------------------------------------------------------------- background, camera
def background(params, size: int) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: a flat colour, a linear gradient or smooth blotchy noise."""
    bg = params.background
    c1, c2 = np.array(bg["c1"]), np.array(bg["c2"])
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    if bg["kind"] == "flat":
        t = np.zeros((size, size))
    elif bg["kind"] == "gradient":
        t = (xx - 0.5) * np.cos(bg["angle"]) + (yy - 0.5) * np.sin(bg["angle"]) + 0.5
    else:
        rng = np.random.default_rng(bg["seed"])
        cells = rng.uniform(size=(bg["cells"], bg["cells"]))
        t = np.asarray(Image.fromarray((cells * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)) / 255.0
    t = np.clip(t, 0, 1)[..., None]
    return c1 * (1 - t) + c2 * t


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    n = max(3, int(np.ceil(length)) | 1)
    k = np.zeros((n, n))
    c = n // 2
    d = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    for s in np.linspace(-length / 2, length / 2, 4 * n):
        x, y = c + s * d
        k[int(round(y)), int(round(x))] += 1.0
    return k / k.sum()


def degrade(img: np.ndarray, params) -> np.ndarray:
    """Camera effects on the (H, W, 3) float image in [0, 1] -> uint8 (see the module docstring for the order)."""
    size = img.shape[0]
    if params.color_gain != (1.0, 1.0, 1.0) or params.gamma != 1.0:
        img = np.clip(img * np.asarray(params.color_gain), 0, 1) ** params.gamma
    img8 = Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    if params.blur > 0:
        img8 = img8.filter(ImageFilter.GaussianBlur(params.blur * size / 256))
    out = np.asarray(img8, dtype=np.float32)
    length, angle = params.motion_blur
    if length * size / 256 >= 1.0:
        from scipy.ndimage import convolve

        kernel = _motion_kernel(length * size / 256, angle)
        out = np.stack([convolve(out[..., c], kernel, mode="nearest") for c in range(3)], axis=-1)
    small = max(8, round(256 * params.downscale))  # captured at this size; a smaller render has less already
    if small < size:
        tmp = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8)).resize((small, small), Image.BILINEAR)
        out = np.asarray(tmp.resize((size, size), Image.BICUBIC), dtype=np.float32)
    if params.noise > 0:
        out = out + np.random.default_rng(params.noise_seed).normal(0, params.noise, out.shape)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
