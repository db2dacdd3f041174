"""The SynthAU shaders and what they read: per-vertex surface maps (fixed per face model) and per-sample uniforms.

Blinn-Phong shading under up to MAX_LIGHTS directional lights and a sky/ground hemisphere light. On the skin the
fragment shader draws, from a person's `Look` (hiva_core.synth.look) and the sample's AU intensities:
- albedo detail (blotches, redness, freckles) and pores: value noise on the rest-pose surface, so it sticks to the skin;
- creases: grooves in a height field turned into normals by screen-space bump mapping (Mikkelsen 2010) and darkened,
  in regions fixed on the neutral face (`surface_maps`), each deepened by its AUs (look.crease_drive);
- eyebrows: bands along the landmark brow lines (shape, thickness, arch, tail, strands), moving with the brow vertices;
- scalp hair above a hairline, and facial hair in beard regions (moustache, chin, jaw, neck).
Patterns finer than a pixel fade to their mean (fwidth), so that small renders do not alias.
"""

from __future__ import annotations

import numpy as np

from hiva_core.synth.look import crease_drive

MAX_LIGHTS = 4
MAP_FLOATS = 20  # rest xyz + skin, brow (t, offset) + crow angle + nasolabial distance, 7 creases + pad, 4 beard

VERTEX_SHADER = """
#version 330
uniform mat4 mvp;
in vec3 in_pos; in vec3 in_normal; in vec3 in_color; in float in_ao; in vec2 in_spec;
in vec4 in_rest; in vec4 in_coord; in vec4 in_crease_a; in vec4 in_crease_b; in vec4 in_beard;
out vec3 v_pos; out vec3 v_normal; out vec3 v_color; out float v_ao; out vec2 v_spec;
out vec4 v_rest; out vec4 v_coord; out vec4 v_crease_a; out vec4 v_crease_b; out vec4 v_beard;
void main() {
    v_pos = in_pos; v_normal = in_normal; v_color = in_color; v_ao = in_ao; v_spec = in_spec;
    v_rest = in_rest; v_coord = in_coord; v_crease_a = in_crease_a; v_crease_b = in_crease_b; v_beard = in_beard;
    gl_Position = mvp * vec4(in_pos, 1.0);
}
"""
FRAGMENT_SHADER = """
#version 330
const float PI = 3.14159265;
uniform vec3 cam; uniform int n_lights; uniform vec3 light_dir[4]; uniform vec3 light_color[4];
uniform vec3 sky; uniform vec3 ground; uniform float specular;
uniform vec3 seed; uniform vec4 skin_detail;  // blotch, redness, freckles, pores (cm)
uniform vec4 drive_a; uniform vec4 drive_b;  // crease drives: forehead in, out, glabella, crow | naso, bunny, chin
uniform vec4 crease;  // depth (cm), forehead spacing (cm), crow's-feet lines per radian, darkening
uniform vec3 brow_rgb; uniform vec4 brow_shape;  // half width, offset, arch, taper (cm)
uniform vec4 brow_tex;  // tail, alpha, brow length (cm), sparse
uniform vec3 hair_rgb; uniform vec4 hairline;  // front, temple, back (cm), amount
uniform vec3 beard_rgb; uniform vec4 beard; uniform float beard_density;
in vec3 v_pos; in vec3 v_normal; in vec3 v_color; in float v_ao; in vec2 v_spec;  // v_spec: (extra shine, skin gloss)
in vec4 v_rest; in vec4 v_coord; in vec4 v_crease_a; in vec4 v_crease_b; in vec4 v_beard;
out vec4 f_color;

float hash(vec3 p) {
    p = fract(p * 0.3183099 + vec3(0.1, 0.2, 0.3));
    p *= 17.0;
    return fract(p.x * p.y * p.z * (p.x + p.y + p.z));
}
float vnoise(vec3 x) {
    vec3 i = floor(x); vec3 f = fract(x); f = f * f * (3.0 - 2.0 * f);
    vec2 e = vec2(1.0, 0.0);
    float a = mix(mix(hash(i), hash(i + e.xyy), f.x), mix(hash(i + e.yxy), hash(i + e.xxy), f.x), f.y);
    float b = mix(mix(hash(i + e.yyx), hash(i + e.xyx), f.x), mix(hash(i + e.yxx), hash(i + e.xxx), f.x), f.y);
    return mix(a, b, f.z);
}
float fbm(vec3 p) { return 0.6 * vnoise(p) + 0.4 * vnoise(2.03 * p); }
// Periodic grooves (1 on a line) of a phase that changes by `dphase` per pixel, faded to their mean where a period
// spans less than ~2.5 pixels (no aliasing on small renders).
float grooves(float phase, float sharp, float mean_value, float dphase) {
    float g = pow(0.5 + 0.5 * cos(2.0 * PI * phase), sharp);
    return mix(mean_value, g, clamp(1.6 - 2.5 * dphase, 0.0, 1.0));
}
// Screen-space bump mapping: the normal of the surface displaced by h along n.
vec3 bump(vec3 p, vec3 n, float h) {
    vec3 dpx = dFdx(p); vec3 dpy = dFdy(p);
    vec3 r1 = cross(dpy, n); vec3 r2 = cross(n, dpx);
    float det = dot(dpx, r1);
    vec3 grad = sign(det) * (dFdx(h) * r1 + dFdy(h) * r2);
    vec3 nb = abs(det) * n - grad;
    return length(nb) > 1e-12 ? normalize(nb) : n;
}

void main() {
    vec3 n = normalize(v_normal);
    vec3 v = normalize(cam - v_pos);
    if (dot(n, v) < 0.0) n = -n;  // inner surfaces (mouth socket) face the camera
    vec3 rest = v_rest.xyz; float skin = v_rest.w;
    vec3 albedo = v_color; float h = 0.0; float gloss = 1.0;
    // Derivatives first, in uniform control flow: the branches below skip work where a part is absent.
    float px = length(fwidth(rest));  // cm per pixel on the surface
    float dcrow = fwidth(v_coord.z) * crease.z / (2.0 * PI);
    #define RESOLVED(freq) clamp(1.6 - 2.5 * (freq) * px, 0.0, 1.0)

    if (skin > 0.0 && dot(skin_detail, vec4(1.0)) > 0.0) {  // blotches, redness (cm), freckles (mm), pores (bump)
        albedo *= 1.0 + skin * skin_detail.x * 2.0 * (fbm(rest * 0.45 + seed) - 0.5);
        float red = skin * skin_detail.y * smoothstep(0.45, 0.8, fbm(rest * 0.3 + seed.yzx));
        albedo = mix(albedo, albedo * vec3(1.04, 0.84, 0.84), red);
        float cheeks = exp(-pow(rest.x / 4.5, 2.0) - pow((rest.y - 1.0) / 3.0, 2.0));  // freckles: nose and cheeks
        if (skin_detail.z * cheeks > 0.01) {
            float fr = smoothstep(0.7, 0.78, vnoise(rest * 6.0 + seed.zxy));
            albedo *= mix(vec3(1.0), vec3(0.8, 0.7, 0.6), skin * skin_detail.z * cheeks * mix(0.1, fr, RESOLVED(6.0)));
        }
        h += skin * skin_detail.w * (vnoise(rest * 14.0 + seed) - 0.5) * RESOLVED(14.0);
    }

    if (skin > 0.0 && crease.x > 0.0) {  // creases, deepened by the AUs
        float wob = vnoise(rest * 0.9 + seed) - 0.5;
        float c = 0.0;
        float forehead = v_crease_a.x * drive_a.x + v_crease_a.y * drive_a.y;
        if (forehead > 0.0) c += forehead * grooves(rest.y / crease.y + 0.8 * wob, 6.0, 0.226, px / crease.y);
        c += 1.3 * v_crease_a.z * drive_a.z * exp(-pow((abs(rest.x) - 0.42 - 0.15 * wob) / 0.11, 2.0));
        if (v_crease_a.w * drive_a.w > 0.0)
            c += v_crease_a.w * drive_a.w * grooves(v_coord.z * crease.z / (2.0 * PI) + 0.5 * wob, 6.0, 0.226, dcrow);
        float naso = v_crease_b.x * drive_b.x;
        c += 1.5 * naso * exp(-pow(v_coord.w / 0.13, 2.0));
        if (v_crease_b.y * drive_b.y > 0.0)
            c += v_crease_b.y * drive_b.y * grooves(rest.y / 0.28 + wob, 4.0, 0.273, px / 0.28);
        h += crease.x * (1.2 * naso * smoothstep(0.0, 0.5, v_coord.w) * exp(-v_coord.w / 1.2) - skin * c);
        float chin = v_crease_b.z * drive_b.z;
        if (chin > 0.0) h += crease.x * 1.6 * chin * (fbm(rest * 3.2 + seed) - 0.5);
        albedo *= 1.0 - crease.w * skin * clamp(c, 0.0, 1.0);
    }

    if (skin > 0.0 && v_coord.y < 5.0) {  // eyebrows: a band along the brow line, tapering to a tail, with strands
        float bt = v_coord.x; float L = brow_tex.z;
        float w = brow_shape.x * (1.0 - brow_shape.w * smoothstep(0.15, 1.1, bt));
        float centre = brow_shape.y + brow_shape.z * sin(PI * clamp(bt, 0.0, 1.0));
        float across = smoothstep(w + 0.1, w - 0.1, abs(v_coord.y - centre));
        float along = smoothstep(-0.4, 0.0, bt * L) * smoothstep(brow_tex.x * L + 0.3, brow_tex.x * L - 0.1, bt * L);
        float strands = vnoise(vec3(bt * L * 2.2, v_coord.y * 11.0, seed.x));
        float sparse = mix(1.0, smoothstep(0.25, 0.65, strands), brow_tex.w * RESOLVED(11.0));
        float brow = skin * across * along * brow_tex.y * sparse;
        albedo = mix(albedo, brow_rgb, brow);
        gloss *= 1.0 - 0.9 * brow;
    }

    if (skin > 0.0 && hairline.w > 0.0) {  // scalp hair above a line that drops from the front to temples and nape
        float a = abs(atan(rest.x, rest.z - 1.0));
        float line = mix(hairline.x, hairline.y, smoothstep(0.35, 1.0, a));
        line = mix(line, hairline.z, smoothstep(1.9, 2.7, a)) + 0.8 * (vnoise(rest * 0.8 + seed) - 0.5);
        if (rest.y > line - 1.0) {
            float y = rest.y + 0.25 * (vnoise(rest * 4.0) - 0.5);
            float hair = skin * hairline.w * smoothstep(line - 0.3, line + 0.5, y);
            float hs = vnoise(rest * vec3(7.0, 2.5, 7.0) + seed.yxz);
            albedo = mix(albedo, hair_rgb * (0.7 + 0.6 * mix(0.5, hs, RESOLVED(7.0))), hair);
            h += 0.03 * hair * (hs - 0.5) * RESOLVED(7.0);
            gloss *= 1.0 - 0.7 * hair;
        }
    }

    float bm = skin * dot(beard, v_beard);
    if (bm * beard_density > 0.0) {  // facial hair
        float bs = vnoise(rest * 12.0 + seed.zyx);
        float cover = clamp(bm * beard_density * (0.55 + 0.9 * mix(0.5, bs, RESOLVED(12.0))), 0.0, 1.0);
        albedo = mix(albedo, beard_rgb * (0.75 + 0.5 * bs), cover);
        h += 0.03 * cover * (bs - 0.5) * RESOLVED(12.0);
        gloss *= 1.0 - 0.8 * cover;
    }

    n = bump(v_pos, n, h);
    vec3 lin = pow(clamp(albedo * v_ao, 0.0, 1.0), vec3(2.2));
    vec3 col = mix(ground, sky, 0.5 + 0.5 * n.y) * lin;
    for (int i = 0; i < n_lights; i++) {
        float kd = max(dot(n, light_dir[i]), 0.0);
        col += lin * light_color[i] * kd;
        vec3 hv = normalize(light_dir[i] + v);
        float s = pow(max(dot(n, hv), 0.0), 24.0 + 40.0 * v_spec.x) * (specular * v_spec.y * gloss + v_spec.x);
        col += light_color[i] * s * (kd > 0.0 ? 1.0 : 0.0);
    }
    f_color = vec4(pow(clamp(col, 0.0, 1.0), vec3(1.0 / 2.2)), 1.0);
}
"""
COVERAGE_VERTEX_SHADER = """
#version 330
uniform mat4 mvp; in vec3 in_pos;
void main() { gl_Position = mvp * vec4(in_pos, 1.0); }
"""
COVERAGE_FRAGMENT_SHADER = """
#version 330
out vec4 f_color;
void main() { f_color = vec4(1.0); }
"""


