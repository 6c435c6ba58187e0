"""Pre-processing shared by training and inference: depth units, invalid depth, ROI, normalisation.

The per-frame path is :func:`prepare`: crop the region of interest (ROI) out of the full image,
resize it to the network input, inpaint invalid depth at that small size (cheap), and normalise
with :func:`normalise` — the same function the training data goes through.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .conventions import INPUT_SIZE
from .network import CHANNEL_ORDER

__all__ = [
    "InputError",
    "ROI",
    "depth_to_metres",
    "inpaint_depth",
    "normalise",
    "prepare",
    "Prepared",
    "DEPTH_CLIP_M",
]

#: Depth is centred on its mean and clipped to this many metres either side.
DEPTH_CLIP_M: float = 1.0
#: Name stored in model metadata for the normalisation below (bump when it changes).
NORMALISATION = "depth: invalid pixels inpainted, minus the mean, clipped to +-1 m; rgb: /255 minus per-image mean"


class InputError(ValueError):
    """An input frame that cannot be processed; the message names the problem.

    ``code`` is a stable machine-readable reason (``all_invalid_depth``, ``size_mismatch``,
    ``bad_camera_info``, ``bad_image``, ``bad_roi``, ``missing_image``, ``invalid_input``) for
    callers that count skipped frames by cause (the ROS node does).
    """

    def __init__(self, message: str, code: str = "invalid_input"):
        super().__init__(message)
        self.code = code


def depth_to_metres(depth: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Convert a depth image to float32 metres and its invalid mask.

    ``uint16`` is read as millimetres (``16UC1``, RealSense), floats as metres (``32FC1``), unless
    ``scale`` (metres per unit) is given. Zero, negative, NaN and inf are invalid: they are set to 0
    in the returned image and flagged in the mask.
    """
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise InputError(f"depth must be a single-channel image, got shape {depth.shape}", "bad_image")
    if scale is None:
        if depth.dtype == np.uint16:
            scale = 0.001
        elif np.issubdtype(depth.dtype, np.floating):
            scale = 1.0
        else:
            raise InputError(f"unsupported depth dtype {depth.dtype}: use uint16 millimetres or float metres", "bad_image")
    d = depth.astype(np.float32) * np.float32(scale)
    invalid = ~np.isfinite(d) | (d <= 0)
    d[invalid] = 0.0
    return d, invalid


def inpaint_depth(depth_m: np.ndarray, invalid: np.ndarray) -> np.ndarray:
    """Fill invalid depth with OpenCV's Navier-Stokes inpainting (as GG-CNN does).

    Works on a scaled copy so the float range survives the 8-bit-oriented OpenCV routine's limits.
    """
    if not invalid.any():
        return depth_m
    valid_vals = depth_m[~invalid]
    if valid_vals.size == 0:
        raise InputError("depth image has no valid pixel (all zero, NaN or inf)", "all_invalid_depth")
    scale = float(np.abs(valid_vals).max()) or 1.0
    filled = cv2.inpaint((depth_m / scale).astype(np.float32), invalid.astype(np.uint8), 1, cv2.INPAINT_NS)
    return filled * scale


