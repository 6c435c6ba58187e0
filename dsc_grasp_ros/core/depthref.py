"""The ``plane`` depth reference: a robust fit of the support plane in inverse depth.

A plane seen by a pinhole camera has inverse depth exactly linear in the pixel coordinates
(``n·X = d`` and ``X = z K⁻¹ [u, v, 1]`` give ``1/z = n·K⁻¹[u, v, 1] / d``), so the fit needs no
intrinsics and is the same at any tilt. :func:`fit_support_plane` is RANSAC (fixed-seed triples,
inliers within ``inlier_m`` metres of depth, ties broken by the smaller residual) then a least
squares refit on the inliers, twice; :func:`plane_reference` is that plane's depth at every pixel.

Per frame (224 x 224) this runs on a regular grid of about ``max_points`` valid pixels (every
``s``-th row and column; all valid pixels when the grid catches too few of them) with every
hypothesis scored at once (element-wise: no BLAS call, whose OpenBLAS threads wait on each other
on a busy CPU like OpenMP's), and the least-squares refits from 2 x 2 normal equations, instead of
a random sample and one Python iteration per hypothesis: 0.2-0.3x the previous fit's time, the
plane the same to well under a millimetre (``test/test_preprocess_plane.py``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fit_support_plane", "plane_reference", "MIN_PLANE_PIXELS"]

#: Fewer valid pixels than this: no plane (the caller falls back to the mean reference).
MIN_PLANE_PIXELS = 30


def _sample(ok: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(us, vs)`` of about ``max_points`` valid pixels on a regular grid."""
    h, w = ok.shape
    n_valid = int(np.count_nonzero(ok))
    s = max(1, int(math.floor(math.sqrt(h * w / max(1, max_points)))))
    if s > 1:
        o = s // 2
        vs, us = np.nonzero(ok[o::s, o::s])
        if len(us) >= min(300, n_valid):
            return us * s + o, vs * s + o
    vs, us = np.nonzero(ok)  # the grid misses the valid pixels (sparse or patterned holes): take them all
    if len(us) > max_points:
        pick = np.linspace(0, len(us) - 1, max_points).round().astype(np.intp)
        us, vs = us[pick], vs[pick]
    return us, vs


