"""A stand-in for the subset of the Python ``tf2_ros`` API that ``grasp_node`` uses.

``tf2_ros`` (package ``tf2_ros_py``, with the C++ ``tf2_py`` BufferCore under it) is not on
PyPI. On a real ROS 2 install the node imports the real module; here it falls back to this one,
which receives ``/tf`` and ``/tf_static`` over real DDS (``tf2_msgs/msg/TFMessage``, generated
into the venv by ``scripts/build_tf2_msgs.sh``) and answers lookups like tf2 does.

Checked against ros2/geometry2, branch jazzy (tf2_ros_py 0.36.x):
``tf2_ros_py/tf2_ros/buffer.py`` (``Buffer(cache_time=None, node=None)``; the node's clock gets a
jump callback, ``JumpThreshold(min_forward=None, min_backward=-1 s, on_clock_change=True)``, that
clears the buffer; ``lookup_transform`` = ``can_transform`` with the timeout, then the core
lookup; the timeout is waited on the wall clock), ``tf2_ros_py/tf2_ros/transform_listener.py``
(``TransformListener(buffer, node, *, spin_thread=False, qos=None, static_qos=None, tf_topic,
tf_static_topic, static_only=False)``; /tf KEEP_LAST 100 volatile, /tf_static KEEP_LAST 100
TRANSIENT_LOCAL, both reliable, in a reentrant callback group; ``unregister()`` destroys both
subscriptions) and tf2's BufferCore semantics (``tf2/src/buffer_core.cpp``, ``time_cache.cpp``):
frames form a tree (child -> parent per transform), a lookup chains through the common
ancestor, time 0 means the latest time common to the chain, dynamic transforms are linearly
interpolated (slerp for the rotation) between the two stamps around the requested time and
raise ``ExtrapolationException`` outside the cached span, static transforms hold at any time,
the cache keeps ``cache_time`` (10 s) behind the newest stamp, a quaternion whose squared norm is
off by 0.01 or more is rejected (TF_DENORMALIZED_QUATERNION) and smaller errors are normalised.

Differences from the real module, none used by the node: no ``tf2_frames`` service (it needs
``tf2_msgs/srv/FrameGraph``), no ``transform()``/``*_async``/``*_full`` methods, no
``StaticTransformListener``/broadcasters, one authority.
"""

from __future__ import annotations

import bisect
import math
import threading
import time as _time
from dataclasses import dataclass

import numpy as np
import rclpy
from geometry_msgs.msg import TransformStamped
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.clock import Clock, JumpThreshold
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ..core.geometry import Transform, quaternion_slerp

DEFAULT_TF_TOPIC = "/tf"
DEFAULT_STATIC_TF_TOPIC = "/tf_static"
DEFAULT_CACHE_TIME_NS = 10_000_000_000  # tf2::BUFFER_CORE_DEFAULT_CACHE_TIME
QUATERNION_NORMALIZATION_TOLERANCE = 10e-3  # tf2 buffer_core.cpp, on the squared norm


# ---------------------------------------------------------------- exceptions (as tf2_py names them)
class TransformException(Exception):
    pass


class LookupException(TransformException):
    pass


class ConnectivityException(TransformException):
    pass


class ExtrapolationException(TransformException):
    pass


class InvalidArgumentException(TransformException):
    pass


class TimeoutException(TransformException):
    pass


# ---------------------------------------------------------------- storage
@dataclass(frozen=True)
class _Entry:
    stamp_ns: int
    parent: str
    T: Transform


def _to_ns(t) -> int:
    """rclpy Time / builtin_interfaces Time / int ns -> int ns."""
    if t is None:
        return 0
    if hasattr(t, "nanoseconds"):
        return int(t.nanoseconds)
    if hasattr(t, "sec") and hasattr(t, "nanosec"):
        return int(t.sec) * 1_000_000_000 + int(t.nanosec)
    return int(t)


def _fmt(ns: int) -> str:
    return f"{ns * 1e-9:.6f}"


def _strip(frame: str) -> str:
    return frame[1:] if frame.startswith("/") else frame  # tf2 strips a leading slash


