"""Synthetic data generator (PyBullet): camera model, grasp trials, labels, determinism, resume.

Scenes here are small (320x240, few candidates) to keep the file well under 90 s on 2 cores.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pybullet")

from dsc_grasp_ros.core.grasp import jacquard_to_rects, rect_corners, rects_to_jacquard  # noqa: E402
from dsc_grasp_ros.sim import camera as cam  # noqa: E402
from dsc_grasp_ros.sim import gripper as grip  # noqa: E402
from dsc_grasp_ros.sim import scene as sc  # noqa: E402
from dsc_grasp_ros.sim import trials  # noqa: E402
from dsc_grasp_ros.sim.dataset import GenConfig, generate, generate_scene, scene_complete, scene_id  # noqa: E402
from dsc_grasp_ros.sim.objects import HELD_OUT, catalogue, parse_object_range  # noqa: E402

SMALL = dict(width=320, height=240, candidates=12, objects_per_scene=(1, 2))


@pytest.fixture
def client():
    p, c = sc.connect()
    yield p, c
    sc.disconnect(p, c)


def _box(p, c, half, pos, mass=0.0, yaw=0.0, color=(1, 0, 0, 1)):
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=c)
    vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=color, physicsClientId=c)
    return p.createMultiBody(mass, col, vis, pos, p.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=c)


# --------------------------------------------------------------------------- camera
def test_quaternion_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.standard_normal(4)
        q /= np.linalg.norm(q)
        q = -q if q[3] < 0 else q
        R = cam.quat_to_matrix(q)
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.allclose(cam.matrix_to_quat(R), q, atol=1e-9)


def test_zbuffer_to_depth_inverts_the_projection():
    intr = cam.Intrinsics.d435()
    P = np.array(cam.projection_matrix(intr)).reshape(4, 4).T
    z = np.array([0.1, 0.35, 0.5, 0.7, 1.5, 2.9])
    clip = P @ np.stack([np.zeros_like(z), np.zeros_like(z), -z, np.ones_like(z)])
    zbuf = (clip[2] / clip[3] + 1) / 2
    assert np.allclose(cam.zbuffer_to_depth(zbuf), z, rtol=0, atol=1e-6)


def test_depth_of_a_plane_at_known_distance(client):
    p, c = client
    p.loadURDF("plane.urdf", physicsClientId=c)
    intr = cam.Intrinsics.d435(320, 240)
    for h in (0.35, 0.5, 0.7):  # straight down: every pixel sees the plane at depth h
        _, depth, _ = sc.render(p, c, cam.look_at([0.05, -0.02, h], [0.05, -0.02, 0.0], roll=0.4), intr)
        assert np.abs(depth - h).max() < 1e-3
    # Tilted by ~30 degrees: every deprojected pixel lies on the plane z = 0.
    T = cam.look_at([0.3, 0.1, 0.5], [0.0, 0.0, 0.0], roll=1.0)
    _, depth, _ = sc.render(p, c, T, intr)
    vv, uu = np.mgrid[0 : intr.height, 0 : intr.width]
    pts = cam.deproject(uu.ravel(), vv.ravel(), depth.ravel(), intr.K, T)
    assert np.abs(pts[:, 2]).max() < 1e-3


def test_projection_matches_K(client):
    """A thin square's segmentation centroid lands where K projects its centre (< 0.25 px)."""
    p, c = client
    intr = cam.Intrinsics(320, 240, 300.0, 297.0, 158.3, 121.7)
    T = cam.look_at([0.1, 0.05, 0.5], [0.1, 0.05, 0.0], roll=0.7)
    for pos in ([0.17, 0.02, 0.0], [0.1, 0.05, 0.0], [0.02, 0.12, 0.0]):
        b = _box(p, c, [0.02, 0.02, 0.0005], pos)
        _, _, seg = sc.render(p, c, T, intr)
        vs, us = np.nonzero(seg == b)
        uv, _ = cam.project([[pos[0], pos[1], 0.0005]], T, intr.K)
        assert abs(us.mean() - uv[0, 0]) < 0.25 and abs(vs.mean() - uv[0, 1]) < 0.25
        p.removeBody(b, physicsClientId=c)


