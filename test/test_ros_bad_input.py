"""grasp_node on bad input, runtime parameters and lifecycle transitions, over real DDS.

A bag of one good scene frame followed by one broken frame per case is replayed (lockstep) into
a node process. Each broken frame must be skipped with its counter incremented (read from
/diagnostics) and must not produce a pose; frames that are unusual but valid (row padding,
big-endian depth, bgra8, partly NaN/inf depth) must give exactly the good frame's grasp.
Then the node's parameter callback and lifecycle services are exercised from this process.
"""

from __future__ import annotations

import array
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from dsc_grasp_ros.devtools import bag as bagmod  # noqa: E402
from dsc_grasp_ros.ros import conversions as conv  # noqa: E402
from dsc_grasp_ros.devtools.listener import GraspListener  # noqa: E402

from ros_helpers import REALSENSE_REMAPS, replay, ros_context, start_node, write_params  # noqa: E402,F401 - ros_context: fixture

TOPICS = bagmod.REALSENSE_TOPICS
FRAME = bagmod.CAMERA_FRAME
T0 = 1_700_000_100_000_000_000
DT = 100_000_000


def _frame_msgs(t, rgb=None, depth=None, K=None, color=None, depth_msg=None, info=None, with_info=True):
    h = Header(stamp=conv.ns_to_stamp(t), frame_id=FRAME)
    c = color if color is not None else conv.array_to_image(rgb, "rgb8", h)
    d = depth_msg if depth_msg is not None else conv.array_to_image(depth, "16UC1", h)
    c.header, d.header = h, Header(stamp=h.stamp, frame_id=d.header.frame_id or FRAME)
    out = []
    if with_info:
        i = info if info is not None else conv.k_to_camera_info(K, rgb.shape[1], rgb.shape[0])
        i.header = h
        out.append((t, TOPICS["info"], i))
    return out + [(t, TOPICS["depth"], d), (t, TOPICS["color"], c)]


def _padded(arr, encoding, pad, big_endian=False):
    msg = conv.array_to_image(arr, encoding)
    row = msg.step
    a = np.ascontiguousarray(arr)
    if big_endian:
        a = a.astype(a.dtype.newbyteorder(">"))
        msg.is_bigendian = 1
    rows = a.reshape(a.shape[0], -1).view(np.uint8)
    buf = np.full((a.shape[0], row + pad), 0xAB, np.uint8)
    buf[:, :row] = rows
    msg.step = row + pad
    msg.data = array.array("B", buf.tobytes())
    return msg


