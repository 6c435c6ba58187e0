"""Image grasp + depth + intrinsics -> metric 6-DoF TCP pose; rigid transforms. No ROS imports.

Conventions (see :mod:`dsc_grasp_ros.core.conventions`): poses start in the camera optical frame
(x right, y down, z forward). The TCP's +z is the approach direction (the optical axis), its ±y is
the jaw-closing direction (the image closing axis at ``angle``), x = y × z: the Franka hand TCP.
Quaternions are ``(x, y, z, w)`` as in geometry_msgs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .conventions import PREDICTED_JAW_RATIO, wrap_angle

__all__ = [
    "GeometryError",
    "CameraIntrinsics",
    "Transform",
    "DEPTH_STATISTICS",
    "robust_depth",
    "grasp_pose",
    "DISTORTION_MODELS",
    "DISTORTION_SIZES",
    "FOV_LIMITS_DEG",
    "check_intrinsics",
    "check_distortion",
    "undistort_pixel",
    "rotation_to_quaternion",
    "quaternion_to_rotation",
    "quaternion_multiply",
]


class GeometryError(ValueError):
    """A grasp whose pose cannot be computed correctly (the message names why)."""


@dataclass(frozen=True)
class CameraIntrinsics:
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_K(cls, K) -> "CameraIntrinsics":
        """From a 3x3 matrix or the 9-element row-major ``CameraInfo.k``."""
        k = np.asarray(K, dtype=np.float64).reshape(-1)
        if k.size != 9 or not np.all(np.isfinite(k)):
            raise GeometryError(f"camera matrix K must have 9 finite values, got {k.size}")
        fx, fy, cx, cy = k[0], k[4], k[2], k[5]
        if fx <= 0 or fy <= 0:
            raise GeometryError(f"camera matrix K has non-positive focal lengths (fx={fx}, fy={fy}): missing or all-zero CameraInfo?")
        return cls(float(fx), float(fy), float(cx), float(cy))

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])

    def deproject(self, u, v, z) -> np.ndarray:
        """Pixel ``(u, v)`` at depth ``z`` (metres along the optical axis) -> 3-D point(s)."""
        u, v, z = (np.asarray(a, dtype=np.float64) for a in (u, v, z))
        return np.stack([(u - self.cx) / self.fx * z, (v - self.cy) / self.fy * z, z], -1)

    def project(self, p) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        return np.stack([self.fx * p[..., 0] / p[..., 2] + self.cx, self.fy * p[..., 1] / p[..., 2] + self.cy], -1)


#: The field of view (degrees, across the image and down it) a camera's intrinsics must give: below
#: 1 degree or above 170 the focal length is a unit or calibration error, not a lens.
FOV_LIMITS_DEG = (1.0, 170.0)


def check_intrinsics(K, width: int, height: int) -> CameraIntrinsics:
    """:class:`CameraIntrinsics` of ``K`` for a ``width`` x ``height`` image, or :class:`GeometryError`
    naming what is implausible: a field of view outside :data:`FOV_LIMITS_DEG` either way, or a
    principal point more than one image size outside the image."""
    cam = CameraIntrinsics.from_K(K)
    lo, hi = FOV_LIMITS_DEG
    for axis, size, f in (("horizontal", width, cam.fx), ("vertical", height, cam.fy)):
        fov = math.degrees(2.0 * math.atan2(size / 2.0, f))
        if not lo <= fov <= hi:
            raise GeometryError(f"camera intrinsics give a {axis} field of view of {fov:.3g} degrees over {size} px "
                                f"(f={f:.6g} px): outside {lo:g}..{hi:g} degrees, not a plausible calibration")
    if not (-width <= cam.cx <= 2 * width and -height <= cam.cy <= 2 * height):
        raise GeometryError(f"camera principal point ({cam.cx:.6g}, {cam.cy:.6g}) lies far outside the {width}x{height} image")
    return cam


# --------------------------------------------------------------------------- rotations
def rotation_to_quaternion(R) -> np.ndarray:
    """3x3 rotation matrix -> unit quaternion ``(x, y, z, w)`` with ``w >= 0``."""
    R = np.asarray(R, dtype=np.float64)
    t = np.trace(R)
    if t > 0:
        s = math.sqrt(t + 1.0) * 2
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2]) * 2
        q = [0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif R[1, 1] > R[2, 2]:
        s = math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2]) * 2
        q = [(R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1]) * 2
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s, (R[1, 0] - R[0, 1]) / s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def quaternion_to_rotation(q) -> np.ndarray:
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def quaternion_multiply(a, b) -> np.ndarray:
    """Hamilton product ``a ⊗ b`` of ``(x, y, z, w)`` quaternions."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quaternion_slerp(a, b, s: float) -> np.ndarray:
    """Spherical linear interpolation of unit ``(x, y, z, w)`` quaternions: ``s=0`` -> ``a``,
    ``s=1`` -> ``b``, along the shorter arc (as tf2 interpolates between two stamps)."""
    a = np.asarray(a, dtype=np.float64) / np.linalg.norm(a)
    b = np.asarray(b, dtype=np.float64) / np.linalg.norm(b)
    d = float(np.dot(a, b))
    if d < 0.0:
        b, d = -b, -d
    if d > 0.9995:  # nearly parallel: normalised lerp avoids dividing by sin(~0)
        q = a + s * (b - a)
        return q / np.linalg.norm(q)
    theta = math.acos(min(d, 1.0))
    q = (math.sin((1.0 - s) * theta) * a + math.sin(s * theta) * b) / math.sin(theta)
    return q / np.linalg.norm(q)


