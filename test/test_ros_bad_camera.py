"""grasp_node on CameraInfo and stamps it must not use, over real DDS.

A bag of a good frame and one frame per case is replayed (lockstep) into a node process: an
implausible focal length, distortion coefficients of the wrong count or that cannot be undistorted,
another camera's CameraInfo and negative stamps are skipped and counted (read from /diagnostics),
before any inference (no ``detector_error``), and give no pose; a distortion model the core does
not undistort is warned about even after a supported one was reported; a depth image whose
``is_bigendian`` flag is wrong shows a byte-order hint. Then colour and depth that stop pairing
(stamps 1 ms apart, sync_tolerance 0) turn /diagnostics to WARN naming the offset and tolerance.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from dsc_grasp_ros.devtools import bag as bagmod  # noqa: E402
from dsc_grasp_ros.devtools.listener import GraspListener  # noqa: E402
from dsc_grasp_ros.ros import conversions as conv  # noqa: E402

from ros_helpers import REALSENSE_REMAPS, replay, ros_context, start_node, write_params  # noqa: E402,F401 - ros_context: fixture

TOPICS = bagmod.REALSENSE_TOPICS
FRAME = bagmod.CAMERA_FRAME
T0 = 1_700_000_200_000_000_000
DT = 100_000_000


def _msgs(t, rgb, mm, K, stamp_ns=None, depth_stamp_ns=None, info_frame=FRAME, D=None, model="plumb_bob", depth_msg=None,
          with_info=True):
    """One frame's messages at bag time ``t``: CameraInfo, depth, color (stamps ``stamp_ns``, default ``t``)."""
    s = t if stamp_ns is None else stamp_ns
    h = Header(stamp=conv.ns_to_stamp(s), frame_id=FRAME)
    hd = Header(stamp=conv.ns_to_stamp(s if depth_stamp_ns is None else depth_stamp_ns), frame_id=FRAME)
    color = conv.array_to_image(rgb, "rgb8", h)
    depth = depth_msg if depth_msg is not None else conv.array_to_image(mm, "16UC1")
    depth.header = hd
    out = []
    if with_info:
        info = conv.k_to_camera_info(K, rgb.shape[1], rgb.shape[0], Header(stamp=h.stamp, frame_id=info_frame))
        if D is not None:
            info.d = [float(x) for x in D]
            info.distortion_model = model
        out.append((t, TOPICS["info"], info))
    return out + [(t, TOPICS["depth"], depth), (t, TOPICS["color"], color)]


def build_cases(frame, mm):
    rgb, K = frame.rgb, frame.K
    cases = []

    def add(name, outcome, **kw):
        t = T0 + len(cases) * DT
        cases.append((name, outcome, t, _msgs(t, rgb, mm, K, **kw)))

    add("good", "published")
    add("small plumb_bob distortion", "published", D=[0.02, -0.01, 0.0, 0.0, 0.0])
    add("unsupported model with non-zero D", "published", D=[0.3, 0.1, 0.0, 0.0, 0.0], model="my_model")
    add("focal length 80000 px", "bad_camera_info", with_info=False)
    big = K.copy()
    big[0, 0] = big[1, 1] = 80000.0
    cases[-1][3].insert(0, (cases[-1][2], TOPICS["info"], conv.k_to_camera_info(big, rgb.shape[1], rgb.shape[0],
                                                                              Header(stamp=conv.ns_to_stamp(cases[-1][2]), frame_id=FRAME))))
    add("plumb_bob with 3 coefficients", "bad_camera_info", D=[0.1, 0.01, 0.001])
    add("plumb_bob with 20 coefficients", "bad_camera_info", D=[0.01] * 20)
    add("rational_polynomial with 1 coefficient", "bad_camera_info", D=[0.1], model="rational_polynomial")
    add("D = 1e30", "bad_camera_info", D=[1e30] * 5)
    add("D = [1e6, -1e6, 0, 0, 1e6]", "bad_camera_info", D=[1e6, -1e6, 0.0, 0.0, 1e6])
    add("another camera's CameraInfo", "camera_info_frame_mismatch", info_frame="camera_left_optical_frame")
    add("negative stamps", "negative_stamp", stamp_ns=-100_000_000_000)
    add("good again", "published")
    wrong_flag = conv.array_to_image(mm, "16UC1")
    wrong_flag.is_bigendian = 1  # little-endian data flagged big-endian
    add("is_bigendian set on little-endian depth", "byte_order", depth_msg=wrong_flag)
    return cases