def build_cases(frame):
    """[(name, expected outcome, stamp, messages)]; outcome 'same' = the good frame's grasp, 'finite' =
    finite grasps or, if the grasp fell on NaN/inf, a no_valid_depth_at_grasp skip; else the counter
    name that must increment."""
    rgb, K = frame.rgb, frame.K
    mm = np.clip(np.round(frame.depth * 1000), 0, 65535).astype(np.uint16)
    h, w = mm.shape
    cases = []

    def add(name, outcome, **kw):
        t = T0 + len(cases) * DT
        cases.append((name, outcome, t, _frame_msgs(t, rgb, mm, K, **kw)))

    add("no CameraInfo yet", "missing_camera_info", with_info=False)
    add("good", "same")
    add("color encoding yuv422", "unsupported_encoding", color=_set(conv.array_to_image(rgb, "rgb8"), encoding="yuv422"))
    add("depth encoding mono16", "unsupported_encoding", depth_msg=_set(conv.array_to_image(mm, "16UC1"), encoding="mono16"))
    add("depth 320x240 vs color 640x480", "size_mismatch", depth_msg=conv.array_to_image(mm[::2, ::2].copy(), "16UC1"))
    add("row padding", "same", color=_padded(rgb, "rgb8", 64), depth_msg=_padded(mm, "16UC1", 32))
    add("big-endian depth", "same", depth_msg=_padded(mm, "16UC1", 0, big_endian=True))
    add("bgra8 color", "same", color=conv.array_to_image(np.dstack([rgb[..., ::-1], np.full((h, w), 255, np.uint8)]), "bgra8"))
    add("step smaller than a row", "bad_image_step", color=_set(conv.array_to_image(rgb, "rgb8"), step=w * 3 - 3))
    trunc = conv.array_to_image(mm, "16UC1")
    trunc.data = trunc.data[: len(trunc.data) // 2]
    add("truncated depth data", "bad_image_data_size", depth_msg=trunc)
    add("all-zero depth", "all_invalid_depth", depth_msg=conv.array_to_image(np.zeros_like(mm), "16UC1"))
    nan = np.full((h, w), np.nan, np.float32)
    nan[::2] = np.inf
    add("all NaN/inf depth (32FC1)", "all_invalid_depth", depth_msg=conv.array_to_image(nan, "32FC1"))
    part = frame.depth.astype(np.float32).copy()
    part[:, : w // 3] = np.nan
    part[h // 2 : h // 2 + 40] = np.inf
    add("partly NaN/inf depth (32FC1)", "finite", depth_msg=conv.array_to_image(part, "32FC1"))
    zero_info = conv.k_to_camera_info(np.zeros((3, 3)), w, h)
    add("all-zero CameraInfo", "bad_camera_info", info=zero_info)
    # Depth 0 exactly at every pixel a grasp centre can map to (the network grid), valid elsewhere:
    # the network input is unchanged, but every candidate's depth is missing.
    # the ROI the node's detector picks for this frame (scale ROI from the intrinsics and the scene depth)
    from dsc_grasp_ros.core.model_io import default_model_path, load_metadata
    from dsc_grasp_ros.core.preprocess import scale_roi, scene_depth

    meta = load_metadata(default_model_path())
    roi = scale_roi(h, w, K[0, 0], K[1, 1], scene_depth(mm), meta.px_per_metre, meta.input_size)
    jj, ii = np.meshgrid(np.arange(roi.out_w), np.arange(roi.out_h))
    uv = np.rint(roi.to_full(np.stack([jj.ravel(), ii.ravel()], -1).astype(np.float64))).astype(int)
    holes = mm.copy()
    holes[uv[:, 1], uv[:, 0]] = 0
    add("depth 0 at the grasp", "no_valid_depth_at_grasp", depth_msg=conv.array_to_image(holes, "16UC1"))
    add("color/depth frame_id differ", "frame_id_mismatch",
        depth_msg=conv.array_to_image(mm, "16UC1", header=Header(frame_id="camera_depth_optical_frame")))
    add("good again", "same")
    return cases


def _set(msg, **fields):
    for k, v in fields.items():
        setattr(msg, k, v)
    return msg


def _call(ctx_node, client, req, timeout=20.0):
    assert client.wait_for_service(timeout_sec=timeout), f"service {client.srv_name} not available"
    fut = client.call_async(req)
    deadline = time.monotonic() + timeout
    while not fut.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fut.done(), f"no answer from {client.srv_name}"
    return fut.result()


def test_bad_input_params_lifecycle(ros_context, tmp_path):  # noqa: F811
    ctx, env = ros_context
    frame = bagmod.render_box_scene(640, 480, bagmod.look_at_camera((0.38, -0.12, 0.58), (0.0, 0.02, 0.0)))
    cases = build_cases(frame)
    bagmod.write_messages(tmp_path / "bad", [m for *_, msgs in cases for m in msgs])
    good_t = T0 + 100 * DT
    bagmod.write_messages(tmp_path / "good", _frame_msgs(good_t, frame.rgb, np.round(frame.depth * 1000).astype(np.uint16), frame.K))
    params = write_params(tmp_path / "params.yaml", {
        "use_sim_time": True, "min_quality": 0.0, "top_k": 3, "depth_statistic": "center",
        "diagnostics_period": 0.3, "warn_throttle": 0.0, "device": "cpu", "qos_reliability": "reliable",
        "tracking": False,  # ~/grasp = the frame's best grasp: a good frame after bad ones gives the same pose
    })
    lis = GraspListener("/grasp_node", context=ctx)
    node = start_node(params, env, tmp_path / "node.log", REALSENSE_REMAPS)
    try:
        assert lis.publishers_ready(60), node.output()
        rp = replay(tmp_path / "bad", env, tmp_path / "replay.log", "--hz", "10", "--lockstep", "/grasp_node/grasp_candidates",
                    "--lockstep-timeout", "2.0", "--tail", "1.0")
        assert rp.wait(180) == 0, rp.output()
        time.sleep(1.0)
        diag = lis.latest_diagnostics()
        with lis.lock:
            grasps = {conv.stamp_to_ns(m.header.stamp): m for _, m in lis.rx.grasp}
            clouds = {conv.stamp_to_ns(m.header.stamp): m for _, m in lis.rx.candidates}
        assert node.alive(), node.output()
        log = node.output()

        # --- every broken frame: skipped, counted, warned about by name, no pose published
        expected, finite_skipped = {}, 0
        for name, outcome, t, _ in cases:
            if outcome == "same":
                assert t in grasps, f"{name}: no grasp published\n{log}"
            elif outcome == "finite":
                # every candidate fell on the NaN/inf part, or the rest were too wide for the gripper
                # (which of the two depends on the model's candidates): skipped, never a NaN pose
                finite_skipped += t not in clouds
            else:
                expected[outcome] = expected.get(outcome, 0) + 1
                assert t not in grasps and t not in clouds, f"{name}: a pose was published for a broken frame"
        for reason, n in expected.items():
            assert int(diag.get(reason, 0)) == n, f"counter {reason}: {diag.get(reason)} != {n}\n{diag}"
        skipped_at_grasp = int(diag.get("no_valid_depth_at_grasp", 0)) + int(diag.get("grasps_out_of_limits", 0))
        assert skipped_at_grasp == expected["no_valid_depth_at_grasp"] + finite_skipped, diag
        assert int(diag.get("detector_error", 0)) == 0, log
        for text in ("no CameraInfo", "'yuv422' is not supported", "'mono16' is not supported", "sizes differ", "step",
                     "expected step x height", "no valid pixel", "all zeros", "no valid depth at the grasp",
                     "'camera_depth_optical_frame'"):
            assert text in log, f"no warning mentioning {text!r}\n{log}"
        ref = grasps[cases[1][2]].pose
        for name, outcome, t, _ in cases:
            if outcome == "same":
                p = grasps[t].pose
                assert np.allclose([p.position.x, p.position.y, p.position.z, p.orientation.w],
                                   [ref.position.x, ref.position.y, ref.position.z, ref.orientation.w], atol=1e-6), name
            if outcome == "finite" and t in clouds:
                rows = conv.cloud_to_records(clouds[t])
                assert np.all(np.isfinite(rows.view(np.float32))), name
                assert np.all(rows["z"] > 0.3) and np.all(rows["z"] < 1.2), name

        # --- runtime parameters: validated, rejected with a reason
        pc = AsyncParameterClient(lis.node, "/grasp_node")
        assert pc.wait_for_services(20)

        def set_param(name, value, ptype):
            fut = pc.set_parameters([Parameter(name, ptype, value)])
            deadline = time.monotonic() + 20
            while not fut.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            return fut.result().results[0]

        T = Parameter.Type
        r = set_param("min_quality", 1.5, T.DOUBLE)
        assert not r.successful
        r = set_param("roi", [0, 0, 4, 4], T.INTEGER_ARRAY)
        assert not r.successful and "roi" in r.reason and "8" in r.reason
        r = set_param("depth_statistic", "bogus", T.STRING)
        assert not r.successful and "depth_statistic" in r.reason
        r = set_param("static_camera_transform", [1.0, 2.0], T.DOUBLE_ARRAY)
        assert not r.successful
        r = set_param("model_path", "/tmp/other.pt", T.STRING)
        assert not r.successful and "unconfigured" in r.reason
        assert set_param("top_k", 2, T.INTEGER).successful
        assert set_param("sigma", 1.0, T.DOUBLE).successful
        r = set_param("roi_mode", "zoom", T.STRING)
        assert not r.successful and "roi_mode" in r.reason and "'scale'" in r.reason and "'square'" in r.reason, r.reason
        r = set_param("net_px_per_metre", -1.0, T.DOUBLE)
        assert not r.successful and "net_px_per_metre" in r.reason and "out of range" in r.reason, r.reason

        # --- lifecycle: deactivate, cleanup (model released), bad model fails configure, good one works
        change = lis.node.create_client(ChangeState, "/grasp_node/change_state")
        get = lis.node.create_client(GetState, "/grasp_node/get_state")

        def transition(tid):
            return _call(lis.node, change, ChangeState.Request(transition=Transition(id=tid))).success

        def state():
            return _call(lis.node, get, GetState.Request()).current_state.label

        assert state() == "active"
        assert transition(Transition.TRANSITION_DEACTIVATE) and state() == "inactive"
        assert transition(Transition.TRANSITION_CLEANUP) and state() == "unconfigured"
        assert set_param("model_path", str(tmp_path / "missing.pt"), T.STRING).successful
        assert not transition(Transition.TRANSITION_CONFIGURE)
        assert state() == "unconfigured"
        assert set_param("model_path", "", T.STRING).successful
        assert transition(Transition.TRANSITION_CONFIGURE) and transition(Transition.TRANSITION_ACTIVATE)
        assert state() == "active"
        # an ROI that does not fit the image: frame skipped (bad_roi), then back to the default ROI
        assert set_param("roi", [500, 300, 224, 224], T.INTEGER_ARRAY).successful
        rp = replay(tmp_path / "good", env, tmp_path / "replay_roi.log", "--lockstep", "/grasp_node/grasp_candidates",
                    "--lockstep-timeout", "2.0", "--tail", "1.0")
        assert rp.wait(60) == 0, rp.output()
        assert lis.wait_for(lambda rx: rx.diagnostics and any(kv.key == "bad_roi" and kv.value == "1" for kv in rx.diagnostics[-1][1].values), 10)
        assert not any(conv.stamp_to_ns(m.header.stamp) == good_t for _, m in lis.rx.grasps)
        assert set_param("roi", [], T.INTEGER_ARRAY).successful
        rp = replay(tmp_path / "good", env, tmp_path / "replay2.log", "--lockstep", "/grasp_node/grasp_candidates", "--tail", "0.5")
        assert rp.wait(60) == 0, rp.output()
        assert lis.wait_for(lambda rx: any(conv.stamp_to_ns(m.header.stamp) == good_t for _, m in rx.grasps), 10), node.output()
        with lis.lock:
            arr = [m for _, m in lis.rx.grasps if conv.stamp_to_ns(m.header.stamp) == good_t][0]
        assert 1 <= len(arr.poses) <= 2  # top_k=2 set at runtime survived the reconfigure

        # --- roi_mode reaches the detector: /diagnostics reports the ROI of the last frame
        def diag_roi(rx):  # called with the listener's lock held (wait_for) or on its copy
            kv = {v.key: v.value for v in rx.diagnostics[-1][1].values} if rx.diagnostics else {}
            return kv.get("roi_mode"), kv.get("roi")

        assert lis.wait_for(lambda rx: diag_roi(rx)[1] is not None, 10)
        kv = lis.latest_diagnostics()
        assert kv["roi_mode"] == "scale" and kv["roi"] != "80 0 480 480", kv
        assert set_param("roi_mode", "square", T.STRING).successful
        rp = replay(tmp_path / "good", env, tmp_path / "replay3.log", "--lockstep", "/grasp_node/grasp_candidates",
                    "--lockstep-timeout", "2.0", "--tail", "0.5")
        assert rp.wait(60) == 0, rp.output()
        assert lis.wait_for(lambda rx: diag_roi(rx) == ("square", "80 0 480 480"), 10), lis.latest_diagnostics()
    finally:
        lis.close()
        node.stop()
    log = node.output()
    assert "missing.pt" in log and "not found" in log
    assert "Traceback" not in log
