"""The tf2 path of grasp_node with a FAKE tf2_ros (tf2_ros cannot be installed from PyPI; on real
ROS installs the real module is used): the lookup is target <- camera at the image stamp with the
configured timeout, its result becomes the transform applied to the grasps, and tf2 errors skip
the frame. Also: without tf2_ros, a target_frame needs static_camera_transform (configure fails,
saying so)."""

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

        class Buffer:
            def lookup_transform(self, target, source, time, timeout=None):
                fake.calls.append((target, source, time, timeout))
                if source == "unknown_frame":
                    raise FakeTF2.ExtrapolationException("extrapolation into the future")
                ts = TransformStamped()
                ts.transform.translation.x, ts.transform.translation.y, ts.transform.translation.z = 1.0, 2.0, 3.0
                ts.transform.rotation.z, ts.transform.rotation.w = np.sin(0.25), np.cos(0.25)
                return ts

        class TransformListener:
            def __init__(self, buffer, node, spin_thread=True):
                fake.listener_args = (buffer, node, spin_thread)

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
