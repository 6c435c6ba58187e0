"""grasp_node in-process (no DDS traffic): what the node does with messages that must never crash
it or produce an implausible pose.

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

from dsc_grasp_ros.devtools import bag as bagmod  # noqa: E402
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
    n._publish = lambda header, rows, poses, res, rgb, image_header, target=None: n.published.append((header, rows))
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


# ---------------------------------------------------------------- truncated serialized Image
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


# ---------------------------------------------------------------- plausibility limits, depth units
def test_flat_depth_at_10_m_is_rejected_and_counted(node, scene):
    pub, counters, text = _run(node, *_pair(scene.rgb, np.full((480, 640), 10000, np.uint16), scene.K))
    assert pub == [], pub
    assert counters.get("grasps_out_of_limits") == 1 and counters.get("rejected_depth_out_of_range", 0) >= 1, counters
    assert "working range" in text and "10.000 m" in text, text


def test_saturated_16uc1_is_skipped_as_a_wrong_unit(node, scene):
    pub, counters, text = _run(node, *_pair(scene.rgb, np.full((480, 640), 65535, np.uint16), scene.K))
    assert pub == [] and counters.get("depth_wrong_unit") == 1, counters
    assert "saturated" in text and "65535" in text, text


def test_32fc1_in_millimetres_is_skipped_as_a_wrong_unit(node, scene):
    mm = (scene.depth * 1000.0).astype(np.float32)
    pub, counters, text = _run(node, *_pair(scene.rgb, mm, scene.K, depth_encoding="32FC1"))
    assert pub == [] and counters.get("depth_wrong_unit") == 1, counters
    assert "millimetres" in text, text


def test_max_gripper_opening_is_a_runtime_parameter(node, scene):
    assert node.set_parameters([Parameter("max_gripper_opening", value=0.005)])[0].successful
    try:
        pub, counters, text = _run(node, *_pair(scene.rgb, _mm(scene), scene.K))
    finally:
        assert node.set_parameters([Parameter("max_gripper_opening", value=0.08)])[0].successful
    assert pub == [] and counters.get("rejected_too_wide", 0) >= 1, counters
    assert "max_gripper_opening" in text
    r = node.set_parameters([Parameter("min_depth", value=5.0)])[0]
    assert not r.successful and "max_depth" in r.reason


def test_finger_check_is_a_runtime_parameter(node, scene):
    """require with a flat depth under the grasps (no finger can reach past anything): nothing is
    published and the rejections are counted as fingers_blocked; a bad mode is refused by name."""
    flat = np.full((480, 640), 600, np.uint16)  # a flat surface 0.6 m away: nowhere for the fingers to go
    assert node.set_parameters([Parameter("finger_check", value="require")])[0].successful
    try:
        assert node._detector.cfg.finger_check == "require"
        pub, counters, text = _run(node, *_pair(scene.rgb, flat, scene.K))
    finally:
        assert node.set_parameters([Parameter("finger_check", value="prefer")])[0].successful
    assert pub == [] and counters.get("rejected_fingers_blocked", 0) >= 1, counters
    assert "finger_check" in text, text
    r = node.set_parameters([Parameter("finger_check", value="sometimes")])[0]
    assert not r.successful and "finger_check" in r.reason
    r = node.set_parameters([Parameter("finger_max_turn_deg", value=120.0)])[0]
    assert not r.successful
    assert node._detector.cfg.finger_check == "prefer" and node._detector.cfg.finger_max_turn_deg == 60.0


# ---------------------------------------------------------------- empty frame_id, tiny images
def test_empty_frame_id_is_skipped(node, scene):
    pub, counters, text = _run(node, *_pair(scene.rgb, _mm(scene), scene.K, frame_id=""))
    assert pub == [] and counters.get("empty_frame_id") == 1, counters
    assert "empty header.frame_id" in text


def test_1x1_image_is_skipped(node):
    K = np.array([[600.0, 0, 0.0], [0, 600.0, 0.0], [0, 0, 1]])
    pub, counters, text = _run(node, *_pair(np.zeros((1, 1, 3), np.uint8), np.full((1, 1), 600, np.uint16), K))
    assert pub == [] and counters.get("image_too_small") == 1, counters
    assert "too small" in text


# ---------------------------------------------------------------- CameraInfo binning, ROI, distortion, K checks
def _grasp_rows(node, scene, info):
    pub, counters, text = _run(node, *_pair(scene.rgb, _mm(scene), scene.K, info=info))
    assert len(pub) == 1, (counters, text)
    return np.asarray(pub[0][1])


def test_binning_2x2_camera_info_gives_the_same_pose(node, scene):
    ref = _grasp_rows(node, scene, conv.k_to_camera_info(scene.K, 640, 480))
    K_full = scene.K.copy()
    K_full[:2] *= 2  # calibrated at 1280x960; the driver bins 2x2 -> 640x480 images
    K_full[0, 2], K_full[1, 2] = 2 * scene.K[0, 2], 2 * scene.K[1, 2]
    info = conv.k_to_camera_info(K_full, 1280, 960)
    info.binning_x = info.binning_y = 2
    np.testing.assert_allclose(_grasp_rows(node, scene, info)[:, :3], ref[:, :3], atol=1e-6)


def test_roi_camera_info_gives_the_same_pose(node, scene):
    ref = _grasp_rows(node, scene, conv.k_to_camera_info(scene.K, 640, 480))
    K_full = scene.K.copy()
    K_full[0, 2] += 300
    K_full[1, 2] += 200  # a 640x480 window at (300, 200) of a 1280x960 sensor
    info = conv.k_to_camera_info(K_full, 1280, 960)
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 300, 200, 640, 480
    np.testing.assert_allclose(_grasp_rows(node, scene, info)[:, :3], ref[:, :3], atol=1e-6)


def test_distortion_moves_the_pose_onto_the_undistorted_ray(node, scene):
    import cv2

    info = conv.k_to_camera_info(scene.K, 640, 480)
    info.d = [0.12, -0.25, 0.001, -0.002, 0.05]
    rows = _grasp_rows(node, scene, info)
    for x, y, z, *_, u, v, _fingers_clear in rows:
        ray = cv2.undistortPoints(np.array([[[u, v]]]), scene.K, np.array(info.d))[0, 0]
        np.testing.assert_allclose([x / z, y / z], ray, atol=1e-5)


@pytest.mark.parametrize("what", ["k22", "principal_point"])
def test_bad_k_is_skipped(node, scene, what):
    K = scene.K.copy()
    if what == "k22":
        K[2, 2] = 0.0
    else:
        K[0, 2] = 900.0
    pub, counters, text = _run(node, *_pair(scene.rgb, _mm(scene), scene.K, info=conv.k_to_camera_info(K, 640, 480)))
    assert pub == [] and counters.get("bad_camera_info") == 1, counters
    assert ("last row" in text) if what == "k22" else ("principal point" in text), text


# ---------------------------------------------------------------- ROI parameters: roi_mode, net_px_per_metre
def _diagnostics(node) -> dict[str, str]:
    """The key/values the node's next /diagnostics status would carry (its publisher captured)."""
    sent = []
    pub = node._diag_pub.publish
    node._diag_pub.publish = sent.append
    try:
        node._summary()
    finally:
        node._diag_pub.publish = pub
    return {kv.key: kv.value for kv in sent[-1].status[0].values}


