"""grasp_node with several inference threads (``workers``).

In-process (no DDS traffic): the threads start on activate and are joined on deactivate and
cleanup; ``workers`` is a reconfigure parameter in [1, 4]; a frame that finishes after a newer one
was published is dropped and counted as ``superseded``, the tracker sees only the newer one.

Over real DDS: the bundled bag streamed at 30 Hz (looped, stamps increasing) into a ``grasp_node``
process with ``workers: 2, threads: 1``: grasps are published, the stamps of ``~/grasp`` strictly
increase, every received frame is accounted for, and the node shuts down cleanly on SIGINT.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from dsc_grasp_ros.devtools import bag as bagmod  # noqa: E402
from dsc_grasp_ros.ros import conversions as conv  # noqa: E402
from dsc_grasp_ros.ros.grasp_node import SKIP_REASONS, GraspNode  # noqa: E402
from dsc_grasp_ros.ros.sync import FramePair  # noqa: E402

from ros_helpers import ROOT, bag_node_setup, replay, ros_context, start_node  # noqa: E402,F401 - ros_context: fixture

DOMAIN_ID = 213  # in-process part: fixed, outside pick_domain_id()'s 20..199; nothing is sent on it
BAG = ROOT / "data" / "bags" / "sim_rgbd"
OK = TransitionCallbackReturn.SUCCESS


def _inference_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("grasp_inference_") and t.is_alive())


@pytest.fixture(scope="module")
def node():
    """An unconfigured node with ``workers: 2`` (each test leaves it unconfigured)."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    overrides = [Parameter("device", value="cpu"), Parameter("backend", value="eager"), Parameter("threads", value=1),
                 Parameter("workers", value=2), Parameter("min_quality", value=0.0), Parameter("top_k", value=3),
                 Parameter("diagnostics_period", value=3600.0), Parameter("autostart", value=False)]
    n = GraspNode(context=ctx, parameter_overrides=overrides)
    yield n
    n._teardown()
    n.destroy_node()
    rclpy.try_shutdown(context=ctx)


def test_workers_start_on_activate_and_are_joined_on_deactivate_and_cleanup(node):
    assert node.trigger_configure() == OK
    try:
        assert _inference_threads() == []
        assert node.trigger_activate() == OK
        assert _inference_threads() == ["grasp_inference_0", "grasp_inference_1"]
        assert node.counters()["superseded"] == 0
        assert node.trigger_deactivate() == OK
        assert _inference_threads() == [], "deactivate must stop and join every worker"
        assert node.trigger_activate() == OK
        assert len(_inference_threads()) == 2
        # reconfigure: not while configured
        r = node.set_parameters([Parameter("workers", value=3)])[0]
        assert not r.successful and "unconfigured" in r.reason
        assert node.trigger_deactivate() == OK
    finally:
        assert node.trigger_cleanup() == OK
    assert _inference_threads() == []
    # range [1, 4]: outside is refused by the descriptor; inside is taken while unconfigured
    assert not node.set_parameters([Parameter("workers", value=5)])[0].successful
    assert not node.set_parameters([Parameter("workers", value=0)])[0].successful
    assert node.set_parameters([Parameter("workers", value=4)])[0].successful
    assert node.set_parameters([Parameter("workers", value=2)])[0].successful


