"""Through-the-node mode of the closed-loop benchmark (``dsc-grasp bench``, docs/bench.md).

:class:`NodePolicy` is a benchmark :class:`~dsc_grasp_ros.bench.policies.Policy` whose perception
is the REAL ``grasp_node``, run as a separate process, reached over real DDS. The simulator acts
as the camera driver and the robot's state publisher: for each trial it publishes, with one
stamp, the camera pose on ``/tf`` (the camera optical frame in ``panda_link0``), ``camera_info``,
the aligned depth (``32FC1``, metres) and the colour image (``rgb8``). The node runs with
``target_frame: panda_link0`` and looks the camera pose up through its tf2 path (``tf2_ros`` on a
ROS install, else :mod:`.tf2_standin`), never ``static_camera_transform``; the benchmark executes
the ``PoseStamped`` the node publishes on ``~/grasp`` (its opening from ``~/grasp_candidates``).

Lockstep: one frame at a time; ``plan`` waits up to ``timeout`` s for the node's answer to that
stamp. A frame the node skips (it says so in its counters on ``/diagnostics``) is "no grasp" when
the reason is that every candidate was rejected (as the in-process policy returns none), an error
naming the reason otherwise; no answer at all raises :class:`NodeNotAnswering` with the tail of
the node's log.

The node and this driver use their own DDS domain (``domain_id``; default: a random one in
100-199, whatever ``ROS_DOMAIN_ID`` says), discovery limited to this machine unless
``ROS_AUTOMATIC_DISCOVERY_RANGE`` is set, and the shipped Fast DDS profile (640x480 images over
shared memory), so a benchmark does not talk to a robot on the same network.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ..bench.policies import BASE_FRAME, ImageGrasp, Observation, PlannedGrasp, Policy, PolicyError

ROOT = Path(__file__).resolve().parents[2]
FASTDDS_XML = ROOT / "config" / "fastdds_large_images.xml"
NODE_NAME = "grasp_node"
CAMERA_NS = "/bench_camera"
#: skip reasons that mean "the node found no grasp it may publish" (the in-process policy returns None)
NO_GRASP_REASONS = ("no_valid_depth_at_grasp", "grasps_out_of_limits")


class NodeNotAnswering(PolicyError, RuntimeError):
    """grasp_node did not start, died, or did not answer a frame in time (a PolicyError, so that
    ``dsc-grasp bench`` reports a node that cannot start like any policy that cannot be built)."""


class NodePolicy(Policy):
    """A DSC-GraspNet model through the real ``grasp_node`` process (see the module docstring).

    ``model_path``/``modality``/``device`` and ``detector_settings`` (node parameters: ``sigma``,
    ``min_quality``, ...) configure the node as :class:`~dsc_grasp_ros.bench.policies.ModelPolicy`
    configures the core detector; ``top_k`` is the node's default (5) as there: ``~/grasp`` is the best
    grasp that survived the node's checks (computable depth, working range, gripper opening).
    """

    def __init__(self, name: str = "dsc_rgbd@node", model_path=None, modality: str | None = None, device: str = "cpu",
                 timeout: float = 60.0, startup_timeout: float = 300.0, domain_id: int | None = None, log_path=None,
                 tf_timeout: float = 1.0, **detector_settings):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        try:
            from tf2_msgs.msg import TFMessage
        except ImportError as e:
            raise PolicyError("the through-the-node mode needs tf2_msgs (./scripts/setup_venv.sh builds it into .venv)") from e
        import yaml

        self.name = name
        self.modality = modality or "rgbd"
        self.timeout = float(timeout)
        self.model_path = str(model_path) if model_path else None
        self._lock = threading.Condition()
        self._candidates: dict[int, object] = {}
        self._poses: dict[int, object] = {}
        self._counters: dict[str, int] = {}
        self._diag_seq = 0
        self._last_stamp = 0
        self.proc = None
        self._ctx = self._node = self._executor = None

        env = dict(os.environ)
        if domain_id is None:  # a private domain: the simulated /tf must never mix with a robot's
            domain_id = random.Random(os.getpid() ^ time.time_ns()).randint(100, 199)
        self.domain_id = int(domain_id)
        for k in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):
            env.setdefault(k, str(FASTDDS_XML))
            os.environ.setdefault(k, str(FASTDDS_XML))  # this process's participant (images over shared memory)
        env.setdefault("RMW_FASTRTPS_USE_QOS_FROM_XML", "0")
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        env.setdefault("OMP_NUM_THREADS", "1")
        env.update(ROS_DOMAIN_ID=str(self.domain_id), PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")

        self._tmp = tempfile.TemporaryDirectory(prefix="dsc_bench_node_")
        params = {
            "autostart": True,
            "target_frame": BASE_FRAME,
            "tf_timeout": float(tf_timeout),
            "model_path": self.model_path or "",
            "modality": modality or "",
            "device": device,
            "qos_reliability": "reliable",
            "diagnostics_period": 0.1,
            "publish_markers": False,
            "approach": "target_down",  # the executor descends along panda_link0's -z (ModelPolicy: approach vertical)
            # single-shot trials are unrelated scenes: ~/grasp is each frame's best grasp unless the
            # caller follows one scene over frames (the servo benchmark: tracking on, in the node)
            "tracking": False,
            **detector_settings,
        }
        #: True when the node's tracker makes ~/grasp the target (the servo benchmark then passes it through)
        self.tracks_itself = bool(params["tracking"])
        pfile = Path(self._tmp.name) / "params.yaml"
        pfile.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
        self.log_path = Path(log_path) if log_path else Path(self._tmp.name) / "grasp_node.log"
        self._log = open(self.log_path, "w")
        cmd = [sys.executable, "-m", "dsc_grasp_ros.ros.grasp_node", "--ros-args", "--params-file", str(pfile),
               "-r", f"__node:={NODE_NAME}",
               "-r", f"color/image_raw:={CAMERA_NS}/color/image_raw",
               "-r", f"depth/image_raw:={CAMERA_NS}/aligned_depth_to_color/image_raw",
               "-r", f"color/camera_info:={CAMERA_NS}/color/camera_info"]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=str(ROOT), start_new_session=True)

        try:
            self._ctx = rclpy.Context()
            rclpy.init(context=self._ctx, domain_id=self.domain_id)
            self._node = node = Node("bench_camera_driver", context=self._ctx)
            img_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
            self._pub_color = node.create_publisher(Image, f"{CAMERA_NS}/color/image_raw", img_qos)
            self._pub_depth = node.create_publisher(Image, f"{CAMERA_NS}/aligned_depth_to_color/image_raw", img_qos)
            self._pub_info = node.create_publisher(CameraInfo, f"{CAMERA_NS}/color/camera_info", img_qos)
            self._pub_tf = node.create_publisher(TFMessage, "/tf", QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
            self._TFMessage = TFMessage
            out_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            node.create_subscription(PointCloud2, f"/{NODE_NAME}/grasp_candidates", self._on_candidates, out_qos)
            node.create_subscription(PoseStamped, f"/{NODE_NAME}/grasp", self._on_pose, out_qos)
            node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, out_qos)
            self._executor = SingleThreadedExecutor(context=self._ctx)
            self._executor.add_node(node)
            self._spin_thread = threading.Thread(target=self._spin, daemon=True)
            self._spin_thread.start()
            self._wait_ready(startup_timeout)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ plumbing
    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:  # noqa: BLE001 - shutdown races at exit
            pass

    def _on_candidates(self, msg) -> None:
        from ..ros import conversions as conv

        with self._lock:
            self._candidates[conv.stamp_to_ns(msg.header.stamp)] = msg
            self._lock.notify_all()

    def _on_pose(self, msg) -> None:
        from ..ros import conversions as conv

        with self._lock:
            self._poses[conv.stamp_to_ns(msg.header.stamp)] = msg
            self._lock.notify_all()

    def _on_diag(self, msg) -> None:
        for st in msg.status:
            if st.name.startswith(f"/{NODE_NAME}:"):
                counters = {}
                for kv in st.values:
                    try:
                        counters[kv.key] = int(kv.value)
                    except ValueError:
                        pass
                with self._lock:
                    self._counters = counters
                    self._diag_seq += 1
                    self._lock.notify_all()

    def log_tail(self, n: int = 15) -> str:
        try:
            self._log.flush()
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def _dead(self) -> str | None:
        if self.proc is None:
            return "not started"
        rc = self.proc.poll()
        return None if rc is None else f"exited with code {rc}"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pubs = (self._pub_color, self._pub_depth, self._pub_info, self._pub_tf)
        while time.monotonic() < deadline:
            dead = self._dead()
            if dead:
                raise NodeNotAnswering(f"grasp_node {dead} before it was ready; its log ends with:\n{self.log_tail()}")
            text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            if "configure failed" in text or "activate failed" in text:
                raise NodeNotAnswering(f"grasp_node did not configure; its log ends with:\n{self.log_tail()}")
            if (all(p.get_subscription_count() > 0 for p in pubs)
                    and self._node.count_publishers(f"/{NODE_NAME}/grasp_candidates") > 0):
                with self._lock:  # a first /diagnostics (the counters before the first frame)
                    if self._lock.wait_for(lambda: self._diag_seq > 0, timeout=5.0):
                        return
            time.sleep(0.1)
        raise NodeNotAnswering(f"grasp_node was not ready (active, subscribed to the camera and /tf) within {timeout:.0f} s; "
                               f"its log ends with:\n{self.log_tail()}")

    def _stamp(self) -> int:
        t = max(time.time_ns(), self._last_stamp + 1_000_000)
        self._last_stamp = t
        return t

    # ------------------------------------------------------------------ the policy
    def describe(self) -> dict:
        d = super().describe()
        d.update(path=self.model_path or "(shipped)", mode="through grasp_node over DDS (tf2 path)", domain_id=self.domain_id)
        return d

    def plan(self, obs: Observation) -> PlannedGrasp | None:
        for attempt in range(2):
            try:
                return self._plan_once(obs)
            except _MissingInfo:
                if attempt:
                    raise NodeNotAnswering("grasp_node skipped the frame twice for lack of a CameraInfo") from None
        return None  # pragma: no cover

    def _plan_once(self, obs: Observation) -> PlannedGrasp | None:
        from ..core.geometry import CameraIntrinsics, Transform
        from ..ros import conversions as conv

        dead = self._dead()
        if dead:
            raise NodeNotAnswering(f"grasp_node {dead}; its log ends with:\n{self.log_tail()}")
        t0 = time.perf_counter()
        stamp_ns = self._stamp()
        T = Transform.from_matrix(np.asarray(obs.T_base_camera, dtype=np.float64))
        tf, info, depth, color = observation_messages(obs, stamp_ns)
        with self._lock:
            before = dict(self._counters)
            seq0 = self._diag_seq
        # what a driver + robot_state_publisher send: the pose, the calibration, then the images
        self._pub_tf.publish(self._TFMessage(transforms=[tf]))
        self._pub_info.publish(info)
        time.sleep(0.005)
        self._pub_depth.publish(depth)
        self._pub_color.publish(color)

        def answered():
            if stamp_ns in self._candidates:
                return True
            # a frame the node skipped: one of its skip counters went up (a newer /diagnostics)
            return self._diag_seq > seq0 and _skipped(before, self._counters) is not None

        deadline = time.monotonic() + self.timeout
        with self._lock:
            while not answered():
                left = deadline - time.monotonic()
                if left <= 0 or self._dead():
                    break
                self._lock.wait(min(left, 0.5))
            cloud = self._candidates.pop(stamp_ns, None)
            skipped = None if cloud is not None else _skipped(before, self._counters)
        t_answer = time.perf_counter()
        if cloud is None:
            if skipped in NO_GRASP_REASONS:
                return None
            if skipped == "missing_camera_info":
                raise _MissingInfo()
            if skipped:
                raise NodeNotAnswering(f"grasp_node skipped the frame: {skipped} (log:\n{self.log_tail(5)})")
            dead = self._dead()
            raise NodeNotAnswering(f"grasp_node did not answer the frame at stamp {stamp_ns * 1e-9:.3f} within {self.timeout:.0f} s "
                                   f"({dead or 'process alive'}); its log ends with:\n{self.log_tail()}")
        rows = conv.cloud_to_records(cloud)
        if len(rows) == 0:
            return None
        with self._lock:  # ~/grasp (PoseStamped) of the same frame: the pose that is executed
            self._lock.wait_for(lambda: stamp_ns in self._poses, timeout=max(1.0, deadline - time.monotonic()))
            pose = self._poses.pop(stamp_ns, None)
            for k in [k for k in self._poses if k < stamp_ns]:
                del self._poses[k]
        if pose is None:
            raise NodeNotAnswering(f"grasp_node published candidates but no ~/grasp PoseStamped for stamp {stamp_ns}")
        if pose.header.frame_id != obs.base_frame:
            raise NodeNotAnswering(f"grasp_node published the grasp in frame {pose.header.frame_id!r}, not {obs.base_frame!r}")
        p, q = pose.pose.position, pose.pose.orientation
        pos = np.array([p.x, p.y, p.z])
        quat = np.array([q.x, q.y, q.z, q.w])
        best = rows[0]
        width_m = float(best["width"])
        z_cam = float(T.inverse().apply(pos)[2])
        fx = CameraIntrinsics.from_K(obs.K).fx
        img = ImageGrasp(float(best["u"]), float(best["v"]), float(best["angle"]), width_m * fx / max(z_cam, 1e-6), float(best["quality"]))
        extra = {"depth_m": z_cam, "t_plan": time.perf_counter() - t0, "node_roundtrip_s": round(t_answer - t0, 5),
                 "frame_id": pose.header.frame_id}
        return PlannedGrasp(pos, quat, width_m, img, extra)

    def reset_tracking(self, timeout: float = 10.0) -> None:
        """Start the node's tracker afresh (a new scene): ``tracking`` off and on again through the
        node's parameter service, as ``ros2 param set`` would."""
        if not self.tracks_itself:
            return
        from rclpy.parameter import Parameter
        from rclpy.parameter_client import AsyncParameterClient

        if getattr(self, "_params", None) is None:
            self._params = AsyncParameterClient(self._node, f"/{NODE_NAME}")
            if not self._params.wait_for_services(timeout_sec=timeout):
                raise NodeNotAnswering(f"grasp_node's parameter services did not come up within {timeout:.0f} s")
        for value in (False, True):
            fut = self._params.set_parameters([Parameter("tracking", Parameter.Type.BOOL, value)])
            deadline = time.monotonic() + timeout
            while not fut.done() and time.monotonic() < deadline:
                time.sleep(0.01)
            res = fut.result() if fut.done() else None
            if res is None or not all(r.successful for r in res.results):
                raise NodeNotAnswering(f"grasp_node did not take tracking={value}: {res}")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=2.0)
            self._executor = None
        if self._node is not None:
            self._node.destroy_node()
            self._node = None
        if self._ctx is not None:
            import rclpy

            rclpy.try_shutdown(context=self._ctx)
            self._ctx = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None) is not None and not self._log.closed:
            self._log.close()


