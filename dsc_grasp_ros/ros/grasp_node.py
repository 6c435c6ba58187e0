"""``grasp_node``: aligned RGB-D in, 6-DoF grasp poses in the robot frame out (a managed node).

A thin adapter: messages become numpy arrays (:mod:`.conversions`), the ROS-free
:class:`~dsc_grasp_ros.core.inference.GraspDetector` does all numerics, the results become messages.

Threads: the executor runs the subscriptions (they only pair color and depth by stamp and put
the newest pair into a one-item slot), the parameter/lifecycle services and the summary timer.
``workers`` inference threads (1 by default; started on activate, stopped and joined on deactivate,
cleanup and shutdown) each take the newest pair not yet taken, convert it, run the shared detector
(one model; detects share a readers-writer lock that a detector update or replacement takes
alone), transform and publish; a pair that is overwritten before a thread takes it is counted as
dropped. Frames may finish out of order: under the publishing lock a frame is published (and the
tracker updated) only if it is newer than the last one published, else it is dropped and counted
as ``superseded``.

Topics (relative, remappable), parameters: see ``docs/ros.md`` and ``config/dsc_grasp.yaml``.
"""


from __future__ import annotations

import collections
import gc
import itertools
import math
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy_impl
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from . import conversions as conv
from . import params as P
from .diagnostics import SKIP_REASONS, DiagnosticsMixin
from .frame import FrameMixin, TransformUnavailable
from .node_params import ParametersMixin
from .outputs import OutputsMixin, _pose
from .planning import PlanningMixin
from .sync import LatestSlot, RateMeter, ReadWriteLock, StageStats, StampPairer
from .target import TargetMixin

# tf2: the real tf2_ros (package tf2_ros_py) on a ROS 2 install; it is not on PyPI, so elsewhere the
# stand-in (.tf2_standin, the same API subset over real DDS) when tf2_msgs is there (setup_venv.sh
# generates it). TF2_IMPL says which one the node uses (logged at configure).
try:
    import tf2_ros  # type: ignore

    TF2_IMPL = "tf2_ros"
except ImportError:  # pragma: no cover - depends on the machine
    try:
        import tf2_msgs.msg  # noqa: F401 - the stand-in's listener subscribes tf2_msgs/TFMessage

        from ..devtools import tf2_standin as tf2_ros

        TF2_IMPL = "tf2_standin (tf2_ros not installed)"
    except ImportError:
        tf2_ros = None
        TF2_IMPL = None
HAVE_TF2 = tf2_ros is not None

__all__ = ["GraspNode", "SKIP_REASONS", "TransformUnavailable", "HAVE_TF2", "TF2_IMPL", "main", "_pose"]

RCLError = _rclpy_impl.RCLError