def _band(u: np.ndarray, lo: float, hi: float, soft: float) -> np.ndarray:
    """Soft indicator of lo <= u <= hi (smoothstep edges `soft` wide)."""
    return _step(u, lo - soft, lo + soft) * (1.0 - _step(u, hi - soft, hi + soft))


def _step(u: np.ndarray, a: float, b: float) -> np.ndarray:
    t = np.clip((u - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _along_line(p: np.ndarray, line: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest point on a 2D polyline (first and last segments extended): (position along it, 0..1 between its ends;
    signed distance, positive to the left of its direction; offset in y)."""
    seg = line[1:] - line[:-1]
    lengths = np.linalg.norm(seg, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    best = np.full(len(p), np.inf)
    t, signed, dy = np.zeros(len(p)), np.zeros(len(p)), np.zeros(len(p))
    for k, (a, ab, length) in enumerate(zip(line[:-1], seg, lengths, strict=True)):
        u = ((p - a) @ ab) / length**2
        u = np.clip(u, -np.inf if k == 0 else 0.0, np.inf if k == len(seg) - 1 else 1.0)
        rel = p - (a + u[:, None] * ab)
        d = np.linalg.norm(rel, axis=1)
        better = d < best
        cross = (ab[0] * rel[:, 1] - ab[1] * rel[:, 0]) / length
        best = np.where(better, d, best)
        t = np.where(better, (cum[k] + u * length) / cum[-1], t)
        signed = np.where(better, cross, signed)
        dy = np.where(better, rel[:, 1], dy)
    return t, signed, dy


def brow_length(model) -> float:
    """Length (cm) of a landmark brow line (17-21) on the neutral face."""
    lm = model.neutral[model.landmarks68]
    return float(np.linalg.norm(np.diff(lm[17:22, :2], axis=0), axis=1).sum())


def surface_maps(model, skin: np.ndarray) -> np.ndarray:
    """(V, MAP_FLOATS) float32 per-vertex maps on the neutral face: rest position, skin weight (no lips, lash line,
    eyes, mouth), brow coordinates, crow's-feet angle, nasolabial distance, crease regions and beard regions."""
    v = model.neutral.astype(np.float64)
    lm = v[model.landmarks68]
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    ax = np.abs(x)
    out = np.zeros((len(v), MAP_FLOATS), dtype=np.float64)
    out[:, :3], out[:, 3] = v, skin
    on_skin = skin > 0.0

    # Brow coordinates: position along the brow from its inner end (0) to the last landmark (1), offset above it (cm).
    bt, boff = np.zeros(len(v)), np.full(len(v), 9.0)
    for side, idx in ((x < 0, [21, 20, 19, 18, 17]), (x >= 0, [22, 23, 24, 25, 26])):
        t, _, dy = _along_line(v[side, :2], lm[idx, :2])
        near = (dy > -2.0) & (dy < 2.5) & (t > -0.6) & (t < 1.6) & (z[side] > 4.0)
        bt[side], boff[side] = t, np.where(near, dy, 9.0)
    out[:, 4], out[:, 5] = bt, np.where(on_skin, boff, 9.0)

    # Crow's feet: angle around the outer eye corner, on the temple side.
    canthus = np.where(x[:, None] < 0, lm[36], lm[45])
    lateral = ax - np.abs(canthus[:, 0])
    dy = y - canthus[:, 1]
    angle = np.arctan2(dy, lateral)
    r = np.hypot(lateral, dy)
    crow = _band(r, 0.45, 1.9, 0.25) * (1.0 - _step(np.abs(angle), 0.9, 1.25)) * _step(lateral, -0.3, 0.1) * (z > 3.0)
    out[:, 6] = angle

    # Nasolabial fold: from above the nose wing to beside and below the mouth corner (mirrored on x).
    fold = np.array([[1.75, -0.15], [2.3, -1.4], [2.85, -2.6], [3.2, -3.8], [3.35, -4.9]])
    t, signed, _ = _along_line(np.stack([ax, y], axis=1), fold)
    out[:, 7] = signed  # the fold runs downwards, so "left of its direction" is lateral (the cheek)
    naso = _band(t, 0.0, 1.0, 0.12) * _step(-np.abs(signed), -1.3, -0.6) * (z > 5.0)

    browline = np.interp(ax, lm[22:27, 0], lm[22:27, 1])
    above = y - browline
    forehead_in = _band(above, 0.8, 4.8, 0.4) * (1.0 - _step(ax, 2.2, 3.2)) * (z > 4.0)
    forehead_out = _band(above, 0.8, 4.2, 0.4) * _band(ax, 2.0, 5.6, 0.7) * (z > 3.0)
    glabella = _band(ax, -1.0, 0.95, 0.3) * _band(y, lm[27, 1] + 0.2, lm[21, 1] + 0.7, 0.35) * (z > 8.0)
    bunny = _band(ax, -1.0, 0.8, 0.35) * _band(y, lm[29, 1], lm[27, 1] + 0.1, 0.4) * (z > 9.0)
    chin = _band(y, lm[8, 1] + 0.6, lm[57, 1] - 0.5, 0.35) * (1.0 - _step(ax, 1.5, 2.4)) * (z > 7.0)
    out[:, 8:15] = np.stack([forehead_in, forehead_out, glabella, crow, naso, bunny, chin], axis=1)

    # Beard regions: moustache (nose to upper lip), chin (below the lower lip), jaw and cheeks, neck (under the jaw).
    upper = np.interp(ax, lm[51:55, 0], lm[51:55, 1])
    lower = np.interp(ax, lm[[57, 56, 55, 54], 0], lm[[57, 56, 55, 54], 1])
    mouth_x = lm[54, 0]
    moustache = _band(y, upper + 0.05, lm[33, 1] - 0.15, 0.15) * (1.0 - _step(ax, mouth_x + 0.2, mouth_x + 0.8))
    chin_beard = _band(y, lm[8, 1] - 2.0, lower - 0.15, 0.15) * (1.0 - _step(ax, mouth_x + 0.2, mouth_x + 0.9))
    cheek_line = np.interp(ax, [2.5, 4.5, 6.5, 7.4], [-2.6, -1.2, 0.6, 2.6])
    jawline = np.interp(ax, lm[8:17, 0], lm[8:17, 1])
    jaw = _band(y, jawline - 0.6, cheek_line, 0.35) * _step(ax, mouth_x - 0.4, mouth_x + 0.4) * (z > 0.0)
    jaw *= 1.0 - _step(ax, 7.2, 7.8)
    neck = _band(y, jawline - 4.5, jawline - 0.3, 0.4) * (1.0 - _step(ax, 5.0, 6.5)) * (z > 1.0)
    out[:, 16:20] = np.stack([moustache, chin_beard, jaw, neck], axis=1)
    out[:, 6:20] *= on_skin[:, None]
    out[:, 6] = angle  # the angle is a coordinate, not a weight
    return out.astype(np.float32)


def uniforms(params, brow_len: float) -> dict:
    """Every uniform of the fragment shader for one sample (the camera and matrix are the renderer's)."""
    look = params.identity.look
    lights = [(params.key_dir, params.key_color), (params.fill_dir, params.fill_color), *params.lights][:MAX_LIGHTS]
    dirs = [tuple(float(c) for c in d) for d, _ in lights] + [(0.0, 0.0, 1.0)] * (MAX_LIGHTS - len(lights))
    cols = [tuple(float(c) for c in col) for _, col in lights] + [(0.0, 0.0, 0.0)] * (MAX_LIGHTS - len(lights))
    drive = crease_drive(params.au, look)
    ground = params.ambient if params.ground is None else params.ground
    return {
        "n_lights": len(lights),
        "light_dir": dirs,
        "light_color": cols,
        "sky": tuple(float(c) for c in params.ambient),
        "ground": tuple(float(c) for c in ground),
        "specular": float(params.specular),
        "seed": tuple(look.seed),
        "skin_detail": (look.blotch, look.redness, look.freckles, look.pores),
        "drive_a": tuple(float(d) for d in drive[:4]),
        "drive_b": (*(float(d) for d in drive[4:]), 0.0),
        "crease": (look.crease_depth, look.forehead_spacing, 2 * np.pi / 0.22, 0.35 if look.crease_depth > 0 else 0.0),
        "brow_rgb": tuple(look.brow_rgb),
        "brow_shape": (look.brow_width, look.brow_offset, look.brow_arch, look.brow_taper),
        "brow_tex": (look.brow_tail, look.brow_alpha, brow_len, look.brow_sparse),
        "hair_rgb": tuple(look.hair_rgb),
        "hairline": (*look.hairline, look.hair_amount),
        "beard_rgb": tuple(look.beard_rgb),
        "beard": tuple(look.beard),
        "beard_density": look.beard_density,
    }


def set_uniforms(prog, values: dict) -> None:
    """Write uniforms; those the GLSL compiler optimised away are skipped."""
    for name, value in values.items():
        if name in prog:
            prog[name].value = value