def test_bad_camera_info_stamps_and_stalls(ros_context, tmp_path):  # noqa: F811
    ctx, env = ros_context
    frame = bagmod.render_box_scene(640, 480, bagmod.look_at_camera((0.38, -0.12, 0.58), (0.0, 0.02, 0.0)))
    mm = np.clip(np.round(frame.depth * 1000), 0, 65535).astype(np.uint16)
    cases = build_cases(frame, mm)
    bagmod.write_messages(tmp_path / "cases", [m for *_, msgs in cases for m in msgs])
    # colour and depth that pair, then stamped 1 ms apart (sync_tolerance 0): the pairing stalls
    t1 = T0 + 1000 * DT
    stall = [m for i in range(5) for m in _msgs(t1 + i * DT, frame.rgb, mm, frame.K)]
    stall += [m for i in range(5, 45) for m in _msgs(t1 + i * DT, frame.rgb, mm, frame.K, depth_stamp_ns=t1 + i * DT + 1_000_000)]
    bagmod.write_messages(tmp_path / "stall", stall)
    params = write_params(tmp_path / "params.yaml", {
        "use_sim_time": True, "min_quality": 0.0, "top_k": 3, "depth_statistic": "center", "sync_tolerance": 0.0,
        "diagnostics_period": 0.3, "warn_throttle": 0.0, "device": "cpu", "qos_reliability": "reliable",
    })
    lis = GraspListener("/grasp_node", context=ctx)
    node = start_node(params, env, tmp_path / "node.log", REALSENSE_REMAPS)
    try:
        assert lis.publishers_ready(60), node.output()
        rp = replay(tmp_path / "cases", env, tmp_path / "replay.log", "--hz", "10", "--lockstep", "/grasp_node/grasp_candidates",
                    "--lockstep-timeout", "1.5", "--tail", "1.0")
        assert rp.wait(180) == 0, rp.output()
        assert lis.wait_for(lambda rx: rx.diagnostics and any(kv.key == "depth_byte_order" for kv in rx.diagnostics[-1][1].values), 10), \
            f"no byte-order hint in /diagnostics: {lis.latest_diagnostics()}\n{node.output()}"
        diag = lis.latest_diagnostics()
        with lis.lock:
            grasps = {conv.stamp_to_ns(m.header.stamp) for _, m in lis.rx.grasp}
            clouds = {conv.stamp_to_ns(m.header.stamp) for _, m in lis.rx.candidates}
            status = lis.rx.diagnostics[-1][1]
        log = node.output()
        assert node.alive(), log

        expected = {}
        for name, outcome, t, msgs in cases:
            stamp = conv.stamp_to_ns(msgs[-1][2].header.stamp)
            if outcome == "published":
                assert t in grasps, f"{name}: no grasp published\n{log}"
            elif outcome != "byte_order":
                expected[outcome] = expected.get(outcome, 0) + 1
                assert stamp not in grasps and stamp not in clouds, f"{name}: a pose was published"
        for reason, n in expected.items():
            assert int(diag.get(reason, 0)) == n, f"counter {reason}: {diag.get(reason)} != {n}\n{diag}\n{log}"
        assert int(diag.get("detector_error", 0)) == 0, log
        for text in ("field of view", "needs 4, 5 or 8 coefficients, got 3", "got 20", "needs 8, 12 or 14 coefficients, got 1",
                     "cannot be undistorted", "'camera_left_optical_frame'", "before the epoch",
                     "non-zero plumb_bob distortion", "'my_model' is not supported", "is_bigendian"):
            assert text in log, f"no log line mentioning {text!r}\n{log}"
        assert int(diag.get("depth_byte_order_suspect", 0)) == 1, diag
        assert "byte order" in diag["depth_byte_order"] and "byte-swapped" in diag["depth_byte_order"], diag
        assert status.level == DiagnosticStatus.WARN and "byte order" in status.message, status

        # --- the stream stops pairing: WARN naming the offset and sync_tolerance
        rp = replay(tmp_path / "stall", env, tmp_path / "replay_stall.log", "--hz", "30", "--tail", "1.0")
        assert rp.wait(120) == 0, rp.output()

        def stalled(rx):
            if not rx.diagnostics:
                return False
            st = rx.diagnostics[-1][1]
            return st.level == DiagnosticStatus.WARN and "stopped pairing" in st.message

        assert lis.wait_for(stalled, 10), f"{lis.latest_diagnostics()}\n{node.output()}"
        with lis.lock:
            msg = lis.rx.diagnostics[-1][1].message
        assert "1.000 ms apart" in msg and "sync_tolerance is 0 s" in msg, msg
        time.sleep(0.5)
        assert "stopped pairing" in node.output(), node.output()
    finally:
        lis.close()
        node.stop()
    assert "Traceback" not in node.output()
