"""bench/bench_other_face.py: faces of another face model (MakeHuman), here on a small stand-in of its files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augtext.errors import UserError
from tests.hiva_core.benchscript import bench_script

CENTRE = np.array([0.0, 7.3, 0.6])


def _faces(tris, mat: int) -> list[int]:
    """three.js format-3 faces: material + per-corner UVs (the UV index is the vertex index)."""
    out = []
    for a, b, c in np.asarray(tris).tolist():
        out += [2 | 8, a, b, c, mat, a, b, c]
    return out


def _sphere(n_lat: int = 16, n_lon: int = 24):
    lat, lon = np.meshgrid(np.linspace(0.05, np.pi - 0.05, n_lat), np.linspace(0, 2 * np.pi, n_lon, endpoint=False))
    verts = np.stack([np.sin(lat) * np.sin(lon), np.cos(lat), np.sin(lat) * np.cos(lon)], -1).reshape(-1, 3)
    tris = []
    for j in range(n_lon):
        for i in range(n_lat - 1):
            a, b = j * n_lat + i, ((j + 1) % n_lon) * n_lat + i
            tris += [(a, a + 1, b), (b, a + 1, b + 1)]
    return verts, np.asarray(tris)


def _texture(path, colour) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.zeros((16, 16, 4), np.uint8)
    img[...] = [*colour, 255]
    img[::4, :, :3] //= 2  # some texture
    Image.fromarray(img).save(path)


def _proxy(path, base, ref_tris, texture: str, lift: float = 0.0) -> None:
    """A proxy of one triangle per base triangle in ref_tris: each vertex at a base vertex, moved `lift` of its
    distance from the head's centre outwards (the offset)."""
    ref, weights, faces, verts = [], [], [], []
    for t in ref_tris:
        k = len(ref)
        for corner in range(3):
            ref.append([int(t[corner]), int(t[(corner + 1) % 3]), int(t[(corner + 2) % 3])])
            weights.append([1.0, 0.0, 0.0])
            verts += base[t[corner]].tolist()
        faces += [2 | 8, k, k + 1, k + 2, 0, k, k + 1, k + 2]
    uvs = np.tile([[0.2, 0.2], [0.8, 0.2], [0.5, 0.8]], (len(ref_tris), 1)).reshape(-1).tolist()
    d = {"vertices": verts, "uvs": [uvs], "faces": faces, "materials": [{"mapDiffuse": texture}],
         "metadata": {"ref_vIdxs": ref, "weights": weights,
                      "offsets": ((base[[r[0] for r in ref]] - CENTRE) * lift).tolist()}}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(d))


