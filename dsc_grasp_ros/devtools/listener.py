"""A client of ``grasp_node``'s outputs: records (and optionally prints) what it publishes.

Used by the demo (``scripts/run_demo.sh``: prints the grasps, writes the annotated debug images),
by the benchmark (receive times) and by the tests (the asserting process).

    python -m dsc_grasp_ros.devtools.listener --node /grasp_node --out out/demo --expect 30 --timeout 60
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import String

from ..ros import conversions as conv


@dataclass
class Received:
    grasp: list = field(default_factory=list)  # (recv_wall, PoseStamped)
    grasps: list = field(default_factory=list)  # (recv_wall, PoseArray)
    candidates: list = field(default_factory=list)  # (recv_wall, PointCloud2)
    debug: list = field(default_factory=list)  # (recv_wall, Image)
    diagnostics: list = field(default_factory=list)  # (recv_wall, DiagnosticStatus) of this node
    target_state: list = field(default_factory=list)  # (recv_wall, dict) of ~/grasp_target_state


class GraspListener:
    """Subscribes to a grasp node's outputs on its own node and executor thread."""

    def __init__(self, node_fqn: str = "/grasp_node", debug_image: bool = False, name: str = "grasp_listener", context=None):
        self.node_fqn = node_fqn.rstrip("/")
        self.node = Node(name, context=context)
        self.rx = Received()
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        n = self.node_fqn
        self.node.create_subscription(PoseStamped, f"{n}/grasp", lambda m: self._add("grasp", m), qos)
        self.node.create_subscription(PoseArray, f"{n}/grasps", lambda m: self._add("grasps", m), qos)
        self.node.create_subscription(PointCloud2, f"{n}/grasp_candidates", lambda m: self._add("candidates", m), qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, qos)
        self.node.create_subscription(String, f"{n}/grasp_target_state", lambda m: self._add("target_state", json.loads(m.data)), qos)
        if debug_image:
            self.node.create_subscription(Image, f"{n}/debug_image", lambda m: self._add("debug", m), QoSProfile(depth=5))
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutdown races at exit
            pass

    def _add(self, key: str, msg) -> None:
        t = time.time()
        with self.cond:
            getattr(self.rx, key).append((t, msg))
            self.cond.notify_all()

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            if st.name.startswith(self.node_fqn + ":"):
                self._add("diagnostics", st)

    def wait_for(self, predicate, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.rx), timeout=timeout)

    def publishers_ready(self, timeout: float = 30.0) -> bool:
        """True once the node's ~/grasp publisher is discovered (the node is configured)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.node.count_publishers(f"{self.node_fqn}/grasp") > 0 and self.node.count_publishers(f"{self.node_fqn}/grasp_candidates") > 0:
                return True
            time.sleep(0.05)
        return False

    def latest_diagnostics(self) -> dict[str, str]:
        with self.lock:
            if not self.rx.diagnostics:
                return {}
            return {kv.key: kv.value for kv in self.rx.diagnostics[-1][1].values}

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.thread.join(timeout=2.0)
        self.node.destroy_node()


def describe_cloud(msg: PointCloud2) -> list[dict]:
    rec = conv.cloud_to_records(msg)
    return [{k: float(r[k]) for k in rec.dtype.names} for r in rec]


def annotate_pose(bgr: np.ndarray, frame_id: str, row: dict | None) -> np.ndarray:
    """Write the best grasp's position in its frame (the robot's base frame when the node has a
    target_frame) along the bottom of the debug image."""
    import cv2

    text = (f"best grasp in {frame_id}: x={row['x']:+.3f} y={row['y']:+.3f} z={row['z']:+.3f} m  w={row['width'] * 1000:.0f} mm"
            if row else f"no grasp ({frame_id})")
    out = np.ascontiguousarray(bgr)
    h = out.shape[0]
    cv2.rectangle(out, (0, h - 24), (out.shape[1] - 1, h - 1), (0, 0, 0), -1)
    cv2.putText(out, text, (6, h - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="grasp_listener", description="Print the grasps a grasp_node publishes and save its debug images.")
    ap.add_argument("--node", default="/grasp_node", help="fully qualified name of the grasp node")
    ap.add_argument("--out", default=None, help="write debug images (PNG) and grasps.csv here")
    ap.add_argument("--expect", type=int, default=0, help="exit 0 once this many ~/grasp_candidates messages arrived")
    ap.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds (exit 1 if --expect not reached)")
    ap.add_argument("--idle-exit", type=float, default=0.0, help="exit when nothing arrived for this long after the first message")
    ap.add_argument("--max-images", type=int, default=30)
    ap.add_argument("--top", type=int, default=1, help="print this many grasps per frame (all go to grasps.csv)")
    args, ros_args = ap.parse_known_args(argv)
    rclpy.init(args=[sys.argv[0], *ros_args])
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    lis = GraspListener(args.node, debug_image=out is not None)
    csv = open(out / "grasps.csv", "w") if out else None
    if csv:
        csv.write("stamp,frame_id,rank," + ",".join(conv.CANDIDATE_FIELDS) + "\n")
    printed_c = printed_d = 0
    saved = 0
    best: dict[str, tuple[str, dict | None]] = {}  # stamp -> (frame_id, best row) for the image captions
    pending: list = []  # debug images whose candidates have not arrived yet: (first seen, Image)
    start = time.monotonic()
    last_rx = None
    try:
        while time.monotonic() - start < args.timeout:
            time.sleep(0.05)
            with lis.lock:
                cands = lis.rx.candidates[printed_c:]
                dbg = lis.rx.debug[printed_d:]
            printed_c += len(cands)
            printed_d += len(dbg)
            if cands or dbg:
                last_rx = time.monotonic()
            for _, msg in cands:
                stamp = f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}"
                rows = describe_cloud(msg)
                best[stamp] = (msg.header.frame_id, rows[0] if rows else None)
                if not rows:
                    print(f"[{stamp}] no grasp above min_quality", flush=True)
                for rank, r in enumerate(rows):
                    if rank < args.top:
                        print(
                            f"[{stamp}] #{rank} {msg.header.frame_id}: p=({r['x']:+.3f}, {r['y']:+.3f}, {r['z']:+.3f}) m "
                            f"q=({r['qx']:+.3f}, {r['qy']:+.3f}, {r['qz']:+.3f}, {r['qw']:+.3f}) width={r['width'] * 1000:.1f} mm "
                            f"quality={r['quality']:.3f} px=({r['u']:.1f}, {r['v']:.1f}) angle={np.degrees(r['angle']):+.1f} deg",
                            flush=True,
                        )
                    if csv:
                        csv.write(f"{stamp},{msg.header.frame_id},{rank}," + ",".join(f"{r[k]:.6g}" for k in conv.CANDIDATE_FIELDS) + "\n")
            pending += [(time.monotonic(), img) for _, img in dbg]
            still = []
            for seen, img in pending:
                stamp = f"{img.header.stamp.sec}.{img.header.stamp.nanosec:09d}"
                if stamp not in best and time.monotonic() - seen < 1.0:
                    still.append((seen, img))  # wait (briefly) for the grasps of this frame
                    continue
                if out and saved < args.max_images:
                    import cv2

                    arr = conv.color_to_rgb(img)
                    name = out / f"grasps_{img.header.stamp.sec}_{img.header.stamp.nanosec:09d}.png"
                    frame_id, row = best.get(stamp, (img.header.frame_id, None))
                    cv2.imwrite(str(name), annotate_pose(arr[..., ::-1], frame_id, row))
                    saved += 1
            pending = still
            if args.expect and printed_c >= args.expect:
                break
            if args.idle_exit and last_rx is not None and time.monotonic() - last_rx > args.idle_exit:
                break
        for _, img in pending:  # leaving: save the images still waiting for their grasps
            if out and saved < args.max_images:
                import cv2

                stamp = f"{img.header.stamp.sec}.{img.header.stamp.nanosec:09d}"
                frame_id, row = best.get(stamp, (img.header.frame_id, None))
                name = out / f"grasps_{img.header.stamp.sec}_{img.header.stamp.nanosec:09d}.png"
                cv2.imwrite(str(name), annotate_pose(conv.color_to_rgb(img)[..., ::-1], frame_id, row))
                saved += 1
        ok = printed_c >= args.expect if args.expect else printed_c > 0
        print(f"listener: {printed_c} candidate sets, {len(lis.rx.grasp)} best grasps, {saved} annotated images"
              + (f" in {out}" if out else ""), flush=True)
        return 0 if ok else 1
    except KeyboardInterrupt:
        return 130
    finally:
        if csv:
            csv.close()
        lis.close()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