def test_stereo_depth_noise_and_holes():
    rng = np.random.default_rng(0)
    intr = cam.Intrinsics.d435()
    depth = np.full((480, 640), 0.5, np.float32)
    depth[200:280, 300:380] = 0.45  # a 5 cm box on the table
    st = cam.stereo_depth(depth, intr.K, rng, hole_value=-1.0)
    holes = st == -1.0
    assert 0.005 < holes.mean() < 0.1
    err = np.abs(st[~holes] - depth[~holes])
    assert np.median(err) < 0.002 and err.max() < 0.02  # ~1 mm at 0.5 m, like a D435
    # The occlusion band lies left of the box (the second imager sits to the right).
    assert holes[230:250, 292:300].mean() > 0.5 and holes[230:250, 381:389].mean() < 0.5


# --------------------------------------------------------------------------- grasp trials
def _box_world(p, c, width=0.04, jaw=0.03, height=0.05, yaw=0.0):
    p.loadURDF("plane.urdf", physicsClientId=c)
    box = _box(p, c, [width / 2, jaw / 2, height / 2], [0, 0, height / 2 + 0.0005], mass=0.15, yaw=yaw)
    p.changeDynamics(box, -1, lateralFriction=0.8, physicsClientId=c)
    sc.settle(p, c, [box])
    g = grip.create(p, c)
    state = p.saveState(physicsClientId=c)
    pos = np.array(p.getBasePositionAndOrientation(box, physicsClientId=c)[0])
    return box, g, state, pos


def test_grasp_trial_on_a_box(client):
    p, c = client
    box, g, state, pos = _box_world(p, c)
    quat = grip.tcp_orientation([0, 0, -1], [1, 0, 0])  # close along x, across the 4 cm side
    tcp = pos + [0, 0, 0.025 - 0.02]  # 2 cm below the top face
    bodies = [0, box]
    # The right opening: no collision, the grasp holds, the contact width is the box width.
    grip.place(p, c, g, tcp, quat, 0.06)
    assert not grip.collides(p, c, g, bodies)
    res = trials.run_trial(p, c, g, state, box, [], tcp, quat, 0.06)
    assert res.success, res
    assert abs(res.contact_width - 0.04) < 0.003 and res.lift > 0.1
    # Too small an opening: the open fingers would be inside the box -> rejected before a trial.
    p.restoreState(stateId=state, physicsClientId=c)
    grip.place(p, c, g, tcp, quat, 0.03)
    assert grip.collides(p, c, g, bodies)
    quat_y = grip.tcp_orientation([0, 0, -1], [0, 1, 0])
    # Beside the box the jaws close on nothing.
    res = trials.run_trial(p, c, g, state, box, [], tcp + [0.06, 0, 0], quat_y, 0.06)
    assert not res.success and res.reason == "empty"


def test_grasp_collision_with_a_neighbour(client):
    p, c = client
    box, g, state, pos = _box_world(p, c)
    wall = _box(p, c, [0.005, 0.03, 0.04], [pos[0] + 0.028, 0, 0.04])  # 8 mm right of the box
    quat = grip.tcp_orientation([0, 0, -1], [1, 0, 0])
    tcp = pos + [0, 0, 0.005]
    grip.place(p, c, g, tcp, quat, 0.06)
    assert grip.collides(p, c, g, [0, box, wall])  # the finger would land on the wall
    grip.place(p, c, g, tcp, grip.tcp_orientation([0, 0, -1], [0, 1, 0]), 0.05)
    assert not grip.collides(p, c, g, [0, box, wall])  # rotated 90 degrees it fits


