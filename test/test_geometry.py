"""Grasp -> metric 6-DoF pose on known geometry; rigid transforms."""

import math

import numpy as np
import pytest

from conftest import box_scene
from dsc_grasp_ros.core.geometry import (
    CameraIntrinsics, GeometryError, Transform, grasp_orientation, grasp_pose, grasp_width_m,
    quaternion_to_rotation, robust_depth, rotation_to_quaternion,
)


def test_box_top_deprojects_to_its_known_position_within_2mm(K640):
    cam = CameraIntrinsics.from_K(K640)
    box = (0.03, -0.02, 0.06, 0.03, 0.025)  # centre x, y; 6 cm tall on a plane at 0.6 m
    _, depth = box_scene(K=K640, box=box)
    top = 0.60 - box[2]
    u, v = cam.project(np.array([box[0], box[1], top]))
    for stat in ("median", "min", "mean", "center", "p25"):
        pos, quat, width_m, z = grasp_pose(u, v, 0.2, 40.0, depth, cam, statistic=stat)
        assert np.linalg.norm(pos - [box[0], box[1], top]) < 0.002, (stat, pos)


def test_robust_depth_ignores_holes_and_noise(K640):
    cam = CameraIntrinsics.from_K(K640)
    _, depth = box_scene(K=K640)
    rng = np.random.default_rng(1)
    d = depth.copy()
    u, v = cam.project(np.array([0.02, -0.01, 0.55]))
    ui, vi = int(round(u)), int(round(v))
    patch = d[vi - 8 : vi + 9, ui - 8 : ui + 9]
    holes = rng.random(patch.shape) < 0.3
    patch[holes] = 0
    patch[rng.random(patch.shape) < 0.05] = np.nan
    assert abs(robust_depth(d, u, v, 0.0, 30, 15, "median") - 0.55) < 1e-6
    d[vi - 20 : vi + 21, ui - 20 : ui + 21] = 0
    with pytest.raises(GeometryError, match="no valid depth"):
        robust_depth(d, u, v, 0.0, 30, 15)
    with pytest.raises(GeometryError, match="outside"):
        robust_depth(d, 700, 10, 0.0, 30, 15)


@pytest.mark.parametrize("angle", [0.0, 0.5, -1.0, math.pi / 2 - 1e-3])
def test_tcp_axes_approach_along_optical_axis_and_close_along_the_image_axis(angle):
    cam = CameraIntrinsics(600.0, 600.0, 320, 240)
    R = quaternion_to_rotation(grasp_orientation(angle, cam))
    np.testing.assert_allclose(R[:, 2], [0, 0, 1], atol=1e-9)  # +z approach into the scene
    np.testing.assert_allclose(R[:, 1], [math.cos(angle), -math.sin(angle), 0], atol=1e-9)  # +-y closing
    assert np.isclose(np.linalg.det(R), 1.0)
    # the closing axis projects onto the image direction of `angle`
    p0 = np.array([0.01, 0.02, 0.5])
    uv0, uv1 = cam.project(p0), cam.project(p0 + 0.01 * R[:, 1])
    d = uv1 - uv0
    assert abs(math.atan2(-d[1], d[0]) - angle) < 1e-6


def test_width_in_metres_is_pixels_times_depth_over_focal():
    cam = CameraIntrinsics(600.0, 600.0, 320, 240)
    assert math.isclose(grasp_width_m(60, 0.7, 0.5, cam), 60 * 0.5 / 600)
    aniso = CameraIntrinsics(600.0, 300.0, 320, 240)
    assert math.isclose(grasp_width_m(60, 0.0, 0.5, aniso), 0.05)
    assert math.isclose(grasp_width_m(60, math.pi / 2, 0.5, aniso), 0.10)


def test_intrinsics_from_bad_camera_info():
    with pytest.raises(GeometryError, match="all-zero CameraInfo"):
        CameraIntrinsics.from_K([0] * 9)
    with pytest.raises(GeometryError, match="9 finite"):
        CameraIntrinsics.from_K([1, 2, 3])


def test_quaternion_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[3] >= 0 else -q
        np.testing.assert_allclose(rotation_to_quaternion(quaternion_to_rotation(q)), q, atol=1e-9)