def _plane_at(A: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Inverse depth ``a*u + b*v + c`` of the points (rows of ``A``) for one plane ``P`` (3,) or
    for each column of ``P`` (3 x H). Element-wise, not a BLAS call: OpenBLAS threads for these
    small products and, like OpenMP's, they wait on each other when the cores are busy."""
    if P.ndim == 1:
        return A[:, 0] * P[0] + A[:, 1] * P[1] + P[2]
    return A[:, 0:1] * P[0] + A[:, 1:2] * P[1] + P[2]


def _residuals(A: np.ndarray, z: np.ndarray, P: np.ndarray) -> np.ndarray:
    """``|plane depth - z|`` of the points for each plane (columns of ``P``); ``inf`` where the
    plane is behind the camera."""
    pz = _plane_at(A, P)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(np.where(pz > 0, 1.0 / pz, np.inf) - (z[:, None] if P.ndim == 2 else z))


def _lstsq_plane(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares ``(a, b, c)`` of ``y = a*u + b*v + c`` from centred normal equations (2 x 2),
    without BLAS; ``np.linalg.lstsq`` when the points are (nearly) collinear."""
    u, v = A[:, 0], A[:, 1]
    mu, mv, my = u.mean(), v.mean(), y.mean()
    du, dv, dy = u - mu, v - mv, y - my
    suu, svv, suv = (du * du).sum(), (dv * dv).sum(), (du * dv).sum()
    det = suu * svv - suv * suv
    if not det > 1e-9 * max(suu * svv, 1e-300):
        p, *_ = np.linalg.lstsq(A, y, rcond=None)
        return p
    suy, svy = (du * dy).sum(), (dv * dy).sum()
    a = (svv * suy - suv * svy) / det
    b = (suu * svy - suv * suy) / det
    return np.array([a, b, my - a * mu - b * mv])


def fit_support_plane(
    depth_m: np.ndarray,
    valid: np.ndarray | None = None,
    inlier_m: float = 0.01,
    hypotheses: int = 64,
    max_points: int = 3000,
    seed: int = 0,
) -> np.ndarray | None:
    """Robust support plane of a depth image: ``(a, b, c)`` with ``1/z = a*u + b*v + c``.

    RANSAC over ``hypotheses`` point triples (fixed-seed RNG) on a grid of about ``max_points``
    valid pixels, inliers within ``inlier_m`` metres of depth, ties broken by the smaller residual
    sum, then a least squares refit on the inliers and once more on the refit's inliers. Returns
    ``None`` when fewer than :data:`MIN_PLANE_PIXELS` pixels are valid.
    """
    ok = np.isfinite(depth_m) & (depth_m > 0)
    if valid is not None:
        ok &= valid
    if np.count_nonzero(ok) < MIN_PLANE_PIXELS:
        return None
    us, vs = _sample(ok, max_points)
    z = depth_m[vs, us].astype(np.float64)
    A = np.stack([us, vs, np.ones_like(us)], 1).astype(np.float64)
    iz = 1.0 / z
    n = len(z)

    # every hypothesis at once: the plane through 3 points (u, v, 1/z) from the normal of the triangle
    rng = np.random.default_rng(seed)
    tri = rng.integers(0, n, size=(hypotheses, 3))
    p0 = np.stack([A[tri[:, 0], 0], A[tri[:, 0], 1], iz[tri[:, 0]]], 1)
    e1 = np.stack([A[tri[:, 1], 0], A[tri[:, 1], 1], iz[tri[:, 1]]], 1) - p0
    e2 = np.stack([A[tri[:, 2], 0], A[tri[:, 2], 1], iz[tri[:, 2]]], 1) - p0
    nrm = np.cross(e1, e2)
    area = np.abs(nrm[:, 2])  # twice the triangle's area in the image: 0 for collinear pixels
    good = area > 1e-9
    if not good.any():
        return None
    nrm, p0 = nrm[good], p0[good]
    a, b = -nrm[:, 0] / nrm[:, 2], -nrm[:, 1] / nrm[:, 2]
    P = np.stack([a, b, p0[:, 2] - a * p0[:, 0] - b * p0[:, 1]])  # 3 x H
    # score all of them at once, element-wise (float32 is ample: 1e-7 of ~1 m against a 1 cm threshold):
    # |1/pz - z| < t  <=>  |1 - z*pz| < t*pz  for pz > 0 (no division)
    pz = _plane_at(A.astype(np.float32), P.astype(np.float32))  # N x H
    err = np.abs(1.0 - z.astype(np.float32)[:, None] * pz)
    inl = err < np.float32(inlier_m) * pz  # never true where pz <= 0 (behind the camera)
    count = inl.sum(0)
    top = np.flatnonzero(count == count.max())
    if len(top) > 1:  # ties (a clean table): the smaller residual sum over the inliers, as before
        res_sum = _residuals(A, z, P[:, top])
        res_sum = np.where(inl[:, top], res_sum, 0.0).sum(0)
        top = top[np.argsort(res_sum, kind="stable")]
    best = inl[:, top[0]]
    if best.sum() < 3:
        return None
    for _ in range(2):  # refit, then once more on the refit's inliers
        p = _lstsq_plane(A[best], iz[best])
        nxt = _residuals(A, z, p) < inlier_m
        if nxt.sum() < 3:
            break
        best = nxt
    return p


def plane_reference(depth_m: np.ndarray, **fit_kwargs) -> np.ndarray | None:
    """The depth of :func:`fit_support_plane` at every pixel (float32), or ``None`` when no plane
    was fitted or the plane passes behind the camera somewhere in the image (not a table)."""
    h, w = depth_m.shape
    p = fit_support_plane(depth_m, **fit_kwargs)
    if p is None:
        return None
    col = p[0] * np.arange(w, dtype=np.float64)
    row = p[1] * np.arange(h, dtype=np.float64) + p[2]
    if min(row[0], row[-1]) + min(col[0], col[-1]) <= 1e-6:  # linear: its minimum is at a corner
        return None
    inv = np.add.outer(row.astype(np.float32), col.astype(np.float32))
    return np.reciprocal(inv, out=inv)
