"""Replay a rosbag2 over DDS: publishes the stored CDR bytes and ``/clock`` (``ros2 bag play``
cannot be installed from PyPI; this is the small subset the tests, demo and benchmark need).
The camera pose on ``/tf`` / ``/tf_static`` (``tf2_msgs/TFMessage``, generated into the venv by
``scripts/build_tf2_msgs.sh``) goes out first in each frame and is restamped like the images.

Messages that share a log time form one *frame* (color, depth and CameraInfo of one capture).
Frames are published at the bag's timing divided by ``--rate``, or at a fixed ``--hz``.
``--lockstep TOPIC`` waits (up to ``--lockstep-timeout``) after each frame until a message
arrives on TOPIC, so a slow consumer sees every frame; ``--restamp`` rewrites header stamps to
the current time (wall clock) so a listener can measure stamp -> output latency.

Example::

    dsc-grasp bag replay data/bags/sim_rgbd --hz 30 --loop 2
"""

from __future__ import annotations

import argparse
import importlib
import struct
import sys
import threading
import time
from itertools import groupby

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from .bag import read_messages


def message_class(msgtype: str):
    """``'sensor_msgs/msg/Image'`` -> the rclpy message class (ImportError if not installed)."""
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


def restamp_cdr(raw: bytes, stamp_ns: int | None, shift_ns: int = 0) -> bytes:
    """Rewrite ``header.stamp`` of a CDR message whose first field is a std_msgs/Header, in place
    of a deserialise/serialise round trip (which costs milliseconds for an image): the stamp is
    ``int32 sec, uint32 nanosec`` right after the 4-byte encapsulation header."""
    kind = bytes(raw[:2])
    if kind not in (b"\x00\x01", b"\x00\x00"):
        raise ValueError(f"unsupported CDR encapsulation {kind!r}")
    fmt = "<iI" if kind == b"\x00\x01" else ">iI"
    if stamp_ns is None:
        sec, nsec = struct.unpack_from(fmt, raw, 4)
        stamp_ns = sec * 1_000_000_000 + nsec
    stamp_ns += shift_ns
    out = bytearray(raw)
    struct.pack_into(fmt, out, 4, stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000)
    return bytes(out)


TF_TYPE = "tf2_msgs/msg/TFMessage"


def restamp_tf(raw: bytes, cls, stamp_ns: int | None, shift_ns: int = 0) -> bytes:
    """``restamp_cdr`` for a ``tf2_msgs/TFMessage`` (a list of stamped transforms, no top-level
    header): every transform gets ``stamp_ns`` (or its own stamp + ``shift_ns``)."""
    from rclpy.serialization import deserialize_message, serialize_message

    from ..ros.conversions import ns_to_stamp, stamp_to_ns

    msg = deserialize_message(bytes(raw), cls)
    for tf in msg.transforms:
        tf.header.stamp = ns_to_stamp(stamp_ns if stamp_ns is not None else stamp_to_ns(tf.header.stamp) + shift_ns)
    return serialize_message(msg)


def build_parser(prog: str = "python -m dsc_grasp_ros.devtools.replay") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bag", help="rosbag2 directory (MCAP or sqlite3)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--rate", type=float, default=1.0, help="playback speed factor on the bag's timing (default 1)")
    g.add_argument("--hz", type=float, default=None, help="publish frames at this fixed rate instead of the bag's timing")
    ap.add_argument("--loop", type=int, default=1, help="play the bag this many times (stamps keep increasing)")
    ap.add_argument("--topics", nargs="*", default=None, help="only these topics")
    ap.add_argument("--remap", nargs="*", default=[], metavar="FROM:=TO", help="publish topic FROM as TO")
    ap.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    ap.add_argument("--qos", choices=("reliable", "best_effort"), default="reliable", help="publisher reliability (default reliable)")
    ap.add_argument("--wait-subscribers", type=float, default=10.0, metavar="S",
                    help="wait up to S seconds until every image topic (or /tf in a bag without images) has a subscriber (0 = do not wait)")
    ap.add_argument("--settle", type=float, default=0.5, metavar="S", help="pause after subscribers are found (discovery)")
    ap.add_argument("--lockstep", default=None, metavar="TOPIC", help="after each frame wait for a message on TOPIC")
    ap.add_argument("--lockstep-type", default="sensor_msgs/msg/PointCloud2")
    ap.add_argument("--lockstep-timeout", type=float, default=2.0, metavar="S")
    ap.add_argument("--restamp", action="store_true", help="rewrite header stamps to now (wall clock); implies --no-clock")
    ap.add_argument("--log", default=None, help="write 'stamp_ns publish_wall_time' lines for each frame to this file")
    ap.add_argument("--tail", type=float, default=0.5, metavar="S", help="keep running (and publishing /clock) S seconds after the last frame")
    ap.add_argument("--quiet", action="store_true")
    return ap


