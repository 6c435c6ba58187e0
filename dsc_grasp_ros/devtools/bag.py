"""rosbag2 (MCAP) writing and reading for RGB-D frames, and a numpy-rendered test scene.

* :func:`write_rgbd_bag` writes aligned color + depth + CameraInfo (RealSense topic names by
  default), ``/tf_static`` (base -> camera optical frame) and the camera pose in the bag's
  custom metadata, with the ``rosbags`` library (rosbag2 cannot be installed from PyPI).
* :func:`render_box_scene` is a small ray caster: a table plane with boxes at known poses,
  seen by a pinhole camera. It exists so the replay test and benchmark do not depend on the
  simulator; the bundled bag is recorded from the simulator by ``dsc-grasp bag record-sim``.

The messages are built with rclpy's message classes and serialised with
``rclpy.serialization``, the same path a recording node would take.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..core.geometry import quaternion_to_rotation, rotation_to_quaternion

#: Default topics: realsense2_camera 4.5x with ``align_depth.enable:=true``.
REALSENSE_TOPICS = {
    "color": "/camera/camera/color/image_raw",
    "depth": "/camera/camera/aligned_depth_to_color/image_raw",
    "info": "/camera/camera/color/camera_info",
}
CAMERA_FRAME = "camera_color_optical_frame"
BASE_FRAME = "base_link"
META_KEY = "dsc_grasp_ros"


@dataclass
class Frame:
    """One aligned RGB-D frame (the interface of ``dsc_grasp_ros.sim.scene.render_sequence``)."""

    rgb: np.ndarray  # H x W x 3 uint8
    depth: np.ndarray  # H x W float32 metres (0 / NaN = invalid)
    K: np.ndarray  # 3 x 3
    T_base_camera: Sequence[float]  # [x, y, z, qx, qy, qz, qw]: camera optical frame in base
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- small math helpers
# one implementation of the quaternion conventions, in the core
quat_to_matrix = quaternion_to_rotation
matrix_to_quat = rotation_to_quaternion


def look_at_camera(eye, target, up=(0.0, 0.0, 1.0)) -> list[float]:
    """Camera optical frame (x right, y down, z forward) at ``eye`` looking at ``target``: [x,y,z,qx,qy,qz,qw]."""
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return [*eye.tolist(), *matrix_to_quat(np.column_stack([x, y, z])).tolist()]


def intrinsics(width: int = 640, height: int = 480, hfov_deg: float = 69.0) -> np.ndarray:
    """Pinhole K with a RealSense D435-like field of view, principal point at the centre."""
    f = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])


# --------------------------------------------------------------------------- the box scene
@dataclass
class Box:
    center: tuple  # (x, y) on the table, metres, base frame
    size: tuple  # (sx, sy, sz) metres
    yaw: float  # radians about base z
    color: tuple  # RGB uint8


DEFAULT_BOXES = (
    Box((0.02, -0.06), (0.06, 0.12, 0.05), 0.4, (200, 60, 50)),
    Box((-0.10, 0.06), (0.05, 0.05, 0.09), -0.2, (40, 120, 210)),
    Box((0.12, 0.09), (0.14, 0.04, 0.03), 1.1, (230, 190, 40)),
)


def render_box_scene(
    width: int = 640,
    height: int = 480,
    T_base_camera: Sequence[float] | None = None,
    boxes: Iterable[Box] = DEFAULT_BOXES,
    K: np.ndarray | None = None,
) -> Frame:
    """Ray-cast a table (plane z = 0 of the base frame) with boxes on it.

    Returns a :class:`Frame` whose ``depth`` is the exact z (metres, camera optical frame) of the
    first surface hit by each pixel's ray (through the pixel centre), and a shaded ``rgb``.
    """
    K = intrinsics(width, height) if K is None else np.asarray(K, dtype=np.float64)
    if T_base_camera is None:
        T_base_camera = look_at_camera((0.35, -0.05, 0.62), (0.0, 0.0, 0.0))
    T = np.asarray(T_base_camera, dtype=np.float64)
    R, c = quat_to_matrix(T[3:]), T[:3]
    uu, vv = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rays_cam = np.stack([(uu - K[0, 2]) / K[0, 0], (vv - K[1, 2]) / K[1, 1], np.ones_like(uu)], -1)  # z_cam = 1
    rays = rays_cam @ R.T  # base frame; the ray parameter t is the optical z
    t_best = np.full((height, width), np.inf)
    rgb = np.zeros((height, width, 3), np.float64)
    normal_z = np.zeros((height, width))

    # table plane z = 0 with a faint checker texture (gives the RGB channels some structure)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_plane = -c[2] / rays[..., 2]
    ok = (t_plane > 0) & np.isfinite(t_plane)
    t_best = np.where(ok, t_plane, t_best)
    p = c + rays * t_plane[..., None]
    checker = ((np.floor(p[..., 0] / 0.05) + np.floor(p[..., 1] / 0.05)) % 2)[..., None]
    rgb = np.where(ok[..., None], np.array([150.0, 140.0, 125.0]) + 12.0 * checker, rgb)
    normal_z = np.where(ok, 1.0, normal_z)

    for b in boxes:
        cy, sy = math.cos(b.yaw), math.sin(b.yaw)
        Rb = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1.0]])
        centre = np.array([b.center[0], b.center[1], b.size[2] / 2])
        half = np.asarray(b.size, dtype=np.float64) / 2
        o = Rb.T @ (c - centre)  # ray origin in box frame
        d = rays @ Rb  # (Rb.T @ ray) for each ray
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - o) / d
            t2 = (half - o) / d
        tmin = np.nanmax(np.minimum(t1, t2), axis=-1)
        tmax = np.nanmin(np.maximum(t1, t2), axis=-1)
        hit = (tmax >= tmin) & (tmin > 0) & (tmin < t_best)
        if not hit.any():
            continue
        # which face: the axis whose entry t equals tmin
        face_axis = np.argmax(np.minimum(t1, t2), axis=-1)
        shade = np.array([0.75, 0.85, 1.0])[face_axis]
        t_best = np.where(hit, tmin, t_best)
        rgb = np.where(hit[..., None], np.asarray(b.color, dtype=np.float64) * shade[..., None], rgb)
        normal_z = np.where(hit, shade, normal_z)

    depth = np.where(np.isfinite(t_best), t_best, 0.0).astype(np.float32)
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    return Frame(rgb=rgb, depth=depth, K=K, T_base_camera=[float(a) for a in T], extra={"boxes": [b.__dict__ for b in boxes]})


# --------------------------------------------------------------------------- writing
def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


def write_rgbd_bag(
    path: str | Path,
    frames: Iterable[Frame],
    fps: float = 30.0,
    depth_encoding: str = "16UC1",
    color_encoding: str = "rgb8",
    frame_id: str = CAMERA_FRAME,
    base_frame: str = BASE_FRAME,
    topics: dict | None = None,
    start_ns: int = 1_700_000_000_000_000_000,
    compress: bool = True,
) -> dict:
    """Write frames to a rosbag2 MCAP directory ``path``; returns the metadata stored in it.

    Each frame is stamped ``start_ns + i / fps``; color, depth and CameraInfo share the stamp and
    ``frame_id`` (like RealSense aligned depth), and the bag log time equals the header stamp.
    The camera pose goes to ``/tf_static`` (fixed camera) or ``/tf`` at every frame (moving camera)
    and, per frame, into the bag's custom metadata (``bag_metadata``).
    """
    import rclpy.serialization
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
    from std_msgs.msg import Header

    from ..ros import conversions as conv

    topics = {**REALSENSE_TOPICS, **(topics or {})}
    ts = _typestore()
    path = Path(path)
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    if compress:
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    writer.open()
    conns = {
        "color": writer.add_connection(topics["color"], "sensor_msgs/msg/Image", typestore=ts),
        "depth": writer.add_connection(topics["depth"], "sensor_msgs/msg/Image", typestore=ts),
        "info": writer.add_connection(topics["info"], "sensor_msgs/msg/CameraInfo", typestore=ts),
    }
    meta = {"frames": [], "fps": fps, "camera_frame": frame_id, "base_frame": base_frame, "topics": topics}
    period = int(round(1e9 / fps))
    frames = list(frames)
    moving = any(not np.allclose(f.T_base_camera, frames[0].T_base_camera, atol=1e-9) for f in frames)
    meta["moving_camera"] = moving
    tf_conn = None
    try:
        for i, f in enumerate(frames):
            t = start_ns + i * period
            header = Header(stamp=conv.ns_to_stamp(t), frame_id=frame_id)
            h, w = f.depth.shape[:2]
            if color_encoding == "rgb8":
                cmsg = conv.array_to_image(f.rgb, "rgb8", header)
            elif color_encoding == "bgr8":
                cmsg = conv.array_to_image(f.rgb[..., ::-1], "bgr8", header)
            else:
                raise ValueError(f"unsupported color encoding {color_encoding}")
            if depth_encoding == "16UC1":
                d = np.nan_to_num(f.depth, nan=0.0, posinf=0.0, neginf=0.0)
                dmsg = conv.array_to_image(np.clip(np.round(d * 1000.0), 0, 65535).astype(np.uint16), "16UC1", header)
            else:
                dmsg = conv.array_to_image(f.depth.astype(np.float32), "32FC1", header)
            imsg = conv.k_to_camera_info(f.K, w, h, header)
            for key, msg in (("info", imsg), ("depth", dmsg), ("color", cmsg)):
                writer.write(conns[key], t, rclpy.serialization.serialize_message(msg))
            T = [float(a) for a in f.T_base_camera]
            if moving:  # /tf at every frame
                tf_conn = _write_tf(writer, ts, T, base_frame, frame_id, t, tf_conn)
            elif i == 0:
                _write_tf(writer, ts, T, base_frame, frame_id, t, None, static=True)
            meta["frames"].append({"stamp_ns": t, "T_base_camera": T})
        writer.set_custom_data(META_KEY, json.dumps(meta))
    except BaseException:
        writer.close()
        raise
    writer.close()
    return meta


def _write_tf(writer, ts, T, parent: str, child: str, t_ns: int, conn=None, static: bool = False):
    """``/tf_static`` (or ``/tf``) base -> camera, so real ROS installs can use the tf2 path
    (tf2_msgs is not on PyPI: the message is built with rosbags' types). Returns the connection."""
    from rosbags.typesys.stores.ros2_jazzy import (
        builtin_interfaces__msg__Time as Time,
        geometry_msgs__msg__Quaternion as Quaternion,
        geometry_msgs__msg__Transform as Transform,
        geometry_msgs__msg__TransformStamped as TransformStamped,
        geometry_msgs__msg__Vector3 as Vector3,
        std_msgs__msg__Header as Header,
        tf2_msgs__msg__TFMessage as TFMessage,
    )

    msg = TFMessage(
        transforms=[
            TransformStamped(
                header=Header(stamp=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9), frame_id=parent),
                child_frame_id=child,
                transform=Transform(translation=Vector3(x=T[0], y=T[1], z=T[2]), rotation=Quaternion(x=T[3], y=T[4], z=T[5], w=T[6])),
            )
        ]
    )
    topic = "/tf_static" if static else "/tf"
    if conn is None:
        conn = writer.add_connection(topic, "tf2_msgs/msg/TFMessage", typestore=ts)
    writer.write(conn, t_ns, ts.serialize_cdr(msg, "tf2_msgs/msg/TFMessage"))
    return conn