def _roi_of_frame(node, scene):
    """The ROI the detector used on the scene frame, as /diagnostics reports it (the frame's
    candidates may still be rejected later, e.g. too wide at another scale)."""
    node._last_roi = None
    _, counters, text = _run(node, *_pair(scene.rgb, _mm(scene), scene.K))
    d = _diagnostics(node)
    assert "roi" in d, (counters, text)
    return [int(a) for a in d["roi"].split()], d


def test_roi_mode_and_net_px_per_metre_reach_the_detector(node, scene):
    from dsc_grasp_ros.core.preprocess import scale_roi, scene_depth

    meta = node._detector.meta
    z = scene_depth(_mm(scene))
    fx, fy = scene.K[0, 0], scene.K[1, 1]

    def expected(ppm):
        r = scale_roi(480, 640, fx, fy, z, ppm, meta.input_size)
        return [r.x, r.y, r.w, r.h]

    # default: scale mode at the model's own training scale (metadata)
    roi, d = _roi_of_frame(node, scene)
    assert (d["roi_mode"], float(d["net_px_per_metre"])) == ("scale", pytest.approx(meta.px_per_metre, abs=0.01))
    assert roi == expected(meta.px_per_metre), (roi, d)
    try:
        # a larger scale: a tighter crop around the image centre (about 1.5x smaller sides)
        ppm = 1.5 * meta.px_per_metre
        assert node.set_parameters([Parameter("net_px_per_metre", value=ppm)])[0].successful
        tight, d = _roi_of_frame(node, scene)
        assert float(d["net_px_per_metre"]) == pytest.approx(ppm, abs=0.01)
        assert tight == expected(ppm) and tight != roi, (tight, roi)
        assert tight[2] < roi[2] and tight[3] < roi[3]
        # square: the largest centred square, whatever net_px_per_metre says
        assert node.set_parameters([Parameter("roi_mode", value="square")])[0].successful
        sq, d = _roi_of_frame(node, scene)
        assert d["roi_mode"] == "square" and sq == [80, 0, 480, 480], (sq, d)
    finally:
        assert node.set_parameters([Parameter("roi_mode", value="scale"), Parameter("net_px_per_metre", value=0.0)])[0].successful
    assert _roi_of_frame(node, scene)[0] == roi  # back to the model's scale