def test_a_frame_finished_after_a_newer_one_is_superseded(node):
    scene = bagmod.render_box_scene(640, 480, bagmod.look_at_camera((0.38, -0.12, 0.58), (0.0, 0.02, 0.0)))
    depth = np.clip(np.round(scene.depth * 1000), 0, 65535).astype(np.uint16)
    t0 = 1_700_000_000_000_000_000
    info = conv.k_to_camera_info(scene.K, 640, 480, Header(stamp=conv.ns_to_stamp(t0), frame_id=bagmod.CAMERA_FRAME))

    def pair(seq: int) -> FramePair:
        h = Header(stamp=conv.ns_to_stamp(t0 + seq * 33_333_333), frame_id=bagmod.CAMERA_FRAME)
        return FramePair(color=conv.array_to_image(scene.rgb, "rgb8", h), depth=conv.array_to_image(depth, "16UC1", h),
                         stamp_ns=t0 + seq * 33_333_333, seq=seq)

    published = []
    node._publish = lambda header, rows, poses, res, rgb, image_header, target=None: published.append(
        (conv.stamp_to_ns(header.stamp), json.loads(target[1])))
    assert node.trigger_configure() == OK
    try:
        node._info = info
        before = node.counters()["superseded"]
        node._process(pair(5))  # the newer frame finishes first
        node._process(pair(4))  # the older one finishes after it: dropped
        node._process(pair(6))
        c = node.counters()
        assert c["superseded"] - before == 1, c
        assert [s for s, _ in published] == [t0 + 5 * 33_333_333, t0 + 6 * 33_333_333]
        states = [st for _, st in published]  # the tracker saw frames 5 and 6 only, in order
        assert states[0]["state"] == "acquired" and states[1]["frames"] == 2, states
        assert states[0]["stamp"] < states[1]["stamp"]
    finally:
        del node._publish
        assert node.trigger_cleanup() == OK


def test_two_workers_over_dds_publish_in_stamp_order_and_shut_down_cleanly(ros_context, tmp_path):
    if not (BAG / "metadata.yaml").is_file():
        pytest.skip(f"bundled bag {BAG} missing")
    from dsc_grasp_ros.devtools.listener import GraspListener

    meta, params, remaps = bag_node_setup(BAG, tmp_path, workers=2, threads=1, min_quality=0.0)
    ctx, env = ros_context
    lis = GraspListener("/grasp_node", context=ctx)
    node = start_node(params, env, tmp_path / "node.log", remaps)
    rc = None
    try:
        assert lis.publishers_ready(60), node.output()
        loops = 3  # 90 frames at 30 Hz (the replayer shifts the stamps of each loop: they keep increasing)
        rp = replay(BAG, env, tmp_path / "replay.log", "--hz", "30", "--loop", str(loops), "--tail", "1.0")
        assert rp.wait(60) == 0, rp.output()

        def accounted(d):
            return (int(d.get("processed", 0)) + int(d.get("dropped_stale", 0)) + int(d.get("superseded", 0))
                    + sum(int(d.get(k, 0)) for k in SKIP_REASONS) + int(d.get("unmatched_color", 0)) + int(d.get("pending_color", 0)))

        # the frames in flight finish and a fresh summary accounts for every received colour image
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            d = lis.latest_diagnostics()
            if d and int(d.get("received", 0)) > 0 and accounted(d) >= int(d["received"]):
                break
            time.sleep(0.2)
        time.sleep(1.2)  # two more summary periods: the last grasp messages have arrived too
        diag = lis.latest_diagnostics()
        with lis.lock:
            grasps = [m for _, m in lis.rx.grasp]
    finally:
        lis.close()
        rc = node.stop()
    log = node.output()
    print(f"workers 2: received {diag.get('received')}, processed {diag.get('processed')}, dropped {diag.get('dropped_stale')}, "
          f"superseded {diag.get('superseded')}, ~/grasp {len(grasps)}")
    assert diag["workers"] == "2" and "2 inference threads" in log, diag
    assert int(diag["received"]) >= 0.8 * loops * len(meta["frames"]), diag
    assert accounted(diag) == int(diag["received"]), diag  # every received frame counted once
    assert len(grasps) >= 5 and len(grasps) == int(diag["published_grasps"]), (len(grasps), diag)
    stamps = [conv.stamp_to_ns(m.header.stamp) for m in grasps]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), f"~/grasp stamps must strictly increase: {stamps}"
    assert rc == 0, f"exit status {rc}\n{log}"
    assert "Traceback" not in log and "still running" not in log, log