# --------------------------------------------------------------------------- reading
def bag_metadata(path: str | Path) -> dict:
    """The metadata :func:`write_rgbd_bag` stored (empty dict for other bags)."""
    import yaml

    p = Path(path) / "metadata.yaml"
    info = yaml.safe_load(p.read_text())["rosbag2_bagfile_information"]
    raw = (info.get("custom_data") or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


def read_messages(path: str | Path, topics: Iterable[str] | None = None):
    """Yield ``(topic, msgtype, log_time_ns, cdr_bytes)`` in log-time order."""
    from rosbags.rosbag2 import Reader

    with Reader(Path(path)) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in set(topics)]
        for conn, t, raw in reader.messages(connections=conns):
            yield conn.topic, conn.msgtype, t, bytes(raw)


def write_messages(path: str | Path, items: Iterable[tuple[int, str, object]], compress: bool = False) -> None:
    """Write ``(log_time_ns, topic, rclpy_message)`` items (any order of topics) to an MCAP bag."""
    import rclpy.serialization
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

    ts = _typestore()
    writer = Writer(Path(path), version=9, storage_plugin=StoragePlugin.MCAP)
    if compress:
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    writer.open()
    conns = {}
    try:
        for t, topic, msg in sorted(items, key=lambda x: x[0]):
            if topic not in conns:
                mod = type(msg).__module__.split(".")[0]
                conns[topic] = writer.add_connection(topic, f"{mod}/msg/{type(msg).__name__}", typestore=ts)
            writer.write(conns[topic], t, rclpy.serialization.serialize_message(msg))
    finally:
        writer.close()