def fake_assets(root, bench):
    """MakeHuman's layout with a sphere for a head (radius 1 dm at the head's height), one skin, one brow and eye
    proxy, the macro targets empty, a face-shape target that widens the head, and a corner-puller unit that moves the
    lower front of the sphere up and out; every other expression unit empty."""
    verts, tris = _sphere()
    base = verts + CENTRE
    below = np.array([[0.0, 5.0, 0.0], [1.0, 5.0, 0.0], [0.0, 5.5, 0.0]])  # a body triangle under the neck: not drawn
    base = np.concatenate([base, below])
    n = len(verts)
    faces = _faces(tris, 0) + _faces([(n, n + 1, n + 2)], 0) + _faces(tris[:4], 1)  # the last: a helper's
    uvs = np.concatenate([(verts[:, [0, 1]] + 1) / 2, np.full((3, 2), 0.5)])
    mesh = {"vertices": base.reshape(-1).tolist(), "uvs": [uvs.reshape(-1).tolist()], "faces": faces,
            "materials": [{"DbgName": "body"}, {"DbgName": "helper-tongue"}]}  # fmt: skip
    (root / "models").mkdir(parents=True)
    (root / "models" / "human_full_size.json").write_text(json.dumps(mesh))
    arrays = {}

    def target(name, index, vector):
        arrays[f"targets/{name}.index"] = np.asarray(index, np.uint16)
        arrays[f"targets/{name}.vector"] = np.asarray(np.asarray(vector) * 1000, np.int16).reshape(-1, 3)

    for eth in bench.ETHNICITIES:
        for sex in ("female", "male"):
            for age in ("young", "old"):
                target(f"macrodetails/{eth}-{sex}-{age}", [], np.zeros((0, 3)))
        units = {u.format(s=s) for m in bench.AU_UNITS.values() for u in m for s in ("left", "right")}
        for unit in units:
            target(f"expression/units/{eth}/{unit}", [], np.zeros((0, 3)))
        mouth = np.where((verts[:, 1] < -0.3) & (verts[:, 2] > 0.5))[0]
        push = np.zeros((len(mouth), 3))
        push[:, 1], push[:, 2] = 0.25, 0.2
        target(f"expression/units/{eth}/mouth-corner-puller", mouth, push)
    target("head/head-scale-horiz-incr", np.arange(n), verts * [0.05, 0, 0])
    np.savez(root / "targets.npz", **arrays)
    (root / "skins" / "young_caucasian_female").mkdir(parents=True)
    (root / "skins" / "young_caucasian_female" / "young_caucasian_female.json").write_text(
        json.dumps({"mapDiffuse": "textures/skin.png"})
    )
    _texture(root / "skins" / "young_caucasian_female" / "textures" / "skin.png", (220, 170, 140))
    front = [t for t in tris if (verts[t][:, 2] > 0.8).all() and (verts[t][:, 1] > 0.2).all()][:6]
    _proxy(root / "proxies" / "eyebrows" / "b1" / "b1.json", base, front, "b1.png")
    _texture(root / "proxies" / "eyebrows" / "b1" / "b1.png", (40, 30, 20))
    crown = [t for t in tris if (verts[t][:, 1] > 0.7).all()]
    _proxy(root / "proxies" / "hair" / "short" / "short.json", base, crown, "short.png", lift=0.05)
    _texture(root / "proxies" / "hair" / "short" / "short.png", (30, 20, 10))
    _proxy(root / "proxies" / "hair" / "Full_beard" / "Full_beard.json", base, front[:1], "b.png")  # not scalp hair
    eyes = root / "proxies" / "eyes" / "HighPolyEyes"
    _proxy(eyes / "HighPolyEyes.json", base, front[:2], "textures/brown.png")
    _texture(eyes / "textures" / "brown.png", (90, 50, 20))
    return root


@pytest.fixture
def bench():
    return bench_script("bench_other_face")


@pytest.fixture
def head(tmp_path, bench):
    return bench.HeadModel(fake_assets(tmp_path / "assets", bench))


def test_parse_three_json_reads_quads_materials_and_corner_uvs(bench):
    d = {
        "vertices": [0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 2, 2, 2],
        "uvs": [[0, 0, 1, 0, 1, 1, 0, 1]],
        # a quad with material 3 and corner UVs; a triangle with a face normal and corner colours, nothing else
        "faces": [1 | 2 | 8, 0, 1, 2, 3, 3, 0, 1, 2, 3, 16 | 128, 1, 2, 4, 7, 5, 6, 8],
    }
    verts, tris, mats, corners, uvs = bench.parse_three_json(d)
    assert verts.shape == (5, 3) and uvs.shape == (4, 2)
    assert tris.tolist() == [[0, 1, 2], [0, 2, 3], [1, 2, 4]]
    assert mats.tolist() == [3, 3, -1]
    assert corners.tolist() == [[0, 1, 2], [0, 2, 3], [-1, -1, -1]]


