"""The bag replayer publishes the bag's camera pose (/tf, tf2_msgs/TFMessage) over real DDS, ahead
of each frame's images, and shifts its stamps with the images on --loop: a tf2 buffer fed by it
gives base_link <- camera at the image stamps of the second loop equal to the pose recorded in
the bag. (Before tf2_msgs was generated, the replayer skipped /tf and the demo fell back to the
camera frame.)"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs not built: run ./scripts/setup_venv.sh")

from geometry_msgs.msg import TransformStamped  # noqa: E402
from rclpy.duration import Duration  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.time import Time  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from dsc_grasp_ros.devtools import tf2_standin as tf2  # noqa: E402
from dsc_grasp_ros.devtools.bag import bag_metadata  # noqa: E402
from dsc_grasp_ros.devtools.replay import TF_TYPE, Replayer, build_parser, restamp_tf  # noqa: E402
from ros_helpers import ROOT, Proc, pick_domain_id, ros_env  # noqa: E402

BAG = ROOT / "data" / "bags" / "sim_rgbd"


def test_restamp_tf_sets_or_shifts_every_transform():
    from rclpy.serialization import deserialize_message, serialize_message

    msg = TFMessage(transforms=[TransformStamped(), TransformStamped()])
    msg.transforms[0].header.stamp.sec, msg.transforms[1].header.stamp.nanosec = 5, 7
    raw = serialize_message(msg)
    out = deserialize_message(restamp_tf(raw, TFMessage, None, 2_000_000_001), TFMessage)
    assert [(t.header.stamp.sec, t.header.stamp.nanosec) for t in out.transforms] == [(7, 1), (2, 8)]
    out = deserialize_message(restamp_tf(raw, TFMessage, 3_000_000_000), TFMessage)
    assert all((t.header.stamp.sec, t.header.stamp.nanosec) == (3, 0) for t in out.transforms)


def test_bag_tf_published_first_and_restamped_on_loop(tmp_path):
    if not (BAG / "metadata.yaml").is_file():
        pytest.skip(f"bundled bag {BAG} missing")
    meta = bag_metadata(BAG)
    base, cam = meta["base_frame"], meta["camera_frame"]
    # ordering inside a frame: the pose before the images
    ctx = rclpy.Context()
    domain = pick_domain_id()
    rclpy.init(context=ctx, domain_id=domain)
    try:
        node = Node("replay_probe", context=ctx)
        args = build_parser().parse_args([str(BAG), "--no-clock"])
        rep = Replayer(node, args)
        assert all(msgs[0][1] == TF_TYPE for _, msgs in rep.frames), "every frame of this bag starts with its /tf"
        assert "/tf" in rep.pubs and not rep.skipped
        node.destroy_node()

        # over DDS, two loops: the second loop's stamps are shifted by the bag's span
        listener_node = Node("tf_probe", context=ctx)
        buf = tf2.Buffer(cache_time=Duration(seconds=30))
        tf2.TransformListener(buf, listener_node)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(listener_node)
        threading.Thread(target=ex.spin, daemon=True).start()
        proc = Proc([sys.executable, "-m", "dsc_grasp_ros.devtools.replay", str(BAG), "--hz", "30", "--loop", "2",
                     "--wait-subscribers", "20", "--settle", "0.2", "--tail", "0.2", "--topics", "/tf"],
                    ros_env(domain), tmp_path / "replay.log")
        try:
            assert proc.wait(timeout=60) == 0, proc.output()
        finally:
            proc.stop()
        frames = meta["frames"]
        span = frames[-1]["stamp_ns"] - frames[0]["stamp_ns"] + 33_333_333
        for f in (frames[0], frames[len(frames) // 2], frames[-1]):
            for shift in (0, span):
                ts = buf.lookup_transform(base, cam, Time(nanoseconds=f["stamp_ns"] + shift), timeout=Duration(seconds=2.0))
                a, r = ts.transform.translation, ts.transform.rotation
                np.testing.assert_allclose([a.x, a.y, a.z], f["T_base_camera"][:3], atol=1e-9)
                q = np.array([r.x, r.y, r.z, r.w])
                assert abs(abs(q @ np.asarray(f["T_base_camera"][3:])) - 1.0) < 1e-9
        ex.shutdown()
        listener_node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
        time.sleep(0.1)
