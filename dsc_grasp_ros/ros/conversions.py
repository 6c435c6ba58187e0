"""Message <-> numpy conversions for the ROS layer (no cv_bridge, no node, no numerics).

Every function that reads a message validates it and raises :class:`MessageError` with a
``reason`` key (a short snake_case name used as a counter) and a message that names the
problem, so the node can warn, count and skip the frame.

Images are read honouring ``step`` (row padding) and ``is_bigendian``; they are written
without padding and little-endian, with ``data`` as an ``array.array`` (assigning ``bytes``
to ``Image.data`` is very slow with ``ROS_PYTHON_CHECK_FIELDS=1``).
"""

from __future__ import annotations

import array
import math

import numpy as np

#: Color encodings the node accepts: encoding -> (channels, channel order for RGB).
COLOR_ENCODINGS = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
#: Depth encodings the node accepts: encoding -> (numpy dtype, unit description).
DEPTH_ENCODINGS = {
    "16UC1": (np.dtype("<u2"), "millimetres"),
    "32FC1": (np.dtype("<f4"), "metres"),
}
#: Encodings this module can write (debug images, synthetic bags).
WRITE_ENCODINGS = {
    "rgb8": (np.uint8, 3),
    "bgr8": (np.uint8, 3),
    "rgba8": (np.uint8, 4),
    "bgra8": (np.uint8, 4),
    "mono8": (np.uint8, 1),
    "16UC1": (np.uint16, 1),
    "32FC1": (np.float32, 1),
}