def test_transform_apply_compose_inverse():
    rng = np.random.default_rng(2)
    q = rng.normal(size=4)
    T = Transform((0.4, -0.1, 0.9), tuple(q / np.linalg.norm(q)))
    p = rng.normal(size=(10, 3))
    np.testing.assert_allclose(T.inverse().apply(T.apply(p)), p, atol=1e-9)
    np.testing.assert_allclose((T @ T.inverse()).matrix, np.eye(4), atol=1e-9)
    np.testing.assert_allclose(T.apply(p), (T.matrix @ np.c_[p, np.ones(10)].T).T[:, :3], atol=1e-9)
    # a pose's axes rotate with the frame: a camera looking straight down from 1 m
    down = Transform.from_list([0.5, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # optical z -> base -z
    pos, quat = down.apply_pose([0.0, 0.0, 0.4], grasp_orientation(0.0, CameraIntrinsics(600, 600, 0, 0)))
    np.testing.assert_allclose(pos, [0.5, 0.0, 0.6], atol=1e-12)
    np.testing.assert_allclose(quaternion_to_rotation(quat)[:, 2], [0, 0, -1], atol=1e-12)  # approach downwards
    with pytest.raises(GeometryError, match="unit length"):
        Transform.from_list([0, 0, 0, 0, 0, 0, 2])
    with pytest.raises(GeometryError, match="7 values"):
        Transform.from_list([0, 0, 0])


# --------------------------------------------------------------------------- plausibility of a camera
K615 = np.array([[615.0, 0, 320], [0, 615, 240], [0, 0, 1]])


@pytest.mark.parametrize("K, words", [
    ([[80000, 0, 320], [0, 80000, 240], [0, 0, 1]], "field of view of 0.458 degrees"),
    ([[1e12, 0, 320], [0, 1e12, 240], [0, 0, 1]], "field of view"),
    ([[615, 0, 320], [0, 1e7, 240], [0, 0, 1]], "vertical field of view"),
    ([[10, 0, 320], [0, 10, 240], [0, 0, 1]], "field of view of 176 degrees"),
    ([[615, 0, 5000], [0, 615, 240], [0, 0, 1]], "principal point"),
])
def test_implausible_intrinsics_are_named(K, words):
    from dsc_grasp_ros.core.geometry import check_intrinsics

    with pytest.raises(GeometryError, match=words):
        check_intrinsics(K, 640, 480)
    assert check_intrinsics(K615, 640, 480).fx == 615.0


@pytest.mark.parametrize("D, model, words", [
    ([0.1, 0.2, 0.3], "plumb_bob", "needs 4, 5 or 8 coefficients, got 3"),
    ([0.01] * 20, "plumb_bob", "got 20"),
    ([0.1], "rational_polynomial", "needs 8, 12 or 14 coefficients, got 1"),
    ([0.1, 0.1, 0.1], "equidistant", "needs 4 coefficients"),
    ([1e30] * 5, "plumb_bob", "cannot be undistorted"),
    ([1e6, -1e6, 0, 0, 1e6], "plumb_bob", "cannot be undistorted"),
    ([-0.5, 0, 0, 0, 0], "plumb_bob", "not monotone"),
])
def test_unusable_distortion_is_named(D, model, words):
    from dsc_grasp_ros.core.geometry import check_distortion

    with pytest.raises(GeometryError, match=words):
        check_distortion(K615, D, model, 640, 480)


@pytest.mark.parametrize("D, model", [
    ([0.1, -0.25, 0.001, 0.0005, 0.1], "plumb_bob"),
    ([-0.04, 0.04, 0.0, 0.0, -0.01], "plumb_bob"),
    ([0.1, -0.2, 0.0, 0.0, 0.05, 0.1, -0.2, 0.05], "rational_polynomial"),
    ([0.05, -0.02, 0.003, 0.0], "equidistant"),
    ([0.0] * 5, "plumb_bob"),
    ([0.3, 0.1], "my_model"),  # a model the core does not undistort: not its business
])
def test_real_lens_distortion_passes_and_the_verdict_is_cached(D, model):
    from dsc_grasp_ros.core import geometry

    geometry.check_distortion(K615, D, model, 640, 480)
    before = geometry._distortion_problem.cache_info()
    geometry.check_distortion(K615, D, model, 640, 480)
    after = geometry._distortion_problem.cache_info()
    assert after.misses == before.misses  # the second frame of the same CameraInfo costs a lookup


def test_the_detector_refuses_an_absurd_focal_length_before_the_network():
    from dsc_grasp_ros.core.inference import GraspDetector
    from dsc_grasp_ros.core.preprocess import InputError

    det = GraspDetector(device="cpu")
    calls = []
    det.engine = _Spy(det.engine, calls)  # the network must not run for a refused frame
    depth = np.full((480, 640), 600, np.uint16)
    rgb = np.zeros((480, 640, 3), np.uint8)
    with pytest.raises(InputError, match="field of view") as err:
        det.detect(rgb, depth, [[80000, 0, 320], [0, 80000, 240], [0, 0, 1]])
    assert err.value.code == "bad_camera_info" and not calls


class _Spy:
    def __init__(self, inner, calls):
        self._inner, self._calls = inner, calls

    def __call__(self, *a, **k):
        self._calls.append(1)
        return self._inner(*a, **k)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_predict_refuses_an_absurd_focal_length_in_one_line(tmp_path, capsys):
    import cv2

    from dsc_grasp_ros.cli import main

    depth = tmp_path / "depth.png"
    cv2.imwrite(str(depth), np.full((120, 160), 600, np.uint16))
    rc = main(["predict", "--depth", str(depth), "--fx", "1e12", "--fy", "1e12", "--device", "cpu", "--model",
               str(__import__("dsc_grasp_ros.core.model_io", fromlist=["x"]).default_model_path("d"))])
    err = capsys.readouterr().err
    assert rc != 0 and "field of view" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