class _TimeCache:
    """The dynamic transforms of one child frame, sorted by stamp (tf2 TimeCache)."""

    def __init__(self, cache_ns: int):
        self.cache_ns = cache_ns
        self.stamps: list[int] = []
        self.entries: list[_Entry] = []

    def insert(self, e: _Entry) -> bool:
        if self.stamps and e.stamp_ns < self.stamps[-1] - self.cache_ns:
            return False  # TF_OLD_DATA: older than the cache
        i = bisect.bisect_left(self.stamps, e.stamp_ns)
        if i < len(self.stamps) and self.stamps[i] == e.stamp_ns:
            self.entries[i] = e  # same stamp: replace
        else:
            self.stamps.insert(i, e.stamp_ns)
            self.entries.insert(i, e)
        cut = bisect.bisect_left(self.stamps, self.stamps[-1] - self.cache_ns)
        if cut:
            del self.stamps[:cut], self.entries[:cut]
        return True

    def latest(self) -> int:
        return self.stamps[-1]

    def parent(self, t_ns: int) -> str:
        if t_ns == 0 or t_ns >= self.stamps[-1]:
            return self.entries[-1].parent
        i = max(bisect.bisect_right(self.stamps, t_ns) - 1, 0)
        return self.entries[i].parent

    def get(self, t_ns: int, what: str) -> _Entry:
        s = self.stamps
        if t_ns == 0:
            return self.entries[-1]
        if len(s) == 1:
            if s[0] == t_ns:
                return self.entries[0]
            raise ExtrapolationException(
                f"Lookup would require extrapolation at time {_fmt(t_ns)}, but only time {_fmt(s[0])} is in the buffer, {what}"
            )
        if t_ns > s[-1]:
            raise ExtrapolationException(
                f"Lookup would require extrapolation into the future.  Requested time {_fmt(t_ns)} but the latest data is "
                f"at time {_fmt(s[-1])}, {what}"
            )
        if t_ns < s[0]:
            raise ExtrapolationException(
                f"Lookup would require extrapolation into the past.  Requested time {_fmt(t_ns)} but the earliest data is "
                f"at time {_fmt(s[0])}, {what}"
            )
        i = bisect.bisect_left(s, t_ns)
        if s[i] == t_ns:
            return self.entries[i]
        a, b = self.entries[i - 1], self.entries[i]
        if a.parent != b.parent:  # reparented between the two stamps: no interpolation (as tf2)
            return a
        r = (t_ns - a.stamp_ns) / (b.stamp_ns - a.stamp_ns)
        t = (1.0 - r) * np.asarray(a.T.translation) + r * np.asarray(b.T.translation)
        q = quaternion_slerp(a.T.rotation, b.T.rotation, r)
        return _Entry(t_ns, a.parent, Transform(tuple(t), tuple(q)))


class _StaticCache:
    def __init__(self, e: _Entry):
        self.e = e

    def latest(self) -> int:
        return 0  # holds at any time

    def parent(self, t_ns: int) -> str:
        return self.e.parent

    def get(self, t_ns: int, what: str) -> _Entry:
        return self.e


