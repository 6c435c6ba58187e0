"""Plausibility limits, wrong depth units, tiny images and lens distortion in the core detector
(the ROS node and the CLI share these checks)."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from conftest import ROOT, OracleNet, box_scene
from dsc_grasp_ros.core.imageio import write_depth_png, write_rgb
from dsc_grasp_ros.core.inference import DetectorConfig, GraspDetector
from dsc_grasp_ros.core.model_io import ModelMetadata, save_model
from dsc_grasp_ros.core.network import dsc_graspnet
from dsc_grasp_ros.core.preprocess import InputError, check_frame


@pytest.fixture(scope="module")
def det(tmp_path_factory):
    torch.manual_seed(0)
    path = save_model(tmp_path_factory.mktemp("m") / "rgbd.pt", dsc_graspnet("rgbd"), ModelMetadata("rgbd", description="test"))
    # a fixed ROI (the centred 480x480 square): the network-pixel opening maps to 64 image pixels
    d = GraspDetector(DetectorConfig(model_path=str(path), device="cpu", top_k=1, min_quality=0.1, roi=[80, 0, 480, 480]))
    d.engine.model = OracleNet([112, 112, 0.0, 30.0, 15.0])
    return d


def test_defaults_are_a_d4xx_and_a_panda_hand():
    c = DetectorConfig()
    assert (c.min_depth, c.max_depth, c.max_gripper_opening) == (0.1, 3.0, 0.08)


def test_flat_depth_at_10_m_is_rejected_not_a_metre_wide_grasp(det, K640):
    rgb, _ = box_scene(K=K640)
    flat = np.full((480, 640), 10000, np.uint16)  # 16UC1: 10 m everywhere
    res = det.detect(rgb, flat, K640)
    assert res.grasps == [] and res.rejected_codes == ["depth_out_of_range"], res.rejected
    assert "10.000 m" in res.rejected[0] and "working range" in res.rejected[0]
    det.update(max_depth=20.0)  # in range now, but the 30 network-px opening is ~1 m at 10 m
    try:
        res = det.detect(rgb, flat, K640)
        assert res.grasps == [] and res.rejected_codes == ["too_wide"], res.rejected
        assert "max_gripper_opening" in res.rejected[0]
    finally:
        det.update(max_depth=3.0)
    with pytest.raises(ValueError, match="smaller than max_depth"):
        det.update(min_depth=3.5)


def test_a_table_top_grasp_passes_the_limits(det, K640):
    rgb, depth = box_scene(K=K640)
    res = det.detect(rgb, (depth * 1000).astype(np.uint16), K640)
    assert len(res.grasps) == 1 and res.rejected == []
    assert 0.5 < res.grasps[0].depth_m < 0.61 and res.grasps[0].width_m < 0.08


def test_saturated_16uc1_is_a_wrong_unit(det, K640):
    rgb, _ = box_scene(K=K640)
    with pytest.raises(InputError, match="saturated") as e:
        det.detect(rgb, np.full((480, 640), 65535, np.uint16), K640)
    assert e.value.code == "depth_wrong_unit"


def test_32fc1_in_millimetres_is_a_wrong_unit(det, K640):
    rgb, depth = box_scene(K=K640)
    with pytest.raises(InputError, match="millimetres") as e:
        det.detect(rgb, depth * 1000.0, K640)  # 32FC1 sent in millimetres: 550-600 "m"
    assert e.value.code == "depth_wrong_unit"
    with pytest.raises(InputError, match="1101.0: 32FC1 depth must be metres"):
        det.detect(rgb, np.full((480, 640), 1101.0, np.float32), K640)  # the z = 1101 m
    with pytest.raises(InputError, match="metres or centimetres"):
        det.detect(rgb, np.ones((480, 640), np.uint16), K640)  # 16UC1 holding metres


@pytest.mark.parametrize("shape", [(1, 1), (31, 640), (480, 16)])
def test_images_smaller_than_the_network_needs_are_rejected(det, shape):
    with pytest.raises(InputError, match="too small") as e:
        check_frame(np.zeros((*shape, 3), np.uint8), np.full(shape, 600, np.uint16))
    assert e.value.code == "image_too_small"
    K = np.array([[600.0, 0, shape[1] / 2], [0, 600.0, shape[0] / 2], [0, 0, 1]])
    with pytest.raises(InputError, match="too small"):
        det.detect(np.zeros((*shape, 3), np.uint8), np.full(shape, 600, np.uint16), K)


def test_predict_cli_exits_non_zero_on_a_1x1_image(tmp_path):
    write_rgb(tmp_path / "c.png", np.zeros((1, 1, 3), np.uint8))
    write_depth_png(tmp_path / "d.png", np.full((1, 1), 0.6, np.float32))
    r = subprocess.run([sys.executable, "-m", "dsc_grasp_ros.cli", "predict", "--rgb", str(tmp_path / "c.png"), "--depth",
                        str(tmp_path / "d.png"), "--fx", "600", "--fy", "600", "--device", "cpu"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode != 0 and "too small" in r.stderr, (r.returncode, r.stdout, r.stderr)


@pytest.mark.parametrize("model,D", [("plumb_bob", [0.12, -0.25, 0.001, -0.002, 0.05]),
                                     ("rational_polynomial", [0.12, -0.25, 0.001, -0.002, 0.05, 0.01, 0.0, 0.0]),
                                     ("equidistant", [0.05, -0.02, 0.003, 0.0])])
def test_grasp_pixel_is_undistorted_before_deprojection(tmp_path_factory, K640, model, D):
    torch.manual_seed(0)
    path = save_model(tmp_path_factory.mktemp("m") / "rgbd.pt", dsc_graspnet("rgbd"), ModelMetadata("rgbd"))
    d = GraspDetector(DetectorConfig(model_path=str(path), device="cpu", top_k=1, min_quality=0.1, roi=[80, 0, 480, 480]))
    d.engine.model = OracleNet([40, 190, 0.0, 20.0, 10.0])  # far off-centre: distortion matters
    rgb, depth = box_scene(K=K640)
    plain = d.detect(rgb, depth, K640).grasps[0]
    g = d.detect(rgb, depth, K640, D, model).grasps[0]
    assert (g.u, g.v, g.depth_m) == (plain.u, plain.v, plain.depth_m)  # depth read at the raw pixel
    pts = np.array([[[g.u, g.v]]])
    if model == "equidistant":
        ray = cv2.fisheye.undistortPoints(pts, K640, np.array(D[:4]))[0, 0]
    else:
        ray = cv2.undistortPoints(pts, K640, np.array(D))[0, 0]  # normalised (x/z, y/z) of the true ray
    np.testing.assert_allclose(g.position[:2] / g.position[2], ray, atol=1e-6)
    assert np.linalg.norm(g.position - plain.position) > 0.002  # it does move the pose
    with pytest.raises(InputError, match="not supported"):
        d.detect(rgb, depth, K640, D, "fancy_lens")
