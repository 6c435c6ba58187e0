"""Readers and writers for the on-disk formats of the grasp datasets.

* **Cornell**: ``pcdXXXXcpos.txt`` holds 4 lines ``x y`` per grasp rectangle (Cornell corner
  order: p0->p1 along the jaw-closing axis); a rectangle with a ``NaN`` corner is dropped whole
  (the original files contain such lines). ``pcdXXXXr.png`` colour, ``pcdXXXXd.tiff`` float32
  depth in metres.
* **Jacquard**: ``N_<id>_grasps.txt`` lines ``x;y;theta_deg;opening;jaw_size`` (CRLF or LF),
  ``N_<id>_RGB.png``, ``N_<id>_perfect_depth.tiff`` / ``N_<id>_stereo_depth.tiff`` (float32
  metres, LZW-compressed: read with :mod:`tifffile` + ``imagecodecs``).

Images are read by :mod:`dsc_grasp_ros.core.imageio` (the readers inference uses). All rectangle
parsing ends in :func:`dsc_grasp_ros.core.grasp.cornell_to_rects` /
:func:`~dsc_grasp_ros.core.grasp.jacquard_to_rects`, which hold the angle and corner conventions.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..core.grasp import cornell_to_rects, jacquard_to_rects, rect_corners, rects_to_jacquard
from ..core.imageio import read_depth, read_rgb, write_depth_tiff, write_rgb  # images: the package's one reader

__all__ = [
    "DatasetFormatError",
    "read_cornell_grasps",
    "read_jacquard_grasps",
    "write_cornell_grasps",
    "write_jacquard_grasps",
    "read_rgb",
    "read_depth",
    "write_depth",
    "write_rgb",
]


class DatasetFormatError(ValueError):
    """A dataset file that does not follow its format; the message names the file and line."""


def read_cornell_grasps(path) -> np.ndarray:
    """Cornell ``cpos``/``cneg`` file -> Nx5 rectangles ``(u, v, angle, opening, jaw)``.

    Blank lines are ignored; the remaining lines must come in groups of 4 ``x y`` pairs.
    A group with any ``NaN`` coordinate is dropped (as GR-ConvNet does).
    """
    path = Path(path)
    pts = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        parts = s.split()
        if len(parts) != 2:
            raise DatasetFormatError(f"{path}:{lineno}: expected 'x y', got {line!r}")
        try:
            pts.append((float(parts[0]), float(parts[1])))
        except ValueError as e:
            raise DatasetFormatError(f"{path}:{lineno}: {e}") from None
    if len(pts) % 4:
        raise DatasetFormatError(f"{path}: {len(pts)} corner lines is not a multiple of 4")
    return cornell_to_rects(np.array(pts, dtype=np.float64).reshape(-1, 2))


def read_jacquard_grasps(path) -> np.ndarray:
    """Jacquard ``*_grasps.txt`` -> Nx5 rectangles (CRLF tolerated, blank lines ignored)."""
    path = Path(path)
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        parts = s.split(";")
        if len(parts) != 5:
            raise DatasetFormatError(f"{path}:{lineno}: expected 'x;y;theta;opening;jaw', got {line!r}")
        try:
            row = [float(p) for p in parts]
        except ValueError as e:
            raise DatasetFormatError(f"{path}:{lineno}: {e}") from None
        if not all(math.isfinite(v) for v in row):
            continue
        rows.append(row)
    return jacquard_to_rects(np.array(rows, dtype=np.float64).reshape(-1, 5))


def write_jacquard_grasps(path, rects) -> None:
    """Write Nx5 rectangles as a Jacquard grasp file (CRLF line ends, like the original)."""
    rows = rects_to_jacquard(rects)
    Path(path).write_text("".join(f"{x:.5f};{y:.5f};{t:.4f};{o:.4f};{j:.4f}\r\n" for x, y, t, o, j in rows), newline="")


def write_cornell_grasps(path, rects) -> None:
    """Write Nx5 rectangles as a Cornell ``cpos`` file (4 corner lines per rectangle)."""
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 5)
    lines = []
    for c in rect_corners(*rects.T).reshape(-1, 4, 2) if len(rects) else []:
        lines += [f"{x:.3f} {y:.3f}" for x, y in c]
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""))


def write_depth(path, depth_m: np.ndarray, compress: bool = True) -> None:
    """Write float32 metres as a TIFF (LZW like Jacquard when ``compress``)."""
    write_depth_tiff(path, depth_m, "lzw" if compress else None)
