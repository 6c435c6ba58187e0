"""The tf2 path of grasp_node. With a FAKE tf2_ros: the lookup is target <- camera at the image
stamp with the configured timeout, its result becomes the transform applied to the grasps (its
quaternion normalised), and tf2 errors skip the frame. With the module the node really uses
(tf2_ros on a ROS install, else dsc_grasp_ros/devtools/tf2_standin.py): ONE Buffer on the node's clock
(sim time), the /tf listener unregistered on cleanup (no second pair of subscriptions after
cleanup -> configure). Without any tf2, a target_frame needs static_camera_transform."""

from __future__ import annotations

import types

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import TransformStamped  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from dsc_grasp_ros.ros import grasp_node as gn  # noqa: E402


class FakeTF2:
    class TransformException(Exception):
        pass

    class ExtrapolationException(TransformException):
        pass

    def __init__(self):
        self.calls = []
        fake = self

        self.scale = 1.0  # the quaternion's norm in the looked-up transform

        class Buffer:
            def __init__(self, cache_time=None, node=None):
                fake.buffer_args = (cache_time, node)

            def lookup_transform(self, target, source, time, timeout=None):
                fake.calls.append((target, source, time, timeout))
                if source == "unknown_frame":
                    raise FakeTF2.ExtrapolationException("extrapolation into the future")
                ts = TransformStamped()
                ts.transform.translation.x, ts.transform.translation.y, ts.transform.translation.z = 1.0, 2.0, 3.0
                ts.transform.rotation.z, ts.transform.rotation.w = fake.scale * np.sin(0.25), fake.scale * np.cos(0.25)
                return ts

            def clear(self):
                fake.cleared = getattr(fake, "cleared", 0) + 1

        class TransformListener:
            def __init__(self, buffer, node, spin_thread=True):
                fake.listener_args = (buffer, node, spin_thread)
                fake.registered = getattr(fake, "registered", 0) + 1

            def unregister(self):
                fake.registered -= 1

        self.Buffer, self.TransformListener = Buffer, TransformListener


@pytest.fixture
def node_factory():
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=231)
    nodes = []

    def make(**params):
        n = gn.GraspNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        nodes.append(n)
        return n

    yield make
    for n in nodes:
        n.destroy_node()
    rclpy.try_shutdown(context=ctx)


def test_tf2_lookup_at_image_stamp(node_factory, monkeypatch):
    fake = FakeTF2()
    monkeypatch.setattr(gn, "tf2_ros", fake)
    monkeypatch.setattr(gn, "HAVE_TF2", True)
    node = node_factory(target_frame="panda_link0", tf_timeout=0.02)
    node._tf_buffer = fake.Buffer()
    stamp = Time(sec=12, nanosec=345)
    T = node._camera_to_target("camera_color_optical_frame", stamp)
    target, source, t, timeout = fake.calls[-1]
    assert (target, source) == ("panda_link0", "camera_color_optical_frame")
    assert t.nanoseconds == 12_000_000_345 and timeout.nanoseconds == 20_000_000
    p, q = T.apply_pose(np.zeros(3), np.array([0, 0, 0, 1.0]))
    np.testing.assert_allclose(p, [1, 2, 3])
    np.testing.assert_allclose(q, [0, 0, np.sin(0.25), np.cos(0.25)])
    with pytest.raises(gn.TransformUnavailable, match="extrapolation"):
        node._camera_to_target("unknown_frame", stamp)
    assert node._camera_to_target("panda_link0", stamp) is None  # already in the target frame


@pytest.mark.parametrize("norm", [1.001, 1.004, 0.996])
def test_tf_quaternion_slightly_off_unit_is_normalised(node_factory, monkeypatch, norm):
    """tf2 accepts |q|^2 within 1% of 1 and composes without normalising; such a transform used to
    fail in Transform() (norm check 1e-3) and count as a detector error."""
    fake = FakeTF2()
    fake.scale = norm
    monkeypatch.setattr(gn, "tf2_ros", fake)
    node = node_factory(target_frame="panda_link0")
    node._tf_buffer = fake.Buffer()
    T = node._camera_to_target("camera_color_optical_frame", Time(sec=1))
    np.testing.assert_allclose(T.rotation, [0, 0, np.sin(0.25), np.cos(0.25)], atol=1e-12)
    fake.scale = 0.0  # not a rotation at all: the frame is skipped as tf_unavailable, saying why
    with pytest.raises(gn.TransformUnavailable, match="not a rigid transform"):
        node._camera_to_target("camera_color_optical_frame", Time(sec=1))