def test_unit_weights_follow_the_au_table(bench):
    units = bench.unit_weights({12: 0.6, 1: 0.5, 26: 0.8, 27: 0.7, 4: 0.0}, {1: (0.5, 1.0)}, gain=1.0)
    assert units["mouth-corner-puller"] == pytest.approx(0.6)
    assert units["eyebrows-left-inner-up"] == pytest.approx(0.25)  # the weak side
    assert units["eyebrows-right-inner-up"] == pytest.approx(0.5)
    assert units["mouth-open"] == 1.0  # 0.4 + 0.7, clipped
    assert not any(k.startswith("eyebrows-left-down") for k in units)  # an AU at 0 moves nothing
    assert bench.unit_weights({12: 0.5}, {}, gain=1.2)["mouth-corner-puller"] == pytest.approx(0.6)
    assert set(bench.SCORED) <= set(bench.AU_UNITS)
    for kind, aus in bench.PROTOTYPES.items():
        assert set(aus) <= set(bench.AU_UNITS), kind


def test_sampled_aus_are_clearly_present_or_absent(bench):
    kinds, present = set(), np.zeros(len(bench.SCORED))
    for seed in range(600):
        kind, au, sides = bench.sample_aus(np.random.default_rng(seed))
        kinds.add(kind)
        on = {a for a, v in au.items() if v >= 0.3}
        assert all(au[a] >= 0.4 for a in on) and all(v < 0.15 for a, v in au.items() if a not in on)
        assert set(sides) <= on
        if kind != "random":
            assert on <= set(bench.PROTOTYPES[kind])
        if kind == "contempt":
            assert sides and min(sides[12]) <= 0.6  # one corner
        present += [a in on for a in bench.SCORED]
    assert kinds == {"random", *bench.PROTOTYPES}
    assert (present / 600 > 0.1).all()  # every scored AU is present often enough to score


def test_the_head_renders_and_an_au_moves_its_region(bench, head):
    try:
        renderer = bench.HeadRenderer(head, 96)
    except Exception as exc:  # noqa: BLE001 - no offscreen OpenGL here
        pytest.skip(f"no offscreen OpenGL: {exc}")
    assert len(head.tris) == 2 * 24 * 15  # the sphere: neither the body under the neck nor the helper
    rng = np.random.default_rng(0)
    person = bench.sample_person(rng, head)
    scene = bench.sample_scene(rng)
    scene.yaw = scene.pitch = scene.roll = 0.0
    scene.shift, scene.blur, scene.fill = (0.0, 0.0), 0.0, 0.6
    scene.background = {"kind": "flat", "c1": np.zeros(3), "c2": np.zeros(3), "angle": 0.0, "seed": 0}
    rest = renderer.render(person, scene, {})
    again = renderer.render(person, scene, {})
    smile = renderer.render(person, scene, {"mouth-corner-puller": 1.0})
    renderer.release()
    assert np.array_equal(rest, again)
    face = rest.sum(-1) > 0
    rows = np.where(face.any(1))[0]
    assert 0.5 < (rows[-1] - rows[0]) / 96 < 0.7  # the head fills `fill` of the image
    changed = np.abs(smile.astype(int) - rest.astype(int)).sum(-1) > 30
    assert changed.sum() > 20
    middle = (rows[0] + rows[-1]) // 2
    assert changed[middle:].sum() > 5 * changed[:middle].sum()  # the unit moves the lower front, and the image there


def test_write_set_labels_what_it_rendered_and_keeps_its_images(bench, head, tmp_path):
    from hiva_core.synth.aumap import occurrence

    try:
        bench.HeadRenderer(head, 64).release()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no offscreen OpenGL: {exc}")
    assets = tmp_path / "assets"
    manifest = bench.write_set(tmp_path / "set", assets, 6, seed=3, size=64)
    rows = pd.read_csv(manifest)
    assert len(rows) == 6 and rows["subject"].is_unique
    for i, row in rows.iterrows():
        rec = bench.face_record(3, i, head)
        for a in bench.SCORED:
            assert row[f"AU{a}"] == occurrence(rec["au"][a])
        for column in ("path", "neutral"):
            with Image.open(manifest.parent / row[column]) as img:
                assert img.size == (64, 64)
    for a in bench.UNSHOWN:  # BP4D AUs without a unit: unknown, so eval leaves them out
        assert rows[f"AU{a}"].isna().all()
    stamp = (manifest.parent / rows["path"][0]).stat().st_mtime_ns
    again = bench.write_set(tmp_path / "set", assets, 6, seed=3, size=64)
    assert pd.read_csv(again).equals(rows)
    assert (manifest.parent / rows["path"][0]).stat().st_mtime_ns == stamp  # kept, not rendered again


