"""The ``cornell`` and ``wrist`` synthetic-data presets: the Kinect-v1 depth model on known geometry, the D405
parameters of the RealSense model, the presets' rows and options, and one tiny scene of each (160x120)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dsc_grasp_ros.sim import camera as cam
from dsc_grasp_ros.sim.presets import PRESETS

TINY = dict(width=160, height=120, views=1, candidates=8, max_candidates_per_view=16, camera_tries=2, max_attempts=3)
#: seeds whose tiny scene has a labelled view (deterministic)
SEEDS = {"cornell": 1, "wrist": 3}


def _objects_or_skip():
    from dsc_grasp_ros.sim.mesh_objects import ObjectsNotFound, objects_root

    try:
        return objects_root()
    except ObjectsNotFound as e:
        pytest.skip(f"shared object meshes not available: {e}")


# --------------------------------------------------------------------------- Kinect v1 depth model
def test_kinect_plane_noise_follows_the_model_and_lies_on_disparity_steps():
    K = cam.Intrinsics.d435(320, 240).K
    z = 0.6
    out, info = cam.kinect_depth(np.full((240, 320), z, np.float32), K, np.random.default_rng(0))
    ok = out != -1.0
    assert ok.mean() > 0.97  # a matte plane in range: only a few dropout blobs
    sigma = float(cam.kinect_sigma_z(z))
    assert sigma == pytest.approx(0.0012 + 0.0019 * 0.2**2)
    assert abs(out[ok].std() / sigma - 1.0) < 0.3
    assert abs(float(out[ok].mean()) - z) < 0.5 * sigma
    # every value is f b / (k / 8) for an integer k: the IR camera's 1/8-pixel disparity steps
    k = 8 * cam.KINECT_FOCAL_PX * cam.KINECT_BASELINE / out[ok].astype(np.float64)
    assert np.abs(k - np.round(k)).max() < 1e-3
    steps = np.unique(np.round(k))
    assert len(steps) >= 5  # the noise spans several steps (one step is about 1 mm at 0.6 m)
    assert info["sensor"] == "kinect_v1" and info["disparity_step_px"] == 0.125 and info["baseline_m"] == 0.075
    # the axial noise grows with distance as the model says (sigma 2.2 mm at 1.2 m)
    far, _ = cam.kinect_depth(np.full((240, 320), 1.2, np.float32), K, np.random.default_rng(0))
    assert abs(far[far != -1.0].std() / float(cam.kinect_sigma_z(1.2)) - 1.0) < 0.3


def test_kinect_projector_shadow_lies_beside_the_near_surface_away_from_the_projector():
    K = cam.Intrinsics.d435(320, 240).K
    f = K[0, 0]
    near, far = 0.6, 0.8
    width = f * cam.KINECT_BASELINE * (1 / near - 1 / far)  # the shadow's width in pixels (9.6 here)
    assert 8 < width < 11

    def holes(near_on_right: bool, side: int) -> np.ndarray:
        z = np.full((240, 320), far, np.float32)
        if near_on_right:
            z[:, 160:] = near
        else:
            z[:, :160] = near
        out, _ = cam.kinect_depth(z, K, np.random.default_rng(1), projector_side=side)
        return (out == -1.0).mean(axis=0)  # hole fraction per column

    # projector at +x (the default): the far surface left of a near one on the right gets no pattern
    h = holes(True, 1)
    assert h[152:157].min() > 0.95  # the band of about 10 px before the edge at column 160
    assert h[120:148].max() < 0.05 and h[165:200].max() < 0.05  # beyond the band, and the lit near surface
    # the mirrored step: the far surface lies on the projector's side, lit: only the edge's own 1-2 px
    h = holes(False, 1)
    assert h[163:175].max() < 0.05 and h[120:156].max() < 0.05
    # the projector on the other side mirrors the shadow
    h = holes(False, -1)
    assert h[163:168].min() > 0.95 and h[120:156].max() < 0.05


def test_kinect_holes_on_dark_shiny_near_and_far_surfaces():
    K = cam.Intrinsics.d435(320, 240).K
    z = np.full((240, 320), 0.7, np.float32)
    z[:, 300:] = cam.FAR  # nothing rendered
    z[200:, :40] = 0.3  # nearer than the Kinect's range
    rgb = np.full((240, 320, 3), 180, np.uint8)
    rgb[20:100, 20:100] = 5
    seg = np.zeros((240, 320), np.int32)
    seg[120:190, 140:220] = 7
    out, info = cam.kinect_depth(z, K, np.random.default_rng(3), rgb=rgb, seg=seg, shiny=[7])
    holes = out == -1.0
    assert holes[30:90, 30:90].mean() > 0.5 and holes[125:185, 145:215].mean() >= 0.08
    assert holes[:, 302:].all() and holes[205:, :35].all()
    assert holes[20:100, 120:280].mean() < 0.05
    assert info["dark_hole_pixels"] > 0 and info["shiny_hole_pixels"] > 0


# --------------------------------------------------------------------------- the D405 parameters
def test_realsense_d405_parameters_close_range():
    K = cam.Intrinsics.d435(320, 240).K * np.array([[0.55], [0.55], [1.0]])  # a D405's wide field of view
    z = np.full((240, 320), 0.25, np.float32)
    z[:20, :20] = 0.05  # nearer than its 7 cm
    out, info = cam.realsense_depth(z, K, np.random.default_rng(0), sensor=cam.D405)
    ok = out != -1.0
    assert not ok[:20, :20].any() and ok.mean() > 0.9
    v = out[ok].astype(np.float64)
    assert np.abs(v * 1e4 - np.round(v * 1e4)).max() < 1e-2  # 0.1 mm depth unit
    assert float(np.sqrt(np.mean((v - 0.25) ** 2))) < 0.002  # 18 mm baseline at 25 cm: about 1 mm
    assert info["sensor"] == "d405" and info["baseline_m"] == 0.018 and info["depth_focal_ratio"] == 1.0
    assert info["depth_unit_m"] == 0.0001 and info["min_range_m"] == 0.07
    _, default = cam.realsense_depth(z, K, np.random.default_rng(0))
    assert "sensor" not in default and default["depth_unit_m"] == 0.001  # the v2 manifests stay as they were


# --------------------------------------------------------------------------- the presets and the command line
def test_cornell_and_wrist_rows():
    from dsc_grasp_ros.commands.sim_dataset import PRESET_NAMES
    from dsc_grasp_ros.sim.dataset import GenConfig

    assert PRESET_NAMES == tuple(PRESETS)
    c, w, v2 = PRESETS["cornell"], PRESETS["wrist"], PRESETS["v2"]
    assert (c.objects, c.object_range, c.objects_per_scene, c.clutter) == ("meshes", "train", (1, 1), False)
    assert c.camera.distance == (0.5, 0.8) and not c.camera.vertical and c.camera.max_tilt_deg == 30.0
    assert c.depth_model == "kinect" and c.detailed_manifest
    assert (w.objects, w.object_range, w.objects_per_scene, w.clutter) == ("meshes", "train", (1, 4), False)
    assert w.camera.distance == (0.15, 0.5) and not w.camera.vertical and w.camera.max_tilt_deg == 30.0
    assert w.depth_model == "realsense" and w.depth_sensor == cam.D405 and v2.depth_sensor == cam.D4XX
    assert w.label == v2.label and w.detailed_manifest
    for name in ("cornell", "wrist"):
        d = GenConfig.of_preset(name).as_dict()
        assert d["preset"] == name and "height_range" not in d and "gripper" not in d
        assert d["dist_range"] == list(PRESETS[name].camera.distance)
        assert GenConfig.of_preset(name, gripper="robotiq_2f_140").as_dict()["gripper"] == "robotiq_2f_140"
    digests = {GenConfig.of_preset(n).digest() for n in PRESETS}
    assert len(digests) == len(PRESETS)


def test_distance_limits_follow_the_preset(capsys):
    from dsc_grasp_ros.cli import main

    assert main(["sim-dataset", "--preset", "v2", "--scenes", "1", "--out", "x", "--distance", "0.15-0.4"]) == 2
    assert "0.2-2.5 m for --preset v2" in capsys.readouterr().out
    assert main(["sim-dataset", "--preset", "cornell", "--scenes", "1", "--out", "x", "--distance", "0.18-0.6"]) == 2
    assert "0.2-2.5 m" in capsys.readouterr().out
    for bad in ("0.1-0.4", "0.15-2.6", "0.4-0.2"):
        with pytest.raises(SystemExit):
            main(["sim-dataset", "--preset", "wrist", "--scenes", "1", "--out", "x", "--distance", bad])
        assert "0.15 <= A" in capsys.readouterr().err
    assert main(["sim-dataset", "--scenes", "1", "--out", "x", "--distance", "0.4-1.0"]) == 2  # v1: no distance option
    assert "cornell or wrist" in capsys.readouterr().out


def test_wrist_accepts_a_camera_15_cm_away(tmp_path, capsys):
    _objects_or_skip()
    from dsc_grasp_ros.cli import main

    out = tmp_path / "w"
    assert main(["sim-dataset", "--preset", "wrist", "--scenes", "0", "--out", str(out), "--distance", "0.15-0.3", "--quiet"]) == 0
    cfg = json.loads((out / "dataset_config.json").read_text())
    assert cfg["preset"] == "wrist" and cfg["dist_range"] == [0.15, 0.3]


# --------------------------------------------------------------------------- one tiny scene of each
@pytest.fixture(scope="module", params=sorted(SEEDS))
def tiny(request, tmp_path_factory):
    pytest.importorskip("pybullet")
    _objects_or_skip()
    from dsc_grasp_ros.sim.dataset import GenConfig, generate

    name = request.param
    out = tmp_path_factory.mktemp(name)
    cfg = GenConfig.of_preset(name, **TINY)
    summary = generate(out, 1, seed=SEEDS[name], cfg=cfg, progress=False, log=lambda *a: None)
    return name, out, cfg, summary


def test_tiny_scene(tiny):
    from dsc_grasp_ros.data.formats import read_depth, read_jacquard_grasps
    from dsc_grasp_ros.sim.dataset import scene_id
    from dsc_grasp_ros.sim.mesh_objects import benchmark_names, object_selection

    name, out, cfg, summary = tiny
    sid = scene_id(SEEDS[name])
    assert summary["this_run"]["generated"] == 1 and summary["images"] == 1 and summary["grasps"] >= cfg.min_grasps
    assert json.loads((out / "dataset_config.json").read_text())["preset"] == name
    manifest = json.loads((out / sid / "scene.json").read_text())
    assert manifest["preset"] == name and len(manifest["views"]) == 1
    names = [o["name"] for o in manifest["objects"]]
    lo, hi = PRESETS[name].objects_per_scene
    assert lo <= len(names) <= hi and (len(names) == 1 or name == "wrist")
    assert set(names) <= set(object_selection("train")) and not set(names) & set(benchmark_names())
    stem = out / sid / f"0_{sid}"
    meta = json.loads(Path(f"{stem}_camera.json").read_text())
    assert meta["preset"] == name and meta["image_size"] == [160, 120] and meta["background"] == []
    a, b = PRESETS[name].camera.distance
    assert a - 1e-3 <= meta["camera_distance_m"] <= b + 1e-3 and 0 <= meta["camera_tilt_deg"] <= 30.0
    model = meta["stereo_model"]
    assert model["sensor"] == {"cornell": "kinect_v1", "wrist": "d405"}[name]
    perfect, stereo = read_depth(f"{stem}_perfect_depth.tiff"), read_depth(f"{stem}_stereo_depth.tiff")
    assert perfect.shape == stereo.shape == (120, 160)
    holes = stereo == -1.0
    assert 0.0 < holes.mean() < 0.5
    assert np.median(np.abs(stereo[~holes] - perfect[~holes])) < 0.01
    rects = read_jacquard_grasps(f"{stem}_grasps.txt")
    assert len(rects) == manifest["views"][0]["grasps"] >= cfg.min_grasps
    assert meta["gripper"]["max_opening"] == pytest.approx(0.08)  # the default stroke
