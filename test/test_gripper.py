"""The gripper model (core, ROS-free): TCP transforms, finger postures, execution steps, presets,
with known geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsc_grasp_ros.core.geometry import quaternion_to_rotation, rotation_to_quaternion
from dsc_grasp_ros.core.gripper import PRESETS, Gripper, GripperError, preset, support_plane_in
from dsc_grasp_ros.core.geometry import Transform

DOWN = rotation_to_quaternion(np.diag([1.0, -1.0, -1.0]))  # approach -z of the parent, closing along -y


def _angle(q1, q2) -> float:
    return 2 * math.degrees(math.acos(min(1.0, abs(float(np.dot(q1, q2))))))


def test_franka_tcp_is_our_grasp_frame():
    g = preset("franka_hand")
    p, q = g.to_tcp([0.4, 0.1, 0.05], DOWN)
    assert np.allclose(p, [0.4, 0.1, 0.05]) and _angle(q, DOWN) < 1e-6


def test_robotiq_tcp_closes_along_its_x_and_round_trips():
    g = preset("robotiq_2f_85")
    p, q = g.to_tcp([0.4, 0.1, 0.05], DOWN)
    R_grasp, R_tcp = quaternion_to_rotation(DOWN), quaternion_to_rotation(q)
    assert np.allclose(R_tcp[:, 2], R_grasp[:, 2])  # same approach
    assert np.allclose(R_tcp[:, 0], R_grasp[:, 1])  # its x is our closing axis (y)
    p2, q2 = g.from_tcp(p, q)
    assert np.allclose(p2, [0.4, 0.1, 0.05], atol=1e-12) and _angle(q2, DOWN) < 1e-6


def test_tcp_offset_moves_along_the_approach():
    g = preset("franka_hand").with_overrides(tcp_transform=(0.0, 0.0, -0.1034, 0.0, 0.0, 0.0, 1.0))  # e.g. the flange
    p, q = g.to_tcp([0.4, 0.1, 0.05], DOWN)
    assert np.allclose(p, [0.4, 0.1, 0.05 + 0.1034])  # the flange is 10.34 cm above a top-down grasp
    p2, _ = g.from_tcp(p, q)
    assert np.allclose(p2, [0.4, 0.1, 0.05])


@pytest.mark.parametrize("name,width,expected", [
    ("franka_hand", 0.06, [0.03, 0.03]), ("franka_hand", 0.2, [0.04, 0.04]), ("franka_hand", -1.0, [0.0, 0.0]),
    ("robotiq_2f_85", 0.085, [0.0]), ("robotiq_2f_85", 0.0, [0.8]), ("robotiq_2f_85", 0.0425, [0.4]),
    ("robotiq_2f_140", 0.07, [0.3475]),
])
def test_width_to_joint_positions(name, width, expected):
    g = preset(name)
    assert np.allclose(g.joint_positions(width), expected)
    if 0 <= width <= g.max_opening:
        assert g.width_of(g.joint_positions(width)) == pytest.approx(width)


def test_execution_top_down_without_and_with_the_table():
    g = preset("franka_hand")
    e = g.execution([0.5, 0.0, 0.10], DOWN)
    assert np.allclose(e.grasp_position, [0.5, 0.0, 0.075]) and np.allclose(e.pre_grasp_position, [0.5, 0.0, 0.175])
    assert np.allclose(e.retreat, [0, 0, 1]) and np.allclose(e.retreat_position, [0.5, 0.0, 0.275])
    # a flat object 2 cm high on a table at z = 0: the fingertips (1.1 cm past the TCP) stay 5 mm above it
    e = g.execution([0.5, 0.0, 0.02], DOWN, plane=([0, 0, 1], 0.0))
    assert e.grasp_position[2] == pytest.approx(0.016) and e.depth == pytest.approx(0.004)
    assert np.allclose(e.retreat, [0, 0, 1])


def test_execution_plane_in_another_frame_matches():
    g = preset("franka_hand")
    T = Transform((0.1, -0.2, 0.7), tuple(rotation_to_quaternion(np.diag([1.0, -1.0, -1.0]))))  # camera above, looking down
    plane_cam = ([0.0, 0.0, -1.0], -0.7)  # table z = 0 is 0.7 m in front of the camera
    n, off = support_plane_in(plane_cam, T)
    assert np.allclose(n, [0, 0, 1]) and off == pytest.approx(0.0)


def test_bad_gripper_descriptions_name_the_field():
    with pytest.raises(GripperError, match="finger_joints"):
        Gripper("x", 0.08, (), (), ())
    with pytest.raises(GripperError, match="joint_open needs one value per finger joint"):
        Gripper("x", 0.08, ("a", "b"), (0.04,), (0.0, 0.0))
    with pytest.raises(GripperError, match="max_opening"):
        preset("franka_hand").with_overrides(max_opening=float("nan"))
    with pytest.raises(GripperError, match="tcp_transform"):
        preset("franka_hand").with_overrides(tcp_transform=(0, 0, 0, 0, 0, 0, 0))
    with pytest.raises(GripperError, match="unknown gripper 'ur'"):
        preset("ur")


def test_presets_are_valid_and_cite_sources():
    for name, g in PRESETS.items():
        assert g.name == name and g.problem() is None and len(g.source) > 40