@dataclass(frozen=True)
class Transform:
    """A rigid transform: ``translation (x, y, z)`` and ``rotation`` quaternion ``(x, y, z, w)``.

    ``T.apply(p)`` maps points expressed in the child frame into the parent frame (a TF
    ``parent <- child`` transform, e.g. the camera optical frame expressed in the robot base).
    """

    translation: tuple = (0.0, 0.0, 0.0)
    rotation: tuple = (0.0, 0.0, 0.0, 1.0)

    def __post_init__(self):
        t = np.asarray(self.translation, dtype=np.float64)
        q = np.asarray(self.rotation, dtype=np.float64)
        if t.shape != (3,) or q.shape != (4,) or not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
            raise GeometryError("a transform needs 3 finite translation values and a 4-value quaternion (x, y, z, w)")
        n = np.linalg.norm(q)
        if abs(n - 1.0) > 1e-3:
            raise GeometryError(f"transform quaternion must be unit length, got norm {n:.4f}")
        object.__setattr__(self, "translation", tuple(t))
        object.__setattr__(self, "rotation", tuple(q / n))

    @classmethod
    def from_list(cls, values) -> "Transform":
        """From ``[x, y, z, qx, qy, qz, qw]`` (the ``static_camera_transform`` parameter form)."""
        v = [float(a) for a in values]
        if len(v) != 7:
            raise GeometryError(f"expected 7 values [x, y, z, qx, qy, qz, qw], got {len(v)}")
        return cls(tuple(v[:3]), tuple(v[3:]))

    @classmethod
    def from_matrix(cls, M) -> "Transform":
        M = np.asarray(M, dtype=np.float64)
        return cls(tuple(M[:3, 3]), tuple(rotation_to_quaternion(M[:3, :3])))

    @property
    def matrix(self) -> np.ndarray:
        M = np.eye(4)
        M[:3, :3] = quaternion_to_rotation(self.rotation)
        M[:3, 3] = self.translation
        return M

    def inverse(self) -> "Transform":
        R = quaternion_to_rotation(self.rotation)
        x, y, z, w = self.rotation
        return Transform(tuple(-R.T @ np.asarray(self.translation)), (-x, -y, -z, w))

    def __matmul__(self, other: "Transform") -> "Transform":
        return Transform(
            tuple(self.apply(other.translation)),
            tuple(quaternion_multiply(self.rotation, other.rotation)),
        )

    def apply(self, points) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return p @ quaternion_to_rotation(self.rotation).T + np.asarray(self.translation)

    def apply_pose(self, position, orientation) -> tuple[np.ndarray, np.ndarray]:
        """Map a pose (position, quaternion) from the child frame into the parent frame."""
        q = quaternion_multiply(self.rotation, orientation)
        q /= np.linalg.norm(q)
        return self.apply(position), (-q if q[3] < 0 else q)


