"""The benchmark executes what the node publishes: its execution distances are the node's gripper
preset, a plan given as another TCP frame's pose executes identically after the inverse transform,
and a plan already at the grasp depth (a moveit_msgs/Grasp pose) is not pushed deeper."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pybullet")

from dsc_grasp_ros.bench.policies import OraclePolicy, PlannedGrasp  # noqa: E402
from dsc_grasp_ros.core.gripper import PRESETS, preset  # noqa: E402
from dsc_grasp_ros.sim import mesh_objects as mo  # noqa: E402


@pytest.fixture(scope="module")
def world():
    try:
        root = mo.objects_root()
    except (FileNotFoundError, RuntimeError) as e:
        pytest.skip(f"the shared object meshes are absent: {e}")
    from dsc_grasp_ros.bench.scene import BenchWorld

    w = BenchWorld(objects_root=root)
    yield w
    w.close()


def test_execution_settings_are_the_node_preset():
    from dsc_grasp_ros.bench import panda
    from dsc_grasp_ros.bench.runner import ExecutionSettings

    s, g = ExecutionSettings(), PRESETS["franka_hand"]
    assert (s.grasp_depth, s.tip_clearance, s.pregrasp, s.lift) == (g.grasp_depth, g.tip_clearance, g.approach_distance, g.retreat_distance)
    assert (panda.TIP_BEYOND_TCP, panda.MAX_OPENING) == (g.tip_beyond_tcp, g.max_opening)


def _angle_deg(q1, q2) -> float:
    return math.degrees(2 * math.acos(min(1.0, abs(float(np.dot(q1, q2))))))


def test_robotiq_tcp_plan_executes_like_the_grasp_frame_plan(world):
    from dsc_grasp_ros.bench.runner import Executor, observation

    ex = Executor(world)
    robotiq_tcp = PRESETS["franka_hand"].with_overrides(tcp_transform=preset("robotiq_2f_85").tcp_transform)
    scene = world.build("banana", 0, 0)
    try:
        world.restore(scene)
        g = OraclePolicy().plan(observation(world, scene))
        out_a, info_a = ex.execute(scene, g)
        pos, quat = robotiq_tcp.to_tcp(g.position, g.quaternion)
        assert _angle_deg(quat, g.quaternion) == pytest.approx(90.0, abs=1e-6)  # a different pose is published ...
        world.restore(scene)
        out_b, info_b = ex.execute(scene, PlannedGrasp(pos, quat, g.width_m, g.image, tcp_transform=robotiq_tcp.tcp_transform))
        assert out_a == out_b == "success"  # ... and executed identically
        assert np.linalg.norm(np.subtract(info_a["tcp_base"], info_b["tcp_base"])) <= 1e-3
        assert info_a["target_world"] == info_b["target_world"]
    finally:
        world.discard(scene)


def test_plan_at_grasp_depth_is_not_pushed_deeper(world):
    from dsc_grasp_ros.bench.runner import Executor, observation

    ex = Executor(world)
    scene = world.build("tomato_soup_can", 0, 0)
    try:
        world.restore(scene)
        g = OraclePolicy().plan(observation(world, scene))
        _, info_a = ex.execute(scene, g)
        # the node's execution step, done by the planner: the pose it publishes in a moveit_msgs/Grasp
        grip = ex.s.gripper()
        pos_w, quat_w = world.robot.base_pose_to_world(g.position, g.quaternion)
        e = grip.execution(pos_w, quat_w, plane=(np.array([0.0, 0.0, 1.0]), 0.0))
        T = world.robot.world_to_base(np.block([[np.eye(3), e.grasp_position[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]]))
        world.restore(scene)
        _, info_b = ex.execute(scene, PlannedGrasp(T[:3, 3], g.quaternion, g.width_m, g.image, at_grasp_depth=True,
                                                   pregrasp_m=grip.approach_distance))
        assert np.allclose(info_a["target_world"], info_b["target_world"], atol=1e-5)
    finally:
        world.discard(scene)


def test_clutter_check_keeps_no_grasp_outside_the_box_or_off_the_target():
    """Two frames of a 4-object scene (the full measurement: python -m dsc_grasp_ros.bench.workspace_check)."""
    try:
        from dsc_grasp_ros.core.model_io import default_model_path

        default_model_path("rgbd")
    except Exception as e:  # noqa: BLE001 - no shipped model: nothing to check
        pytest.skip(f"the shipped RGB-D model is not available: {e}")
    from dsc_grasp_ros.bench.workspace_check import run

    out = run(frames=2, scenes=1, n_objects=4, seed=1)
    c = out["counts"]
    assert c["frames"] == 2 and c["requests"] >= 2
    assert c["kept_outside_box"] == 0 and c["kept_off_target"] == 0
    assert out["dropped"].get("outside_workspace", 0) + out["dropped"].get("not_target", 0) > 0  # the filters did drop grasps
