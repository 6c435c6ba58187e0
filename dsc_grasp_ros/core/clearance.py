"""Finger clearance: will the open fingers reach past the object, or land on it? No ROS imports.

The network says where to close and how wide; it does not see the fingers. A parallel gripper
that descends with its fingers open needs free space beside the object for both fingers, down to
below the grasp surface. When a finger's footprint holds a surface at about the grasp's own
height (the rim of a can, the flank of a bottle), the finger lands on it and the hand stops short:
the benchmark's most common failure of every learnt policy (``collision_on_descent``, docs/bench.md).

:func:`fit_fingers` reads the depth image along the grasp's closing axis and returns the grasp
moved (its centre along the axis, its opening) to the nearest finger placement whose two
footprints are clear, or ``None`` when no placement within the gripper's opening is clear.

The model, in the grasp's closing-axis coordinate ``s`` (metres from the grasp centre):

* **Profile**: for each ``s`` (one image pixel apart), the nearest valid depth across the finger's
  width (``FingerGeometry.width`` across the axis). Invalid depth (0, NaN, inf: holes, shadows
  beside objects) is unknown and counts as free.
* **Blocked**: a sample nearer than ``z + need``, with ``z`` the grasp depth (the surface between
  the jaws) and ``need = min(depth, 0.75 x (background - z))``: the fingertips must reach
  ``FingerGeometry.depth`` beyond the grasp surface, or most of the way down to the background
  (the 90th percentile of the profile: the table beside a lone object) for objects lower than that.
* **Placement**: inner faces at ``-l`` and ``+r``; the left finger occupies ``[-l - t, -l]`` and the
  right ``[r, r + t]``, each padded by ``pad`` (``t`` = thickness), and both must be unblocked.
  The closing region ``[-l, r]`` must hold a blocked sample (the object) and ``l + r`` may not
  exceed the gripper's ``max_opening``.
* **Plan**: the controller opens the published width plus ``margin`` per side (a common habit of
  grasp executors; the benchmark's executor does it, with 1 cm), so the planned faces are at
  ``l0 = r0 = width / 2 + margin``. The placement nearest to it (smallest ``|l - l0| + |r - r0|``)
  wins; the returned grasp has its centre at ``(r - l) / 2`` along the axis and the width
  ``l + r - 2 x margin`` (so that the controller's opening is ``l + r``).

* **Turns**: when the axis as planned has no placement, it is turned about the grasp centre in
  10-degree steps (±10, ±20, ... up to ``max_turn``); the smallest turn with a placement wins.

Without an ``approach`` (the optical axis) the footprint of a finger is its column along the
viewing ray and the profile is read straight from the image (one sample per pixel along the axis,
every second pixel across it when the band is 9 px or wider). With an ``approach`` more than 2
degrees off the optical axis (a gripper descending vertically under a tilted camera) the depth
image is read as a point cloud: heights are measured along the approach and footprints across it
(:func:`approach_profiles`), with the same placement search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .conventions import wrap_angle
from .geometry import CameraIntrinsics, grasp_width_m, image_axis, tcp_orientation

__all__ = ["FINGER_CHECK_MODES", "FINGER_CHECK_HELP", "FingerGeometry", "FingerFit", "fit_fingers", "fitted_pose",
           "finger_profile", "approach_profiles", "image_closing_direction"]

#: ``DetectorConfig.finger_check`` choices and what each means.
FINGER_CHECK_MODES = ("prefer", "require", "off")
FINGER_CHECK_HELP = {
    "prefer": "grasps whose fingers clear the object in the depth image (moved to the nearest clear placement) come "
              "first; the others follow, unmoved, in quality order",
    "require": "only grasps with a clear finger placement are kept; the others are rejected (fingers_blocked)",
    "off": "no finger check: the network's grasps as decoded (wider than max_gripper_opening: rejected)",
}

#: Share of the object's height above the background the fingertips must clear when the object
#: is lower than ``FingerGeometry.depth`` (a flat object: the fingers go down to the table beside it).
LOW_OBJECT_SHARE = 0.75
#: Background = this percentile of the profile's valid depths (the table beside a lone object).
BACKGROUND_PERCENTILE = 90.0
#: Smallest height step (m) treated as an obstacle: below it, depth noise.
MIN_STEP = 0.003
#: Most samples read across the closing axis per position along it.
MAX_ACROSS = 64


def _image_reach(depth_m: np.ndarray) -> int:
    """The image diagonal in pixels: no profile needs to reach further from a grasp in the image."""
    h, w = depth_m.shape[:2]
    return int(math.ceil(math.hypot(h, w))) + 1


@dataclass(frozen=True)
class FingerGeometry:
    """The fingers as the depth check sees them (defaults: Franka/Panda hand, metres)."""

    #: Extent of one finger along the closing axis.
    thickness: float = 0.010
    #: Extent of one finger across the closing axis (the jaw).
    width: float = 0.020
    #: How far beyond the grasp surface the fingertips must reach.
    depth: float = 0.020
    #: Free space kept around each finger's footprint along the axis (depth noise, tracking error).
    pad: float = 0.003
    #: Per-side margin the controller adds to the published width when it opens the gripper.
    margin: float = 0.010
    #: Widest opening of the gripper.
    max_opening: float = 0.08


@dataclass
class FingerFit:
    """A grasp moved to clear finger footprints (full-image pixels; ``width_px`` as published)."""

    u: float
    v: float
    angle: float
    width_px: float
    shift_m: float  # how far the centre moved along the closing axis (+ = towards +s)
    opening_m: float  # the controller's opening l + r the check cleared
    moved: bool  # False: the plan was clear as it was
    turn: float = 0.0  # how far the closing axis turned (radians, counter-clockwise)
    #: With an ``approach`` direction: the grasp's surface point (m) and its unit closing direction
    #: (perpendicular to the approach) in the camera optical frame; None otherwise.
    position: np.ndarray | None = None
    closing: np.ndarray | None = None
    #: The published width (m): the cleared opening less the controller's two margins.
    width_m: float = 0.0


def _profiles(depth_m: np.ndarray, u: float, v: float, angles: np.ndarray, half_len_px: int, half_band_px: int) -> np.ndarray:
    """:func:`finger_profile` along several closing axes at once: ``(len(angles), 2 half_len_px + 1)``."""
    h, w = depth_m.shape[:2]
    s = np.arange(-half_len_px, half_len_px + 1, dtype=np.float64)[None, :, None]
    # across the axis every second pixel once the band is 9 px or wider (2 px stay below the size of
    # anything a finger could land on: 1.6 mm at 0.5 m for a 615 px focal length)
    step = 2 if half_band_px >= 4 else 1
    # at most MAX_ACROSS samples across (a band that wide only comes from an extreme focal length)
    step = max(step, int(math.ceil((2 * half_band_px + 1) / MAX_ACROSS)))
    j = np.arange(-half_band_px, half_band_px + 1, step, dtype=np.float64)[None, None, :]
    ca, sa = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    # closing axis (du, dv) = (cos, -sin); across it (sin, cos)
    uu = np.rint(u + s * ca + j * sa).astype(np.int64)
    vv = np.rint(v - s * sa + j * ca).astype(np.int64)
    outside = (uu < 0) | (uu >= w) | (vv < 0) | (vv >= h)
    vals = np.asarray(depth_m)[np.clip(vv, 0, h - 1), np.clip(uu, 0, w - 1)].astype(np.float64)
    vals[outside | ~np.isfinite(vals) | (vals <= 0)] = np.inf
    return vals.min(axis=2)


def finger_profile(depth_m: np.ndarray, u: float, v: float, angle: float, half_len_px: int, half_band_px: int) -> np.ndarray:
    """Nearest valid depth across a band of ``2 half_band_px + 1`` pixels at each integer pixel
    offset ``-half_len_px..half_len_px`` along the closing axis through ``(u, v)`` (nearest-pixel
    sampling). ``inf`` where no pixel of the band is valid or inside the image."""
    return _profiles(depth_m, u, v, np.array([angle], dtype=np.float64), half_len_px, half_band_px)[0]


def fit_fingers(
    depth_m: np.ndarray,
    cam: CameraIntrinsics,
    u: float,
    v: float,
    angle: float,
    width_px: float,
    z: float,
    fingers: FingerGeometry = FingerGeometry(),
    max_turn: float = 0.0,
    turn_step: float = math.radians(10.0),
    approach: np.ndarray | None = None,
) -> FingerFit | None:
    """The grasp ``(u, v, angle, width_px)`` at depth ``z`` moved to the nearest placement whose
    finger footprints are clear (module docstring), or ``None`` when there is none.

    ``max_turn`` (radians): when the closing axis as planned has no clear placement, turn it about
    the grasp centre by ``turn_step``, ``-turn_step``, ``2 turn_step``, ... up to ``max_turn`` and
    take the first turned axis that has one (the smallest turn wins; the grasp centre stays). The
    turned axes are evaluated together (one set of array operations, not one per axis).

    ``approach`` (unit 3-vector in the camera optical frame, e.g. the robot base's -z for a gripper
    that descends vertically under a tilted camera): the fingers descend along it instead of along
    the viewing ray. The depth image is then read as a point cloud: heights are measured along
    ``approach`` and footprints across it (:func:`approach_profiles`); the result carries the 3-D
    ``position`` and ``closing`` direction. Within 2 degrees of the optical axis the image profile
    is used (the same geometry, cheaper).
    """
    if approach is not None:
        a = np.asarray(approach, dtype=np.float64)
        a = a / np.linalg.norm(a)
        if not a[2] > 0:
            raise ValueError(f"approach {a.round(3).tolist()} points towards the camera (its z must be > 0 in the optical frame)")
        if a[2] > math.cos(math.radians(2.0)):
            approach = None
    n_turns = int(math.floor(max_turn / turn_step + 1e-9)) if turn_step > 0 else 0
    turns = [((k + 1) // 2) * turn_step * (1 if k % 2 else -1) for k in range(1, 2 * n_turns + 1)]
    fit_axes = _fit_axes if approach is None else _fit_axes_3d
    extra = () if approach is None else (a,)
    fit = fit_axes(depth_m, cam, u, v, angle, width_px, z, fingers, np.zeros(1), *extra)
    # the turns in two batches (up to 30 degrees, then the rest): the smallest turn wins, so a clear
    # placement in the first batch makes the second unnecessary
    for batch in (turns[:6], turns[6:]):
        if fit is not None or not batch:
            break
        fit = fit_axes(depth_m, cam, u, v, angle, width_px, z, fingers, np.array(batch), *extra)
    return fit


def _placement(prof: np.ndarray, bpm: np.ndarray, width_m: float, f: FingerGeometry, n: int, turns: np.ndarray):
    """The placement search shared by both profiles.

    ``prof`` (A, 2n+1): height (m) of the nearest surface beyond the grasp surface along the
    approach at each bin along each axis (inf: unknown); ``bpm`` (A,): bins per metre along each
    axis. Returns ``(k, l, r, kept)``: the first axis with a placement, its two faces in bins and
    whether the plan itself is clear (within a bin), or None.
    """
    A = prof.shape[0]
    valid = np.isfinite(prof)
    has = valid.any(axis=1)
    if not has.any():
        return None
    # the percentile of each row's valid samples (numpy's linear interpolation; inf sorts last)
    cnt = valid.sum(axis=1)
    srt = np.sort(prof, axis=1)
    pos = BACKGROUND_PERCENTILE / 100.0 * np.maximum(cnt - 1, 0)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, np.maximum(cnt - 1, 0))
    rows = np.arange(A)
    background = np.where(has, srt[rows, lo] + (pos - lo) * (srt[rows, hi] - srt[rows, lo]), 0.0)
    need = np.maximum(MIN_STEP, np.minimum(f.depth, LOW_OBJECT_SHARE * background))
    blocked = valid & (prof < need[:, None])
    # cumulative count of blocked samples: blocked in [a, b] (offsets) <=> cb[b + 1] - cb[a] > 0
    cb = np.concatenate([np.zeros((A, 1), np.int64), np.cumsum(blocked, axis=1)], axis=1)

    def any_blocked(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Any blocked sample in ``[a, b]`` (integer offsets, arrays whose first axis is the axis)."""
        shape = np.broadcast_shapes(a.shape, b.shape)
        a = np.clip(np.broadcast_to(a, shape) + n, 0, 2 * n + 1).reshape(A, -1)
        b = np.clip(np.broadcast_to(b, shape) + n + 1, 0, 2 * n + 1).reshape(A, -1)
        b = np.maximum(a, b)
        return ((np.take_along_axis(cb, b, 1) - np.take_along_axis(cb, a, 1)) > 0).reshape(shape)

    t_b, pad_b, m_b, max_b = (x * bpm for x in (f.thickness, f.pad, f.margin, f.max_opening))
    faces = np.arange(0, min(int(math.floor(max_b.max())), n) + 1)  # a face beyond the profile is not read
    F = faces[None, :]
    # right face r occupies [r - pad, r + t + pad]; left face l occupies [-l - t - pad, -l + pad]
    r_clear = ~any_blocked(np.rint(F - pad_b[:, None]).astype(int), np.rint(F + (t_b + pad_b)[:, None]).astype(int))
    l_clear = ~any_blocked(np.rint(-F - (t_b + pad_b)[:, None]).astype(int), np.rint(-F + pad_b[:, None]).astype(int))
    L, R = faces[None, :, None], faces[None, None, :]
    ok = l_clear[:, :, None] & r_clear[:, None, :] & (L + R <= max_b[:, None, None]) & has[:, None, None]
    # the object lies between the fingers: a blocked sample in [-l + 1, r - 1], i.e. cb[r + n] - cb[n - l + 1] > 0
    # (an outer difference of two (A, F) arrays; cb never decreases, so an empty interval gives <= 0)
    hi = np.take_along_axis(cb, np.clip(np.broadcast_to(F + n, (A, len(faces))), 0, 2 * n + 1), 1)
    lo = np.take_along_axis(cb, np.clip(np.broadcast_to(n + 1 - F, (A, len(faces))), 0, 2 * n + 1), 1)
    ok &= (hi[:, None, :] - lo[:, :, None]) > 0
    plan = width_m * bpm / 2 + m_b  # the controller's faces, in bins along each axis
    for k in np.nonzero(ok.reshape(A, -1).any(axis=1))[0][:1]:
        cost = np.where(ok[k], np.abs(faces[:, None] - plan[k]) + np.abs(faces[None, :] - plan[k]), np.inf)
        li, ri = np.unravel_index(int(np.argmin(cost)), cost.shape)
        l, r = float(faces[li]), float(faces[ri])
        kept = turns[k] == 0 and abs(l - plan[0]) + abs(r - plan[0]) <= 1.0
        return int(k), l, r, bool(kept)
    return None