def test_label_view_on_a_box_gives_the_needed_opening(client):
    p, c = client
    box, g, state, pos = _box_world(p, c)
    scene = sc.Scene("plane", 0, 0.0, np.zeros(2), [sc.SceneObject(-1, "box", box, 1.0, 0.15)], [0, box])
    intr = cam.Intrinsics.d435(320, 240)
    T = cam.look_at([0.0, 0.0, 0.5], [0.0, 0.0, 0.0], roll=0.0)  # image x = world x
    _, depth, seg = sc.render(p, c, T, intr)
    rects, owners, stats = trials.label_view(p, c, g, state, scene, T, intr.K, depth, seg, np.random.default_rng(1), trials.LabelParams(candidates=24))
    assert stats.trials > 0 and len(rects) >= 3 and set(owners) == {box}
    z = 0.5 - 0.05
    f = intr.fx
    for u, v, a, opening, jaw in rects:
        assert seg[int(v), int(u)] == box
        assert jaw == pytest.approx(grip.JAW_SIZE * f / z, rel=0.02)
        # Closing across the 4 cm side (angle ~ 0) needs ~4 cm + margin; any successful grasp
        # needs at least the box's narrow width.
        assert opening * z / f >= 0.04 - 0.002
        if abs(a) < math.radians(10):
            assert opening * z / f == pytest.approx(0.04 + trials.LABEL_MARGIN, abs=0.004)


# --------------------------------------------------------------------------- dataset files
@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "a"
    cfg = GenConfig(views=2, **SMALL)
    summary = generate(out, 3, seed=11, workers=1, cfg=cfg, progress=False)
    return out, cfg, summary


def test_generated_files_and_label_round_trip(small_run):
    out, cfg, summary = small_run
    assert summary["scenes"] == 3 and summary["images"] >= 3
    for n_scene in range(3):
        sid = scene_id(11 + n_scene)
        d = out / sid
        assert scene_complete(out, sid)
        meta = json.loads((d / "scene.json").read_text())
        for v in meta["views"]:
            n = v["view"]
            b = d / f"{n}_{sid}_"
            rgb = cv2.imread(str(b) + "RGB.png")
            mask = cv2.imread(str(b) + "mask.png", cv2.IMREAD_UNCHANGED)
            import tifffile

            pd = tifffile.imread(str(b) + "perfect_depth.tiff")
            sd = tifffile.imread(str(b) + "stereo_depth.tiff")
            assert rgb.shape == (240, 320, 3) and mask.shape == (240, 320) and pd.dtype == np.float32 and sd.shape == pd.shape
            assert set(np.unique(mask)) <= {0, 255}
            camj = json.loads(Path(str(b) + "camera.json").read_text())
            assert camj["image_size"] == [320, 240] and len(camj["camera_pose"]) == 7
            text = Path(str(b) + "grasps.txt").read_text()
            rows = np.array([[float(x) for x in line.split(";")] for line in text.splitlines() if line], dtype=np.float64)
            rects = jacquard_to_rects(rows)
            assert len(rects) == v["grasps"] == len(camj["grasp_objects"]) >= cfg.min_grasps
            # Every rectangle centre lies on the object mask, corners inside the image.
            for u, vv, a, o, j in rects:
                assert mask[int(round(vv)), int(round(u))] == 255
            corners = rect_corners(*rects.T)
            assert corners.min() >= 0 and corners[..., 0].max() <= 319 and corners[..., 1].max() <= 239
            # The written text is exactly what rects_to_jacquard gives for the rectangles read back.
            again = rects_to_jacquard(rects)
            assert np.allclose(again, rows, atol=1e-3)
            # Grasp objects are the scene's objects (object-wise split possible).
            assert set(camj["grasp_objects"]) <= set(meta["object_indices"])
            # Pixel sizes are the metric sizes at the surface depth: px = m * f / Z.
            met = np.array(camj["grasps_metric"])
            f = camj["K"][0][0]
            assert np.allclose(rects[:, 3], met[:, 0] * f / met[:, 3], rtol=0.01)
            assert np.allclose(rects[:, 4], met[:, 1] * f / met[:, 3], rtol=0.01)
            assert np.all(met[:, 0] <= met[:, 5] + 1e-6) and np.all(met[:, 4] > 0.002)
            # Openings: at most the gripper's 8 cm at the surface depth.
            zc = np.array([pd[int(round(vv)), int(round(u))] for u, vv, *_ in rects])
            assert np.all(rects[:, 3] * zc / camj["K"][0][0] <= grip.MAX_OPENING + 1e-3)


