"""The tf2_ros stand-in (dsc_grasp_ros/devtools/tf2_standin.py): tf2's lookup semantics on known
geometry, and the listener over real DDS (/tf_static transient-local reaches a late subscriber,
/tf dynamic transforms are interpolated, unregister() removes the subscriptions, the buffer
follows the node's sim clock and clears on a jump back)."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
tf2_msgs = pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs not built: run ./scripts/setup_venv.sh")

from builtin_interfaces.msg import Time as TimeMsg  # noqa: E402
from geometry_msgs.msg import TransformStamped  # noqa: E402
from rclpy.duration import Duration  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.time import Time  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from dsc_grasp_ros.devtools import tf2_standin as tf2  # noqa: E402
from ros_helpers import pick_domain_id  # noqa: E402

S = 1_000_000_000


def ts(parent, child, xyz, yaw=0.0, t_ns=0, q=None):
    m = TransformStamped()
    m.header.frame_id, m.child_frame_id = parent, child
    m.header.stamp = TimeMsg(sec=t_ns // S, nanosec=t_ns % S)
    m.transform.translation.x, m.transform.translation.y, m.transform.translation.z = map(float, xyz)
    q = (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)) if q is None else q
    r = m.transform.rotation
    r.x, r.y, r.z, r.w = map(float, q)
    return m


def xyz_q(t: TransformStamped):
    a, r = t.transform.translation, t.transform.rotation
    return np.array([a.x, a.y, a.z]), np.array([r.x, r.y, r.z, r.w])


def test_chain_static_and_dynamic_interpolation():
    buf = tf2.Buffer()
    # base -> arm (static: 1 m along x, yawed 90 deg), arm -> cam (dynamic: moves along x)
    assert buf.set_transform_static(ts("base", "arm", (1, 0, 0), yaw=math.pi / 2), "test")
    assert buf.set_transform(ts("arm", "cam", (0, 0, 0.5), t_ns=10 * S), "test")
    assert buf.set_transform(ts("arm", "cam", (0.2, 0, 0.5), t_ns=11 * S), "test")
    # at 10.5 s the camera is at arm (0.1, 0, 0.5) -> base (1, 0.1, 0.5) (yaw 90: x_arm = y_base)
    out = buf.lookup_transform("base", "cam", Time(nanoseconds=10 * S + S // 2))
    p, q = xyz_q(out)
    np.testing.assert_allclose(p, [1.0, 0.1, 0.5], atol=1e-9)
    np.testing.assert_allclose(q, [0, 0, math.sin(math.pi / 4), math.cos(math.pi / 4)], atol=1e-9)
    assert (out.header.frame_id, out.child_frame_id) == ("base", "cam")
    # the inverse direction, and time 0 = latest common time (11 s)
    out = buf.lookup_transform("cam", "base", Time())
    assert out.header.stamp.sec == 11
    p, _ = xyz_q(out)
    np.testing.assert_allclose(p, [-0.2, 1.0, -0.5], atol=1e-9)  # base origin in cam: R^T(-t)
    # a sibling frame through the common parent: arm -> tool (static), cam -> tool
    buf.set_transform_static(ts("arm", "tool", (0.0, 0.3, 0.5)), "test")
    p, _ = xyz_q(buf.lookup_transform("cam", "tool", Time(nanoseconds=11 * S)))
    np.testing.assert_allclose(p, [-0.2, 0.3, 0.0], atol=1e-9)
    # rotation is slerped: yaw 0 -> 90 deg, half way = 45 deg
    buf.set_transform(ts("base", "spin", (0, 0, 0), yaw=0.0, t_ns=10 * S), "test")
    buf.set_transform(ts("base", "spin", (0, 0, 0), yaw=math.pi / 2, t_ns=12 * S), "test")
    _, q = xyz_q(buf.lookup_transform("base", "spin", Time(nanoseconds=11 * S)))
    np.testing.assert_allclose(q, [0, 0, math.sin(math.pi / 8), math.cos(math.pi / 8)], atol=1e-9)


def test_errors_match_tf2():
    buf = tf2.Buffer()
    buf.set_transform(ts("base", "cam", (0, 0, 1), t_ns=10 * S), "test")
    buf.set_transform(ts("base", "cam", (0, 0, 1), t_ns=11 * S), "test")
    with pytest.raises(tf2.ExtrapolationException, match="extrapolation into the future"):
        buf.lookup_transform("base", "cam", Time(nanoseconds=12 * S))
    with pytest.raises(tf2.ExtrapolationException, match="extrapolation into the past"):
        buf.lookup_transform("base", "cam", Time(nanoseconds=9 * S))
    with pytest.raises(tf2.LookupException, match='"nowhere" passed to lookupTransform argument target_frame does not exist'):
        buf.lookup_transform("nowhere", "cam", Time())
    buf.set_transform_static(ts("world", "table", (0, 0, 0)), "test")
    with pytest.raises(tf2.ConnectivityException, match="not part of the same tree"):
        buf.lookup_transform("table", "cam", Time())
    assert all(issubclass(e, tf2.TransformException) for e in (tf2.LookupException, tf2.ConnectivityException, tf2.ExtrapolationException))
    # can_transform waits up to the timeout, then answers False (no exception)
    t0 = time.monotonic()
    assert not buf.can_transform("base", "cam", Time(nanoseconds=12 * S), timeout=Duration(seconds=0.2))
    assert time.monotonic() - t0 >= 0.19
    assert buf.can_transform("base", "cam", Time(nanoseconds=10 * S + 1))
    # a lookup waits for data that arrives during the timeout
    threading.Timer(0.1, lambda: buf.set_transform(ts("base", "cam", (0, 0, 2), t_ns=13 * S), "test")).start()
    p, _ = xyz_q(buf.lookup_transform("base", "cam", Time(nanoseconds=12 * S), timeout=Duration(seconds=2.0)))
    np.testing.assert_allclose(p, [0, 0, 1.5], atol=1e-9)


def test_quaternion_normalised_or_rejected_and_cache_pruned():
    buf = tf2.Buffer(cache_time=Duration(seconds=5))
    s = 1.002  # slightly off: accepted and normalised (tf2 accepts |q|^2 - 1 < 0.01)
    assert buf.set_transform_static(ts("base", "cam", (0, 0, 1), q=(0, 0, 0, s)), "test")
    _, q = xyz_q(buf.lookup_transform("base", "cam", Time()))
    assert abs(np.linalg.norm(q) - 1.0) < 1e-12
    assert not buf.set_transform_static(ts("base", "bad", (0, 0, 1), q=(0, 0, 0, 0)), "test")  # TF_DENORMALIZED_QUATERNION
    assert not buf.set_transform(ts("cam", "cam", (0, 0, 0), t_ns=S), "test")  # self transform
    for k in range(10):
        buf.set_transform(ts("base", "moving", (k, 0, 0), t_ns=(10 + k) * S), "test")
    assert buf.can_transform("base", "moving", Time(nanoseconds=14 * S))
    assert not buf.can_transform("base", "moving", Time(nanoseconds=13 * S))  # older than 5 s behind 19 s: pruned
    buf.clear()
    assert not buf.can_transform("base", "cam", Time())


@pytest.fixture
def ros():
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=pick_domain_id())
    ex = SingleThreadedExecutor(context=ctx)
    th = threading.Thread(target=ex.spin, daemon=True)
    nodes = []

    def make(name, **params):
        n = Node(name, context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        ex.add_node(n)
        nodes.append(n)
        return n

    make.ctx = ctx
    th.start()
    yield make
    ex.shutdown()
    for n in nodes:
        n.destroy_node()
    rclpy.try_shutdown(context=ctx)


def _wait(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_listener_over_dds_static_late_joiner_dynamic_and_unregister(ros):
    talker = ros("tf_talker")
    static_qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    pub_static = talker.create_publisher(TFMessage, "/tf_static", static_qos)
    pub = talker.create_publisher(TFMessage, "/tf", 100)
    # published BEFORE the listener exists: transient-local must still deliver it
    pub_static.publish(TFMessage(transforms=[ts("panda_link0", "camera_link", (0.5, 0.0, 0.7), yaw=math.pi)]))
    listener_node = ros("tf_listener")
    buf = tf2.Buffer(node=listener_node)
    listener = tf2.TransformListener(buf, listener_node)
    assert _wait(lambda: pub.get_subscription_count() == 1 and pub_static.get_subscription_count() == 1)
    for k in range(3):  # camera_link -> optical frame, moving 1 cm per second along z
        pub.publish(TFMessage(transforms=[ts("camera_link", "cam_optical", (0, 0, 0.01 * k), t_ns=(100 + k) * S)]))
    when = Time(nanoseconds=101 * S + S // 2)
    out = buf.lookup_transform("panda_link0", "cam_optical", when, timeout=Duration(seconds=5.0))
    p, q = xyz_q(out)
    np.testing.assert_allclose(p, [0.5, 0.0, 0.715], atol=1e-9)
    np.testing.assert_allclose(np.abs(q), [0, 0, 1, 0], atol=1e-9)
    n_subs = len(list(listener_node.subscriptions))
    listener.unregister()
    assert len(list(listener_node.subscriptions)) == n_subs - 2
    assert _wait(lambda: pub.get_subscription_count() == 0 and pub_static.get_subscription_count() == 0)
    pub.publish(TFMessage(transforms=[ts("camera_link", "cam_optical", (0, 0, 1.0), t_ns=103 * S)]))
    time.sleep(0.3)
    assert not buf.can_transform("panda_link0", "cam_optical", Time(nanoseconds=103 * S))  # no longer listening


def test_buffer_follows_sim_time_and_clears_on_jump_back(ros):
    from rosgraph_msgs.msg import Clock

    clock_node = ros("clock_talker")
    pub = clock_node.create_publisher(Clock, "/clock", 10)
    node = ros("sim_node", use_sim_time=True)
    buf = tf2.Buffer(node=node)
    assert buf.clock is node.get_clock()
    assert _wait(lambda: pub.get_subscription_count() >= 1)
    pub.publish(Clock(clock=TimeMsg(sec=100)))
    assert _wait(lambda: node.get_clock().now().nanoseconds == 100 * S)
    buf.set_transform_static(ts("base", "cam", (0, 0, 1)), "test")
    cleared = buf.cleared
    pub.publish(Clock(clock=TimeMsg(sec=100, nanosec=500_000_000)))  # forward: kept
    assert _wait(lambda: node.get_clock().now().nanoseconds == 100 * S + S // 2)
    assert buf.cleared == cleared and buf.can_transform("base", "cam", Time())
    pub.publish(Clock(clock=TimeMsg(sec=50)))  # bag loop: jump back 50 s -> cleared
    assert _wait(lambda: buf.cleared > cleared)
    assert not buf.can_transform("base", "cam", Time())
    # without the node, the buffer runs on the system clock, not the node's (sim time)
    assert tf2.Buffer().clock.clock_type != node.get_clock().clock_type