class MessageError(ValueError):
    """A message that cannot be used. ``reason`` is a counter name, ``str(err)`` the explanation."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _stamp_str(msg) -> str:
    s = msg.header.stamp
    return f"{s.sec}.{s.nanosec:09d}"


def image_to_array(msg, dtype: np.dtype, channels: int, what: str) -> np.ndarray:
    """Read an image message's pixels into an ``H x W (x C)`` array of ``dtype`` (native order).

    Honours ``step`` (rows may be padded) and ``is_bigendian``. Returns a view into the
    message buffer where possible (read-only); copy it before modifying.
    """
    dtype = np.dtype(dtype)
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise MessageError("bad_image_size", f"{what} image has size {w}x{h} (stamp {_stamp_str(msg)})")
    row = w * channels * dtype.itemsize
    if step < row:
        raise MessageError(
            "bad_image_step",
            f"{what} image step {step} is smaller than width x pixel size = {w} x {channels * dtype.itemsize} = {row} bytes",
        )
    n = len(msg.data)
    if n < step * h:
        raise MessageError(
            "bad_image_data_size",
            f"{what} image data has {n} bytes, expected step x height = {step} x {h} = {step * h}",
        )
    buf = np.frombuffer(msg.data, dtype=np.uint8, count=step * h)
    if step != row:
        # Row padding: view each row and drop its tail (one copy, contiguous result).
        buf = np.ascontiguousarray(buf.reshape(h, step)[:, :row])
    arr = buf.reshape(-1)
    if dtype.itemsize > 1:
        wire = dtype.newbyteorder(">" if msg.is_bigendian else "<")
        arr = arr.view(wire).astype(dtype.newbyteorder("="), copy=False)  # no copy when native
    else:
        arr = arr.view(dtype)
    shape = (h, w) if channels == 1 else (h, w, channels)
    return arr.reshape(shape)


def color_to_rgb(msg) -> np.ndarray:
    """``sensor_msgs/Image`` (rgb8, bgr8, rgba8, bgra8, mono8) -> ``H x W x 3`` uint8 RGB."""
    enc = msg.encoding
    if enc not in COLOR_ENCODINGS:
        raise MessageError(
            "unsupported_encoding",
            f"color image encoding {enc!r} is not supported (use one of {', '.join(COLOR_ENCODINGS)})",
        )
    channels, order = COLOR_ENCODINGS[enc]
    arr = image_to_array(msg, np.uint8, channels, "color")
    if channels == 1:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if order == (0, 1, 2) and channels == 3:
        return arr
    return np.ascontiguousarray(arr[:, :, list(order)])


def depth_to_array(msg) -> np.ndarray:
    """``sensor_msgs/Image`` depth (16UC1 mm or 32FC1 m) -> ``H x W`` uint16 mm or float32 m."""
    enc = msg.encoding
    if enc not in DEPTH_ENCODINGS:
        raise MessageError(
            "unsupported_encoding",
            f"depth image encoding {enc!r} is not supported (use 16UC1 in millimetres or 32FC1 in metres)",
        )
    dtype, _ = DEPTH_ENCODINGS[enc]
    return image_to_array(msg, dtype.newbyteorder("="), 1, "depth")


def camera_info_to_k(msg) -> np.ndarray:
    """``sensor_msgs/CameraInfo`` -> 3x3 intrinsics; rejects all-zero or non-finite K."""
    if msg is None:
        raise MessageError("missing_camera_info", "no CameraInfo received yet on the camera_info topic")
    k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(k)):
        raise MessageError("bad_camera_info", f"CameraInfo K has non-finite values: {k.ravel().tolist()}")
    if not np.any(k):
        raise MessageError("bad_camera_info", "CameraInfo K is all zeros (uncalibrated camera?)")
    fx, fy = k[0, 0], k[1, 1]
    if fx <= 0 or fy <= 0:
        raise MessageError("bad_camera_info", f"CameraInfo K has non-positive focal length fx={fx}, fy={fy}")
    return k


def check_camera_info_size(info, width: int, height: int) -> None:
    """CameraInfo of another resolution than the images is an error (0x0 means 'not set')."""
    if info.width and info.height and (info.width != width or info.height != height):
        raise MessageError(
            "camera_info_size_mismatch",
            f"CameraInfo is {info.width}x{info.height} but the images are {width}x{height}",
        )


class CameraModel:
    """What the node uses of a ``sensor_msgs/CameraInfo``, for the images as published.

    ``K``: intrinsics of the published image (binning and ROI applied); ``D``/``distortion_model``:
    the raw image's lens distortion (``D`` is None when all zero or of a model the core cannot
    undistort; ``ignored_distortion`` then names the model); ``binning``, ``roi``: what was applied.
    """

    __slots__ = ("K", "D", "distortion_model", "ignored_distortion", "binning", "roi")

    def __init__(self, K, D, distortion_model, ignored_distortion, binning, roi):
        self.K, self.D, self.distortion_model = K, D, distortion_model
        self.ignored_distortion, self.binning, self.roi = ignored_distortion, binning, roi


def camera_info_intrinsics(info, width: int, height: int) -> CameraModel:
    """``sensor_msgs/CameraInfo`` + the published image size -> :class:`CameraModel`.

    Follows the message definition (sensor_msgs/msg/CameraInfo.msg, Jazzy): ``K`` is given for the
    calibrated (full) resolution ``width`` x ``height``; ``roi`` is a window of that full resolution
    in unbinned pixels (all zero = the full image); ``binning_x/y`` (0 = 1) divide the output
    resolution, so the published image is ``roi.width / binning_x`` x ``roi.height / binning_y``.
    The published image's intrinsics are therefore ``fx / bx``, ``fy / by``,
    ``(cx - roi.x_offset) / bx``, ``(cy - roi.y_offset) / by`` (as image_geometry's
    PinholeCameraModel computes them). Rejects (``bad_camera_info``) non-finite or all-zero K,
    non-positive focal lengths, a last row other than ``[0, 0, 1]``, a principal point outside
    the calibrated image, a field of view no lens has (:func:`~dsc_grasp_ros.core.geometry.check_intrinsics`)
    and a distortion that cannot be undistorted over the image (wrong coefficient count, not
    invertible: :func:`~dsc_grasp_ros.core.geometry.check_distortion`); a size that does not fit the
    images is ``camera_info_size_mismatch``.
    """
    from ..core.geometry import DISTORTION_MODELS, GeometryError, check_distortion, check_intrinsics
    from ..core.preprocess import MIN_IMAGE_SIDE

    k = camera_info_to_k(info)
    if not np.allclose(k[2], [0.0, 0.0, 1.0], atol=1e-9):
        raise MessageError("bad_camera_info", f"CameraInfo K's last row must be [0, 0, 1], got {k[2].tolist()}")
    bx, by = int(info.binning_x) or 1, int(info.binning_y) or 1
    roi = info.roi
    full_w, full_h = int(info.width), int(info.height)
    if not (roi.x_offset or roi.y_offset or roi.width or roi.height):
        rx, ry, rw, rh = 0, 0, full_w or width * bx, full_h or height * by
    else:
        rx, ry, rw, rh = int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)
        if full_w and full_h and (rx + rw > full_w or ry + rh > full_h or rw == 0 or rh == 0):
            raise MessageError("bad_camera_info", f"CameraInfo roi {rx},{ry} {rw}x{rh} is not inside the calibrated {full_w}x{full_h} image")
    exp_w, exp_h = rw // bx, rh // by
    if (exp_w, exp_h) != (width, height):
        how = f" (roi {rw}x{rh} at {rx},{ry}, binning {bx}x{by})" if (bx, by) != (1, 1) or (rw, rh) != (full_w, full_h) else ""
        raise MessageError(
            "camera_info_size_mismatch",
            f"CameraInfo is {full_w}x{full_h}{how}, i.e. {exp_w}x{exp_h} images, but the images are {width}x{height}",
        )
    cx, cy = k[0, 2], k[1, 2]
    lim_w, lim_h = full_w or width * bx, full_h or height * by
    if not (0 <= cx < lim_w and 0 <= cy < lim_h):
        raise MessageError("bad_camera_info", f"CameraInfo principal point ({cx:.1f}, {cy:.1f}) lies outside the {lim_w}x{lim_h} image")
    K = k.copy()
    K[0, 0], K[1, 1] = k[0, 0] / bx, k[1, 1] / by
    K[0, 1] = k[0, 1] / bx
    K[0, 2], K[1, 2] = (cx - rx) / bx, (cy - ry) / by
    d = np.asarray(info.d, dtype=np.float64).reshape(-1)
    model = str(info.distortion_model or "")
    D, ignored = None, ""
    if d.size and np.any(d):
        if not np.all(np.isfinite(d)):
            raise MessageError("bad_camera_info", f"CameraInfo D has non-finite values: {d.tolist()}")
        if model in DISTORTION_MODELS:
            D = d
        else:
            ignored = model or "(empty)"
    try:  # a plausible camera, a distortion that can be undistorted over the image (verdict cached);
        # an image too small to use is the detector's to refuse (image_too_small)
        if min(width, height) < MIN_IMAGE_SIDE:
            return CameraModel(K, D, model, ignored, (bx, by), (rx, ry, rw, rh))
        check_intrinsics(K, width, height)
        if D is not None:
            check_distortion(K, D, model, width, height)
    except GeometryError as e:
        raise MessageError("bad_camera_info", f"CameraInfo is unusable: {e}") from None
    return CameraModel(K, D, model, ignored, (bx, by), (rx, ry, rw, rh))


def array_to_image(arr: np.ndarray, encoding: str, header=None, msg=None):
    """``H x W (x C)`` array -> ``sensor_msgs/Image`` (little-endian, no padding)."""
    from sensor_msgs.msg import Image

    if encoding not in WRITE_ENCODINGS:
        raise ValueError(f"cannot write encoding {encoding!r}")
    dtype, channels = WRITE_ENCODINGS[encoding]
    a = np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<"))
    if a.ndim != (2 if channels == 1 else 3) or (channels > 1 and a.shape[2] != channels):
        raise ValueError(f"array of shape {a.shape} does not fit encoding {encoding}")
    msg = msg or Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(a.shape[0]), int(a.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(a.shape[1] * channels * a.itemsize)
    data = array.array("B")
    data.frombytes(a.tobytes())
    msg.data = data
    return msg


def k_to_camera_info(k, width: int, height: int, header=None):
    """3x3 intrinsics -> ``sensor_msgs/CameraInfo`` (plumb_bob, zero distortion)."""
    from sensor_msgs.msg import CameraInfo

    k = np.asarray(k, dtype=np.float64).reshape(3, 3)
    info = CameraInfo()
    if header is not None:
        info.header = header
    info.width, info.height = int(width), int(height)
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = k.ravel().tolist()
    info.r = np.eye(3).ravel().tolist()
    p = np.zeros((3, 4))
    p[:, :3] = k
    info.p = p.ravel().tolist()
    return info


# --------------------------------------------------------------------------- time
def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


# --------------------------------------------------------------------------- outputs
#: Fields of ``~/grasp_candidates`` (all float32, in this order).
CANDIDATE_FIELDS = ("x", "y", "z", "qx", "qy", "qz", "qw", "width", "quality", "angle", "u", "v", "fingers_clear")


def candidates_to_cloud(rows: np.ndarray, header):
    """N x 13 float array (columns :data:`CANDIDATE_FIELDS`) -> ``sensor_msgs/PointCloud2``."""
    from sensor_msgs.msg import PointCloud2, PointField

    rows = np.ascontiguousarray(np.asarray(rows, dtype="<f4").reshape(-1, len(CANDIDATE_FIELDS)))
    msg = PointCloud2()
    msg.header = header
    msg.height = 1
    msg.width = int(rows.shape[0])
    msg.fields = [
        PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, name in enumerate(CANDIDATE_FIELDS)
    ]
    msg.is_bigendian = False
    msg.point_step = 4 * len(CANDIDATE_FIELDS)
    msg.row_step = msg.point_step * msg.width
    data = array.array("B")
    data.frombytes(rows.tobytes())
    msg.data = data
    msg.is_dense = bool(np.all(np.isfinite(rows)))  # false when fingers_clear is NaN (finger_check off)
    return msg


_POINTFIELD_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}


def cloud_to_records(msg) -> np.ndarray:
    """``sensor_msgs/PointCloud2`` -> numpy structured array with one field per PointField."""
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype(
        {
            "names": [f.name for f in msg.fields],
            "formats": [order + _POINTFIELD_DTYPES[f.datatype] for f in msg.fields],
            "offsets": [f.offset for f in msg.fields],
            "itemsize": msg.point_step,
        }
    )
    n = msg.width * msg.height
    raw = np.frombuffer(msg.data, dtype=np.uint8)
    if msg.row_step != msg.point_step * msg.width:
        raw = raw.reshape(msg.height, msg.row_step)[:, : msg.point_step * msg.width].reshape(-1)
    return np.frombuffer(raw.tobytes(), dtype=dtype, count=n)


def quality_color(q: float):
    """Quality in [0, 1] -> ``std_msgs/ColorRGBA`` from red (0) through yellow to green (1)."""
    from std_msgs.msg import ColorRGBA

    q = 0.0 if not math.isfinite(q) else min(max(q, 0.0), 1.0)
    return ColorRGBA(r=float(min(1.0, 2 * (1 - q))), g=float(min(1.0, 2 * q)), b=0.0, a=1.0)


#: Gripper glyph dimensions (metres), roughly a Franka hand: finger length, palm stem.
FINGER_LENGTH = 0.045
STEM_LENGTH = 0.06


def gripper_marker(header, pose, width_m: float, quality: float, marker_id: int, ns: str = "grasps"):
    """A LINE_LIST gripper glyph in the TCP frame: fingers at ``y = +-width/2`` ending at the TCP
    (``z = 0``), a palm across ``y`` at ``z = -FINGER_LENGTH`` and a stem back along ``-z``
    (the approach direction is ``+z``)."""
    from geometry_msgs.msg import Point
    from visualization_msgs.msg import Marker

    m = Marker()
    m.header = header
    m.ns = ns
    m.id = int(marker_id)
    m.type = Marker.LINE_LIST
    m.action = Marker.ADD
    m.pose = pose
    m.scale.x = 0.004
    m.color = quality_color(quality)
    h = max(float(width_m), 0.0) / 2
    f, s = FINGER_LENGTH, STEM_LENGTH
    segs = [
        ((0.0, -h, -f), (0.0, -h, 0.0)),  # finger 1
        ((0.0, h, -f), (0.0, h, 0.0)),  # finger 2
        ((0.0, -h, -f), (0.0, h, -f)),  # palm
        ((0.0, 0.0, -f), (0.0, 0.0, -f - s)),  # stem
    ]
    m.points = [Point(x=p[0], y=p[1], z=p[2]) for seg in segs for p in seg]
    return m


# --------------------------------------------------------------------------- zero-copy Image CDR
class _Stamp:
    __slots__ = ("sec", "nanosec")

    def __init__(self, sec: int, nanosec: int):
        self.sec, self.nanosec = sec, nanosec


class _Header:
    __slots__ = ("stamp", "frame_id")

    def __init__(self, stamp: _Stamp, frame_id: str):
        self.stamp, self.frame_id = stamp, frame_id

    def to_msg(self):
        from builtin_interfaces.msg import Time
        from std_msgs.msg import Header

        return Header(stamp=Time(sec=self.stamp.sec, nanosec=self.stamp.nanosec), frame_id=self.frame_id)


class ImageView:
    """A ``sensor_msgs/Image`` read straight from its CDR bytes: ``data`` is a memoryview into the
    serialised message (no copy). Has the fields :func:`color_to_rgb` / :func:`depth_to_array` use."""

    __slots__ = ("header", "height", "width", "encoding", "is_bigendian", "step", "data")


def parse_image_cdr(raw) -> ImageView:
    """Parse a serialised ``sensor_msgs/Image`` (XCDR1, either endianness) without copying the pixels.

    rclpy's own deserialisation copies the pixel buffer into an ``array.array`` (about 0.7 ms for a
    640x480 RGB image); the node subscribes with ``raw=True`` and reads the bytes in place.
    Raises :class:`MessageError` (reason ``truncated_message``) for a message that ends before its
    declared fields and data do, ``ValueError`` for an encapsulation it does not know (the caller
    then falls back to ``rclpy.serialization.deserialize_message``).
    """
    import struct

    mv = memoryview(raw)
    total = len(mv)
    if total < 4:
        raise MessageError("truncated_message", f"serialized Image is truncated: only {total} bytes (no CDR header)")
    kind = bytes(mv[:2])
    if kind == b"\x00\x01":
        e = "<"
    elif kind == b"\x00\x00":
        e = ">"
    else:
        raise ValueError(f"unsupported CDR encapsulation {kind!r}")
    base = 4  # CDR alignment is relative to the payload start

    def need(off, n, what):
        if off + n > total:
            raise MessageError(
                "truncated_message",
                f"serialized Image is truncated: {total} bytes, but its {what} needs bytes {off}..{off + n}",
            )

    def u32(off, what):
        off = base + ((off - base + 3) & ~3)
        need(off, 4, what)
        return struct.unpack_from(e + "I", mv, off)[0], off + 4

    def string(off, what):
        n, off = u32(off, what + " length")
        need(off, n, what)
        try:
            s = bytes(mv[off : off + n - 1]).decode() if n else ""
        except UnicodeDecodeError as err:
            raise MessageError("truncated_message", f"serialized Image {what} is not UTF-8: {err}") from err
        return s, off + n

    need(base, 8, "stamp")
    sec, nsec = struct.unpack_from(e + "iI", mv, base)
    frame_id, off = string(base + 8, "frame_id")
    height, off = u32(off, "height")
    width, off = u32(off, "width")
    encoding, off = string(off, "encoding")
    need(off, 1, "is_bigendian")
    is_bigendian = mv[off]
    off += 1
    step, off = u32(off, "step")
    n, off = u32(off, "data length")
    if off + n > total:
        raise MessageError(
            "truncated_message",
            f"serialized Image is truncated: it declares {n} data bytes but only {total - off} follow",
        )
    v = ImageView()
    v.header = _Header(_Stamp(sec, nsec), frame_id)
    v.height, v.width, v.encoding, v.is_bigendian, v.step = height, width, encoding, is_bigendian, step
    v.data = mv[off : off + n]
    return v


def header_msg(header):
    """A real ``std_msgs/Header`` for a message's header (an :class:`ImageView` has a light one)."""
    return header.to_msg() if isinstance(header, _Header) else header