# --------------------------------------------------------------------------- lens distortion
#: ``sensor_msgs/CameraInfo.distortion_model`` values :func:`undistort_pixel` handles
#: (sensor_msgs/distortion_models.hpp): OpenCV's 5/8-coefficient model and the fisheye model.
DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant")
#: How many coefficients ``D`` may have per model: plumb_bob k1 k2 p1 p2 [k3] (8: some drivers pad it
#: with zeros), rational_polynomial k1 k2 p1 p2 k3 k4 k5 k6 [s1..s4 [tau_x tau_y]], equidistant k1..k4.
DISTORTION_SIZES = {"plumb_bob": (4, 5, 8), "rational_polynomial": (8, 12, 14), "equidistant": (4,)}
#: The largest distance (pixels) between a pixel and distort(undistort(pixel)) that counts as a
#: well-posed undistortion (:func:`check_distortion`).
ROUND_TRIP_TOLERANCE_PX = 0.5


def check_distortion(K, D, model: str, width: int, height: int) -> None:
    """Raise :class:`GeometryError` naming the problem when ``D`` cannot be used to undistort pixels
    of a ``width`` x ``height`` image: a coefficient count the model does not have, non-finite
    values, a distortion that is not monotone along the radius over the field of view (two radii
    give one image radius), or one whose undistortion does not invert it (a 9 x 9 grid over the
    image: ``distort(undistort(p))`` more than :data:`ROUND_TRIP_TOLERANCE_PX` from ``p``). All-zero
    ``D`` and models other than :data:`DISTORTION_MODELS` are not checked. The verdict is cached per
    distinct ``(K, D, model, size)``: a fixed camera pays for it once."""
    d = np.asarray(D, dtype=np.float64).reshape(-1)
    if model not in DISTORTION_MODELS or d.size == 0 or not np.any(d):
        return
    k = np.asarray(K, dtype=np.float64).reshape(-1)
    problem = _distortion_problem(tuple(k.tolist()), tuple(d.tolist()), model, int(width), int(height))
    if problem:
        raise GeometryError(problem)


@functools.lru_cache(maxsize=64)
def _distortion_problem(k: tuple, d: tuple, model: str, width: int, height: int) -> str | None:
    D = np.asarray(d)
    sizes = DISTORTION_SIZES[model]
    if D.size not in sizes:
        need = " or ".join([", ".join(map(str, sizes[:-1])), str(sizes[-1])] if len(sizes) > 1 else [str(sizes[0])])
        return (f"{model} distortion needs {need} coefficients, got {D.size}: "
                f"D={_short(D)}")
    if not np.all(np.isfinite(D)):
        return f"distortion coefficients are not finite: D={_short(D)}"
    K = np.asarray(k).reshape(3, 3)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], dtype=np.float64)
    r_image = float(np.max(np.hypot((corners[:, 0] - cx) / fx, (corners[:, 1] - cy) / fy)))
    if not _radially_monotone(D, model, r_image):
        return (f"{model} distortion D={_short(D)} is not monotone over the field of view (two viewing angles map to "
                "one image radius): undistortion is ambiguous")
    uu, vv = np.meshgrid(np.linspace(0, width - 1, 9), np.linspace(0, height - 1, 9))
    px = np.stack([uu.ravel(), vv.ravel()], -1)
    with np.errstate(all="ignore"):
        ideal = _undistort_normalised(px, K, D, model)
        back = _distort_normalised(ideal, D, model)
        err = np.hypot(back[:, 0] * fx + cx - px[:, 0], back[:, 1] * fy + cy - px[:, 1])
    worst = float(np.nanmax(err)) if np.any(np.isfinite(err)) else math.inf
    if not np.all(np.isfinite(err)) or worst > ROUND_TRIP_TOLERANCE_PX:
        return (f"{model} distortion D={_short(D)} cannot be undistorted over the {width}x{height} image: "
                f"distort(undistort(pixel)) is off by up to {worst:.3g} px")
    return None


def _short(D: np.ndarray) -> str:
    return "[" + ", ".join(f"{x:.4g}" for x in D[:8]) + (", ...]" if D.size > 8 else "]")


def _radial(r: np.ndarray, D: np.ndarray, model: str) -> np.ndarray:
    """Distorted radius (normalised image plane) of the undistorted radius ``r`` (tangential terms left out)."""
    if model == "equidistant":
        th = np.arctan(r)
        k1, k2, k3, k4 = D[:4]
        return th * (1 + k1 * th**2 + k2 * th**4 + k3 * th**6 + k4 * th**8)
    c = np.zeros(8)
    c[: min(D.size, 8)] = D[:8]
    k1, k2, _, _, k3, k4, k5, k6 = c
    r2 = r * r
    return r * (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)