@pytest.mark.parametrize("name, value, words", [
    ("roi_mode", "zoom", ["roi_mode", "'scale'", "'square'", "zoom"]),
    ("roi_mode", "", ["roi_mode"]),
    ("net_px_per_metre", -1.0, ["net_px_per_metre", "out of range"]),
    ("net_px_per_metre", 20000.0, ["net_px_per_metre", "out of range"]),
    ("net_px_per_metre", "big", ["Wrong parameter type", "DOUBLE"]),  # rclpy's own check
])
def test_bad_roi_parameters_are_refused_with_a_reason(node, name, value, words):
    before = node.get_parameter(name).value
    r = node.set_parameters([Parameter(name, value=value)])[0]
    assert not r.successful
    for w in words:
        assert w in r.reason, r.reason
    assert node.get_parameter(name).value == before
    assert (node._detector.cfg.roi_mode, node._detector.cfg.net_px_per_metre) == ("scale", 0.0)


def test_bad_roi_parameters_at_startup_fail_configure_not_the_process():
    """Values from a params file skip the set-parameters callback (and rclpy raises on an out-of-range
    or mistyped one while declaring): the node is still constructed, configure fails naming the
    parameter, and a valid value set afterwards lets it configure."""
    from rclpy.lifecycle import TransitionCallbackReturn

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    made = []
    try:
        for overrides, words in (([Parameter("roi_mode", value="zoom")], ["parameter roi_mode", "'zoom'", "'scale'"]),
                                 ([Parameter("net_px_per_metre", value=-5.0)], ["parameter net_px_per_metre", "-5.0", "out of range"]),
                                 ([Parameter("sigma", value=50.0)], ["parameter sigma", "50.0"])):
            n = GraspNode(context=ctx, parameter_overrides=overrides + [Parameter("autostart", value=False), Parameter("device", value="cpu")])
            made.append(n)
            reason = n._check_parameters()
            assert reason is not None and all(w in reason for w in words), reason
            assert n.trigger_configure() == TransitionCallbackReturn.FAILURE
            assert n._detector is None
        # an integer for the double (YAML `net_px_per_metre: 300`) is taken as 300.0
        n = GraspNode(context=ctx, parameter_overrides=[Parameter("net_px_per_metre", value=300), Parameter("autostart", value=False)])
        made.append(n)
        assert n.get_parameter("net_px_per_metre").value == 300.0 and n._check_parameters() is None
        # the refused startup value is cleared by a valid one
        bad = made[1]
        assert bad.set_parameters([Parameter("net_px_per_metre", value=250.0)])[0].successful
        assert bad._check_parameters() is None
    finally:
        for n in made:
            n.destroy_node()
        rclpy.try_shutdown(context=ctx)


