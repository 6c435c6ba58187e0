"""~/plan_grasps (moveit_msgs/srv/GraspPlanning), ~/moveit_grasps, request mode, instance masks, the
workspace box and the gripper parameters, through the real node process over DDS.

This process publishes a ray-cast scene of three known boxes on a table (colour, aligned depth,
camera_info and the exact instance mask: labels 1-3 = the boxes) a few times a second and calls the
service; the node runs in request mode with a static camera transform (grasps in base_link).
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("moveit_msgs.srv", reason="moveit_msgs not built: run ./scripts/setup_venv.sh")

from moveit_msgs.msg import MoveItErrorCodes  # noqa: E402
from moveit_msgs.srv import GraspPlanning  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from dsc_grasp_ros.core.geometry import quaternion_to_rotation  # noqa: E402
from dsc_grasp_ros.devtools import bag as bagmod  # noqa: E402
from dsc_grasp_ros.ros import conversions as conv  # noqa: E402

from ros_helpers import ros_context, start_node, write_params  # noqa: E402,F401 - ros_context: fixture

FRAME = bagmod.CAMERA_FRAME
BASE = "base_link"
CODES = {getattr(MoveItErrorCodes, k): k for k in dir(MoveItErrorCodes) if k.isupper() and isinstance(getattr(MoveItErrorCodes, k), int)}


def _scene():
    T = bagmod.look_at_camera((0.38, -0.12, 0.58), (0.0, 0.02, 0.0))
    frame = bagmod.render_box_scene(640, 480, T)
    # the exact instance mask: each pixel's 3-D point (base frame) inside box k -> label k + 1
    K, d = frame.K, frame.depth.astype(np.float64)
    v, u = np.mgrid[0:d.shape[0], 0:d.shape[1]].astype(np.float64)
    pc = np.stack([(u - K[0, 2]) / K[0, 0] * d, (v - K[1, 2]) / K[1, 1] * d, d], -1)
    R, c = quaternion_to_rotation(np.asarray(T[3:])), np.asarray(T[:3])
    pb = pc @ R.T + c
    mask = np.zeros(d.shape, np.uint16)
    for k, b in enumerate(bagmod.DEFAULT_BOXES):
        cy, sy = math.cos(b.yaw), math.sin(b.yaw)
        local = (pb - np.array([b.center[0], b.center[1], b.size[2] / 2])) @ np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1.0]])
        inside = np.all(np.abs(local) <= np.asarray(b.size) / 2 + 0.002, axis=-1) & (d > 0)
        mask[inside] = k + 1
    return frame, mask


class Camera:
    """Publishes the scene (and its mask) at ``hz`` with the current time as stamp, on its own executor thread."""

    def __init__(self, ctx, frame, mask, hz: float = 4.0):
        self.node = rclpy.create_node("fake_camera", context=ctx)
        q = 5
        self.pubs = {
            "color": self.node.create_publisher(Image, "/cam/color", q),
            "depth": self.node.create_publisher(Image, "/cam/depth", q),
            "info": self.node.create_publisher(CameraInfo, "/cam/info", q),
            "mask": self.node.create_publisher(Image, "/grasp_node/object_masks", q),
        }
        self.frame, self.mask = frame, mask
        self.mm = np.clip(np.round(frame.depth * 1000), 0, 65535).astype(np.uint16)
        self.enabled = True
        self.ticks = 0
        self.timer = self.node.create_timer(1.0 / hz, self._tick)
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.thread = threading.Thread(target=self.ex.spin, daemon=True)
        self.thread.start()

    def _tick(self):
        if not self.enabled:
            return
        h = Header(stamp=self.node.get_clock().now().to_msg(), frame_id=FRAME)
        info = conv.k_to_camera_info(self.frame.K, 640, 480)
        info.header = h
        self.pubs["info"].publish(info)
        self.pubs["depth"].publish(conv.array_to_image(self.mm, "16UC1", h))
        self.pubs["mask"].publish(conv.array_to_image(self.mask, "16UC1", h))
        self.pubs["color"].publish(conv.array_to_image(self.frame.rgb, "rgb8", h))
        self.ticks += 1

    def settle(self, timeout: float = 10.0):
        """Wait until a whole tick ran after a change (no frame of the old settings is still on its way)."""
        start = self.ticks
        deadline = time.monotonic() + timeout
        while self.ticks < start + 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()


@pytest.fixture
def planning_node(ros_context, tmp_path):
    ctx, env = ros_context
    frame, mask = _scene()
    params = write_params(tmp_path / "params.yaml", {
        "device": "cpu", "backend": "eager", "qos_reliability": "reliable", "target_frame": BASE,
        "static_camera_transform": [float(a) for a in frame.T_base_camera], "mode": "request", "plan_timeout": 4.0,
        "use_object_masks": True, "grasps_per_object": 1, "support_plane": "remove", "diagnostics_period": 0.5,
        "min_quality": 0.05, "top_k": 10,
    })
    node = start_node(params, env, tmp_path / "node.log",
                      {"color/image_raw": "/cam/color", "depth/image_raw": "/cam/depth", "color/camera_info": "/cam/info"})
    client_node = rclpy.create_node("planning_client", context=ctx)
    client = client_node.create_client(GraspPlanning, "/grasp_node/plan_grasps")
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(client_node)
    deadline = time.monotonic() + 120
    while not client.wait_for_service(timeout_sec=0.5):
        assert node.alive() and time.monotonic() < deadline, node.output()
    cam = Camera(ctx, frame, mask)

    def call(target: str = "", timeout: float = 60.0):
        req = GraspPlanning.Request()
        req.target.id = target
        fut = client.call_async(req)
        ex.spin_until_future_complete(fut, timeout_sec=timeout)
        assert fut.done(), node.output()[-3000:]
        r = fut.result()
        return CODES[r.error_code.val], r.error_code.error_message, list(r.grasps)

    yield call, cam, node, client_node, ex, frame
    cam.close()
    ex.shutdown()
    client_node.destroy_node()
    node.stop()


def _box_of(p, margin=0.012):
    """Index of the box whose volume (grown by ``margin``) holds base-frame point ``p``, or None."""
    for k, b in enumerate(bagmod.DEFAULT_BOXES):
        cy, sy = math.cos(b.yaw), math.sin(b.yaw)
        local = (np.asarray(p) - np.array([b.center[0], b.center[1], b.size[2] / 2])) @ np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1.0]])
        if np.all(np.abs(local) <= np.asarray(b.size) / 2 + margin):
            return k
    return None


def test_grasp_planning_service(planning_node):
    call, cam, node, client_node, ex, frame = planning_node
    # 1. the scene: grasps in base_link, one per object, each in its box, MoveIt fields filled from the Franka preset
    code, msg, grasps = call()
    assert code == "SUCCESS", msg
    objects = [g.id.split("/")[0] for g in grasps]
    assert grasps and len(objects) == len(set(objects)), [g.id for g in grasps]
    for g in grasps:
        assert g.grasp_pose.header.frame_id == BASE
        p = g.grasp_pose.pose.position
        q = g.grasp_pose.pose.orientation
        pos, R = np.array([p.x, p.y, p.z]), quaternion_to_rotation([q.x, q.y, q.z, q.w])
        assert _box_of(pos) == int(g.id.split("/")[0]) - 1, (g.id, pos)  # the TCP closes inside its object
        # the fingertips (1.1 cm past the TCP) stay 5 mm above the table fitted in the (millimetre) depth image
        assert pos[2] + 0.011 * R[2, 2] >= 0.005 - 0.002
        assert g.pre_grasp_posture.joint_names == ["panda_finger_joint1", "panda_finger_joint2"]
        a, b = g.pre_grasp_posture.points[0].positions
        assert a == b and 0 < a <= 0.04
        assert list(g.grasp_posture.points[0].positions) == [0.0, 0.0] and list(g.grasp_posture.points[0].effort) == [40.0, 40.0]
        d = g.pre_grasp_approach.direction.vector
        assert np.allclose([d.x, d.y, d.z], R[:, 2], atol=1e-6) and g.pre_grasp_approach.desired_distance == pytest.approx(0.10)
        r = g.post_grasp_retreat.direction.vector
        assert np.allclose([r.x, r.y, r.z], [0, 0, 1], atol=0.01) and g.post_grasp_retreat.desired_distance == pytest.approx(0.20)
        assert 0 < g.grasp_quality <= 1
    # 2. one object by its CollisionObject id
    code, msg, grasps = call("2")
    assert code == "SUCCESS" and grasps and all(g.id.startswith("2/") for g in grasps), (code, msg, [g.id for g in grasps])
    # 3. bad requests: a MoveIt error code and a message naming the problem; the node keeps running
    code, msg, grasps = call("9")
    assert code == "INVALID_OBJECT_NAME" and "objects present: ['1', '2', '3']" in msg and not grasps, msg
    code, msg, _ = call("mug")
    assert code == "INVALID_OBJECT_NAME" and "not an instance-mask label" in msg, msg
    cam.mask = np.zeros_like(cam.mask)  # an empty mask: no object at all
    cam.settle()
    code, msg, _ = call("1")
    assert code == "INVALID_OBJECT_NAME" and "objects present: none" in msg, msg
    code, msg, _ = call()
    assert code == "PLANNING_FAILED" and "off object" in msg, msg
    cam.enabled = False  # the camera stops: the request times out
    time.sleep(1.0)  # the last frames have been delivered
    code, msg, _ = call()
    assert code == "TIMED_OUT" and "plan_timeout" in msg, msg
    for p in cam.pubs.values():  # no camera at all
        cam.node.destroy_publisher(p)
    deadline = time.monotonic() + 20
    while True:
        code, msg, _ = call()
        if code == "UNABLE_TO_AQUIRE_SENSOR_DATA" or time.monotonic() > deadline:
            break
    assert code == "UNABLE_TO_AQUIRE_SENSOR_DATA" and "no camera" in msg, msg
    assert node.alive(), node.output()


def test_parameters_stream_mode_workspace_box_and_tcp(planning_node):
    from moveit_msgs.msg import Grasp

    call, cam, node, client_node, ex, frame = planning_node
    got: list = []
    client_node.create_subscription(Grasp, "/grasp_node/moveit_grasps", got.append, 50)
    params = AsyncParameterClient(client_node, "/grasp_node")
    assert params.wait_for_services(30)

    def set_params(**kw):
        fut = params.set_parameters([Parameter(k, value=v) for k, v in kw.items()])
        ex.spin_until_future_complete(fut, timeout_sec=30)
        return [r.successful for r in fut.result().results], [r.reason for r in fut.result().results]

    # invalid values are refused with a reason naming the problem
    ok, why = set_params(workspace_box=[0.0, 0.0, 0.0, 1.0])
    assert ok == [False] and "6 numbers" in why[0]
    ok, why = set_params(finger_joints=["only_one"])
    assert ok == [False] and "give as many names" in why[0]
    ok, why = set_params(gripper="ur_gripper")
    assert ok == [False]
    # the Robotiq 2F-85's TCP frame: the same grasps, turned 90 degrees about the approach
    code, _, franka = call("1")
    ok, _ = set_params(tcp_transform=[0.0, 0.0, 0.0, 0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)])
    assert ok == [True]
    code2, _, robotiq = call("1")
    assert code == code2 == "SUCCESS"
    qa, qb = franka[0].grasp_pose.pose.orientation, robotiq[0].grasp_pose.pose.orientation
    Ra, Rb = quaternion_to_rotation([qa.x, qa.y, qa.z, qa.w]), quaternion_to_rotation([qb.x, qb.y, qb.z, qb.w])
    assert np.allclose(Rb[:, 0], Ra[:, 1], atol=0.05) and np.allclose(Rb[:, 2], Ra[:, 2], atol=0.05)
    # stream mode: every frame is published on ~/moveit_grasps; a box that excludes every object drops them all
    fut = params.set_parameters([Parameter("mode", value="stream"), Parameter("tcp_transform", Parameter.Type.DOUBLE_ARRAY, [])])
    ex.spin_until_future_complete(fut, timeout_sec=30)
    assert [r.successful for r in fut.result().results] == [True, True], [r.reason for r in fut.result().results]
    deadline = time.monotonic() + 60
    while not got and time.monotonic() < deadline:
        ex.spin_once(timeout_sec=0.2)
    assert got, node.output()[-3000:]
    ok, _ = set_params(workspace_box=[1.0, 1.0, 0.0, 2.0, 2.0, 1.0])
    assert ok == [True]
    code, msg, _ = call()
    assert code == "PLANNING_FAILED" and "outside workspace" in msg, msg
    assert node.alive()


def test_workspace_in_a_frame_without_tf_answers_frame_transform_failure(ros_context, tmp_path):
    pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs not built (the tf2 stand-in needs it): run ./scripts/setup_venv.sh")
    ctx, env = ros_context
    frame, mask = _scene()
    params = write_params(tmp_path / "params.yaml", {
        "device": "cpu", "backend": "eager", "qos_reliability": "reliable", "target_frame": "robot_base_without_tf",
        "workspace_box": [0.0, -0.5, 0.0, 1.0, 0.5, 0.5], "mode": "request", "plan_timeout": 4.0, "tf_timeout": 0.05,
    })
    node = start_node(params, env, tmp_path / "node.log",
                      {"color/image_raw": "/cam/color", "depth/image_raw": "/cam/depth", "color/camera_info": "/cam/info"})
    client_node = rclpy.create_node("planning_client_tf", context=ctx)
    client = client_node.create_client(GraspPlanning, "/grasp_node/plan_grasps")
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(client_node)
    cam = None
    try:
        deadline = time.monotonic() + 120
        while not client.wait_for_service(timeout_sec=0.5):
            assert node.alive() and time.monotonic() < deadline, node.output()
        cam = Camera(ctx, frame, mask)
        fut = client.call_async(GraspPlanning.Request())
        ex.spin_until_future_complete(fut, timeout_sec=60)
        r = fut.result()
        assert CODES[r.error_code.val] == "FRAME_TRANSFORM_FAILURE", (r.error_code, node.output()[-2000:])
        assert "robot_base_without_tf" in r.error_code.error_message and not r.grasps
        assert node.alive()
    finally:
        if cam is not None:
            cam.close()
        ex.shutdown()
        client_node.destroy_node()
        node.stop()
