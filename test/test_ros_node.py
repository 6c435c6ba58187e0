"""grasp_node over real DDS: a rosbag2 replayed by a separate process, the node as its own process,
this (pytest) process asserting on what the node publishes.

The bag is a ray-cast scene (table + boxes at known poses, tilted pinhole camera) written with
``rosbags``; the node maps grasps into ``base_link`` with ``static_camera_transform`` (tf2_ros
cannot be installed here). The assertions test the pipeline geometry, not grasp quality, so they
hold for any model (``min_quality: 0``; ``depth_statistic: center`` so the grasp depth is the
scene depth at the grasp pixel).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from dsc_grasp_ros.devtools import bag as bagmod  # noqa: E402
from dsc_grasp_ros.ros import conversions as conv  # noqa: E402
from dsc_grasp_ros.ros.grasp_node import SKIP_REASONS  # noqa: E402
from dsc_grasp_ros.devtools.listener import GraspListener  # noqa: E402

from ros_helpers import REALSENSE_REMAPS, replay, ros_context, start_node, write_params  # noqa: E402,F401 - ros_context: fixture

N_FRAMES = 30


def moving_box_frames(n: int):
    """``n`` frames of one camera pose with the boxes sliding 2 mm per frame (each frame differs)."""
    T = bagmod.look_at_camera((0.38, -0.12, 0.58), (0.0, 0.02, 0.0))
    frames = []
    for i in range(n):
        boxes = [
            bagmod.Box((b.center[0] + 0.002 * i, b.center[1] - 0.001 * i), b.size, b.yaw + 0.01 * i, b.color) for b in bagmod.DEFAULT_BOXES
        ]
        frames.append(bagmod.render_box_scene(640, 480, T, boxes))
    return frames


@pytest.fixture(scope="module")
def scene_bag(tmp_path_factory):
    d = tmp_path_factory.mktemp("bag")
    frames = moving_box_frames(N_FRAMES)
    meta = bagmod.write_rgbd_bag(d / "scene", frames, fps=30.0)
    return d / "scene", frames, meta


def base_to_camera(T_base_camera, p_base):
    T = np.asarray(T_base_camera, dtype=np.float64)
    R = bagmod.quat_to_matrix(T[3:])
    return R.T @ (np.asarray(p_base, dtype=np.float64) - T[:3]), R


def check_grasp_geometry(pos_base, quat_base, u, v, angle, frame, K):
    """The published pose (base_link), mapped back to the camera, sits on the grasp pixel at the scene depth."""
    p_cam, R_bc = base_to_camera(frame.T_base_camera, pos_base)
    uv = K[:2, :2] @ (p_cam[:2] / p_cam[2]) + K[:2, 2]
    assert np.hypot(uv[0] - u, uv[1] - v) <= 1.0, f"pose projects to {uv}, candidate pixel ({u}, {v})"
    z_scene = float(frame.depth[int(round(v)), int(round(u))])
    assert abs(p_cam[2] - z_scene) <= 0.005, f"grasp depth {p_cam[2]:.4f} m, scene depth there {z_scene:.4f} m"
    # TCP axes in the camera: +z approach along the optical axis, +y (closing) along the image angle.
    R_tcp_cam = R_bc.T @ bagmod.quat_to_matrix(quat_base)
    assert np.allclose(R_tcp_cam[:, 2], [0, 0, 1], atol=1e-4)
    y_img = np.array([math.cos(angle) / K[0, 0], -math.sin(angle) / K[1, 1], 0.0])
    y_img /= np.linalg.norm(y_img)
    assert abs(abs(float(R_tcp_cam[:, 1] @ y_img)) - 1.0) < 1e-4


def test_replay_grasps_in_base_frame(ros_context, scene_bag, tmp_path):
    ctx, env = ros_context
    bag_path, frames, meta = scene_bag
    stamps = [f["stamp_ns"] for f in meta["frames"]]
    by_stamp = dict(zip(stamps, frames))
    K = frames[0].K
    params = write_params(
        tmp_path / "params.yaml",
        {
            "use_sim_time": True,
            "target_frame": "base_link",
            "static_camera_transform": [float(a) for a in frames[0].T_base_camera],
            "min_quality": 0.0,
            "top_k": 3,
            "depth_statistic": "center",
            "diagnostics_period": 0.5,
            "device": "cpu",
            "tracking": False,  # ~/grasp = each frame's best candidate, checked against it below
        },
    )
    lis = GraspListener("/grasp_node", context=ctx)
    node = start_node(params, env, tmp_path / "node.log", REALSENSE_REMAPS)
    try:
        assert lis.publishers_ready(60), "grasp_node did not come up:\n" + node.output()

        # Phase 1: 30 Hz, as from a camera. A CPU node is slower than 30 Hz: it must keep only the
        # newest frame and count the rest as dropped, never queue them.
        rp = replay(bag_path, env, tmp_path / "replay30.log", "--hz", "30", "--tail", "1.0")
        assert rp.wait(60) == 0, rp.output()
        assert lis.wait_for(lambda rx: len(rx.diagnostics) > 0, 10)
        # the frame in flight finishes and a fresh summary accounts for every received color image (on a
        # loaded CPU one frame can take longer than a fixed pause). Best-effort DDS may lose an image on a
        # loaded machine: a color whose depth was lost is unmatched or still pending, never processed.
        def accounted(d):
            return (int(d.get("processed", 0)) + int(d.get("dropped_stale", 0)) + sum(int(d.get(k, 0)) for k in SKIP_REASONS)
                    + int(d.get("unmatched_color", 0)) + int(d.get("pending_color", 0)))

        def settled(d):
            return bool(d) and accounted(d) >= int(d.get("received", 0))

        deadline = time.monotonic() + 20
        time.sleep(1.0)
        while not settled(lis.latest_diagnostics()) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.6)  # one more summary period: the last grasp message has arrived too
        diag = lis.latest_diagnostics()
        received, processed, dropped = int(diag["received"]), int(diag["processed"]), int(diag["dropped_stale"])
        skipped = {k: int(diag[k]) for k in SKIP_REASONS if int(diag.get(k, 0))}
        unpaired = int(diag["unmatched_color"]) + int(diag["pending_color"])
        print(f"30 Hz phase: received {received}, processed {processed}, dropped {dropped}, skipped {skipped}, "
              f"color without depth {unpaired}")
        # best-effort DDS on a loaded 2-core machine lost up to 3 of 30 color images in CI runs: allow a few
        assert received >= 0.8 * N_FRAMES, diag
        assert processed >= 1
        assert accounted(diag) == received, diag  # every received frame accounted for, exactly once
        assert processed + dropped + sum(skipped.values()) >= 0.8 * N_FRAMES, diag  # pairs formed: DDS lost few
        with lis.lock:
            phase1 = list(lis.rx.grasp)
            lis.rx.grasp.clear(), lis.rx.grasps.clear(), lis.rx.candidates.clear()
        assert len(phase1) == processed

        # Phase 2: every frame, lockstep (next frame once the node answered, at most 30 Hz).
        rp = replay(bag_path, env, tmp_path / "replay_lockstep.log", "--hz", "30", "--lockstep", "/grasp_node/grasp_candidates",
                    "--lockstep-timeout", "5", "--tail", "1.0")
        assert rp.wait(240) == 0, rp.output()
        assert lis.wait_for(lambda rx: len(rx.candidates) >= N_FRAMES, 10)
        with lis.lock:
            grasp_msgs = [m for _, m in lis.rx.grasp]
            arrays = {conv.stamp_to_ns(m.header.stamp): m for _, m in lis.rx.grasps}
            clouds = {conv.stamp_to_ns(m.header.stamp): m for _, m in lis.rx.candidates}
    finally:
        lis.close()
        node.stop()
    log = node.output()

    out_stamps = [conv.stamp_to_ns(m.header.stamp) for m in grasp_msgs]
    assert len(set(out_stamps)) >= 0.9 * N_FRAMES, f"{len(set(out_stamps))} of {N_FRAMES} frames produced ~/grasp\n{log}"
    for _, m in phase1:
        grasp_msgs.append(m)
    for m in grasp_msgs:
        s = conv.stamp_to_ns(m.header.stamp)
        assert s in by_stamp, f"output stamp {s} is not an input stamp"
        assert m.header.frame_id == "base_link"
    for m in grasp_msgs[: len(out_stamps)]:
        s = conv.stamp_to_ns(m.header.stamp)
        rows = conv.cloud_to_records(clouds[s])
        assert set(conv.CANDIDATE_FIELDS) <= set(rows.dtype.names)
        assert clouds[s].header.frame_id == arrays[s].header.frame_id == "base_link"
        assert 1 <= len(rows) <= 3 and len(arrays[s].poses) == len(rows)
        # best first: grasps whose fingers clear the object (finger_check prefer) by quality, then the others
        clear = rows["fingers_clear"]
        assert np.all(np.isin(clear, (0.0, 1.0))) and np.all(np.diff(clear) <= 0), clear
        for group in (clear == 1.0, clear == 0.0):
            assert np.all(np.diff(rows["quality"][group]) <= 1e-6), "candidates must be best first"
        assert np.all(np.isfinite(rows["width"])) and np.all(rows["width"] >= 0)
        assert np.all((rows["quality"] >= 0) & (rows["quality"] <= 1))
        best = rows[0]
        p = m.pose.position
        q = m.pose.orientation
        assert np.allclose([p.x, p.y, p.z, q.x, q.y, q.z, q.w], [best[k] for k in ("x", "y", "z", "qx", "qy", "qz", "qw")], atol=1e-5)
        for r, pose in zip(rows, arrays[s].poses):
            assert np.allclose([pose.position.x, pose.position.y, pose.position.z], [r["x"], r["y"], r["z"]], atol=1e-5)
            check_grasp_geometry([r["x"], r["y"], r["z"]], [r["qx"], r["qy"], r["qz"], r["qw"]], float(r["u"]), float(r["v"]),
                                 float(r["angle"]), by_stamp[s], K)
    assert "Traceback" not in log