def test_one_buffer_with_the_node_and_listener_unregistered(node_factory, monkeypatch):
    fake = FakeTF2()
    monkeypatch.setattr(gn, "tf2_ros", fake)
    monkeypatch.setattr(gn, "HAVE_TF2", True)
    node = node_factory(target_frame="panda_link0", device="cpu")
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    buf = node._tf_buffer
    assert fake.buffer_args[1] is node  # Buffer(node=self): the node's clock, cleared on a sim-time jump back
    assert fake.registered == 1
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert fake.registered == 0 and fake.cleared == 1  # listener unregistered, old transforms forgotten
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node._tf_buffer is buf and fake.registered == 1  # still ONE buffer, one listener


def test_real_tf2_module_on_the_node_clock_and_one_pair_of_subscriptions(node_factory):
    """The module the node really uses here (tf2_ros, or the stand-in over real DDS)."""
    if not gn.HAVE_TF2:
        pytest.skip("neither tf2_ros nor tf2_msgs is installed (./scripts/setup_venv.sh builds tf2_msgs)")
    print("tf2 implementation:", gn.TF2_IMPL)
    node = node_factory(target_frame="panda_link0", device="cpu", use_sim_time=True)

    def tf_subs():
        return sorted(s.topic_name for s in node.subscriptions if s.topic_name in ("/tf", "/tf_static"))

    for _ in range(2):
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert tf_subs() == ["/tf", "/tf_static"]
        assert node._tf_buffer.clock is node.get_clock()  # sim time, not the wall clock
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert tf_subs() == []


def test_target_frame_without_tf2_needs_static_transform(node_factory, monkeypatch):
    monkeypatch.setattr(gn, "HAVE_TF2", False)
    node = node_factory(target_frame="panda_link0")
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert not node._configured and node._detector is None


def test_static_transform_configure_and_cleanup(node_factory, monkeypatch):
    monkeypatch.setattr(gn, "HAVE_TF2", False)
    node = node_factory(target_frame="base_link", static_camera_transform=[0.1, 0.2, 0.3, 0.0, 0.0, 0.0, 1.0], device="cpu")
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node._detector is not None and node._tf_buffer is None
    T = node._camera_to_target("camera_color_optical_frame", Time())
    np.testing.assert_allclose(T.apply(np.zeros(3)), [0.1, 0.2, 0.3])
    r = node.set_parameters([Parameter("device", Parameter.Type.STRING, "cpu")])[0]
    assert not r.successful and "unconfigured" in r.reason
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node._detector is None and not node._configured  # model released
    assert node.set_parameters([Parameter("device", Parameter.Type.STRING, "cpu")])[0].successful


def test_yaml_empty_lists_and_declared_types(node_factory):
    node = node_factory()
    assert node._p("roi") == [] and node._p("static_camera_transform") == []
    r = node.set_parameters([Parameter("roi", Parameter.Type.INTEGER_ARRAY, [10, 20, 300, 300])])[0]
    assert r.successful
    r = node.set_parameters([Parameter("sync_tolerance", Parameter.Type.DOUBLE, 0.01)])[0]
    assert r.successful and node._pairer.tolerance_ns == 10_000_000
    r = node.set_parameters([Parameter("sync_tolerance", Parameter.Type.DOUBLE, 0.5)])[0]
    assert not r.successful and node._pairer.tolerance_ns == 10_000_000  # out of range: rejected, unchanged
    r = node.set_parameters([Parameter("autostart", Parameter.Type.BOOL, False)])[0]
    assert not r.successful and "startup" in r.reason
