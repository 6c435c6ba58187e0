"""Grasp rectangles and grasp maps: the one place where rectangles become training targets.

See :mod:`dsc_grasp_ros.core.conventions` for the angle, width and corner-order conventions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import cv2
import numpy as np

from .conventions import PREDICTED_JAW_RATIO, WIDTH_SCALE_PX, wrap_angle


@dataclass
class Grasp:
    """An image grasp. ``u, v`` pixels, ``angle`` radians, ``width_px`` opening in pixels."""

    u: float
    v: float
    angle: float
    width_px: float
    quality: float = 1.0
    jaw_px: float | None = None

    @property
    def jaw(self) -> float:
        return self.width_px * PREDICTED_JAW_RATIO if self.jaw_px is None else self.jaw_px

    def corners(self) -> np.ndarray:
        """The grasp rectangle, 4x2 array of ``(u, v)`` in Cornell corner order."""
        return rect_corners(self.u, self.v, self.angle, self.width_px, self.jaw)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["jaw_px"] = self.jaw
        return d


def rect_corners(u, v, angle, opening, jaw) -> np.ndarray:
    """Corners of a rectangle centred at ``(u, v)``; p0->p1 along the closing axis.

    Accepts scalars (returns 4x2) or equal-length arrays (returns Nx4x2).
    """
    u, v, angle, opening, jaw = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (u, v, angle, opening, jaw)))
    ax = np.stack([np.cos(angle), -np.sin(angle)], -1)  # closing axis in (u, v)
    jx = np.stack([np.sin(angle), np.cos(angle)], -1)  # jaw axis, perpendicular
    c = np.stack([u, v], -1)
    ho = (opening / 2)[..., None] * ax
    hj = (jaw / 2)[..., None] * jx
    return np.stack([c - ho - hj, c + ho - hj, c + ho + hj, c - ho + hj], -2)


def rect_params(corners) -> np.ndarray:
    """Inverse of :func:`rect_corners`: Nx4x2 (or 4x2) corners -> Nx5 ``(u, v, angle, opening, jaw)``."""
    p = np.asarray(corners, dtype=np.float64)
    single = p.ndim == 2
    p = p.reshape(-1, 4, 2)
    centre = p.mean(1)
    d01 = p[:, 1] - p[:, 0]
    d12 = p[:, 2] - p[:, 1]
    angle = wrap_angle(np.arctan2(-d01[:, 1], d01[:, 0]))
    out = np.column_stack([centre, angle, np.linalg.norm(d01, axis=1), np.linalg.norm(d12, axis=1)])
    return out[0] if single else out


def transform_rects(params: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine pixel transform to Nx5 rectangles (exact for similarity transforms).

    Corners are mapped and the rectangle re-fitted, so rotations, flips-free scalings and crops
    all use this one function (augmentation, ROI mapping).
    """
    params = np.asarray(params, dtype=np.float64).reshape(-1, 5)
    if len(params) == 0:
        return params
    c = rect_corners(*params.T)
    m = np.asarray(matrix, dtype=np.float64)
    mapped = c @ m[:, :2].T + m[:, 2]
    return rect_params(mapped)


def draw_grasp_maps(
    rects: np.ndarray,
    shape: Sequence[int],
    mode: str = "rect",
    width_scale: float = WIDTH_SCALE_PX,
    compact: float = 1.0 / 3.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw the training targets (quality, cos 2θ, sin 2θ, width) from Nx5 rectangles.

    ``mode='rect'`` (default, GR-ConvNet style): each rectangle fills a *compact* rectangle
    (``compact`` x opening along the closing axis, full jaw size) with quality 1.
    ``mode='gaussian'``: quality is a 2-D Gaussian over the same rectangle (sigma = half its
    side lengths), peak 1, combined by maximum. Where rectangles overlap, the one with the
    higher quality at a pixel sets that pixel's angle and width. The width map is the opening
    (in pixels of ``shape``) divided by ``width_scale`` and clipped to [0, 1].
    """
    h, w = int(shape[0]), int(shape[1])
    q = np.zeros((h, w), np.float32)
    ang = np.zeros((h, w), np.float32)
    wid = np.zeros((h, w), np.float32)
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 5)
    if mode not in ("rect", "gaussian"):
        raise ValueError(f"unknown grasp-map mode {mode!r}: use 'rect' or 'gaussian'")
    for u, v, a, opening, jaw in rects:
        corners = rect_corners(u, v, a, opening * compact, jaw)
        lo = np.floor(corners.min(0)).astype(int)
        hi = np.ceil(corners.max(0)).astype(int) + 1
        x0, y0 = max(lo[0], 0), max(lo[1], 0)
        x1, y1 = min(hi[0], w), min(hi[1], h)
        if x1 <= x0 or y1 <= y0:
            continue
        if mode == "rect":
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(mask, [np.round(corners - [x0, y0]).astype(np.int32)], 1)
            val = mask.astype(np.float32)
        else:
            yy, xx = np.mgrid[y0:y1, x0:x1]
            du, dv = xx - u, yy - v
            along = du * math.cos(a) - dv * math.sin(a)
            across = du * math.sin(a) + dv * math.cos(a)
            sa = max(opening * compact / 2, 1.0)
            sj = max(jaw / 2, 1.0)
            val = np.exp(-0.5 * ((along / sa) ** 2 + (across / sj) ** 2)).astype(np.float32)
        sub = (slice(y0, y1), slice(x0, x1))
        better = val > q[sub]
        q[sub] = np.where(better, val, q[sub])
        ang[sub] = np.where(better, a, ang[sub])
        wid[sub] = np.where(better, min(opening / width_scale, 1.0), wid[sub])
    cos2 = np.where(q > 0, np.cos(2 * ang), 0).astype(np.float32)
    sin2 = np.where(q > 0, np.sin(2 * ang), 0).astype(np.float32)
    return q, cos2, sin2, wid


def grasps_to_rects(grasps: Iterable[Grasp]) -> np.ndarray:
    """Nx5 rectangles ``(u, v, angle, opening, jaw)`` of predicted grasps."""
    return np.array([[g.u, g.v, g.angle, g.width_px, g.jaw] for g in grasps], dtype=np.float64).reshape(-1, 5)


# --------------------------------------------------------------------------- dataset label formats
def jacquard_to_rects(rows) -> np.ndarray:
    """Jacquard rows ``x; y; theta_deg; opening; jaw_size`` -> Nx5 rectangles.

    Jacquard measures theta clockwise as seen on the image (``atan2(dv, du)``); our angle is
    counter-clockwise, so it is negated (as GR-ConvNet's loader does).
    """
    r = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    return np.column_stack([r[:, 0], r[:, 1], wrap_angle(-np.deg2rad(r[:, 2])), r[:, 3], r[:, 4]])


def rects_to_jacquard(rects) -> np.ndarray:
    """Inverse of :func:`jacquard_to_rects` (theta in degrees, in ``(-90, 90]``)."""
    r = np.asarray(rects, dtype=np.float64).reshape(-1, 5)
    return np.column_stack([r[:, 0], r[:, 1], -np.rad2deg(r[:, 2]), r[:, 3], r[:, 4]])


def cornell_to_rects(points) -> np.ndarray:
    """Cornell corner lists (N*4 lines of ``x y``, p0->p1 along the closing axis) -> Nx5.

    Rectangles with any NaN corner are dropped.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 4, 2)
    p = p[np.isfinite(p).all(axis=(1, 2))]
    return rect_params(p).reshape(-1, 5)
