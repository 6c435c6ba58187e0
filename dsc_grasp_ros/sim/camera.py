"""A pinhole RGB-D camera for PyBullet: intrinsics, poses, z-buffer to depth, stereo noise.

Frames
    ``T_world_cam`` (4x4) is the pose of the camera *optical* frame (x right, y down, z forward,
    REP 103) in the world. PyBullet/OpenGL cameras look along their -z with y up; that frame is
    the optical frame rotated by 180 degrees about x.

Pixels
    Pixel centres are at integer coordinates (``u`` column, ``v`` row), as in CameraInfo:
    ``u = fx * X / Z + cx``. The OpenGL projection built by :func:`projection_matrix` reproduces
    exactly this mapping (checked in ``test/test_sim.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.geometry import quaternion_to_rotation, rotation_to_quaternion

#: RealSense D435 colour stream at 640x480 (typical factory values).
D435_WIDTH, D435_HEIGHT = 640, 480
D435_FX = D435_FY = 615.0
D435_CX, D435_CY = 320.0, 240.0
#: Stereo baseline of the D435 depth module (m).
D435_BASELINE = 0.050

#: Clip planes used for rendering (m). Depth resolution at 0.7 m is ~1e-6 m with these.
NEAR, FAR = 0.05, 3.0


@dataclass
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def d435(cls, width: int = D435_WIDTH, height: int = D435_HEIGHT) -> "Intrinsics":
        """D435-like intrinsics, scaled for another image size (same field of view)."""
        s = width / D435_WIDTH
        return cls(width, height, D435_FX * s, D435_FY * s, D435_CX * s, D435_CY * height / D435_HEIGHT)

    def as_dict(self) -> dict:
        return {"width": self.width, "height": self.height, "K": self.K.tolist()}


# --------------------------------------------------------------------------- rotations
# one implementation of the quaternion conventions, in the core
quat_to_matrix = quaternion_to_rotation
matrix_to_quat = rotation_to_quaternion


def pose_matrix(position, R) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = position
    return T


def pose_to_xyzquat(T) -> list[float]:
    """4x4 pose -> ``[x, y, z, qx, qy, qz, qw]``."""
    T = np.asarray(T, dtype=np.float64)
    return [float(c) for c in T[:3, 3]] + [float(c) for c in matrix_to_quat(T[:3, :3])]


def look_at(eye, target, roll: float = 0.0) -> np.ndarray:
    """Optical-frame pose at ``eye`` whose +z points at ``target``; ``roll`` turns it about +z.

    At ``roll = 0`` the image x axis is as close as possible to world +x (or +y when looking
    along x).
    """
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    ref = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = ref - z * (ref @ z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = math.cos(roll), math.sin(roll)
    x, y = c * x + s * y, -s * x + c * y
    return pose_matrix(eye, np.column_stack([x, y, z]))


# --------------------------------------------------------------------------- OpenGL matrices
_OPTICAL_TO_GL = np.diag([1.0, -1.0, -1.0])
#: TinyRenderer's sample position of a pixel in continuous window coordinates (see below).
_TINY_DU, _TINY_DV = 0.0, 1.0


def view_matrix(T_world_cam) -> list[float]:
    """PyBullet (column-major OpenGL) view matrix for an optical-frame camera pose."""
    T = np.asarray(T_world_cam, dtype=np.float64)
    T_gl = pose_matrix(T[:3, 3], T[:3, :3] @ _OPTICAL_TO_GL)
    return np.linalg.inv(T_gl).T.reshape(-1).tolist()


def projection_matrix(intr: Intrinsics, near: float = NEAR, far: float = FAR) -> list[float]:
    """PyBullet (column-major OpenGL) projection matrix reproducing ``K`` exactly.

    Derivation: a GL camera point ``(x, y, z)`` has optical coordinates ``(x, -y, -z)``; NDC x
    is ``2 (u + du) / W - 1`` and NDC y is ``1 - 2 (v + dv) / H`` (row 0 is the top), where
    ``(du, dv)`` is where the renderer samples pixel ``(u, v)`` in continuous window
    coordinates. TinyRenderer samples at pixel corners (``du = 0``) and counts rows from the
    bottom (``dv = 1``); measured, see ``test_projection_matches_K``.
    """
    W, H = intr.width, intr.height
    P = np.zeros((4, 4))
    P[0, 0] = 2 * intr.fx / W
    P[0, 2] = 1 - 2 * (intr.cx + _TINY_DU) / W
    P[1, 1] = 2 * intr.fy / H
    P[1, 2] = 2 * (intr.cy + _TINY_DV) / H - 1
    P[2, 2] = -(far + near) / (far - near)
    P[2, 3] = -2 * far * near / (far - near)
    P[3, 2] = -1.0
    return P.T.reshape(-1).tolist()


def zbuffer_to_depth(zbuf, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """OpenGL depth-buffer values in [0, 1] -> metric depth along the optical axis (float32).

    Pixels at the far plane (nothing rendered) become ``far``.
    """
    b = np.asarray(zbuf, dtype=np.float64)
    return (far * near / (far - (far - near) * b)).astype(np.float32)


# --------------------------------------------------------------------------- geometry
def project(points_world, T_world_cam, K) -> tuple[np.ndarray, np.ndarray]:
    """World points (Nx3) -> pixels (Nx2) and depths (N,)."""
    T = np.asarray(T_world_cam, dtype=np.float64)
    p = (np.asarray(points_world, dtype=np.float64).reshape(-1, 3) - T[:3, 3]) @ T[:3, :3]
    uv = (p @ np.asarray(K).T)[:, :2] / p[:, 2:3]
    return uv, p[:, 2]


def deproject(u, v, depth, K, T_world_cam=None) -> np.ndarray:
    """Pixels and depths -> 3-D points (Nx3) in the camera frame, or in the world with a pose."""
    K = np.asarray(K, dtype=np.float64)
    u, v, z = (np.asarray(a, dtype=np.float64).reshape(-1) for a in np.broadcast_arrays(u, v, depth))
    p = np.column_stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z])
    if T_world_cam is not None:
        T = np.asarray(T_world_cam, dtype=np.float64)
        p = p @ T[:3, :3].T + T[:3, 3]
    return p


# --------------------------------------------------------------------------- stereo noise
def _smooth_noise(rng: np.random.Generator, shape, cell: int) -> np.ndarray:
    """Zero-mean, unit-variance, spatially smooth noise (bilinear upsampling of a coarse grid)."""
    import cv2

    h, w = shape
    g = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
    up = cv2.resize(g, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)
    return up[cell : cell + h, cell : cell + w] / max(float(up.std()), 1e-6)


def _hidden_from_right(d: np.ndarray) -> np.ndarray:
    """Pixels a second viewpoint at ``+B`` along the image x axis cannot see, from the disparity ``d``
    (pixels, ``f B / Z``) of every pixel: that viewpoint sees pixel ``u`` at ``u - d(u)``, so a surface
    is hidden when a pixel further right lands at or left of it (the band left of foreground edges)."""
    h, w = d.shape
    x = np.arange(w)[None, :] - d
    run = np.minimum.accumulate(x[:, ::-1], axis=1)[:, ::-1]
    right_min = np.concatenate([run[:, 1:], np.full((h, 1), np.inf)], axis=1)
    return right_min < x - 0.5


def stereo_depth(
    depth,
    K,
    rng: np.random.Generator,
    baseline: float = D435_BASELINE,
    disparity_sigma: float = 0.08,
    hole_value: float = -1.0,
    hole_fraction: float = 0.01,
    grazing_cos: float = 0.12,
) -> np.ndarray:
    """A D435-like active-stereo depth image from a perfect depth image (float32 metres).

    The noise model works on disparity ``d = f B / Z`` (so depth noise grows with ``Z^2``):
    per-pixel Gaussian and smooth low-frequency disparity noise, 1/32-pixel sub-pixel
    quantisation; holes (``hole_value``) where the second imager cannot see the surface (the
    occlusion band left of foreground edges), at depth discontinuities, on surfaces seen at
    grazing angles and in random blobs (texture-less / specular dropouts). Jacquard marks its
    stereo holes with -1; a RealSense driver publishes 0.
    """
    import cv2

    Z = np.asarray(depth, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    h, w = Z.shape
    f = K[0, 0]
    d = f * baseline / np.maximum(Z, 1e-6)
    noise = disparity_sigma * (rng.standard_normal((h, w)) + 0.7 * _smooth_noise(rng, (h, w), 24))
    dn = np.round((d + noise) * 32.0) / 32.0
    out = f * baseline / np.maximum(dn, 1e-6)

    holes = np.zeros((h, w), bool)
    holes |= _hidden_from_right(d)  # the second imager (at +B along x) cannot see these
    # Depth discontinuities (flying pixels are dropped, as the D435's filters do).
    gy, gx = np.gradient(Z)
    jump = np.hypot(gx, gy) > 0.01 * Z
    holes |= cv2.dilate(jump.astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool) & (rng.random((h, w)) < 0.6)
    # Grazing angles: surface normal almost perpendicular to the viewing ray.
    fx, fy = K[0, 0], K[1, 1]
    dzdx, dzdy = gx * fx / Z, gy * fy / Z  # depth change per metre across the image plane
    cos = 1.0 / np.sqrt(1.0 + dzdx**2 + dzdy**2)
    holes |= cos < grazing_cos
    # Random blob dropouts.
    if hole_fraction > 0:
        blob = _smooth_noise(rng, (h, w), 12)
        holes |= blob > np.quantile(blob, 1.0 - hole_fraction)
    out[holes] = hole_value
    return out.astype(np.float32)


@dataclass(frozen=True)
class RealSenseSensor:
    """The ranges :func:`realsense_depth` draws its per-view sensor parameters from (uniform), and its fixed ones."""

    name: str = "d4xx"
    focal_ratio: tuple[float, float] = (0.55, 0.85)  # depth imager's focal length / colour camera's
    baseline_m: tuple[float, float] = (0.050, 0.055)
    disparity_sigma_px: tuple[float, float] = (0.05, 0.12)
    blob_holes: tuple[float, float] = (0.002, 0.015)  # fraction of the image in random dropout blobs
    edge_px: tuple[int, int] = (1, 4)  # extra edge dropout width, integer in [lo, hi)
    depth_unit: float = 0.001
    min_range: float = 0.0  # nearer surfaces are holes (min-Z)


#: The D415/D435 family (the ``v2`` data set): a separate depth module with a wider field of view, 50-55 mm baseline.
D4XX = RealSenseSensor()
#: A D405 (close range, ideal 7-50 cm): colour comes from the left imager of the stereo pair, so depth and colour
#: share the focal length; 18 mm baseline, 0.1 mm default depth unit, min-Z about 7 cm. Intel RealSense D400
#: series datasheet (D405: baseline 18 mm, ideal range 7-50 cm, depth FOV 87 x 58 degrees).
D405 = RealSenseSensor(name="d405", focal_ratio=(1.0, 1.0), baseline_m=(0.018, 0.018), disparity_sigma_px=(0.05, 0.1),
                       blob_holes=(0.002, 0.02), edge_px=(1, 3), depth_unit=0.0001, min_range=0.07)
REALSENSE_SENSORS = {s.name: s for s in (D4XX, D405)}


def _dark_and_shiny_holes(rng: np.random.Generator, rgb, seg, shiny, shape) -> tuple[np.ndarray, int, int]:
    """Dropouts of an active depth sensor on dark surfaces (rendered luma below 25-50 of 255: mostly holes)
    and on shiny objects (body ids ``shiny`` in ``seg``: highlights and 10-40 % of their pixels in blobs)
    -> ``(holes, dark hole pixels, shiny hole pixels)``."""
    h, w = shape
    holes = np.zeros((h, w), bool)
    luma = np.asarray(rgb, dtype=np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    dark = luma < float(rng.uniform(25, 50))
    dark_holes = dark & (_smooth_noise(rng, (h, w), 8) > -0.8)
    n_dark = int(dark_holes.sum())
    holes |= dark_holes
    n_shiny = 0
    if seg is not None and len(shiny):
        on = np.isin(seg, list(shiny))
        if on.any():
            frac = float(rng.uniform(0.1, 0.4))
            noise = _smooth_noise(rng, (h, w), 5)
            thr = np.quantile(noise[on], 1.0 - frac)
            sh = on & ((noise > thr) | (luma > 235))
            n_shiny = int(sh.sum())
            holes |= sh
    return holes, n_dark, n_shiny


def realsense_depth(
    depth,
    K,
    rng: np.random.Generator,
    rgb=None,
    seg=None,
    shiny=(),
    hole_value: float = -1.0,
    depth_unit: float | None = None,
    max_range: float = FAR - 0.01,
    sensor: RealSenseSensor = D4XX,
) -> tuple[np.ndarray, dict]:
    """A RealSense-D4xx-like depth image aligned to the colour camera (float32 metres) and its parameters.

    Built on :func:`stereo_depth` (disparity noise, so the error grows with ``Z^2``; 1/32-pixel
    sub-pixel quantisation; occlusion, discontinuity, grazing-angle and blob holes) with the
    depth imager's own geometry: its focal length is ``ratio`` times the colour camera's and the
    baseline ``B``, so the disparity error ``sigma`` (pixels, per image) becomes
    ``Z^2 / (f_depth B) * sigma`` in depth. ``sensor`` gives their ranges: :data:`D4XX` (default;
    ratio 0.55-0.85, as the D435's depth field of view is wider and the D415's close to the colour one;
    B 50-55 mm; sigma 0.05-0.12 px) or :data:`D405` (ratio 1, B 18 mm, 0.1 mm depth unit, nothing
    nearer than 7 cm). On top:

    * edges: the holes at depth discontinuities are widened by 1-3 px (D4xx edge dropouts);
    * dark surfaces (rendered luma below 25-50 of 255, from ``rgb``): mostly holes (no texture
      for the projector pattern to beat);
    * shiny objects (body ids ``shiny`` in ``seg``): highlights and 10-40 % of their pixels in
      blobs become holes;
    * quantisation to ``depth_unit`` (default the sensor's: 1 mm on the D4xx, 0.1 mm on the D405);
    * nothing beyond ``max_range`` (default: just short of the renderer's far plane, 3 m) or nearer than
      the sensor's ``min_range``.
    """
    import cv2

    Z = np.asarray(depth, dtype=np.float64)
    h, w = Z.shape
    unit = sensor.depth_unit if depth_unit is None else depth_unit
    ratio = float(rng.uniform(*sensor.focal_ratio))
    baseline = float(rng.uniform(*sensor.baseline_m))
    sigma = float(rng.uniform(*sensor.disparity_sigma_px))
    blob = float(rng.uniform(*sensor.blob_holes))
    out = stereo_depth(Z, K, rng, baseline=baseline * ratio, disparity_sigma=sigma, hole_value=hole_value, hole_fraction=blob)
    holes = out == hole_value
    # wider dropouts along depth edges
    gy, gx = np.gradient(Z)
    jump = (np.hypot(gx, gy) > 0.01 * Z).astype(np.uint8)
    edge_px = int(rng.integers(*sensor.edge_px))
    wide = cv2.dilate(jump, np.ones((2 * edge_px + 1, 2 * edge_px + 1), np.uint8)).astype(bool)
    holes |= wide & (_smooth_noise(rng, (h, w), 6) > -0.5)
    n_dark = n_shiny = 0
    if rgb is not None:
        surface, n_dark, n_shiny = _dark_and_shiny_holes(rng, rgb, seg, shiny, (h, w))
        holes |= surface
    holes |= Z >= max_range  # beyond the sensor's range (and the renderer's far plane)
    if sensor.min_range > 0:
        holes |= Z < sensor.min_range
    q = np.round(out / unit) * unit
    q[holes] = hole_value
    info = {
        "depth_focal_ratio": round(ratio, 4),
        "baseline_m": round(baseline, 5),
        "disparity_sigma_px": round(sigma, 4),
        "blob_hole_fraction": round(blob, 4),
        "edge_hole_px": edge_px,
        "dark_hole_pixels": n_dark,
        "shiny_hole_pixels": n_shiny,
        "hole_fraction": round(float(holes.mean()), 5),
        "depth_unit_m": unit,
    }
    if sensor != D4XX:  # the v2 data set's manifests name no sensor
        info = {"sensor": sensor.name, **info, "min_range_m": sensor.min_range}
    return q.astype(np.float32), info


# --------------------------------------------------------------------------- structured light (Kinect v1)
# Sources of the numbers below:
# * axial noise: C. V. Nguyen, S. Izadi, D. Lovell, "Modeling Kinect sensor noise for improved 3D reconstruction
#   and tracking", 3DIMPVT 2012: sigma_z(z, theta) = 0.0012 + 0.0019 (z - 0.4)^2
#   + 0.0001 / sqrt(z) * theta^2 / (pi/2 - theta)^2 m (z in m, theta the surface angle to the camera,
#   fitted for 10-60 degrees), and lateral noise sigma_L = 0.8 + 0.035 theta / (pi/2 - theta) px;
# * geometry and quantisation: K. Konolige, P. Mihelich, "Technical description of Kinect calibration" (ROS wiki,
#   kinect_calibration/technical, 2011): the IR camera and the IR projector form a stereo pair with a baseline
#   of about 7.5 cm, the IR camera's focal length is about 580 px at 640x480, the disparity is interpolated to
#   1/8 pixel (raw disparity = 8 x pixels), found with a 9x9 or 9x7 correlation window; hence depth comes in
#   steps of z^2 / (8 f b) (K. Khoshelham, S. O. Elberink, "Accuracy and resolution of Kinect depth data for
#   indoor mapping applications", Sensors 12(2), 2012: resolution and random error growing with z^2), and the
#   projector beside the camera leaves a shadow (no pattern, no depth) next to foreground objects, on the side
#   away from the projector.
KINECT_FOCAL_PX = 580.0
KINECT_BASELINE = 0.075
KINECT_DISPARITY_STEP = 1.0 / 8.0


def kinect_sigma_z(z, theta=0.0) -> np.ndarray:
    """Kinect v1 axial noise (standard deviation, m) at depth ``z`` (m) on a surface at ``theta`` (rad) to
    the camera: Nguyen, Izadi and Lovell (2012), the angle term capped at 75 degrees."""
    z = np.asarray(z, dtype=np.float64)
    t = np.minimum(np.asarray(theta, dtype=np.float64), math.radians(75.0))
    return 0.0012 + 0.0019 * (z - 0.4) ** 2 + 0.0001 / np.sqrt(np.maximum(z, 1e-3)) * t**2 / (math.pi / 2 - t) ** 2


def kinect_depth(
    depth,
    K,
    rng: np.random.Generator,
    rgb=None,
    seg=None,
    shiny=(),
    hole_value: float = -1.0,
    projector_side: int = 1,
    min_range: float = 0.4,
    max_range: float = FAR - 0.01,
    grazing_cos: float = 0.15,
) -> tuple[np.ndarray, dict]:
    """A Kinect-v1-like (structured light) depth image aligned to the colour camera (float32 metres) and its
    parameters (sources above :data:`KINECT_FOCAL_PX`).

    * axial noise of standard deviation :func:`kinect_sigma_z` (with the surface angle), half of its
      variance spatially smooth, drawn in disparity and quantised to 1/8-pixel disparity steps of the
      Kinect's IR camera (580 px, 7.5 cm baseline, whatever the image size): the values lie on
      ``580 * 0.075 / (k / 8)``, and the noise before quantisation is reduced so that noise and
      quantisation together have the standard deviation of the model;
    * lateral noise at depth edges: the depth there is taken from a pixel displaced by 0.8 Kinect pixels
      (standard deviation, scaled to the image), so the edges are ragged;
    * the projector shadow: the IR projector sits 7.5 cm beside the camera (``projector_side`` +1: at +x of
      the image, the shadow band lies left of foreground objects; -1: right of them), and surfaces it
      cannot light get no depth;
    * holes at depth discontinuities (1-2 px, in clumps), on surfaces seen at grazing angles, on dark and
      shiny surfaces (as :func:`realsense_depth`), in a few small blobs, and nearer than ``min_range`` or
      beyond ``max_range``.
    """
    import cv2

    Z = np.asarray(depth, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    h, w = Z.shape
    f_img = K[0, 0]
    fb = KINECT_FOCAL_PX * KINECT_BASELINE
    step = KINECT_DISPARITY_STEP
    gy, gx = np.gradient(Z)
    jump = (np.hypot(gx, gy) > 0.01 * Z).astype(np.uint8)
    # lateral noise: near depth edges, the depth of a displaced pixel
    lateral_px = 0.8 * f_img / KINECT_FOCAL_PX
    du, dv = rng.normal(0.0, lateral_px, (2, h, w))
    near_edge = cv2.dilate(jump, np.ones((5, 5), np.uint8)).astype(bool)
    vv, uu = np.mgrid[0:h, 0:w]
    src = Z[np.clip(np.round(vv + dv), 0, h - 1).astype(int), np.clip(np.round(uu + du), 0, w - 1).astype(int)]
    Zl = np.where(near_edge, src, Z)
    # axial noise in disparity, then 1/8-pixel quantisation
    fx, fy = K[0, 0], K[1, 1]
    cos = 1.0 / np.sqrt(1.0 + (gx * fx / Z) ** 2 + (gy * fy / Z) ** 2)
    theta = np.arccos(np.clip(cos, 0.0, 1.0))
    sigma_d = kinect_sigma_z(Zl, theta) * fb / np.maximum(Zl, 1e-6) ** 2
    sigma_n = np.sqrt(np.maximum(sigma_d**2 - step**2 / 12.0, 0.0))
    noise = math.sqrt(0.5) * rng.standard_normal((h, w)) + math.sqrt(0.5) * _smooth_noise(rng, (h, w), 8)
    d = fb / np.maximum(Zl, 1e-6) + sigma_n * noise
    dq = np.maximum(np.round(d / step), 1.0) * step
    out = fb / dq

    holes = np.zeros((h, w), bool)
    # the projector shadow, in the image's own pixels
    dp = f_img * KINECT_BASELINE / np.maximum(Zl, 1e-6)
    holes |= _hidden_from_right(dp) if projector_side > 0 else _hidden_from_right(dp[:, ::-1])[:, ::-1]
    # edges: the correlation window straddles the discontinuity
    edge_px = int(rng.integers(1, 3))
    band = cv2.dilate(jump, np.ones((2 * edge_px + 1, 2 * edge_px + 1), np.uint8)).astype(bool)
    holes |= band & (_smooth_noise(rng, (h, w), 4) > -0.3)
    holes |= cos < grazing_cos
    blob = float(rng.uniform(0.0002, 0.002))
    blobs = _smooth_noise(rng, (h, w), 10)
    holes |= blobs > np.quantile(blobs, 1.0 - blob)
    n_dark = n_shiny = 0
    if rgb is not None:
        surface, n_dark, n_shiny = _dark_and_shiny_holes(rng, rgb, seg, shiny, (h, w))
        holes |= surface
    holes |= (Z < min_range) | (Z >= max_range)
    out[holes] = hole_value
    valid = ~holes
    info = {
        "sensor": "kinect_v1",
        "focal_px": KINECT_FOCAL_PX,
        "baseline_m": KINECT_BASELINE,
        "disparity_step_px": step,
        "projector_side": int(np.sign(projector_side)),
        "lateral_sigma_px": round(float(lateral_px), 4),
        "sigma_z_median_m": round(float(np.median(kinect_sigma_z(Z[valid], theta[valid]))), 6) if valid.any() else None,
        "edge_hole_px": edge_px,
        "blob_hole_fraction": round(blob, 4),
        "dark_hole_pixels": n_dark,
        "shiny_hole_pixels": n_shiny,
        "hole_fraction": round(float(holes.mean()), 5),
        "range_m": [min_range, round(max_range, 4)],
    }
    return out.astype(np.float32), info


# --------------------------------------------------------------------------- random cameras
@dataclass(frozen=True)
class CameraConfig:
    """How a synthetic scene's camera is drawn (pose around the scene centre, jittered D435 intrinsics)."""

    #: ``vertical``: height above the support, uniform (the camera sits at height / cos(tilt) along its
    #: axis); otherwise the distance along the optical axis, log-uniform.
    distance: tuple[float, float] = (0.35, 0.7)
    vertical: bool = True
    max_tilt_deg: float = 20.0  # tilt from vertical, uniform in 0..max
    focal_jitter: tuple[float, float] = (0.98, 1.02)  # times the D435 colour focal length
    aspect_jitter: tuple[float, float] = (0.998, 1.002)  # fy = fx times this
    principal: str = "d435"  # principal point before jitter: "d435" (the D435's, scaled) or "centre" (image centre)
    principal_jitter_px: float = 4.0  # +- pixels at 640x480
    target_jitter: float = 0.0  # +- metres in x and y around the scene centre (0: no draw)


def sample_camera(rng: np.random.Generator, target, support_z: float, cfg: CameraConfig = CameraConfig(),
                  width: int = D435_WIDTH, height: int = D435_HEIGHT) -> tuple[np.ndarray, Intrinsics, dict]:
    """A random camera looking at ``target`` on the support -> ``(T_world_cam, intrinsics, pose info)``.

    Tilt and azimuth are uniform, the roll about the optical axis is random; the pose info holds the
    distance along the optical axis and the tilt.
    """
    base = Intrinsics.d435(width, height)
    s = width / D435_WIDTH
    f = base.fx * float(rng.uniform(*cfg.focal_jitter))
    fy = f * float(rng.uniform(*cfg.aspect_jitter))
    cx, cy = (base.cx, base.cy) if cfg.principal == "d435" else (width / 2, height / 2)
    j = cfg.principal_jitter_px
    intr = Intrinsics(width, height, f, fy, cx + float(rng.uniform(-j, j)) * s, cy + float(rng.uniform(-j, j)) * s)
    lo, hi = cfg.distance
    r = float(rng.uniform(lo, hi)) if cfg.vertical else float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    tilt = math.radians(float(rng.uniform(0.0, cfg.max_tilt_deg)))
    az = float(rng.uniform(0, 2 * math.pi))
    t = np.array([target[0], target[1], support_z], dtype=np.float64)
    if cfg.target_jitter:
        t = t + np.r_[rng.uniform(-cfg.target_jitter, cfg.target_jitter, 2), 0.0]
    dist = r / math.cos(tilt) if cfg.vertical else r
    eye = t + np.array([math.sin(tilt) * math.cos(az), math.sin(tilt) * math.sin(az), math.cos(tilt)]) * dist
    T = look_at(eye, t, roll=float(rng.uniform(0, 2 * math.pi)))
    return T, intr, {"distance_m": round(dist, 4), "tilt_deg": round(math.degrees(tilt), 3)}


# --------------------------------------------------------------------------- colour sensor
@dataclass(frozen=True)
class ColourSensor:
    """Colour-camera effects on a rendered image: exposure, white balance, (gamma, vignetting), blur, noise.

    With ``gamma`` the exposure is applied to intensities in [0, 1] and clipped, then a gamma curve
    and vignetting; without, the gains scale 0-255 values directly (the milder model).
    """

    exposure: tuple[float, float] = (0.85, 1.15)
    white_balance: tuple[float, float] = (0.95, 1.05)  # per channel
    gamma: tuple[float, float] | None = None
    vignetting: float = 0.0  # probability of a radial fall-off of up to ``vignetting_strength``
    vignetting_strength: float = 0.35
    blur: float = 0.5  # probability of a 3x3 Gaussian blur
    blur_sigma: tuple[float, float] = (0.3, 0.8)
    noise_sigma: tuple[float, float] = (0.5, 2.5)  # Gaussian noise, sigma in 0-255 units


def sensor_rgb(rgb: np.ndarray, rng: np.random.Generator, cfg: ColourSensor = ColourSensor()) -> np.ndarray:
    """``rgb`` (uint8) as seen through the colour sensor ``cfg``."""
    import cv2

    if cfg.gamma is None:
        x = rgb.astype(np.float32) * rng.uniform(*cfg.exposure) * rng.uniform(*cfg.white_balance, 3)
    else:
        x = rgb.astype(np.float32) / 255.0
        x = np.clip(x * rng.uniform(*cfg.exposure) * rng.uniform(*cfg.white_balance, 3), 0, 1) ** rng.uniform(*cfg.gamma)
        if cfg.vignetting and rng.random() < cfg.vignetting:
            h, w = x.shape[:2]
            yy, xx = np.mgrid[0:h, 0:w]
            r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
            x *= (1 - rng.uniform(0.0, cfg.vignetting_strength) * r2)[..., None].astype(np.float32)
        x *= 255.0
    if rng.random() < cfg.blur:
        x = cv2.GaussianBlur(x, (3, 3), rng.uniform(*cfg.blur_sigma))
    noise = rng.normal(0.0, rng.uniform(*cfg.noise_sigma), x.shape)
    x += noise if cfg.gamma is None else noise.astype(np.float32)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)