class Replayer:
    def __init__(self, node: Node, args):
        self.node, self.args = node, args
        remap = dict(r.split(":=", 1) for r in args.remap)
        self.frames = []  # [(log_time_ns, [(topic, msgtype, raw)])]
        for t, group in groupby(read_messages(args.bag, args.topics), key=lambda m: m[2]):
            msgs = [(remap.get(tp, tp), mt, raw) for tp, mt, _, raw in group]
            # the camera pose (/tf, /tf_static) first: a node that looks it up at the image stamp
            # then finds it without waiting (a camera driver publishes tf ahead of its images too)
            msgs.sort(key=lambda m: m[1] != TF_TYPE)
            self.frames.append((t, msgs))
        if not self.frames:
            raise SystemExit(f"replay: no messages in {args.bag}")
        rel = ReliabilityPolicy.RELIABLE if args.qos == "reliable" else ReliabilityPolicy.BEST_EFFORT
        data_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=rel)
        static_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.pubs, self.types, self.skipped, self.header_first = {}, {}, set(), {}
        for _, msgs in self.frames:
            for topic, msgtype, _ in msgs:
                if topic in self.pubs or topic in self.skipped:
                    continue
                try:
                    cls = message_class(msgtype)
                except (ImportError, AttributeError):
                    self.skipped.add(topic)
                    print(f"replay: skipping {topic}: message type {msgtype} is not installed", file=sys.stderr)
                    continue
                self.types[topic] = cls
                self.header_first[topic] = next(iter(cls.get_fields_and_field_types()), "") == "header"
                self.pubs[topic] = node.create_publisher(cls, topic, static_qos if topic == "/tf_static" else data_qos)
        self.clock_pub = None
        if not (args.no_clock or args.restamp):
            from rosgraph_msgs.msg import Clock

            self.clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.arrived = 0
        self._arrival = threading.Condition()
        if args.lockstep:
            node.create_subscription(message_class(args.lockstep_type), args.lockstep, self._on_output, 10, raw=True)

    def _on_output(self, _msg) -> None:
        with self._arrival:
            self.arrived += 1
            self._arrival.notify_all()

    def publish_clock(self, t_ns: int) -> None:
        if self.clock_pub is not None:
            from rosgraph_msgs.msg import Clock

            from ..ros.conversions import ns_to_stamp

            self.clock_pub.publish(Clock(clock=ns_to_stamp(t_ns)))

    def wait_for_subscribers(self) -> bool:
        # the image topics; a bag without images (e.g. --topics /tf): its /tf (volatile: lost before discovery)
        image_pubs = [p for t, p in self.pubs.items() if self.types[t].__name__ == "Image"]
        image_pubs = image_pubs or [p for t, p in self.pubs.items() if t == "/tf"]
        deadline = time.monotonic() + self.args.wait_subscribers
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() > 0 for p in image_pubs):
                return True
            time.sleep(0.05)
        return False

    def run(self) -> int:
        a = self.args
        if a.wait_subscribers > 0 and not self.wait_for_subscribers():
            print(f"replay: no subscriber on the image topics after {a.wait_subscribers} s; playing anyway", file=sys.stderr)
        time.sleep(a.settle)
        log = open(a.log, "w") if a.log else None
        t0_bag = self.frames[0][0]
        span = self.frames[-1][0] - t0_bag + (int(1e9 / a.hz) if a.hz else 33_333_333)
        n, start = 0, time.monotonic()
        self.publish_clock(t0_bag)
        for loop in range(a.loop):
            for i, (t_bag, msgs) in enumerate(self.frames):
                t_bag_loop = t_bag + loop * span
                k = loop * len(self.frames) + i
                due = start + (k / a.hz if a.hz else (t_bag_loop - t0_bag) * 1e-9 / a.rate)
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                before = self.arrived
                self.publish_clock(t_bag_loop)
                stamp_ns = t_bag_loop
                if a.restamp:
                    stamp_ns = time.time_ns()
                for topic, msgtype, raw in msgs:
                    pub = self.pubs.get(topic)
                    if pub is None:
                        continue
                    if (a.restamp or loop) and self.header_first[topic]:
                        raw = restamp_cdr(raw, stamp_ns) if a.restamp else restamp_cdr(raw, None, loop * span)
                    elif (a.restamp or loop) and msgtype == TF_TYPE and topic != "/tf_static":
                        raw = restamp_tf(raw, self.types[topic], stamp_ns if a.restamp else None, loop * span)
                    pub.publish(raw)
                if log:
                    log.write(f"{stamp_ns} {time.time():.6f}\n")
                n += 1
                if a.lockstep:
                    with self._arrival:
                        self._arrival.wait_for(lambda: self.arrived > before, timeout=a.lockstep_timeout)
        end = time.monotonic()
        tail_end = end + a.tail
        while time.monotonic() < tail_end:
            self.publish_clock(self.frames[-1][0] + (a.loop - 1) * span + int((time.monotonic() - end) * 1e9))
            time.sleep(0.05)
        if log:
            log.close()
        if not a.quiet:
            print(f"replay: published {n} frames in {end - start:.2f} s ({n / max(end - start, 1e-9):.1f} Hz)", flush=True)
        return 0


def _spin(executor) -> None:
    try:
        executor.spin()
    except Exception:  # noqa: BLE001 - ExternalShutdownException / shutdown races at exit
        pass


def main(argv=None, prog: str | None = None) -> int:
    args, ros_args = (build_parser(prog) if prog else build_parser()).parse_known_args(argv)
    import rclpy.serialization  # noqa: F401 - used in Replayer.run

    rclpy.init(args=[sys.argv[0], *ros_args])
    node = Node("bag_replayer")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=_spin, args=(executor,), daemon=True)
    try:
        rep = Replayer(node, args)
        spinner.start()
        return rep.run()
    except KeyboardInterrupt:
        return 130
    finally:
        rclpy.try_shutdown()
        if spinner.is_alive():
            spinner.join(timeout=2.0)
        executor.shutdown()
        node.destroy_node()


if __name__ == "__main__":
    sys.exit(main())
