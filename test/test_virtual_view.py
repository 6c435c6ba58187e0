"""The virtual straight-down view of a tilted camera (dsc_grasp_ros/core/virtual_view.py) on known
geometry: a box on a table ray-cast exactly for a camera tilted 30 degrees."""

import math

import numpy as np
import pytest

from dsc_grasp_ros.core.geometry import CameraIntrinsics, quaternion_to_rotation, rotation_to_quaternion
from dsc_grasp_ros.core.virtual_view import down_view
from test_clearance import tilted_scene


def test_the_tilted_table_becomes_a_flat_table_at_the_cameras_height():
    depth, cam, R, C = tilted_scene(tilt_deg=30.0)
    a = R.T @ np.array([0.0, 0.0, -1.0])  # world down in the optical frame
    view = down_view(cam.K, a, 640, 480)
    assert view is not None and view.tilt_deg == pytest.approx(30.0, abs=1e-6)
    assert np.allclose(view.R @ a, [0.0, 0.0, 1.0])
    # the real image's depth spread over the table is large ...
    table = depth > 0.65  # not the box
    assert np.ptp(depth[table]) > 0.2
    _, dv = view.warp(None, depth)
    seen = dv > 0
    assert seen.mean() > 0.5
    # ... the virtual one sees the table 0.7 cos 30 deg = 0.606 m below the camera everywhere (float32),
    # the box top 5 cm nearer, and in between only the box's side the real camera saw (< 2 %)
    vals = dv[seen]
    on_table = np.abs(vals - C[2]) < 1e-4
    on_top = np.abs(vals - (C[2] - 0.05)) < 1e-4
    side = ~on_table & ~on_top
    assert side.mean() < 0.02 and np.all((vals[side] > C[2] - 0.05) & (vals[side] < C[2]))
    assert on_top.sum() > 1000
    centre_v = view.K @ (view.R @ (R.T @ (np.array([0.0, 0.0, 0.05]) - C)))
    u, v = centre_v[:2] / centre_v[2]
    assert dv[int(round(v)), int(round(u))] == pytest.approx(C[2] - 0.05, abs=1e-4)


def test_poses_map_back_to_the_real_camera_and_a_straight_down_camera_needs_no_view():
    depth, cam, R, C = tilted_scene(tilt_deg=30.0)
    a = R.T @ np.array([0.0, 0.0, -1.0])
    view = down_view(cam.K, a, 640, 480)
    # a grasp on the box top in the virtual frame: approach = virtual +z, closing along world y
    p_world = np.array([0.0, 0.0, 0.05])
    p_v = view.R @ (R.T @ (p_world - C))
    y_v = view.R @ (R.T @ np.array([0.0, 1.0, 0.0]))
    q_v = rotation_to_quaternion(np.column_stack([np.cross(y_v, [0, 0, 1.0]), y_v, [0, 0, 1.0]]))
    p, q = view.pose_to_real(p_v, q_v)
    assert np.allclose(R @ p + C, p_world)
    M = R @ quaternion_to_rotation(q)
    assert np.allclose(M[:, 2], [0.0, 0.0, -1.0]) and np.allclose(M[:, 1], [0.0, 1.0, 0.0])
    u, v, angle, width_px = view.grasp_to_real_image(p, q, 0.03)
    assert np.allclose([u, v], cam.project(p)[:2])
    assert width_px > 0 and -math.pi / 2 <= angle < math.pi / 2
    assert down_view(cam.K, [0.0, 0.01, 1.0], 640, 480) is None  # within 2 degrees: no virtual view


def test_the_detector_sees_the_virtual_view_and_publishes_in_the_real_camera(K640):
    import torch

    from conftest import OracleNet
    from dsc_grasp_ros.core.inference import DetectorConfig, GraspDetector
    from dsc_grasp_ros.core.model_io import ModelMetadata, save_model
    from dsc_grasp_ros.core.network import dsc_graspnet

    depth, cam, R, C = tilted_scene(tilt_deg=30.0, K=K640)
    a = R.T @ np.array([0.0, 0.0, -1.0])
    torch.manual_seed(0)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(f"{tmp}/d.pt", dsc_graspnet("d"), ModelMetadata("d", description="test"))
        det = GraspDetector(DetectorConfig(model_path=str(path), device="cpu", backend="eager", top_k=1, min_quality=0.1,
                                           view="down", finger_check="off"))
    det.engine.model = OracleNet([112.0, 112.0, 0.0, 20.0, 10.0])  # the grasp at the centre of the network input
    res = det.detect(None, depth, K640, approach=a)
    assert res.view is not None and len(res.grasps) == 1
    g = res.grasps[0]
    M = R @ quaternion_to_rotation(g.orientation)
    assert np.allclose(M[:, 2], [0.0, 0.0, -1.0], atol=1e-9)  # a vertical approach in the world
    assert abs(M[2, 1]) < 1e-9  # jaws closing horizontally
    world = R @ g.position + C
    # the virtual camera's centre ray meets the scene where the real centre ray does: near the box
    assert np.linalg.norm(world[:2]) < 0.05 and -0.005 < world[2] < 0.055
    assert np.allclose([g.u, g.v], CameraIntrinsics.from_K(K640).project(g.position)[:2])
    det.update(view="camera")
    assert det.detect(None, depth, K640, approach=a).view is None
    with pytest.raises(ValueError, match="view must be one of"):
        det.update(view="sideways")
