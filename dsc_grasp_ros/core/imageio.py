"""Reading and writing images in the formats users and datasets use (no ROS)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .preprocess import InputError

__all__ = ["read_rgb", "read_depth", "write_rgb", "write_depth_png", "write_depth_tiff"]


def read_rgb(path) -> np.ndarray:
    """Colour image as HxWx3 uint8 RGB (grey images are expanded, alpha dropped)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"cannot read colour image {path}")
    if img.dtype != np.uint8:
        img = (img / (256.0 if img.dtype == np.uint16 else max(float(img.max()), 1.0) / 255.0)).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def read_depth(path) -> np.ndarray:
    """Depth image: a 16-bit PNG (millimetres, returned as uint16) or a float TIFF (metres, float32).

    TIFFs are read with tifffile, which decodes the LZW compression Jacquard uses.
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            d = tifffile.imread(str(path))
        except Exception as e:  # noqa: BLE001
            raise InputError(f"cannot read depth TIFF {path}: {e}") from e
    else:
        d = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if d is None:
            raise InputError(f"cannot read depth image {path}")
    d = np.asarray(d)
    if d.ndim == 3:
        d = d[..., 0]
    if d.dtype == np.uint16 or np.issubdtype(d.dtype, np.floating):
        return d if d.dtype == np.uint16 else d.astype(np.float32)
    raise InputError(f"depth image {path} has dtype {d.dtype}: use a 16-bit PNG in millimetres or a float TIFF in metres")


def write_rgb(path, rgb: np.ndarray) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


def write_depth_png(path, depth_m: np.ndarray) -> None:
    """Metres -> 16-bit PNG in millimetres (invalid = 0)."""
    d = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    cv2.imwrite(str(path), np.clip(np.round(d * 1000), 0, 65535).astype(np.uint16))


def write_depth_tiff(path, depth_m: np.ndarray, compression: str | None = "lzw") -> None:
    import tifffile

    tifffile.imwrite(str(path), np.asarray(depth_m, dtype=np.float32), compression=compression)