class _MissingInfo(Exception):
    pass


def observation_messages(obs: Observation, stamp_ns: int):
    """What a camera driver and robot_state_publisher send for one frame, all with one stamp: the
    camera pose in the base frame (``TransformStamped`` for ``/tf``), ``CameraInfo``, the aligned
    depth (``32FC1`` metres) and the colour image (``rgb8``)."""
    from geometry_msgs.msg import TransformStamped
    from std_msgs.msg import Header

    from ..core.geometry import Transform
    from ..ros import conversions as conv

    stamp = conv.ns_to_stamp(stamp_ns)
    header = Header(stamp=stamp, frame_id=obs.camera_frame)
    h, w = obs.depth.shape[:2]
    T = Transform.from_matrix(np.asarray(obs.T_base_camera, dtype=np.float64))
    tf = TransformStamped(header=Header(stamp=stamp, frame_id=obs.base_frame), child_frame_id=obs.camera_frame)
    tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = (float(a) for a in T.translation)
    r = tf.transform.rotation
    r.x, r.y, r.z, r.w = (float(a) for a in T.rotation)
    info = conv.k_to_camera_info(np.asarray(obs.K, dtype=np.float64), w, h, header)
    depth = conv.array_to_image(np.ascontiguousarray(obs.depth, dtype=np.float32), "32FC1", header)
    color = conv.array_to_image(np.ascontiguousarray(obs.rgb, dtype=np.uint8), "rgb8", header)
    return tf, info, depth, color


def _skipped(before: dict, now: dict) -> str | None:
    """The skip reason whose counter went up between two /diagnostics snapshots, if any."""
    from ..ros.grasp_node import SKIP_REASONS

    for k in SKIP_REASONS:
        if now.get(k, 0) > before.get(k, 0):
            return k
    return None