def _fit_axes(depth_m, cam, u, v, angle, width_px, z, f: FingerGeometry, turns: np.ndarray) -> FingerFit | None:
    """:func:`fit_fingers` along the image axes ``angle + turns`` (fingers along the viewing ray)."""
    angles = angle + turns
    ca, sa = np.cos(angles), np.sin(angles)
    ppm = 1.0 / (z * np.hypot(ca / cam.fx, sa / cam.fy))  # pixels per metre along each axis ...
    ppa = 1.0 / (z * np.hypot(sa / cam.fx, ca / cam.fy))  # ... and across it
    width_m = grasp_width_m(width_px, angle, z, cam)
    # a face may sit up to the full opening off centre (the other at the centre), plus the finger;
    # never further than the image reaches (samples off the image are unknown anyway): the work per
    # grasp is bounded by the image, whatever the focal length
    reach = _image_reach(depth_m)
    n = min(int(math.ceil((f.max_opening + f.thickness + f.pad) * ppm.max())), reach)
    band = min(max(0, int(round(f.width / 2 * ppa.max()))), reach)
    prof = _profiles(depth_m, u, v, angles, n, band) - z  # (A, 2n+1): height beyond the grasp surface
    found = _placement(prof, ppm, width_m, f, n, turns)
    if found is None:
        return None
    k, l, r, kept = found
    if kept:
        return FingerFit(u, v, angle, width_px, 0.0, width_m + 2 * f.margin, False, width_m=width_m)
    shift = (r - l) / 2
    return FingerFit(u + shift * ca[k], v - shift * sa[k], float(wrap_angle(angles[k])) if turns[k] else angle,
                     max(l + r - 2 * f.margin * ppm[k], 0.0), shift / ppm[k], (l + r) / ppm[k], True, float(turns[k]),
                     width_m=max((l + r) / ppm[k] - 2 * f.margin, 0.0))