def test_fetch_refuses_files_that_are_not_the_pinned_ones(bench, tmp_path):
    (tmp_path / bench.NPM_FILE).write_bytes(b"not the package")
    with pytest.raises(UserError, match=f"{bench.NPM_FILE}: sha256 .* is not the pinned"):
        bench.fetch_assets(tmp_path)
    assert not (tmp_path / "assets" / "complete").exists()


def test_main_refuses_names_that_do_not_match_the_runs(bench, tmp_path):
    with pytest.raises(UserError, match="2 names for 1 runs"):
        bench.main(["--runs", "r1", "--names", "a,b", "--work", str(tmp_path)])
    with pytest.raises(UserError, match="give --runs and --names"):
        bench.main(["--work", str(tmp_path)])


def test_single_au_response_lines_each_render_up_with_its_au(bench, head, tmp_path, monkeypatch):
    """The bookkeeping of the one-AU-at-a-time table: a stand-in run whose probability of AU k is 0.9 on a render of
    AU k and 0.1 elsewhere (0.2 for AU4 on a render of AU1) must give +80 on the diagonal and +10 there."""
    import types

    import hiva_core.checkpoint
    import hiva_core.predict

    try:
        bench.HeadRenderer(head, 64).release()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no offscreen OpenGL: {exc}")
    monkeypatch.setattr(bench, "fetch_assets", lambda work: tmp_path / "assets")
    run = types.SimpleNamespace(aus=[1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24], reference=False)
    monkeypatch.setattr(hiva_core.checkpoint, "load_run", lambda path: run)
    seen = []

    def predict(paths, loaded, neutral=None, progress=False):
        assert loaded is run and neutral is None
        rows = []
        for path in reversed(paths):  # any order: rows are matched by file name
            made = int(path.stem.split("_AU")[1])
            probs = {f"AU{a}_prob": 0.9 if a == made else 0.2 if (a, made) == (4, 1) else 0.1 for a in run.aus}
            rows.append({"source": str(path), "face": 0, "status": "ok", **probs})
            seen.append(path)
        return types.SimpleNamespace(rows=pd.DataFrame(rows))

    monkeypatch.setattr(hiva_core.predict, "run_predict", predict)
    out = bench.single_au_response("run", tmp_path, people=3, seed=1, size=64)
    assert out["people"] == 3 and len(seen) == 3 * (1 + len(bench.SCORED))
    assert all(p.is_file() for p in seen)
    assert out["rest"]["AU12"] == pytest.approx(0.1)
    for made, row in out["lift"].items():
        for scored, lift in row.items():
            expected = 0.8 if made == scored else 0.1 if (scored, made) == ("AU4", "AU1") else 0.0
            assert lift == pytest.approx(expected), (made, scored)
    entry = {"what": "w", "per_au": {"AU12": {"f1": 0.5, "auc": 0.9}}, "f1": 0.5, "auc": 0.9, "response": out}
    table = bench.markdown({"stand-in": entry})
    assert "| (at rest: probability) | 10 | 10 |" in table
    assert "| AU12 | +0 | +0 | +0 | +0 | +0 | +80 | +0 | +0 |" in table  # columns in SCORED order
    assert "| AU1 | +80 | +0 | +10 |" in table