# ---------------------------------------------------------------- Buffer
class Buffer:
    """Stores the transform tree and answers lookups (``tf2_ros.Buffer`` subset)."""

    def __init__(self, cache_time: Duration | None = None, node=None) -> None:
        self.cache_ns = DEFAULT_CACHE_TIME_NS if cache_time is None else int(cache_time.nanoseconds)
        self._frames: dict[str, _TimeCache | _StaticCache] = {}
        self._cond = threading.Condition(threading.RLock())
        self._logger = node.get_logger() if node is not None else rclpy.logging.get_logger("tf2_buffer")
        # As upstream: the node's clock (sim time when use_sim_time is set), cleared on a jump back.
        self.clock = node.get_clock() if node is not None else Clock()
        threshold = JumpThreshold(min_forward=None, min_backward=Duration(seconds=-1), on_clock_change=True)
        self.jump_handle = self.clock.create_jump_callback(threshold, post_callback=self.time_jump_callback)
        self.cleared = 0  # how many times the buffer was cleared (tests, diagnostics)

    def time_jump_callback(self, time_jump) -> None:
        self._logger.warning("Detected jump back in time. Clearing tf buffer.")
        self.clear()

    def clear(self) -> None:
        with self._cond:
            self._frames.clear()
            self.cleared += 1

    # ---------------------------------------------------------------- input
    def _set(self, transform: TransformStamped, authority: str, static: bool) -> bool:
        child, parent = _strip(transform.child_frame_id), _strip(transform.header.frame_id)
        if not child or not parent:
            self._logger.error(f"TF_NO_FRAME_ID: ignoring transform from authority {authority!r}: empty frame id")
            return False
        if child == parent:
            self._logger.error(f"TF_SELF_TRANSFORM: ignoring transform from authority {authority!r} with frame_id and child_frame_id {child!r}")
            return False
        t, r = transform.transform.translation, transform.transform.rotation
        q = np.array([r.x, r.y, r.z, r.w], dtype=np.float64)
        vals = [t.x, t.y, t.z, *q]
        if not all(math.isfinite(v) for v in vals):
            self._logger.error(f"TF_NAN_INPUT: ignoring transform for child_frame_id {child!r}: a nan value")
            return False
        n2 = float(q @ q)
        if abs(n2 - 1.0) >= QUATERNION_NORMALIZATION_TOLERANCE:
            self._logger.error(
                f"TF_DENORMALIZED_QUATERNION: ignoring transform for child_frame_id {child!r} from authority {authority!r} "
                f"because of an invalid quaternion in the transform ({q[0]} {q[1]} {q[2]} {q[3]})"
            )
            return False
        e = _Entry(_to_ns(transform.header.stamp), parent, Transform((t.x, t.y, t.z), tuple(q / math.sqrt(n2))))
        with self._cond:
            cache = self._frames.get(child)
            if static:
                self._frames[child] = _StaticCache(e)
                ok = True
            else:
                if not isinstance(cache, _TimeCache):
                    cache = self._frames[child] = _TimeCache(self.cache_ns)
                ok = cache.insert(e)
            self._cond.notify_all()
        if not ok:
            self._logger.warning(f"TF_OLD_DATA ignoring data from the past for frame {child} (older than the cache)")
        return ok

    def set_transform(self, transform: TransformStamped, authority: str) -> bool:
        return self._set(transform, authority, static=False)

    def set_transform_static(self, transform: TransformStamped, authority: str) -> bool:
        return self._set(transform, authority, static=True)

    # ---------------------------------------------------------------- queries
    def _known(self, frame: str) -> bool:
        return frame in self._frames or any(c.parent(0) == frame for c in self._frames.values())

    def _path_up(self, frame: str, t_ns: int) -> list[str]:
        """frame, parent, grandparent, ..., root (topology at time t)."""
        path, seen = [frame], {frame}
        while frame in self._frames:
            frame = self._frames[frame].parent(t_ns)
            if frame in seen:
                raise ConnectivityException(f"loop in the tf tree at frame {frame!r}")
            path.append(frame)
            seen.add(frame)
        return path

    def _resolve(self, target: str, source: str, t_ns: int):
        """-> (Transform target<-source, stamp_ns); raises the tf2 exceptions."""
        for name, f in (("target_frame", target), ("source_frame", source)):
            if not f:
                raise InvalidArgumentException(f"Invalid argument passed to lookupTransform argument {name} - frame_id must not be empty")
        target, source = _strip(target), _strip(source)
        for name, f in (("target_frame", target), ("source_frame", source)):
            if not self._known(f):
                raise LookupException(f'"{f}" passed to lookupTransform argument {name} does not exist. ')
        if target == source:
            return Transform(), t_ns
        up_s, up_t = self._path_up(source, t_ns), self._path_up(target, t_ns)
        common = next((f for f in up_s if f in set(up_t)), None)
        if common is None:
            raise ConnectivityException(
                f"Could not find a connection between '{target}' and '{source}' because they are not part of the same tree."
                "Tf has two or more unconnected trees."
            )
        chain_s = up_s[: up_s.index(common)]  # frames whose parent transform is used
        chain_t = up_t[: up_t.index(common)]
        if t_ns == 0:  # latest time common to every dynamic link of the chain
            latest = [self._frames[f].latest() for f in chain_s + chain_t if isinstance(self._frames[f], _TimeCache)]
            t_ns = min(latest) if latest else 0
        what = f"when looking up transform from frame [{source}] to frame [{target}]"
        T_c_s = Transform()
        for f in reversed(chain_s):  # common <- ... <- source
            T_c_s = T_c_s @ self._frames[f].get(t_ns, what).T
        T_c_t = Transform()
        for f in reversed(chain_t):
            T_c_t = T_c_t @ self._frames[f].get(t_ns, what).T
        return T_c_t.inverse() @ T_c_s, t_ns

    def can_transform_core(self, target_frame: str, source_frame: str, time) -> tuple[bool, str]:
        try:
            with self._cond:
                self._resolve(target_frame, source_frame, _to_ns(time))
            return True, ""
        except TransformException as e:
            return False, str(e)

    def lookup_transform_core(self, target_frame: str, source_frame: str, time) -> TransformStamped:
        with self._cond:
            T, t_ns = self._resolve(target_frame, source_frame, _to_ns(time))
        ts = TransformStamped()
        ts.header.frame_id, ts.child_frame_id = _strip(target_frame), _strip(source_frame)
        ts.header.stamp.sec, ts.header.stamp.nanosec = divmod(int(t_ns), 1_000_000_000)
        tr, q = ts.transform.translation, ts.transform.rotation
        tr.x, tr.y, tr.z = (float(v) for v in T.translation)
        q.x, q.y, q.z, q.w = (float(v) for v in T.rotation)
        return ts

    def can_transform(self, target_frame: str, source_frame: str, time, timeout: Duration = Duration(),
                      return_debug_tuple: bool = False):
        """True when the transform is available, waiting up to ``timeout`` (wall clock, as upstream)."""
        deadline = _time.monotonic() + _to_ns(timeout) * 1e-9
        with self._cond:
            while True:
                ok, err = self.can_transform_core(target_frame, source_frame, time)
                left = deadline - _time.monotonic()
                if ok or left <= 0:
                    break
                self._cond.wait(min(left, 0.02))
        return (ok, err) if return_debug_tuple else ok

    def lookup_transform(self, target_frame: str, source_frame: str, time, timeout: Duration = Duration()) -> TransformStamped:
        """Transform that maps data in ``source_frame`` into ``target_frame`` at ``time`` (0 = latest)."""
        self.can_transform(target_frame, source_frame, time, timeout)
        return self.lookup_transform_core(target_frame, source_frame, time)

    def all_frames_as_yaml(self) -> str:
        with self._cond:
            lines = []
            for child, c in sorted(self._frames.items()):
                lines.append(f"{child}: \n  parent: '{c.parent(0)}'\n  static: {isinstance(c, _StaticCache)}\n  latest: {_fmt(c.latest())}")
            return "\n".join(lines)

    def all_frames_as_string(self) -> str:
        with self._cond:
            return "".join(f"Frame {c} exists with parent {p.parent(0)}.\n" for c, p in sorted(self._frames.items()))