#: Pixel stride of the point cloud of :func:`approach_profiles` (bins are this many pixels wide at
#: the grasp depth, so that every bin across the finger holds points).
POINT_STRIDE = 2


def approach_profiles(depth_m, cam: CameraIntrinsics, P: np.ndarray, a: np.ndarray, closing: np.ndarray, n: int, bin_m: float,
                      half_width: float, stride: int = POINT_STRIDE) -> np.ndarray:
    """Height along ``a`` beyond the point ``P`` (negative: nearer the camera) of the nearest surface, binned
    along each unit direction of ``closing`` (A, 3; perpendicular to ``a``) in ``2n+1`` bins of
    ``bin_m`` metres, over a band of ``±half_width`` across it (``a x closing``): ``(A, 2n+1)``,
    inf where no point falls. The points are the depth image's valid pixels (every ``stride``-th)
    deprojected within reach of ``P``."""
    h, w = depth_m.shape[:2]
    reach = (n + 1) * bin_m + half_width
    # the pixel box that holds every point within `reach` of P across the approach (P's depth +- reach)
    zmin = max(P[2] - 2 * reach, 1e-3)
    r_u = int(math.ceil(2 * reach * cam.fx / zmin)) + 1
    r_v = int(math.ceil(2 * reach * cam.fy / zmin)) + 1
    uc, vc = cam.project(P)[:2]
    u0, u1 = max(int(uc) - r_u, 0), min(int(uc) + r_u + 1, w)
    v0, v1 = max(int(vc) - r_v, 0), min(int(vc) + r_v + 1, h)
    d = np.asarray(depth_m[v0:v1:stride, u0:u1:stride], dtype=np.float64)
    vv, uu = np.mgrid[v0:v1:stride, u0:u1:stride]
    ok = np.isfinite(d) & (d > 0)
    d, uu, vv = d[ok], uu[ok], vv[ok]
    D = np.stack([(uu - cam.cx) / cam.fx * d - P[0], (vv - cam.cy) / cam.fy * d - P[1], d - P[2]], axis=1)
    height = D @ a
    across_all = np.cross(a[None, :], closing)  # (A, 3)
    s = D @ closing.T  # (N, A)
    j = D @ across_all.T
    idx = np.rint(s / bin_m).astype(np.int64) + n
    inside = (np.abs(j) <= half_width) & (idx >= 0) & (idx <= 2 * n)
    A = closing.shape[0]
    prof = np.full(A * (2 * n + 1), np.inf)
    k = np.broadcast_to(np.arange(A)[None, :], s.shape)
    np.minimum.at(prof, (k[inside] * (2 * n + 1) + idx[inside]), np.broadcast_to(height[:, None], s.shape)[inside])
    return prof.reshape(A, 2 * n + 1)