def test_hair_is_drawn_for_its_share_of_people_and_changes_nothing_else(bench, head):
    assert [p.stem for p in head.hairs] == ["short"]  # beards and moustaches are not scalp hair
    bald = [bench.face_record(4, i, head, hair=0.0) for i in range(40)]
    some = [bench.face_record(4, i, head, hair=0.5) for i in range(40)]
    assert all(r["person"].hair is None for r in bald)
    assert 8 < sum(r["person"].hair is not None for r in some) < 32
    for a, b in zip(bald, some, strict=True):
        a["person"].hair = b["person"].hair = None
        assert a["au"] == b["au"] and a["kind"] == b["kind"] and a["scene"].yaw == b["scene"].yaw
        assert a["person"] == b["person"]
    try:
        renderer = bench.HeadRenderer(head, 96)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no offscreen OpenGL: {exc}")
    rec = bench.face_record(4, 0, head, hair=1.0)
    scene = rec["scene"]
    scene.yaw = scene.pitch = scene.roll = 0.0
    scene.shift, scene.blur = (0.0, 0.0), 0.0
    haired = renderer.render(rec["person"], scene, {})
    rec["person"].hair = None
    plain = renderer.render(rec["person"], scene, {})
    renderer.release()
    changed = np.abs(haired.astype(int) - plain.astype(int)).sum(-1) > 30
    rows = np.where(changed.any(1))[0]
    assert changed.sum() > 10 and rows.max() < 48  # the crown, in the upper half of the image


def test_brow_reach_measures_the_brows_move_in_eye_distances(bench, head, face_model_path, monkeypatch):
    """The stand-in head's inner-brow units lift the brow mesh's vertices 0.02 dm (each side its own); its eyes, one
    point each side, are about 2 * eye_x apart: AU1 at 0.9 moves the brows 0.018 dm over that distance, AU2 and AU4
    (empty units) nothing. SynthAU's brows go up for AU1 and AU2 and down for AU4."""
    eye_x = 0.3
    ids = [int(np.argmin(np.linalg.norm(head.base - (CENTRE + [x, 0.3, 0.9]), axis=1))) for x in (eye_x, -eye_x)]
    spots = head.base[ids] - CENTRE  # the nearest sphere vertices; the eye proxy sits exactly at +-eye_x
    offsets = np.array([[eye_x, 0.3, 0.9], [-eye_x, 0.3, 0.9]]) - spots
    head.eyes = bench.Proxy(np.array([[i, i, i] for i in ids]), np.array([[1.0, 0.0, 0.0]] * 2), offsets,
                            head.eyes.tris, head.eyes.corners, head.eyes.uvs, head.eyes.texture)  # fmt: skip
    brow = head.proxy(head.brows[0])
    refs = np.unique(brow.ref[:, 0])
    for eth in bench.ETHNICITIES:
        for side, keep in (("left", head.base[refs, 0] >= 0), ("right", head.base[refs, 0] < 0)):
            lift = np.zeros((int(keep.sum()), 3))
            lift[:, 1] = 20  # targets are in thousandths: 0.02 dm
            head.targets[f"expression/units/{eth}/eyebrows-{side}-inner-up"] = (refs[keep], lift)
    moves = bench.makehuman_brows(head, 3, 0.9)
    eyes = []  # a person's face-shape targets widen the head: their eyes sit a little further apart than 2 * eye_x
    for k in range(3):
        ball = head.eyes.place(head.identity(bench.sample_person(bench.response_rng(0, k), head)))
        eyes.append(np.linalg.norm(ball[0] - ball[1]))
    assert 2 * eye_x <= min(eyes) and max(eyes) < 2.2 * eye_x
    assert moves[1][:, 1] == pytest.approx(0.018 / np.array(eyes), rel=1e-5)
    assert moves[1][:, 0] == pytest.approx(0.018 / np.array(eyes), rel=1e-5)
    assert np.abs(moves[2]).max() == 0 and np.abs(moves[4]).max() == 0
    monkeypatch.setenv("HIVA_FACE_MODEL", str(face_model_path))
    synth = bench.synthau_brows(2, 0.9)
    assert (synth[1] > 0.02).all() and (synth[2][:, 1] > 0.02).all() and (synth[4] < -0.01).all()