class GraspNode(ParametersMixin, FrameMixin, TargetMixin, OutputsMixin, PlanningMixin, DiagnosticsMixin, LifecycleNode):
    """The managed node: lifecycle, subscriptions, tf; parameters (:mod:`.node_params`), the per-frame
    path (:mod:`.frame`), outputs (:mod:`.outputs`) and diagnostics (:mod:`.diagnostics`) are mixed in."""

    def __init__(self, node_name: str = "grasp_node", **kwargs):
        super().__init__(node_name, **kwargs)
        self._guard_change_state()
        self._declare_parameters()
        self._configured = False
        self._active = False
        self._detector = None
        # detect() on the workers (read, shared) vs update()/replacement of the detector (write, alone)
        self._det_lock = ReadWriteLock()
        # publishing in stamp order, the tracker and processed-frame statistics vs deactivate/cleanup
        self._pub_lock = threading.RLock()
        self._count_lock = threading.Lock()  # self._counters: incremented from the workers and the executor
        self._frame_local = threading.local()  # per-worker facts of the frame in progress (.frame)
        self._pairer = StampPairer()
        self._slot = LatestSlot()
        self._seq = itertools.count(1)  # the order pairs are queued in (FramePair.seq)
        self._last_seq = 0  # the newest pair published (its seq)
        self._superseded = 0  # frames finished after a newer one was published: dropped
        self._workers: list[threading.Thread] = []
        self._stop = threading.Event()
        self._info: CameraInfo | None = None
        self._subs: list = []
        self._pubs: dict = {}
        self._timer = None
        self._tf_buffer = None
        self._tf_listener = None
        self._static_tf = None
        self._counters: collections.Counter = collections.Counter()
        self._last_warn: dict[str, float] = {}
        self._stats = StageStats()
        self._in_rate = RateMeter()
        self._out_rate = RateMeter()
        self._processed = 0
        self._published = 0
        self._depth_count = 0
        self._pairs = 0
        self._debug_timings = False
        self._last_roi = None  # the ROI of the last processed frame (in /diagnostics)
        self._byte_order_hint: str | None = None  # a depth is_bigendian flag that looks wrong (in /diagnostics)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._init_planning()  # GraspPlanning requests, instance masks (.planning)
        self._init_target()
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ------------------------------------------------------------------ lifecycle service guard
    def _guard_change_state(self) -> None:
        """Answer ``success=false`` to a transition that does not exist in the current state.

        rclpy (7.1.x, Jazzy; checked against rclpy/lifecycle/node.py ``__on_change_state``) looks a
        transition *label* up safely but passes a transition *id* straight to
        ``trigger_transition_by_id``, whose ``RCLError: Transition is not registered`` escapes
        ``executor.spin()`` and kills the node. Launch ``ChangeState`` events and lifecycle managers
        send ids, so the service callback is wrapped: ids not offered by the current state are
        refused before rclpy sees them (and any RCLError left is turned into ``success=false``).
        """
        srv = getattr(self, "_service_change_state", None)
        if srv is None:  # enable_communication_interface=False: no service to guard
            return
        inner = srv.callback

        def on_change_state(req, resp):
            tid, label = req.transition.id, req.transition.label
            current = self._state_machine.current_state  # (id, label)
            available = {t[0]: t[1] for t in self._state_machine.available_transitions}
            if not label and tid not in available:
                self.get_logger().warning(
                    f"lifecycle transition id {tid} is not available in state {current[1]!r} "
                    f"(available: {', '.join(f'{i} {n}' for i, n in sorted(available.items())) or 'none'}); refused"
                )
                resp.success = False
                return resp
            try:
                return inner(req, resp)
            except RCLError as e:
                self.get_logger().warning(f"lifecycle transition {label or tid} refused in state {current[1]!r}: {e}")
                resp.success = False
                return resp

        srv.callback = on_change_state

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        problem = self._check_parameters()
        if problem:
            self.get_logger().error(f"configure refused: {problem}")
            return TransitionCallbackReturn.FAILURE
        if not self._setup_transform() or not self._load_detector():
            return TransitionCallbackReturn.FAILURE
        self._start_outputs()
        self._configured = True
        return TransitionCallbackReturn.SUCCESS

    def _setup_transform(self) -> bool:
        """The camera -> target_frame source: static_camera_transform, tf2 or none; False (logged) when
        the parameters ask for one that cannot be had."""
        from ..core.geometry import GeometryError, Transform

        target = self._p("target_frame")
        static = self._p("static_camera_transform")
        self._static_tf = None
        if target and static:
            try:
                self._static_tf = Transform.from_list(static)
            except GeometryError as e:
                self.get_logger().error(f"static_camera_transform {static} is unusable: {e}")
                return False
        elif target:
            if not HAVE_TF2:
                self.get_logger().error(
                    f"target_frame is {target!r} but neither tf2_ros nor tf2_msgs (for the stand-in) is installed: "
                    "set static_camera_transform (camera optical frame in target_frame) or leave target_frame empty"
                )
                return False
            if self._tf_buffer is None:
                # ONE buffer for the node's life, on the node's clock: it follows sim time and clears on a
                # jump back (bag loops; tf2_ros_py needs ros2/geometry2#711, in Jazzy since late 2024). It is
                # kept over cleanup -> configure (its tf2_frames service would otherwise be created twice).
                self._tf_buffer = tf2_ros.Buffer(node=self)
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self, spin_thread=False)
            self.get_logger().info(f"tf2: {TF2_IMPL}, listening on /tf and /tf_static")
        return True

    def _load_detector(self) -> bool:
        """Build the core detector from the parameters; False (logged, tf released) when it cannot load."""
        from ..core.inference import DetectorConfig, GraspDetector
        from ..core.model_io import ModelError

        target = self._p("target_frame")
        cfg = DetectorConfig(
            model_path=self._p("model_path") or None,
            device=self._p("device"),
            modality=self._p("modality") or None,
            backend=self._p("backend"),
            threads=self._p("threads"),
            background_compile=self._p("compile_in_background"),
            precision=self._p("precision"),
            # the runtime detector settings, one list (params.DETECTOR_RUNTIME); roi: empty = none
            **{name: self._p(name) for name in P.DETECTOR_RUNTIME if name != "roi"},
            roi=self._p("roi") or None,
        )
        t0 = time.perf_counter()
        try:
            detector = GraspDetector(cfg)
        except (ModelError, ValueError, RuntimeError) as e:
            self.get_logger().error(f"cannot load the grasp model: {e}")
            self._release_tf()
            return False
        with self._det_lock.write():
            self._detector = detector
        self.get_logger().info(
            f"loaded {detector.meta.modality} model {cfg.model_path or '(shipped default)'} on {detector.device} "
            f"({detector.engine.backend} backend{', ' + str(detector.engine.threads.get('threads')) + ' threads' if detector.engine.threads else ''}"
            f"{'; ' + detector.engine.backend_info['reason'] if detector.engine.backend_info.get('reason') else ''}) "
            f"in {time.perf_counter() - t0:.2f} s; grasps in frame "
            f"{target or '(camera optical frame)'} via {'static_camera_transform' if self._static_tf else ('tf2' if target else 'identity')}; "
            f"ROI {self._roi_text(detector)}"
        )
        return True

    def _start_outputs(self) -> None:
        """The lifecycle publishers and the summary timer."""
        self._pubs = {
            "grasp": self.create_lifecycle_publisher(PoseStamped, "~/grasp", 10),
            "grasps": self.create_lifecycle_publisher(PoseArray, "~/grasps", 10),
            "candidates": self.create_lifecycle_publisher(PointCloud2, "~/grasp_candidates", 10),
            "markers": self.create_lifecycle_publisher(MarkerArray, "~/markers", 10),
            "debug": self.create_lifecycle_publisher(Image, "~/debug_image", 1),
            "target_state": self.create_lifecycle_publisher(String, "~/grasp_target_state", 10),
        }
        self._start_planning()  # ~/moveit_grasps, ~/plan_grasps
        # steady clock: the summary and /diagnostics keep coming while /clock stands still (use_sim_time
        # with a paused or finished bag); the rates they report are wall-clock rates anyway
        from rclpy.clock import Clock, ClockType

        self._timer = self.create_timer(float(self._p("diagnostics_period")), self._summary, clock=Clock(clock_type=ClockType.STEADY_TIME))
        from rclpy.logging import LoggingSeverity

        self._debug_timings = self.get_logger().get_effective_level() <= LoggingSeverity.DEBUG

    def _start_workers(self) -> None:
        """The ``workers`` inference threads (on activate)."""
        self._stop_workers()
        self._stop = threading.Event()  # this set of workers' own: a straggler of the last set stays stopped
        self._slot.reopen()
        self._workers = [threading.Thread(target=self._work, args=(self._stop,), name=f"grasp_inference_{i}", daemon=True)
                         for i in range(int(self._p("workers")))]
        for t in self._workers:
            t.start()

    def _stop_workers(self, timeout: float = 10.0) -> None:
        """Stop the inference threads and join them (a frame in progress finishes; nothing is
        published once the node is inactive)."""
        self._stop.set()
        self._slot.close()
        deadline = time.monotonic() + timeout
        for t in self._workers:
            if t is not threading.current_thread():
                t.join(timeout=max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._workers if t.is_alive() and t is not threading.current_thread()]
        if alive:
            self.get_logger().warning(f"inference threads still running after {timeout:.0f} s: {', '.join(alive)}")
        self._workers = []

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        rel = ReliabilityPolicy.RELIABLE if self._p("qos_reliability") == "reliable" else ReliabilityPolicy.BEST_EFFORT
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(self._p("qos_depth")), reliability=rel)
        self._pairer.clear()
        self._reset_target()  # a target of an earlier activation is not this one's
        self._pairer.tolerance_ns = int(round(self._p("sync_tolerance") * 1e9))
        self._subs = [
            # raw=True: the images are read in place from their CDR bytes (conversions.parse_image_cdr)
            self.create_subscription(Image, "color/image_raw", self._on_color, qos, raw=True),
            self.create_subscription(Image, "depth/image_raw", self._on_depth, qos, raw=True),
            self.create_subscription(CameraInfo, "color/camera_info", self._on_info, qos),
        ]
        self._activate_planning(qos)  # ~/object_masks
        self._start_workers()
        self._active = True
        self.get_logger().info(
            "active: listening on " + ", ".join(s.topic_name for s in self._subs) + f" ({self._p('qos_reliability')} QoS); "
            f"{len(self._workers)} inference thread{'s' if len(self._workers) > 1 else ''}"
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_planning()
        with self._pub_lock:
            self._active = False
            for s in self._subs:
                self.destroy_subscription(s)
            self._subs = []
            self._slot.clear()
            self._pairer.clear()
        self._stop_workers()  # (outside the publishing lock: a worker may be waiting for it)
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        self.get_logger().info("cleaned up: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def _teardown(self) -> None:
        self._stop_planning()  # (the ~/plan_grasps service stays: it answers "not active" until the next activate)
        self._stop_workers()
        with self._pub_lock:
            for pub in self._pubs.values():
                self.destroy_lifecycle_publisher(pub)
            self._pubs = {}
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        self._release_tf()
        with self._det_lock.write():
            had_cuda = self._detector is not None and self._detector.device.type == "cuda"
            self._detector = None
        self._last_roi = None
        gc.collect()
        if had_cuda:
            import torch

            torch.cuda.empty_cache()
        self._info = None
        for key in ("distortion", "distortion_ignored"):  # tell again after the next configure
            self._last_warn.pop(key, None)
        self._byte_order_hint = None
        self._configured = False

    # ------------------------------------------------------------------ callbacks (executor)
    def _on_info(self, msg: CameraInfo) -> None:
        self._info = msg

    def _image(self, raw: bytes, what: str):
        """Serialized Image -> message view, or None (frame skipped, counted) when it is unreadable:
        nothing raised here may escape into the executor (it would stop spin)."""
        try:
            return conv.parse_image_cdr(raw)
        except conv.MessageError as e:
            self._skip(e.reason, f"{what} image: {e}")
            return None
        except (ValueError, IndexError, UnicodeDecodeError):  # unknown encapsulation: let rclpy decode it
            pass
        try:
            return deserialize_message(raw, Image)
        except Exception as e:  # noqa: BLE001 - any decoding failure is a bad message, not a crash
            self._skip("truncated_message", f"{what} image cannot be deserialized ({len(raw)} bytes): {type(e).__name__}: {e}")
            return None

    def _on_color(self, raw: bytes) -> None:
        if self._active:
            msg = self._image(raw, "color")
            if msg is None:
                return
            self._in_rate.tick()
            self._push(self._pairer.add_color(conv.stamp_to_ns(msg.header.stamp), msg))

    def _on_depth(self, raw: bytes) -> None:
        if self._active:
            msg = self._image(raw, "depth")
            if msg is None:
                return
            self._depth_count += 1
            self._push(self._pairer.add_depth(conv.stamp_to_ns(msg.header.stamp), msg))

    def _push(self, pair) -> None:
        if pair is not None and self._wants_pair(pair.received):  # request mode: only pairs a request waits for
            self._pairs += 1
            pair.seq = next(self._seq)  # (the executor thread queues: seq follows the pairing order, i.e. the stamps)
            self._slot.put(pair)

    def _release_tf(self) -> None:
        """Unsubscribe /tf and /tf_static (each cleanup -> configure used to add another pair) and forget
        the transforms received; the one Buffer stays."""
        if self._tf_listener is not None:
            self._tf_listener.unregister()
            self._tf_listener = None
        if self._tf_buffer is not None:
            self._tf_buffer.clear()

    def _camera_to_target(self, cam_frame: str, stamp):
        """Transform camera optical frame -> target_frame at ``stamp`` (None = publish in the camera frame)."""
        target = self._p("target_frame")
        if not target or target == cam_frame:
            return None
        if self._static_tf is not None:
            return self._static_tf
        from ..core.geometry import Transform

        buf = self._tf_buffer
        if buf is None:
            raise TransformUnavailable("no transform source configured")
        try:
            ts = buf.lookup_transform(target, cam_frame, Time.from_msg(stamp), timeout=Duration(seconds=float(self._p("tf_timeout"))))
        except tf2_ros.TransformException as e:  # Lookup, Connectivity, Extrapolation
            raise TransformUnavailable(f"no transform {cam_frame!r} -> {target!r} at the image stamp: {e}") from e
        t, r = ts.transform.translation, ts.transform.rotation
        q = np.array([r.x, r.y, r.z, r.w], dtype=np.float64)
        n = float(np.linalg.norm(q))
        # tf2 accepts quaternions whose squared norm is within 1% of 1 and composes them unnormalised:
        # normalise (a norm of 1.004 used to fail here as a detector error)
        if not (math.isfinite(n) and n > 0.5 and all(math.isfinite(v) for v in (t.x, t.y, t.z))):
            raise TransformUnavailable(f"transform {cam_frame!r} -> {target!r} is not a rigid transform: t=({t.x}, {t.y}, {t.z}) q={q.tolist()}")
        return Transform((t.x, t.y, t.z), tuple(q / n))


def main(args=None) -> int:
    rclpy.init(args=args)
    node = GraspNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    rc = 0
    try:
        if node.get_parameter("autostart").value:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("configure failed; the node stays unconfigured (fix the parameters, then configure)")
            elif node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("activate failed")
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # rclpy's deferred SIGINT/SIGTERM handler shuts the context down asynchronously; a spin that
        # is just building its wait set then raises RCLError "the given context is not valid" (a
        # known race: ros2/rclpy#398, ros2/ros2cli#854 catches it the same way; still in rclpy's
        # Jazzy executors.py, checked against the 7.1.x wheels used here). That is a shutdown, not
        # an error; anything raised while the context is still valid is.
        if rclpy.ok():
            raise
    finally:
        try:
            node._active = False
            node._teardown()
        finally:
            executor.shutdown()
            node.destroy_node()
            rclpy.try_shutdown()
    return rc


if __name__ == "__main__":
    import sys

    sys.exit(main())
