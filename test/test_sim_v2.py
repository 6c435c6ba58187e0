"""Synthetic data v2 (real meshes, clutter, far tilted cameras, RealSense-like depth) and the dataset
statistics script. Scenes are tiny (320x240, few candidates): a few seconds in all.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pybullet")

from dsc_grasp_ros.data.formats import read_jacquard_grasps, write_depth, write_jacquard_grasps  # noqa: E402
from dsc_grasp_ros.core.grasp import rect_corners  # noqa: E402
from dsc_grasp_ros.sim import camera as cam  # noqa: E402
from dsc_grasp_ros.sim import trials  # noqa: E402
from dsc_grasp_ros.sim.dataset import GenConfig, generate, generate_scene, scene_complete, scene_id  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(width=320, height=240, views=1, objects_per_scene=(1, 2), candidates=8, max_candidates_per_view=16,
            camera_tries=2, max_attempts=3)
SEED = 3  # a seed whose tiny scene has a labelled view (deterministic)


def _objects_or_skip():
    from dsc_grasp_ros.sim.mesh_objects import ObjectsNotFound, objects_root

    try:
        return objects_root()
    except ObjectsNotFound as e:
        pytest.skip(f"shared object meshes not available: {e}")


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory):
    _objects_or_skip()
    out = tmp_path_factory.mktemp("simv2")
    cfg = GenConfig.v2(**TINY)
    rec = generate_scene(SEED, out, cfg)
    return out, cfg, rec


# --------------------------------------------------------------------------- objects
def test_benchmark_objects_are_never_selected():
    _objects_or_skip()
    from dsc_grasp_ros.sim.mesh_objects import BenchmarkObjectUsed, all_names, benchmark_names, object_selection

    bench = set(benchmark_names())
    assert len(bench) == 10
    sel = {k: set(object_selection(k)) for k in ("all", "train", "test")}
    for k, names in sel.items():
        assert not names & bench, k
    assert sel["all"] == set(all_names()) - bench
    assert sel["train"] | sel["test"] == sel["all"] and not sel["train"] & sel["test"]
    assert 10 <= len(sel["test"]) <= 60  # a real held-out set, most objects left for training
    for spec in ("banana", "apple,power_drill", "mustard_bottle"):
        with pytest.raises(BenchmarkObjectUsed, match="benchmark"):
            object_selection(spec)
    with pytest.raises(BenchmarkObjectUsed):  # the generator refuses before writing anything
        generate("/nonexistent/never/created", 1, cfg=GenConfig.v2(object_range="apple,scissors", **{k: v for k, v in TINY.items()}))


def test_build_scene_refuses_benchmark_objects():
    _objects_or_skip()
    from dsc_grasp_ros.sim import scene as sc
    from dsc_grasp_ros.sim.mesh_objects import BenchmarkObjectUsed
    from dsc_grasp_ros.sim.presets import PRESETS

    p, c = sc.connect()
    try:
        with pytest.raises(BenchmarkObjectUsed):
            sc.build_scene(p, c, np.random.default_rng(0), PRESETS["v2"], ["apple", "tomato_soup_can"], 2)
    finally:
        sc.disconnect(p, c)


# --------------------------------------------------------------------------- a tiny v2 scene
def test_tiny_v2_scene_files_and_labels(tiny_scene):
    from dsc_grasp_ros.sim.mesh_objects import benchmark_names, object_selection

    out, cfg, rec = tiny_scene
    sid = scene_id(SEED)
    assert "error" not in rec and scene_complete(out, sid)
    manifest = json.loads((out / sid / "scene.json").read_text())
    assert manifest["preset"] == "v2" and len(manifest["views"]) == 1
    train = set(object_selection("train"))
    names = [o["name"] for o in manifest["objects"]]
    assert names and set(names) <= train and not set(names) & set(benchmark_names())
    stem = out / sid / f"0_{sid}"
    rgb = cv2.imread(f"{stem}_RGB.png")
    assert rgb.shape == (240, 320, 3)
    from dsc_grasp_ros.data.formats import read_depth

    perfect = read_depth(f"{stem}_perfect_depth.tiff")
    stereo = read_depth(f"{stem}_stereo_depth.tiff")
    mask = cv2.imread(f"{stem}_mask.png", cv2.IMREAD_GRAYSCALE)
    meta = json.loads(Path(f"{stem}_camera.json").read_text())
    assert 0.35 <= meta["camera_distance_m"] <= 1.5 and 0 <= meta["camera_tilt_deg"] <= 35
    assert np.isfinite(perfect).all() and (perfect > 0).all()
    holes = stereo == -1.0
    assert 0.0 < holes.mean() < 0.5
    valid = stereo[~holes]
    assert np.abs(valid * 1000 - np.round(valid * 1000)).max() < 1e-3  # 1 mm depth unit
    err = np.abs(stereo[~holes] - perfect[~holes])
    assert np.median(err) < 0.01
    # the camera looks at the scene: the optical axis hits the support near the scene centre
    T = np.asarray(meta["T_world_camera"])
    assert T[2, 2] < -math.cos(math.radians(35.5))  # optical axis points down, tilt <= 35 deg
    rects = read_jacquard_grasps(f"{stem}_grasps.txt")
    assert len(rects) == manifest["views"][0]["grasps"] >= cfg.min_grasps
    K = np.asarray(meta["K"])
    f = 0.5 * (K[0, 0] + K[1, 1])
    for r, m in zip(rects, meta["grasps_metric"]):
        u, v = int(round(r[0])), int(round(r[1]))
        assert mask[v, u] == 255  # centred on an object
        c = rect_corners(*r)
        assert c.min() >= 0 and (c[:, 0] <= 319).all() and (c[:, 1] <= 239).all()
        opening_m, jaw_m, _, z = m[:4]
        assert r[3] == pytest.approx(opening_m * f / z, rel=0.02)  # pixels = metres * f / Z
        assert r[4] == pytest.approx(jaw_m * f / z, rel=0.02)
    assert all(meta["grasp_objects"][k] in {o["index"] for o in meta["objects"]} for k in range(len(rects)))


def test_v2_scene_is_deterministic(tiny_scene, tmp_path):
    out, cfg, _ = tiny_scene
    generate_scene(SEED, tmp_path, cfg)
    sid = scene_id(SEED)
    files = sorted(p.name for p in (out / sid).iterdir())
    assert files == sorted(p.name for p in (tmp_path / sid).iterdir())
    for name in files:
        assert (out / sid / name).read_bytes() == (tmp_path / sid / name).read_bytes(), name


def test_v1_configuration_is_unchanged():
    """v2 must not change what v1 writes: same settings dictionary and digest as before v2 existed."""
    cfg = GenConfig()
    assert cfg.preset == "v1"
    assert set(cfg.as_dict()) == {"views", "objects_per_scene", "object_range", "width", "height", "candidates", "min_grasps",
                                  "camera_tries", "max_attempts", "hole_value", "max_tilt_deg", "height_range", "generator_version"}
    assert cfg.digest() == "9accc496a266"
    v2 = GenConfig.v2()
    assert v2.as_dict()["preset"] == "v2" and v2.digest() != cfg.digest()


# --------------------------------------------------------------------------- depth model, labelling helpers
def test_realsense_depth_noise_grows_with_distance_squared():
    K = cam.Intrinsics.d435().K
    rms = {}
    for z in (0.5, 1.4):
        depth = np.full((240, 320), z, np.float32)
        out, info = cam.realsense_depth(depth, K, np.random.default_rng(7))  # same draws: same sensor parameters
        ok = out != -1.0
        assert ok.mean() > 0.9
        assert np.abs(out[ok] * 1000 - np.round(out[ok] * 1000)).max() < 1e-3
        rms[z] = float(np.sqrt(np.mean((out[ok] - z) ** 2)))
    # disparity noise: depth error ~ Z^2 (2.8^2 = 7.8); 1 mm quantisation blurs the near end a little
    assert 4.0 < rms[1.4] / rms[0.5] < 12.0
    assert rms[0.5] < 0.003 and rms[1.4] < 0.03


def test_realsense_depth_holes_on_dark_shiny_and_far_surfaces():
    K = cam.Intrinsics.d435(320, 240).K
    depth = np.full((240, 320), 0.7, np.float32)
    depth[:, 300:] = cam.FAR  # nothing rendered there: beyond the sensor's range
    rgb = np.full((240, 320, 3), 180, np.uint8)
    rgb[20:100, 20:100] = 5  # a dark patch on the same flat surface
    seg = np.zeros((240, 320), np.int32)
    seg[140:220, 140:220] = 7  # a shiny object (flat here, so only the shiny model makes holes)
    out, info = cam.realsense_depth(depth, K, np.random.default_rng(3), rgb=rgb, seg=seg, shiny=[7])
    holes = out == -1.0
    assert holes[30:90, 30:90].mean() > 0.5  # dark: mostly holes
    assert holes[140:220, 140:220].mean() >= 0.08  # shiny: 10-40 % of its pixels
    assert holes[130:230, 20:100].mean() < 0.1  # bright, matte, flat: few holes
    assert holes[:, 302:].all()
    assert info["dark_hole_pixels"] > 0 and info["shiny_hole_pixels"] > 0


def test_silhouette_extents_match_the_single_angle_version():
    rng = np.random.default_rng(0)
    seg = np.zeros((120, 160), int)
    seg[40:80, 50:120] = 3
    seg[60:100, 100:110] = 3
    for _ in range(100):
        u, v = rng.uniform(0, 160), rng.uniform(0, 120)
        angles, band, limit = rng.uniform(-3, 3, 5), rng.uniform(2, 12), int(rng.integers(5, 90))
        many = trials.silhouette_extents_px(seg, 3, u, v, angles, band, limit)
        one = np.array([trials.silhouette_extent_px(seg, 3, u, v, a, band, limit) for a in angles])
        assert (many == one).all()


def test_cli_v2_options():
    from dsc_grasp_ros.cli import main

    assert main(["sim-dataset", "--scenes", "1", "--out", "x", "--distance", "0.4-1.0"]) == 2  # v2 only
    with pytest.raises(SystemExit):
        main(["sim-dataset", "--preset", "v2", "--scenes", "1", "--out", "x", "--distance", "0.1-1.0"])
    assert main(["sim-dataset", "--preset", "v2", "--scenes", "1", "--out", "x", "--max-tilt", "80"]) == 2


def test_cli_lists_v2_objects_with_the_benchmark_marked(capsys):
    _objects_or_skip()
    from dsc_grasp_ros.cli import main

    assert main(["sim-dataset", "--preset", "v2", "--list-objects"]) == 0
    lines = [ln.split("\t") for ln in capsys.readouterr().out.strip().splitlines()]
    kinds = {name: kind for _, name, kind in lines}
    assert kinds["banana"].startswith("benchmark") and kinds["power_drill"].startswith("benchmark")
    assert sum(k.startswith("benchmark") for k in kinds.values()) == 10
    assert {"train", "held-out"} <= set(kinds.values())


# --------------------------------------------------------------------------- statistics script
def _stats_module():
    from dsc_grasp_ros.data import stats

    return stats


def _toy_jacquard(root: Path, n: int = 2) -> None:
    """320x240 images: a table at 0.6 m with an 80x60 px box 5 cm high, 3 grasps each."""
    for k in range(n):
        d = root / f"obj{k}"
        d.mkdir(parents=True)
        depth = np.full((240, 320), 0.6, np.float32)
        depth[90:150, 120:200] = 0.55
        mask = np.zeros((240, 320), np.uint8)
        mask[90:150, 120:200] = 255
        stem = d / f"0_obj{k}"
        write_depth(f"{stem}_perfect_depth.tiff", depth)
        write_depth(f"{stem}_stereo_depth.tiff", depth)
        cv2.imwrite(f"{stem}_RGB.png", np.full((240, 320, 3), 128, np.uint8))
        cv2.imwrite(f"{stem}_mask.png", mask)
        write_jacquard_grasps(f"{stem}_grasps.txt", np.array([[160, 120, 0.0, 40, 10], [150, 120, 0.3, 30, 10], [170, 110, -1.0, 24, 8]]))


def test_dataset_stats_on_known_geometry(tmp_path):
    ds = _stats_module()
    _toy_jacquard(tmp_path)
    s = ds.folder_stats(tmp_path, crop="square")
    assert s["images"] == 2 and s["grasps"] == 6 and s["grasps_per_image"]["median"] == 3
    scale = 224 / 240  # the centred 240x240 square resized to 224
    frac = 80 * 60 / 240**2
    assert s["depth_std_m"]["median"] == pytest.approx(0.05 * math.sqrt(frac * (1 - frac)), rel=0.05)
    assert s["depth_range_m"]["median"] == pytest.approx(0.05, abs=1e-4)
    assert s["object_size_net_px"]["median"] == pytest.approx(80 * scale, abs=2.0)
    assert s["opening_net_px"]["median"] == pytest.approx(30 * scale, rel=0.01)
    native = ds.folder_stats(tmp_path, crop="native")  # 224x224 window at full resolution
    assert native["object_size_net_px"]["median"] == pytest.approx(80, abs=2.0)
    # without a mask the object comes from the depth: tilted table (a ramp) + the same box
    h, w = 240, 320
    vv, uu = np.mgrid[0:h, 0:w]
    ramp = (0.5 + 0.001 * vv + 0.0003 * uu).astype(np.float32)
    ramp[90:150, 120:200] -= 0.03
    res = ds.plane_residual(ramp, ramp > 0)
    sizes = ds.object_sizes(np.nan_to_num(res) < -ds.DEPTH_OBJECT_M, ds.MIN_BLOB_DEPTH)
    assert len(sizes) == 1 and sizes[0] == pytest.approx(80, abs=2.0)


def test_dataset_stats_cli_json(tmp_path):
    _toy_jacquard(tmp_path, 1)
    r = subprocess.run([sys.executable, "-m", "dsc_grasp_ros.cli", "dataset-stats", str(tmp_path), "--json"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows[0]["images"] == 1 and rows[0]["crop"] == "square" and rows[0]["grasps"] == 3
    bad = subprocess.run([sys.executable, "-m", "dsc_grasp_ros.cli", "dataset-stats", str(tmp_path / "missing")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