def test_determinism_and_worker_independence(small_run, tmp_path):
    out, cfg, _ = small_run
    # Same seed, fresh folder: identical files (scene 12 alone, so also independent of its predecessors).
    b = tmp_path / "b"
    generate(b, 1, seed=12, workers=1, cfg=cfg, progress=False)
    sid = scene_id(12)
    files = sorted(x.name for x in (out / sid).iterdir())
    assert files == sorted(x.name for x in (b / sid).iterdir())
    for name in files:
        assert (out / sid / name).read_bytes() == (b / sid / name).read_bytes(), name


def test_two_workers_match_one(small_run, tmp_path):
    out, cfg, _ = small_run
    c = tmp_path / "c"
    generate(c, 2, seed=11, workers=2, cfg=cfg, progress=False)
    for s in (11, 12):
        sid = scene_id(s)
        for x in (out / sid).iterdir():
            assert x.read_bytes() == (c / sid / x.name).read_bytes(), x.name


def test_resume_skips_complete_scenes(small_run, tmp_path):
    out, cfg, _ = small_run
    d = tmp_path / "r"
    shutil.copytree(out, d)
    (d / ".lock").unlink(missing_ok=True)
    victim = d / scene_id(12)
    shutil.rmtree(victim)
    (d / f".tmp-{scene_id(12)}-999999").mkdir()  # a crashed worker's leftover
    (d / f".tmp-{scene_id(12)}-999999" / "junk").write_text("x")
    kept = (d / scene_id(11) / "scene.json").stat().st_mtime_ns
    log_lines = len((d / "generation_log.jsonl").read_text().splitlines())
    s = generate(d, 3, seed=11, workers=1, cfg=cfg, progress=False)
    assert s["this_run"] == {**s["this_run"], "generated": 1, "skipped": 2, "errors": 0}
    assert (d / scene_id(11) / "scene.json").stat().st_mtime_ns == kept
    assert len((d / "generation_log.jsonl").read_text().splitlines()) == log_lines + 1
    assert not list(d.glob(".tmp-*"))
    for x in (out / scene_id(12)).iterdir():
        assert x.read_bytes() == (victim / x.name).read_bytes()
    # Other settings into the same folder are refused.
    with pytest.raises(ValueError, match="other settings"):
        generate(d, 3, seed=11, cfg=GenConfig(views=1, **SMALL), progress=False)


def test_object_ranges_and_hold_out(tmp_path):
    cat = catalogue()
    train, test = set(parse_object_range("train")), set(parse_object_range("test"))
    assert train and test and not train & test and train | test == set(cat)
    assert test == HELD_OUT & set(cat)
    assert parse_object_range("5-7,1002") == [5, 6, 7, 1002]
    assert 168 not in parse_object_range("160-170")
    with pytest.raises(ValueError):
        parse_object_range("5000-5001")
    r = generate_scene(3, tmp_path, GenConfig(object_range="900-905", **SMALL))
    meta = json.loads((tmp_path / r["scene"] / "scene.json").read_text())
    assert set(meta["object_indices"]) <= set(range(900, 906))