# ---------------------------------------------------------------- TransformListener
class TransformListener:
    """Subscribes /tf and /tf_static and feeds the buffer (``tf2_ros.TransformListener`` subset)."""

    def __init__(self, buffer: Buffer, node, *, spin_thread: bool = False, qos=None, static_qos=None,
                 tf_topic: str = DEFAULT_TF_TOPIC, tf_static_topic: str = DEFAULT_STATIC_TF_TOPIC, static_only: bool = False):
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError as e:  # pragma: no cover - setup_venv.sh builds it
            raise ImportError(
                "tf2_msgs is not installed: run ./scripts/setup_venv.sh (it generates tf2_msgs into .venv) "
                "or source a ROS 2 install"
            ) from e
        if static_qos is None:
            static_qos = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST,
                                    reliability=ReliabilityPolicy.RELIABLE)
        if node is None:
            from rclpy.node import Node
            from rclpy.parameter import Parameter

            node = Node(f"transform_listener_impl_{id(self):010x}", enable_rosout=False, start_parameter_services=False,
                        parameter_overrides=[Parameter("use_sim_time", value=False)])
        self.buffer, self.node = buffer, node
        self.group = ReentrantCallbackGroup()
        self.tf_sub = None
        if not static_only:
            if qos is None:
                qos = QoSProfile(depth=100, durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST,
                                 reliability=ReliabilityPolicy.RELIABLE)
            self.tf_sub = node.create_subscription(TFMessage, tf_topic, self.callback, qos, callback_group=self.group)
        self.tf_static_sub = node.create_subscription(TFMessage, tf_static_topic, self.static_callback, static_qos,
                                                      callback_group=self.group)
        self.executor = self.dedicated_listener_thread = None
        if spin_thread:
            from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

            self.executor = SingleThreadedExecutor()

            def run_func():
                self.executor.add_node(self.node)
                try:
                    self.executor.spin()
                except ExternalShutdownException:
                    pass
                self.executor.remove_node(self.node)

            self.dedicated_listener_thread = threading.Thread(target=run_func, daemon=True)
            self.dedicated_listener_thread.start()

    def unregister(self) -> None:
        """Destroys the /tf and /tf_static subscriptions (and the dedicated spin thread, if any)."""
        if self.executor is not None:
            self.executor.shutdown()
            self.dedicated_listener_thread.join(timeout=2.0)
            self.executor = None
        if self.tf_sub is not None:
            self.node.destroy_subscription(self.tf_sub)
            self.tf_sub = None
        if self.tf_static_sub is not None:
            self.node.destroy_subscription(self.tf_static_sub)
            self.tf_static_sub = None

    def callback(self, data) -> None:
        for transform in data.transforms:
            self.buffer.set_transform(transform, "default_authority")

    def static_callback(self, data) -> None:
        for transform in data.transforms:
            self.buffer.set_transform_static(transform, "default_authority")
