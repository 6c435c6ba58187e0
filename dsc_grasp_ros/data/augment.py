"""Data augmentation of Section IV-A.3 of the paper, expressed as exact pixel transforms.

Paper: crop around the image centre, rotate randomly by 0, ±π/2 or π, keep 50-100 % of the
image around its centre and resize it back to the input size; transform the labels likewise.

Here the zoom is a smaller centred square :class:`~dsc_grasp_ros.core.preprocess.ROI` (crop + resize
in one step, through the shared :func:`~dsc_grasp_ros.core.preprocess.prepare`), and the rotation is
an exact quarter turn of the prepared ``C x S x S`` array (``np.rot90``, no interpolation; it
commutes with the zoom because both are centred and with normalisation because that only
subtracts per-image means). Labels go through :func:`~dsc_grasp_ros.core.grasp.transform_rects` with
the ROI matrix and :func:`rot90_matrix`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.preprocess import ROI

__all__ = ["Augmentation", "zoom_roi", "rot90_matrix", "rot90_array"]


@dataclass(frozen=True)
class Augmentation:
    """Random quarter-turn rotation and centred zoom (fraction of the side kept)."""

    rotate: bool = True
    zoom_min: float = 0.5
    zoom_max: float = 1.0

    def sample(self, u_rot: float, u_zoom: float) -> tuple[int, float]:
        """Map two uniform [0, 1) numbers to ``(quarter_turns, zoom)``."""
        k = min(int(u_rot * 4), 3) if self.rotate else 0
        zoom = self.zoom_min + (self.zoom_max - self.zoom_min) * u_zoom
        return k, float(zoom)


def zoom_roi(height: int, width: int, zoom: float = 1.0, out_size: int = 224, base: ROI | None = None) -> ROI:
    """``base`` (default: the centred square of the image), shrunk to ``zoom`` of its side around its centre."""
    base = base or ROI.centred_square(height, width, out_size)
    if zoom == 1.0:
        return base
    # the scale protocol's ROI may be a few pixels off square (fx != fy): zoom each side
    sw = max(8, int(round(base.w * float(zoom))))
    sh = max(8, int(round(base.h * float(zoom))))
    return ROI(base.x + (base.w - sw) // 2, base.y + (base.h - sh) // 2, sw, sh, out_size, out_size)


def rot90_matrix(k: int, size: int) -> np.ndarray:
    """2x3 pixel map of ``np.rot90(img, k)`` on a ``size x size`` image (counter-clockwise as seen).

    Pixel centres at integer coordinates: one quarter turn maps ``(u, v) -> (v, size-1-u)``,
    which adds ``+π/2`` to a grasp angle.
    """
    m = np.eye(3)
    q = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, size - 1.0], [0.0, 0.0, 1.0]])
    for _ in range(int(k) % 4):
        m = q @ m
    return m[:2]


def rot90_array(x: np.ndarray, k: int) -> np.ndarray:
    """Rotate the last two axes of ``x`` (``... x H x W``) like :func:`rot90_matrix`."""
    return np.ascontiguousarray(np.rot90(x, int(k) % 4, axes=(-2, -1)))