_SHUTDOWN_RACE = r"""
import sys
import rclpy
from rclpy.executors import SingleThreadedExecutor
from dsc_grasp_ros.ros import grasp_node

mode = sys.argv[1]

def spin(self, *a, **k):
    # what rclpy's deferred signal handler does mid-spin: the context goes away, then building the
    # wait set raises RCLError (a RuntimeError) "the given context is not valid"
    if mode == "shutdown":
        rclpy.shutdown()
    raise RuntimeError("failed to initialize wait set: the given context is not valid, either rcl_init() was not called or rcl_shutdown() was called.")

SingleThreadedExecutor.spin = spin
try:
    rc = grasp_node.main(["grasp_node", "--ros-args", "-p", "autostart:=false"])
except RuntimeError as e:
    print("RAISED", e)
    sys.exit(3)
print("RC", rc)
"""


@pytest.mark.parametrize("mode,want_rc", [("shutdown", 0), ("error", 3)])
def test_shutdown_race_is_a_clean_exit_but_a_real_error_is_not_hidden(tmp_path, mode, want_rc):
    """Ctrl-C during spin (ros2/rclpy#398): the RCLError of a context shut down by the signal handler
    ends the node cleanly (no traceback: CI saw one under load); the same error while the context is
    still valid is re-raised."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, ROS_DOMAIN_ID="187", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    p = subprocess.run([sys.executable, "-c", _SHUTDOWN_RACE, mode], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == want_rc, p.stdout + p.stderr
    assert ("Traceback" in p.stderr) is False, p.stderr
    assert ("RC 0" in p.stdout) == (mode == "shutdown")


def test_approach_target_down_publishes_vertical_grasps_under_a_tilted_camera(scene):
    """approach: target_down with a tilted camera (the scene's camera looks at the table from the
    side) and a static camera pose: every published TCP +z is the target frame's -z; switched to
    optical at runtime, the poses approach along the camera's optical axis again."""
    from dsc_grasp_ros.core.geometry import quaternion_to_rotation

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    overrides = [Parameter("device", value="cpu"), Parameter("min_quality", value=0.0), Parameter("top_k", value=3),
                 Parameter("warn_throttle", value=0.0), Parameter("diagnostics_period", value=3600.0),
                 Parameter("target_frame", value="world"), Parameter("static_camera_transform", value=list(scene.T_base_camera)),
                 Parameter("approach", value="target_down")]
    n = GraspNode(context=ctx, parameter_overrides=overrides)
    try:
        from rclpy.lifecycle import TransitionCallbackReturn

        assert n.trigger_configure() == TransitionCallbackReturn.SUCCESS
        n.published, n.warnings = [], []
        n._publish = lambda header, rows, poses, res, rgb, image_header, target=None: n.published.append((header, rows))
        R_cam = quaternion_to_rotation(scene.T_base_camera[3:])
        assert R_cam[2, 2] > -0.95  # the optical axis is tilted from vertical by more than 18 degrees
        pub, counters, _ = _run(n, *_pair(scene.rgb, _mm(scene), scene.K))
        assert len(pub) == 1 and pub[0][0].frame_id == "world" and pub[0][1], counters
        for row in pub[0][1]:
            z = quaternion_to_rotation(row[3:7])[:, 2]
            assert np.allclose(z, [0.0, 0.0, -1.0], atol=1e-6), z
        # view down: the network sees the virtual straight-down camera; the poses stay vertical, in the world
        assert n.set_parameters([Parameter("view", value="down")])[0].successful
        assert n._detector.cfg.view == "down"
        pub, counters, _ = _run(n, *_pair(scene.rgb, _mm(scene), scene.K))
        assert len(pub) == 1 and pub[0][1], counters
        for row in pub[0][1]:
            assert np.allclose(quaternion_to_rotation(row[3:7])[:, 2], [0.0, 0.0, -1.0], atol=1e-6)
        assert not n.set_parameters([Parameter("view", value="sideways")])[0].successful
        assert n.set_parameters([Parameter("view", value="camera")])[0].successful
        assert n.set_parameters([Parameter("approach", value="optical")])[0].successful
        pub, counters, _ = _run(n, *_pair(scene.rgb, _mm(scene), scene.K))
        for row in pub[0][1]:
            assert np.allclose(quaternion_to_rotation(row[3:7])[:, 2], R_cam[:, 2], atol=1e-6)
        assert not n.set_parameters([Parameter("approach", value="sideways")])[0].successful
    finally:
        n._teardown()
        n.destroy_node()
        rclpy.try_shutdown(context=ctx)