def _radially_monotone(D: np.ndarray, model: str, r_image: float) -> bool:
    """The distorted radius rises with the undistorted one until it covers the image (``r_image``)."""
    r_max = 1e3 if model != "equidistant" else 1e6  # equidistant: the radius is tan(theta) < infinity
    r = np.concatenate([np.linspace(0.0, 2.0 * r_image, 2001)[1:], np.geomspace(2.0 * r_image, r_max, 2000)[1:]])
    with np.errstate(all="ignore"):
        rd = _radial(r, D, model)
    reach = np.nonzero(rd >= r_image)[0]
    end = int(reach[0]) + 1 if reach.size else r.size
    seg = rd[:end]
    return bool(reach.size) and bool(np.all(np.isfinite(seg))) and bool(np.all(np.diff(seg) > 0))


def _undistort_normalised(px: np.ndarray, K: np.ndarray, D: np.ndarray, model: str) -> np.ndarray:
    """Raw pixels -> ideal normalised coordinates, as :func:`undistort_pixel` computes them."""
    import cv2

    pts = px.reshape(-1, 1, 2).astype(np.float64)
    if model == "equidistant":
        out = cv2.fisheye.undistortPoints(pts, K, D[:4])
    else:
        out = cv2.undistortPoints(pts, K, D)
    return out.reshape(-1, 2)


def _distort_normalised(xy: np.ndarray, D: np.ndarray, model: str) -> np.ndarray:
    """Ideal normalised coordinates -> distorted normalised coordinates (OpenCV's models)."""
    x, y = xy[:, 0], xy[:, 1]
    r2 = x * x + y * y
    if model == "equidistant":
        r = np.sqrt(r2)
        rd = _radial(r, D, model)
        scale = np.where(r > 1e-12, rd / np.where(r > 1e-12, r, 1.0), 1.0)
        return np.stack([x * scale, y * scale], -1)
    c = np.zeros(14)
    c[: D.size] = D
    k1, k2, p1, p2, k3, k4, k5, k6, s1, s2, s3, s4 = c[:12]
    radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) + s1 * r2 + s2 * r2**2
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y + s3 * r2 + s4 * r2**2
    return np.stack([xd, yd], -1)


def undistort_pixel(u: float, v: float, K, D, model: str = "plumb_bob") -> tuple[float, float]:
    """Pixel of the raw (distorted) image -> the pixel of an ideal pinhole camera with the same K.

    Deprojecting the returned pixel with K gives the true viewing ray of the raw pixel. ``D`` as in
    ``CameraInfo.d``; all-zero ``D`` returns ``(u, v)`` unchanged. Unknown models raise GeometryError.
    """
    d = np.asarray(D, dtype=np.float64).reshape(-1)
    if d.size == 0 or not np.any(d):
        return float(u), float(v)
    if not np.all(np.isfinite(d)):
        raise GeometryError(f"distortion coefficients are not finite: {d.tolist()}")
    import cv2

    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    pts = np.array([[[u, v]]], dtype=np.float64)
    if model in ("plumb_bob", "rational_polynomial"):
        out = cv2.undistortPoints(pts, K, d, P=K)
    elif model == "equidistant":
        if d.size < 4:
            raise GeometryError(f"equidistant distortion needs 4 coefficients, got {d.size}")
        out = cv2.fisheye.undistortPoints(pts, K, d[:4], P=K)
    else:
        raise GeometryError(f"distortion model {model!r} is not supported (use one of {DISTORTION_MODELS})")
    return float(out[0, 0, 0]), float(out[0, 0, 1])


# --------------------------------------------------------------------------- grasp -> pose
DEPTH_STATISTICS = ("median", "min", "mean", "center", "p10", "p25")


