"""Workspace box, support plane and instance-mask filtering (core, ROS-free), with known geometry."""

from __future__ import annotations

import numpy as np
import pytest

from dsc_grasp_ros.core.geometry import CameraIntrinsics
from dsc_grasp_ros.core.workspace import (GraspFilter, WorkspaceBox, WorkspaceError, camera_support_plane, object_labels,
                                          parse_object_id)

CAM = CameraIntrinsics(500.0, 500.0, 160.0, 120.0)


def _plane_depth(normal, offset, h=240, w=320):
    """Depth of the plane n.x = offset seen by CAM."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([(u - CAM.cx) / CAM.fx, (v - CAM.cy) / CAM.fy, np.ones_like(u)], -1)
    return (offset / (rays @ np.asarray(normal))).astype(np.float32)


def test_box_from_list_and_contains():
    b = WorkspaceBox.from_list([0.2, -0.3, 0.0, 0.8, 0.3, 0.4])
    assert b.contains([[0.5, 0.0, 0.1], [0.9, 0.0, 0.1], [0.5, 0.0, -0.01]]).tolist() == [True, False, False]
    assert WorkspaceBox.from_list([]) is None
    with pytest.raises(WorkspaceError, match="6 numbers"):
        WorkspaceBox.from_list([1, 2, 3])
    with pytest.raises(WorkspaceError, match="minimum must be smaller"):
        WorkspaceBox.from_list([0, 0, 0, 1, -1, 1])


def test_support_plane_of_a_tilted_table():
    n = np.array([0.0, -np.sin(0.3), -np.cos(0.3)])  # normal towards the camera
    depth = _plane_depth(-n, 0.6)  # the table is 0.6 m from the camera along its normal
    nrm, off = camera_support_plane(depth, CAM)
    assert np.allclose(nrm, n, atol=1e-6) and off == pytest.approx(-0.6, abs=1e-6)
    # the camera is 0.6 m above the table
    assert float(np.zeros(3) @ nrm - off) == pytest.approx(0.6, abs=1e-6)


def test_filter_box_plane_mask_target_and_per_object():
    mask = np.zeros((240, 320), np.uint16)
    mask[50:100, 50:100] = 1
    mask[150:200, 150:200] = 2
    uv = np.array([[60, 60], [70, 70], [160, 160], [300, 20], [75, 75], [170, 170]], float)
    out = np.array([[0.5, 0, 0.05], [0.5, 0, 0.05], [0.5, 0, 0.05], [0.5, 0, 0.05], [0.5, 0, 0.05], [2.0, 0, 0.05]])
    cam = np.array([[0, 0, 0.55], [0, 0, 0.55], [0, 0, 0.55], [0, 0, 0.55], [0, 0, 0.599], [0, 0, 0.55]])
    plane = (np.array([0.0, 0.0, -1.0]), -0.6)
    f = GraspFilter(box=WorkspaceBox.from_list([0, -1, 0, 1, 1, 1]), support_margin=0.005, per_object=1)
    r = f.apply(out, cam, uv, plane, mask)
    # 5 is outside the box, 4 lies on the table (1 mm above it), 3 is on the background, 1 is object 1's second
    assert r.keep == [0, 2] and r.labels == [1, 2]
    assert r.dropped == {"outside_workspace": 1, "on_support_plane": 1, "off_object": 1, "beyond_per_object": 1}
    r = f.apply(out, cam, uv, plane, mask, target=2)
    assert r.keep == [2] and r.count("not_target") == 2


def test_labels_near_a_thin_object_and_ids():
    mask = np.zeros((20, 20), np.int32)
    mask[:, 10] = 4  # a 1-pixel-wide object
    assert object_labels(mask, [[11, 5], [18, 5], [-3, 5]], radius=2).tolist() == [4, 0, 0]
    assert parse_object_id("4", mask) == 4
    with pytest.raises(WorkspaceError, match="objects present: \\['4'\\]"):
        parse_object_id("7", mask)
    with pytest.raises(WorkspaceError, match="not an instance-mask label"):
        parse_object_id("mug", mask)
    with pytest.raises(WorkspaceError, match="needs an instance mask"):
        GraspFilter().apply(np.zeros((1, 3)), target=1)


def test_select_grasps_in_the_output_frame_with_a_fitted_table():
    from types import SimpleNamespace

    from dsc_grasp_ros.core.geometry import Transform, rotation_to_quaternion
    from dsc_grasp_ros.core.workspace import select_grasps

    # camera 0.6 m above a table at base z = 0, looking straight down
    T = Transform((0.5, 0.0, 0.6), tuple(rotation_to_quaternion(np.diag([1.0, -1.0, -1.0]))))
    depth = np.full((240, 320), 0.6, np.float32)
    mask = np.zeros((240, 320), np.int32)
    mask[100:140, 140:180] = 5

    def grasp(u, v, z):
        return SimpleNamespace(u=u, v=v, position=CAM.deproject(u, v, z))

    gs = [grasp(160, 120, 0.55), grasp(300, 120, 0.55), grasp(150, 110, 0.598), grasp(40, 40, 0.55)]
    sel = select_grasps(gs, T, box=WorkspaceBox.from_list([0.3, -0.2, 0.0, 0.6, 0.2, 0.3]), support_plane="remove",
                        support_margin=0.005, depth=depth, cam=CAM, mask=mask)
    assert sel.grasps == [gs[0]] and sel.labels == [5]
    assert sel.dropped == {"outside_workspace": 1, "on_support_plane": 1, "off_object": 1}  # gs[1] is at base x = 0.654
    nrm, off = sel.plane_cam
    assert np.allclose(nrm, [0, 0, -1], atol=1e-6) and off == pytest.approx(-0.6, abs=1e-6)
    with pytest.raises(WorkspaceError, match="not the size of the images"):
        select_grasps(gs, T, depth=depth, cam=CAM, mask=mask[:10])