@dataclass(frozen=True)
class ROI:
    """A box of the full image ``(x, y, w, h)`` (pixel edges) mapped onto an ``out_w x out_h`` input.

    Pixel centres sit at integer coordinates in both images, matching OpenCV's resize, so
    :meth:`to_net` and :meth:`to_full` are exact inverses and agree with :meth:`crop`.
    """

    x: int
    y: int
    w: int
    h: int
    out_w: int = INPUT_SIZE
    out_h: int = INPUT_SIZE

    @classmethod
    def centred_square(cls, height: int, width: int, out_size: int | None = INPUT_SIZE) -> "ROI":
        """The largest centred square; ``out_size=None`` keeps its native resolution."""
        s = min(height, width)
        out = s if out_size is None else out_size
        return cls((width - s) // 2, (height - s) // 2, s, s, out, out)

    @classmethod
    def from_box(cls, box, height: int, width: int, out_size: int | None = INPUT_SIZE) -> "ROI":
        """A user box ``[x, y, w, h]``; ``out_size=None`` keeps its size (must be a multiple of 8)."""
        x, y, w, h = (int(round(v)) for v in box)
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise InputError(f"ROI {list(box)} does not fit inside the {width}x{height} image", "bad_roi")
        if out_size is None:
            if w % 8 or h % 8:
                raise InputError(f"ROI {w}x{h} must be a multiple of 8 when not resized", "bad_roi")
            return cls(x, y, w, h, w, h)
        return cls(x, y, w, h, out_size, out_size)

    @property
    def sx(self) -> float:
        return self.w / self.out_w

    @property
    def sy(self) -> float:
        return self.h / self.out_h

    @property
    def matrix(self) -> np.ndarray:
        """2x3 affine map full-image pixel -> network pixel."""
        return np.array(
            [[1 / self.sx, 0, (0.5 - self.x) / self.sx - 0.5], [0, 1 / self.sy, (0.5 - self.y) / self.sy - 0.5]]
        )

    def to_net(self, uv) -> np.ndarray:
        uv = np.asarray(uv, dtype=np.float64)
        return np.stack([(uv[..., 0] - self.x + 0.5) / self.sx - 0.5, (uv[..., 1] - self.y + 0.5) / self.sy - 0.5], -1)

    def to_full(self, uv) -> np.ndarray:
        uv = np.asarray(uv, dtype=np.float64)
        return np.stack([self.x + (uv[..., 0] + 0.5) * self.sx - 0.5, self.y + (uv[..., 1] + 0.5) * self.sy - 0.5], -1)

    def grasp_to_full(self, u: float, v: float, angle: float, width_px: float) -> tuple[float, float, float, float]:
        """Map a network-pixel grasp to the full image (angle and opening follow the axis scaling)."""
        fu, fv = self.to_full([u, v])
        du, dv = np.cos(angle) * self.sx, -np.sin(angle) * self.sy
        return float(fu), float(fv), float(np.arctan2(-dv, du)), float(width_px * np.hypot(du, dv))

    def crop(self, img: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        sub = img[self.y : self.y + self.h, self.x : self.x + self.w]
        if (self.w, self.h) == (self.out_w, self.out_h):
            return np.ascontiguousarray(sub)
        return cv2.resize(sub, (self.out_w, self.out_h), interpolation=interpolation)


def normalise(rgb: np.ndarray | None, depth_m: np.ndarray | None, modality: str) -> np.ndarray:
    """THE input normalisation (training and inference): returns float32 ``C x H x W``.

    Channels follow :data:`dsc_grasp_ros.network.CHANNEL_ORDER` (depth first for RGB-D).
    Depth: minus its mean, clipped to ``±DEPTH_CLIP_M``; RGB: ``/255`` minus the per-image mean.
    """
    if modality not in CHANNEL_ORDER:
        raise InputError(f"unknown modality {modality!r}: use one of {sorted(CHANNEL_ORDER)}")
    chans = []
    if "depth" in CHANNEL_ORDER[modality]:
        if depth_m is None:
            raise InputError(f"modality {modality!r} needs a depth image", "missing_image")
        d = depth_m.astype(np.float32)
        chans.append(np.clip(d - d.mean(), -DEPTH_CLIP_M, DEPTH_CLIP_M)[None])
    if "r" in CHANNEL_ORDER[modality]:
        if rgb is None:
            raise InputError(f"modality {modality!r} needs a colour image", "missing_image")
        c = rgb.astype(np.float32) / 255.0
        chans.append((c - c.mean()).transpose(2, 0, 1))
    return np.ascontiguousarray(np.concatenate(chans, 0))


@dataclass
class Prepared:
    """What :func:`prepare` produced besides the network input."""

    roi: ROI
    depth_full: np.ndarray | None  # full-resolution depth in metres, invalid = 0 (for geometry)
    depth_net: np.ndarray | None  # inpainted depth at network resolution (metres)
    invalid_net: np.ndarray | None  # invalid mask at network resolution


def _resize_depth(depth_m: np.ndarray, invalid: np.ndarray, roi: ROI) -> tuple[np.ndarray, np.ndarray]:
    """Crop+resize depth without blending invalid zeros into valid pixels (normalised convolution)."""
    valid = (~invalid).astype(np.float32)
    num = roi.crop(depth_m * valid, cv2.INTER_AREA)
    den = roi.crop(valid, cv2.INTER_AREA)
    inv_net = den < 1e-3
    d = np.where(inv_net, 0.0, num / np.maximum(den, 1e-3)).astype(np.float32)
    return d, inv_net


def check_frame(rgb: np.ndarray | None, depth: np.ndarray | None) -> tuple[int, int]:
    """Validate shapes/dtypes of a frame; returns ``(height, width)``."""
    shape = None
    if rgb is not None:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InputError(f"colour image must be HxWx3 uint8 RGB, got {rgb.shape} {rgb.dtype}", "bad_image")
        shape = rgb.shape[:2]
    if depth is not None:
        dshape = depth.shape[:2]
        if shape is not None and dshape != shape:
            raise InputError(
                f"colour ({shape[1]}x{shape[0]}) and depth ({dshape[1]}x{dshape[0]}) sizes differ: depth must be aligned to colour",
                "size_mismatch",
            )
        shape = dshape
    if shape is None:
        raise InputError("no image given", "missing_image")
    return int(shape[0]), int(shape[1])


def prepare(
    rgb: np.ndarray | None,
    depth: np.ndarray | None,
    roi: ROI,
    modality: str,
) -> tuple[np.ndarray, Prepared]:
    """Full-image frame -> normalised network input (``C x out_h x out_w``) and side products.

    ``depth`` may be uint16 millimetres or float metres; it is always converted (geometry needs it
    even for an RGB model), and an all-invalid depth is an :class:`InputError` for depth models.
    """
    check_frame(rgb, depth)
    d_m = depth_net = invalid_net = None
    if depth is not None:
        d_m, invalid = depth_to_metres(depth)
        depth_net, invalid_net = _resize_depth(d_m, invalid, roi)
        if "depth" in CHANNEL_ORDER[modality]:
            if invalid_net.all():
                raise InputError("depth has no valid pixel inside the region of interest (all zero, NaN or inf)", "all_invalid_depth")
            depth_net = inpaint_depth(depth_net, invalid_net)
    rgb_net = roi.crop(rgb, cv2.INTER_AREA) if rgb is not None and "r" in CHANNEL_ORDER[modality] else None
    x = normalise(rgb_net, depth_net, modality)
    return x, Prepared(roi, d_m, depth_net, invalid_net)
