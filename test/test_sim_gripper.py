"""The labeller's gripper stroke (``dsc-grasp sim-dataset --gripper``): a box wider than the Panda
opens gets grasps across its wide side from the Robotiq 2F-140 and none from the Panda."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pybullet")

from dsc_grasp_ros.core.gripper import PRESETS  # noqa: E402
from dsc_grasp_ros.sim import camera as cam  # noqa: E402
from dsc_grasp_ros.sim import gripper as grip  # noqa: E402
from dsc_grasp_ros.sim import scene as sc  # noqa: E402
from dsc_grasp_ros.sim import trials  # noqa: E402
from dsc_grasp_ros.sim.dataset import GenConfig  # noqa: E402

WIDE, NARROW, HEIGHT = 0.10, 0.05, 0.05  # box sides (m): 10 cm along world x, 5 cm along y


def _label_box(spec: grip.SimGripper, seed: int = 3):
    """Label a 10 x 5 x 5 cm box seen from 0.5 m straight above -> (rects in metres, stats)."""
    p, c = sc.connect()
    try:
        p.loadURDF("plane.urdf", physicsClientId=c)
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[WIDE / 2, NARROW / 2, HEIGHT / 2], physicsClientId=c)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=[WIDE / 2, NARROW / 2, HEIGHT / 2], physicsClientId=c)
        box = p.createMultiBody(0.15, col, vis, [0, 0, HEIGHT / 2 + 0.0005], physicsClientId=c)
        p.changeDynamics(box, -1, lateralFriction=0.8, physicsClientId=c)
        sc.settle(p, c, [box])
        g = grip.create(p, c, spec=spec)
        state = p.saveState(physicsClientId=c)
        scene = sc.Scene("plane", 0, 0.0, np.zeros(2), [sc.SceneObject(-1, "box", box, 1.0, 0.15)], [0, box])
        intr = cam.Intrinsics.d435(320, 240)
        T = cam.look_at([0.0, 0.0, 0.5], [0.0, 0.0, 0.0], roll=0.0)  # image x = world x
        _, depth, seg = sc.render(p, c, T, intr)
        rects, _, stats = trials.label_view(p, c, g, state, scene, T, intr.K, depth, seg, np.random.default_rng(seed),
                                            trials.LabelParams(candidates=40))
    finally:
        sc.disconnect(p, c)
    z = 0.5 - HEIGHT
    metres = rects.copy()
    metres[:, 3:] *= z / intr.fx
    return metres, stats


def _across_wide_side(rects) -> np.ndarray:
    """Rectangles whose closing axis runs along the box's 10 cm side (image x) within 20 degrees."""
    return np.abs(np.asarray(rects)[:, 2]) < math.radians(20)


def test_strokes_come_from_the_robot_gripper_presets():
    assert grip.SIM_GRIPPERS["franka_hand"] == grip.PANDA and grip.PANDA.max_opening == grip.MAX_OPENING == 0.08
    for name in ("robotiq_2f_85", "robotiq_2f_140"):
        assert grip.sim_gripper(name).max_opening == PRESETS[name].max_opening
        assert grip.sim_gripper(name).jaw_size == grip.PANDA.jaw_size  # only the stroke changes
    with pytest.raises(ValueError, match="robotiq_2f_140"):
        grip.sim_gripper("robotiq140mm")


def test_panda_gets_no_grasp_across_a_box_wider_than_it_opens():
    rects, stats = _label_box(grip.PANDA)
    assert stats.rejected.get("too_wide", 0) > 0  # the wide side was tried and refused before any trial
    assert len(rects) and not _across_wide_side(rects).any()
    assert (rects[:, 3] <= 0.08 + 1e-6).all()


def test_robotiq_140_grasps_the_box_across_its_wide_side():
    rects, stats = _label_box(grip.sim_gripper("robotiq_2f_140"))
    wide = rects[_across_wide_side(rects)]
    assert len(wide) >= 2, stats.as_dict()
    # the label opening is the contact width plus the margin: the 10 cm side, longer when the jaws close
    # up to 20 degrees off its axis (10 cm / cos 20 = 10.6 cm), within the 14 cm stroke
    lo, hi = WIDE + trials.LABEL_MARGIN - 0.004, WIDE / math.cos(math.radians(20)) + trials.LABEL_MARGIN + 0.004
    assert ((wide[:, 3] >= lo) & (wide[:, 3] <= hi)).all(), wide[:, 3]
    assert (rects[:, 3] <= 0.14 + 1e-6).all()


def test_gripper_setting_is_recorded_and_keeps_old_digests():
    default = GenConfig.v2()
    assert "gripper" not in default.as_dict()  # data sets generated before the option resume unchanged
    wide = GenConfig.v2(gripper="robotiq_2f_140")
    assert wide.as_dict()["gripper"] == "robotiq_2f_140" and wide.digest() != default.digest()


def test_cli_gripper_option(capsys):
    from dsc_grasp_ros.cli import build_parser

    ns = build_parser().parse_args(["sim-dataset", "--scenes", "1", "--out", "x", "--gripper", "robotiq_2f_140"])
    assert ns.gripper == "robotiq_2f_140"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sim-dataset", "--scenes", "1", "--out", "x", "--gripper", "huge"])


def test_generated_files_record_the_gripper(tmp_path):
    import json

    from dsc_grasp_ros.sim.dataset import generate

    out = tmp_path / "wide"
    cfg = GenConfig(width=320, height=240, candidates=12, objects_per_scene=(1, 2), gripper="robotiq_2f_140")
    summary = generate(out, 1, seed=11, workers=1, cfg=cfg, progress=False)
    assert not summary["this_run"]["errors"]
    assert json.loads((out / "dataset_config.json").read_text())["gripper"] == "robotiq_2f_140"
    cams = sorted(out.glob("*/*_camera.json"))
    assert cams
    for c in cams:
        meta = json.loads(c.read_text())
        assert meta["gripper"]["name"] == "robotiq_2f_140" and meta["gripper"]["max_opening"] == 0.14
        assert all(row[5] <= 0.14 + 1e-9 for row in meta["grasps_metric"])  # trial openings within the stroke
