"""grasp_node in-process (no DDS traffic): what the node does with messages that must never crash
it or produce an implausible pose (issue 11, items 3-6).

The node is constructed in this process on a private context and configured (the shipped
model on the CPU); messages go straight into its callbacks / ``_process``; what it would publish
is recorded instead of sent.
"""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from dsc_grasp_ros.ros import bag as bagmod  # noqa: E402
from dsc_grasp_ros.ros import conversions as conv  # noqa: E402
from dsc_grasp_ros.ros.grasp_node import GraspNode  # noqa: E402
from dsc_grasp_ros.ros.sync import FramePair  # noqa: E402

DOMAIN_ID = 212  # fixed, outside pick_domain_id()'s 20..199; nothing is sent on it
FRAME = bagmod.CAMERA_FRAME


@pytest.fixture(scope="module")
def scene():
    return bagmod.render_box_scene(640, 480, bagmod.look_at_camera((0.38, -0.12, 0.58), (0.0, 0.02, 0.0)))


@pytest.fixture(scope="module")
def node():
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    overrides = [Parameter("device", value="cpu"), Parameter("min_quality", value=0.0), Parameter("top_k", value=3),
                 Parameter("depth_statistic", value="center"), Parameter("warn_throttle", value=0.0),
                 Parameter("diagnostics_period", value=3600.0)]
    n = GraspNode(context=ctx, parameter_overrides=overrides)
    from rclpy.lifecycle import TransitionCallbackReturn

    assert n.trigger_configure() == TransitionCallbackReturn.SUCCESS
    n.published = []
    n._publish = lambda header, rows, poses, res, rgb, image_header: n.published.append((header, rows))
    n.warnings = []
    orig = n._warn

    def warn(key, text, error=False):
        n.warnings.append((key, text))
        orig(key, text, error)

    n._warn = warn
    yield n
    n._teardown()
    n.destroy_node()
    rclpy.try_shutdown(context=ctx)


def _reset(node):
    node.published.clear()
    node.warnings.clear()
    node._counters.clear()


def _pair(rgb, depth, K, frame_id=FRAME, depth_encoding="16UC1", info=None, t=1_700_000_000_000_000_000):
    h = Header(stamp=conv.ns_to_stamp(t), frame_id=frame_id)
    color = conv.array_to_image(rgb, "rgb8", h)
    dmsg = conv.array_to_image(depth, depth_encoding, h)
    return FramePair(color=color, depth=dmsg, stamp_ns=t), info if info is not None else conv.k_to_camera_info(K, rgb.shape[1], rgb.shape[0], h)


def _run(node, pair, info):
    _reset(node)
    node._info = info
    node._process(pair)
    return node.published, dict(node._counters), " | ".join(t for _, t in node.warnings)


def _mm(scene):
    return np.clip(np.round(scene.depth * 1000), 0, 65535).astype(np.uint16)


def test_good_frame_publishes(node, scene):
    pub, counters, _ = _run(node, *_pair(scene.rgb, _mm(scene), scene.K))
    assert len(pub) == 1 and len(pub[0][1]) >= 1, counters
    assert pub[0][0].frame_id == FRAME


# ---------------------------------------------------------------- item 3: truncated serialized Image
@pytest.mark.parametrize("cut", [0, 3, 10, 25, 40, 60, 200, -10])
def test_truncated_serialized_image_is_skipped_not_raised(node, scene, cut):
    raw = serialize_message(conv.array_to_image(scene.rgb[:40, :40].copy(), "rgb8", Header(frame_id=FRAME)))
    _reset(node)
    node._active = True
    try:
        node._on_color(raw[:cut])  # must not raise (an exception here stops executor.spin)
        node._on_depth(raw[:cut])
    finally:
        node._active = False
    assert node._counters["truncated_message"] == 2, dict(node._counters)
    assert "truncated" in node.warnings[0][1] or "cannot be deserialized" in node.warnings[0][1], node.warnings