def test_cli_help_and_bad_arguments(capsys):
    from dsc_grasp_ros.cli import build_parser, main

    parser = build_parser()
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["sim-dataset", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--scenes", "--out", "--workers", "--seed", "--views", "--objects-per-scene", "--object-range"):
        assert opt in text
    with pytest.raises(SystemExit):
        parser.parse_args(["sim-dataset", "--scenes", "1", "--out", "x", "--objects-per-scene", "3-1"])
    assert main(["sim-dataset", "--scenes", "1"]) == 2


# --------------------------------------------------------------------------- sequence for rosbags
def test_render_sequence_box_top_matches_depth():
    frames = list(sc.render_sequence(4, seed=5, width=320, height=240))
    assert len(frames) == 4
    hb = sc.SEQUENCE_BOX_SIZE[2] / 2
    poses = []
    for fr in frames:
        assert fr.rgb.dtype == np.uint8 and fr.rgb.shape == (240, 320, 3)
        assert fr.depth.dtype == np.float32 and fr.depth.shape == (240, 320)
        assert fr.K.shape == (3, 3) and len(fr.T_base_camera) == 7
        name, pos = fr.objects[0]
        assert name == "box"
        top = pos + [0, 0, hb]
        x, y, z, qx, qy, qz, qw = fr.T_base_camera
        T = cam.pose_matrix([x, y, z], cam.quat_to_matrix([qx, qy, qz, qw]))
        # Top centre -> pixel -> depth -> back into the base frame.
        uv, _ = cam.project([top], T, fr.K)
        u, v = uv[0]
        ui, vi = int(round(u)), int(round(v))
        assert 0 <= ui < 320 and 0 <= vi < 240
        back = cam.deproject(u, v, fr.depth[vi, ui], fr.K, T)[0]
        assert np.linalg.norm(back - top) < 0.002
        poses.append(np.array(fr.T_base_camera[:3]))
    assert 0.001 < np.linalg.norm(poses[1] - poses[0]) < 0.05  # slowly moving camera
    again = next(iter(sc.render_sequence(1, seed=5, width=320, height=240)))
    assert np.array_equal(again.rgb, frames[0].rgb) and np.array_equal(again.depth, frames[0].depth)


def test_label_angles_follow_the_image_convention(client):
    """A 4 x 9 cm box turned 45 degrees counter-clockwise (seen from above) can only be grasped
    across its 4 cm side: labels must point at +45 degrees (counter-clockwise as seen on the image)."""
    p, c = client
    box, g, state, pos = _box_world(p, c, width=0.04, jaw=0.09, height=0.04, yaw=math.radians(45))
    scene = sc.Scene("plane", 0, 0.0, np.zeros(2), [sc.SceneObject(-1, "box", box, 1.0, 0.15)], [0, box])
    intr = cam.Intrinsics.d435(320, 240)
    T = cam.look_at([0.0, 0.0, 0.5], [0.0, 0.0, 0.0], roll=0.0)  # image x = world x, image y = -world y
    _, depth, seg = sc.render(p, c, T, intr)
    rects, _, stats = trials.label_view(p, c, g, state, scene, T, intr.K, depth, seg, np.random.default_rng(2), trials.LabelParams(candidates=30))
    assert len(rects) >= 3, stats.as_dict()
    d = np.degrees(rects[:, 2]) - 45.0
    d = (d + 90) % 180 - 90
    assert abs(np.median(d)) < 15 and np.abs(d).max() < 50, np.degrees(rects[:, 2])  # diagonal grasps near a corner fit too
    # Jacquard files hold the clockwise angle: -angle.
    assert np.allclose(rects_to_jacquard(rects)[:, 2], -np.degrees(rects[:, 2]))


def test_time_limit_stops_and_a_rerun_continues(tmp_path):
    cfg = GenConfig(**SMALL)
    s = generate(tmp_path, 3, seed=40, cfg=cfg, progress=False, time_limit=0.0)
    assert s["this_run"]["generated"] == 1 and s["this_run"]["stopped_at_time_limit"] and s["this_run"]["remaining"] == 2
    s = generate(tmp_path, 3, seed=40, cfg=cfg, progress=False)
    assert s["this_run"]["generated"] == 2 and s["this_run"]["skipped"] == 1 and s["scenes"] == 3
    assert json.loads((tmp_path / "dataset.json").read_text())["scenes"] == 3