def robust_depth(
    depth_m: np.ndarray,
    u: float,
    v: float,
    angle: float,
    width_px: float,
    jaw_px: float,
    statistic: str = "median",
    region_scale: float = 0.5,
) -> float:
    """Depth (metres) over the region between the jaws around ``(u, v)``.

    The region is a rectangle centred on the grasp: ``region_scale × opening`` along the closing
    axis by the jaw size across it (at least 1 pixel). Invalid depth (0, NaN, inf) is ignored.
    ``statistic``: ``median`` (default), ``min`` (nearest surface), ``mean``, ``center`` (the pixel
    at ``(u, v)`` only), ``p10`` / ``p25`` (percentiles, biased towards the nearest surface).
    """
    if statistic not in DEPTH_STATISTICS:
        raise GeometryError(f"unknown depth statistic {statistic!r}: use one of {DEPTH_STATISTICS}")
    h, w = depth_m.shape[:2]
    ui, vi = int(round(u)), int(round(v))
    if not (0 <= ui < w and 0 <= vi < h):
        raise GeometryError(f"grasp centre (u={u:.1f}, v={v:.1f}) lies outside the {w}x{h} depth image")
    if statistic == "center":
        vals = depth_m[vi : vi + 1, ui : ui + 1].reshape(-1)
    else:
        half_a = max(0.5, region_scale * width_px / 2)
        half_j = max(0.5, jaw_px / 2)
        r = int(math.ceil(math.hypot(half_a, half_j)))
        x0, x1 = max(ui - r, 0), min(ui + r + 1, w)
        y0, y1 = max(vi - r, 0), min(vi + r + 1, h)
        patch = depth_m[y0:y1, x0:x1]
        yy, xx = np.mgrid[y0:y1, x0:x1]
        du, dv = xx - u, yy - v
        along = du * math.cos(angle) - dv * math.sin(angle)
        across = du * math.sin(angle) + dv * math.cos(angle)
        inside = (np.abs(along) <= half_a) & (np.abs(across) <= half_j)
        vals = patch[inside]
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if vals.size == 0:
        raise GeometryError(f"no valid depth at the grasp (u={u:.1f}, v={v:.1f}): depth is 0, NaN or inf there")
    if statistic in ("median", "center"):
        return float(np.median(vals))
    if statistic == "min":
        return float(vals.min())
    if statistic == "mean":
        return float(vals.mean())
    return float(np.percentile(vals, float(statistic[1:])))


def grasp_orientation(angle: float, cam: CameraIntrinsics) -> np.ndarray:
    """TCP quaternion in the optical frame: +z = optical axis, +y = metric closing direction."""
    y = np.array([math.cos(angle) / cam.fx, -math.sin(angle) / cam.fy, 0.0])
    y /= np.linalg.norm(y)
    z = np.array([0.0, 0.0, 1.0])
    x = np.cross(y, z)
    return rotation_to_quaternion(np.column_stack([x, y, z]))


def tcp_orientation(closing, approach) -> np.ndarray:
    """TCP quaternion from its closing direction (+y) and approach (+z), both in one frame; the
    closing direction is made perpendicular to the approach first."""
    z = np.asarray(approach, dtype=np.float64)
    z = z / np.linalg.norm(z)
    y = np.asarray(closing, dtype=np.float64)
    y = y - (y @ z) * z
    y = y / np.linalg.norm(y)
    return rotation_to_quaternion(np.column_stack([np.cross(y, z), y, z]))


def image_axis(cam: CameraIntrinsics, point, direction) -> tuple[float, float, float]:
    """``(u, v, angle)``: the pixel of a 3-D ``point`` (optical frame) and the image angle (the grasp
    angle convention, wrapped) of a 3-D ``direction`` at that point."""
    p = np.asarray(point, dtype=np.float64)
    u, v = cam.project(p)[:2]
    tu, tv = cam.project(p + 0.01 * np.asarray(direction, dtype=np.float64))[:2]
    return float(u), float(v), float(wrap_angle(math.atan2(-(tv - v), tu - u)))


def grasp_width_m(width_px: float, angle: float, z: float, cam: CameraIntrinsics) -> float:
    """Opening in metres of ``width_px`` pixels along ``angle`` at depth ``z`` (``w·z/f`` if fx = fy)."""
    return float(width_px * z * math.hypot(math.cos(angle) / cam.fx, math.sin(angle) / cam.fy))


def grasp_pose(
    u: float,
    v: float,
    angle: float,
    width_px: float,
    depth_m: np.ndarray,
    cam: CameraIntrinsics,
    jaw_px: float | None = None,
    statistic: str = "median",
    region_scale: float = 0.5,
    ray_uv: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Full-image grasp -> ``(position, quaternion, width_m, depth)`` in the camera optical frame.

    The depth is read around ``(u, v)`` in the (raw) depth image; the position is deprojected from
    ``ray_uv`` when given (the undistorted pixel, :func:`undistort_pixel`), else from ``(u, v)``.
    """
    jaw = width_px * PREDICTED_JAW_RATIO if jaw_px is None else jaw_px
    z = robust_depth(depth_m, u, v, angle, width_px, jaw, statistic, region_scale)
    position = cam.deproject(*(ray_uv if ray_uv is not None else (u, v)), z)
    return position, grasp_orientation(angle, cam), grasp_width_m(width_px, angle, z, cam), z