def image_closing_direction(angle: float, a: np.ndarray, cam: CameraIntrinsics) -> np.ndarray:
    """The image closing axis ``angle`` as a unit 3-D direction perpendicular to the approach ``a``
    (the optical-frame direction of the pixel axis, projected onto the plane across ``a``)."""
    c = np.array([math.cos(angle) / cam.fx, -math.sin(angle) / cam.fy, 0.0])
    c = c - (c @ a) * a
    nrm = np.linalg.norm(c)
    if nrm < 1e-9:  # the axis points along the approach: any direction across it
        c = np.cross(a, [1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.cross(a, [0.0, 1.0, 0.0])
        nrm = np.linalg.norm(c)
    return c / nrm


def _turned(c: np.ndarray, a: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """``c`` turned about ``-a`` by each of ``turns`` (counter-clockwise as the camera sees it when
    ``a`` is the optical axis: the image angle convention)."""
    b = np.cross(-a, c)
    return np.cos(turns)[:, None] * c[None, :] + np.sin(turns)[:, None] * b[None, :]


def _fit_axes_3d(depth_m, cam, u, v, angle, width_px, z, f: FingerGeometry, turns: np.ndarray, a: np.ndarray) -> FingerFit | None:
    """:func:`fit_fingers` with the fingers descending along ``a`` (camera optical frame)."""
    P = cam.deproject(u, v, z)
    width_m = grasp_width_m(width_px, angle, z, cam)
    c0 = image_closing_direction(angle, a, cam)
    closing = _turned(c0, a, turns)
    bin_m = POINT_STRIDE * z / min(cam.fx, cam.fy)
    # at most as many bins as the image has pixels along its diagonal (an extreme focal length
    # would otherwise ask for bins far finer than the points that fill them)
    bin_m = max(bin_m, (f.max_opening + f.thickness + f.pad) / _image_reach(depth_m))
    n = int(math.ceil((f.max_opening + f.thickness + f.pad) / bin_m))
    prof = approach_profiles(depth_m, cam, P, a, closing, n, bin_m, f.width / 2)
    found = _placement(prof, np.full(len(turns), 1.0 / bin_m), width_m, f, n, turns)
    if found is None:
        return None
    k, l, r, kept = found
    shift = 0.0 if kept else (r - l) / 2 * bin_m
    c = closing[k]
    Pn = P + shift * c
    un, vn, ang = image_axis(cam, Pn, c)  # the new centre and the closing axis as the image shows them
    opening = width_m + 2 * f.margin if kept else (l + r) * bin_m
    wm = width_m if kept else max(opening - 2 * f.margin, 0.0)
    width_px_new = wm / grasp_width_m(1.0, ang, float(Pn[2]), cam)
    return FingerFit(un, vn, ang, width_px_new, shift, opening, not kept, float(turns[k]), Pn, c, width_m=wm)


def fitted_pose(fit: FingerFit, cam: CameraIntrinsics, approach, pose):
    """The grasp a moved ``fit`` stands for: ``(u, v, angle, width_px, position, quaternion, width_m, z)``.

    A 3-D fit (an approach off the optical axis) carries its point and closing direction; the pose
    approaches along ``approach``. Otherwise ``pose(u, v, angle, width_px)`` (the caller's
    :func:`~dsc_grasp_ros.core.geometry.grasp_pose`, which may raise ``GeometryError``) gives
    ``(position, quaternion, width_m, z)``, its orientation turned to ``approach`` when one is given.
    """
    if fit.position is not None:
        return (fit.u, fit.v, fit.angle, fit.width_px, fit.position, tcp_orientation(fit.closing, approach), fit.width_m,
                float(fit.position[2]))
    pos, quat, width_m, z = pose(fit.u, fit.v, fit.angle, fit.width_px)
    if approach is not None:
        quat = tcp_orientation(image_closing_direction(fit.angle, approach, cam), approach)
    return fit.u, fit.v, fit.angle, fit.width_px, pos, quat, width_m, z
