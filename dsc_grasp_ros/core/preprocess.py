"""Pre-processing shared by training and inference: depth units, invalid depth, ROI, normalisation.

The per-frame path is :func:`prepare`: crop the region of interest (ROI) out of the full image,
resize it to the network input, inpaint invalid depth at that small size (cheap), and normalise
with :func:`normalise` — the same function the training data goes through.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .conventions import INPUT_SIZE, MIN_IMAGE_SIDE
from .depthref import fit_support_plane, plane_reference
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
    "DEPTH_REFERENCES",
    "NORMALISATIONS",
    "depth_reference_of",
    "fit_support_plane",
    "depth_reference",
    "PROTOCOLS",
    "protocol_roi",
    "DEFAULT_NET_PX_PER_METRE",
    "scene_depth",
    "scale_roi",
]

#: Depth is centred on its mean and clipped to this many metres either side.
DEPTH_CLIP_M: float = 1.0

#: Depth references of :func:`normalise` (what is subtracted from the depth before centring):
#:
#: ``mean``   the crop's mean only (GR-ConvNet, GG-CNN; the first shipped models). A tilted camera
#:            turns the table into a ramp that dominates the input (Cornell: 0.85-1.65 m).
#: ``plane``  a robust fit of the support plane (RANSAC then least squares on the inliers, in
#:            inverse depth, which is exactly linear in pixel coordinates for any plane seen by a
#:            pinhole camera, so no intrinsics are needed); the residual is the height above the
#:            table as seen along the rays, the same for any tilt. Falls back to ``mean`` when
#:            too few pixels are valid.
#: ``local``  minus a large-scale median (window ~half the crop), a plane-free local reference.
DEPTH_REFERENCES = ("mean", "plane", "local")

#: Text stored in model metadata for each depth reference (``normalisation`` field).
NORMALISATIONS = {
    "mean": "depth: invalid pixels inpainted, minus the mean, clipped to +-1 m; rgb: /255 minus per-image mean",
    "plane": "depth: invalid pixels inpainted, minus a robust support-plane fit, minus the mean, clipped to +-1 m; rgb: /255 minus per-image mean",
    "local": "depth: invalid pixels inpainted, minus a large-scale median, minus the mean, clipped to +-1 m; rgb: /255 minus per-image mean",
}
#: The normalisation of models whose metadata names none (the first shipped models).
NORMALISATION = NORMALISATIONS["mean"]


def depth_reference_of(normalisation: str | None) -> str:
    """The depth reference a model's metadata ``normalisation`` text stands for (old text: ``mean``)."""
    if not normalisation:
        return "mean"
    for k, v in NORMALISATIONS.items():
        if normalisation == v or normalisation == k:
            return k
    raise InputError(f"unknown normalisation {normalisation!r} in model metadata: this package knows {sorted(NORMALISATIONS)}")


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
        """The box resized to the network input. A box reaching past the image (a padded scale ROI
        at close range) is filled beyond the image's edge by repeating its border pixels."""
        H, W = img.shape[:2]
        pads = (max(0, -self.y), max(0, self.y + self.h - H), max(0, -self.x), max(0, self.x + self.w - W))
        if any(pads):
            img = cv2.copyMakeBorder(np.ascontiguousarray(img), *pads, cv2.BORDER_REPLICATE)
            sub = img[self.y + pads[0] : self.y + pads[0] + self.h, self.x + pads[2] : self.x + pads[2] + self.w]
        else:
            sub = img[self.y : self.y + self.h, self.x : self.x + self.w]
        if (self.w, self.h) == (self.out_w, self.out_h):
            return np.ascontiguousarray(sub)
        return cv2.resize(sub, (self.out_w, self.out_h), interpolation=interpolation)


def depth_reference(depth_m: np.ndarray, reference: str = "mean") -> np.ndarray:
    """The image subtracted from ``depth_m`` (float32 metres, no holes) before centring.

    ``mean``: zeros. ``plane``: the depth of :func:`fit_support_plane` at every pixel (zeros when
    no plane can be fitted). ``local``: a median over a window of about half the image, computed
    on a 4x smaller copy and resized back.
    """
    h, w = depth_m.shape
    if reference == "mean":
        return np.zeros_like(depth_m, dtype=np.float32)
    if reference == "plane":
        ref = plane_reference(depth_m)  # None: too few valid pixels, or a plane behind the camera (not a table)
        return np.zeros_like(depth_m, dtype=np.float32) if ref is None else ref
    if reference == "local":
        from scipy.ndimage import median_filter

        small = cv2.resize(depth_m, (max(8, w // 4), max(8, h // 4)), interpolation=cv2.INTER_AREA)
        k = max(3, (min(small.shape) // 2) | 1)
        med = median_filter(small, size=k, mode="nearest")
        return cv2.resize(med, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    raise InputError(f"unknown depth reference {reference!r}: use one of {DEPTH_REFERENCES}")


#: Network pixels per metre (at the scene's median depth) of a model whose metadata names none.
#: The first shipped models were trained on 640x480 synthetic frames of a D435-like camera
#: (fx = 615 px) at 0.35-0.7 m height and up to 20 deg tilt (median distance ~0.535 m), seen through
#: the centred 480 square resized to 224: 615 * 224/480 / 0.535 = 536 px/m.
DEFAULT_NET_PX_PER_METRE: float = 615.0 * 224 / 480 / 0.535


def scene_depth(depth, stride: int = 4, *, metres: bool = False) -> float | None:
    """Median valid depth (metres) of the image's centred square, on every ``stride``-th pixel;
    ``None`` when it holds no valid pixel. Accepts uint16 millimetres or float metres; with
    ``metres`` true, ``depth`` is already :func:`depth_to_metres`' image (invalid pixels 0) and is
    read as it is."""
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    h, w = depth.shape[:2]
    s = min(h, w)
    sub = depth[(h - s) // 2 : (h + s) // 2 : stride, (w - s) // 2 : (w + s) // 2 : stride]
    if metres:
        vals = sub[sub > 0]
    else:
        d, invalid = depth_to_metres(sub)
        vals = d[~invalid]
    return float(np.median(vals)) if vals.size else None


def scale_roi(
    height: int,
    width: int,
    fx: float,
    fy: float,
    depth_m: float,
    net_px_per_metre: float = DEFAULT_NET_PX_PER_METRE,
    out_size: int = INPUT_SIZE,
    quantum: int = 8,
    pad: bool = False,
) -> ROI:
    """The centred ROI in which one metre at distance ``depth_m`` spans ``net_px_per_metre``
    network pixels (the scale a model was trained at), whatever the camera's resolution and distance.

    Side in image pixels: ``out_size * f / (depth_m * net_px_per_metre)`` per axis (``fx`` for the
    width, ``fy`` for the height, so a metre is the same number of network pixels both ways),
    rounded to ``quantum`` pixels (a stable ROI from frame to frame). When that is larger than
    the image (camera closer than in training): with ``pad`` the ROI reaches past the image (its
    border repeated, :meth:`ROI.crop`; at most :data:`MAX_PAD_FACTOR` times the image), so that
    objects keep the training scale; without, both sides shrink by the same factor to fit, and
    objects look larger than in training by that factor (``ROI.sx`` tells).
    """
    vals = {"fx": fx, "fy": fy, "depth_m": depth_m, "net_px_per_metre": net_px_per_metre}
    for k, v in vals.items():
        if not (isinstance(v, (int, float, np.floating)) and np.isfinite(v) and v > 0):
            raise InputError(f"scale ROI needs a positive finite {k}, got {v!r}", "bad_roi")
    w = out_size * fx / (depth_m * net_px_per_metre)
    h = out_size * fy / (depth_m * net_px_per_metre)
    limit = MAX_PAD_FACTOR if pad else 1.0
    k = min(1.0, limit * width / w, limit * height / h)
    w, h = w * k, h * k
    q = max(1, int(quantum))
    wi = min(int(limit * width), max(q, int(round(w / q)) * q))
    hi = min(int(limit * height), max(q, int(round(h / q)) * q))
    return ROI((width - wi) // 2, (height - hi) // 2, wi, hi, out_size, out_size)


#: A padded scale ROI covers at most this many image sides (the padding grows as the camera nears
#: the object; beyond it objects look larger than in training again)
MAX_PAD_FACTOR = 4.0


#: Crops of dataset images (``dsc-grasp evaluate/train --protocol``):
#:
#: ``paper``   the protocol of the paper/GR-ConvNet per format: Cornell a native-resolution
#:             ``S x S`` crop at the image centre (objects at their recorded pixel size, no wall);
#:             Jacquard (and Jacquard-format) the centred square resized to ``S`` (the whole
#:             1024 x 1024 Jacquard image, as GR-ConvNet).
#: ``native``  a native-resolution ``S x S`` crop at the image centre for every format.
#: ``square``  the largest centred square resized to ``S`` for every format (the first
#:             protocol of this package: Cornell objects 2.1x smaller than in the paper).
#: ``scale``   the node's ROI (:func:`scale_roi`): for images with known intrinsics (our
#:             synthetic data's ``camera.json``) the centred crop in which a metre at the scene's
#:             median depth spans the model's ``net_px_per_metre`` network pixels, exactly what
#:             ``GraspDetector`` crops on a camera; images without intrinsics (Cornell, Jacquard)
#:             fall back to ``paper``.
PROTOCOLS = ("paper", "native", "square", "scale")


def protocol_roi(
    protocol: str,
    fmt: str,
    height: int,
    width: int,
    out_size: int = INPUT_SIZE,
    K=None,
    depth=None,
    net_px_per_metre: float | None = None,
) -> ROI:
    """The ROI of a ``height x width`` dataset image of format ``fmt`` (``cornell``/``jacquard``).

    ``protocol='scale'`` needs the image's 3x3 intrinsics ``K`` and its ``depth`` (raw units, as
    the node gets them) and uses :func:`scene_depth` + :func:`scale_roi` like the node; without
    them it is ``paper``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: use one of {PROTOCOLS}")
    if protocol == "scale":
        z = scene_depth(depth) if (K is not None and depth is not None) else None
        if z is not None:
            K = np.asarray(K, dtype=float).reshape(3, 3)
            px = DEFAULT_NET_PX_PER_METRE if net_px_per_metre is None else net_px_per_metre
            return scale_roi(height, width, float(K[0, 0]), float(K[1, 1]), z, px, out_size)
        protocol = "paper"
    native = protocol == "native" or (protocol == "paper" and fmt == "cornell")
    if native and min(height, width) >= out_size:
        return ROI((width - out_size) // 2, (height - out_size) // 2, out_size, out_size, out_size, out_size)
    return ROI.centred_square(height, width, out_size)


def normalise(rgb: np.ndarray | None, depth_m: np.ndarray | None, modality: str, depth_ref: str = "mean") -> np.ndarray:
    """THE input normalisation (training and inference): returns float32 ``C x H x W``.

    Channels follow :data:`dsc_grasp_ros.core.network.CHANNEL_ORDER` (depth first for RGB-D).
    Depth: minus :func:`depth_reference` (``depth_ref``, see :data:`DEPTH_REFERENCES`), minus its
    mean, clipped to ``±DEPTH_CLIP_M``; RGB: ``/255`` minus the per-image mean. A model's metadata
    says which ``depth_ref`` it was trained with (:func:`depth_reference_of`).
    """
    if modality not in CHANNEL_ORDER:
        raise InputError(f"unknown modality {modality!r}: use one of {sorted(CHANNEL_ORDER)}")
    if depth_ref not in DEPTH_REFERENCES:
        raise InputError(f"unknown depth reference {depth_ref!r}: use one of {DEPTH_REFERENCES}")
    chans = []
    if "depth" in CHANNEL_ORDER[modality]:
        if depth_m is None:
            raise InputError(f"modality {modality!r} needs a depth image", "missing_image")
        d = depth_m.astype(np.float32)
        if depth_ref != "mean":
            d = d - depth_reference(d, depth_ref)
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


def check_frame(rgb: np.ndarray | None, depth: np.ndarray | None, min_side: int = MIN_IMAGE_SIDE) -> tuple[int, int]:
    """Validate shapes/dtypes of a frame; returns ``(height, width)``.

    A frame with a side shorter than ``min_side`` pixels (default
    :data:`~dsc_grasp_ros.core.conventions.MIN_IMAGE_SIDE`) is an :class:`InputError` (``image_too_small``).
    """
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
    h, w = int(shape[0]), int(shape[1])
    if min(h, w) < min_side:
        raise InputError(
            f"image {w}x{h} is too small: grasp detection needs at least {min_side}x{min_side} pixels "
            f"(the region of interest is resized to the {INPUT_SIZE}x{INPUT_SIZE} network input)",
            "image_too_small",
        )
    return h, w


#: A depth image whose median valid value is beyond this many metres is in another unit: no RGB-D
#: camera used for grasping measures that far (RealSense D4xx: 10 m at most).
MAX_PLAUSIBLE_DEPTH_M: float = 50.0


def check_depth_units(depth: np.ndarray) -> None:
    """Reject a depth image that looks like the wrong unit (:class:`InputError` ``depth_wrong_unit``).

    REP 118: ``16UC1`` depth is millimetres, ``32FC1`` metres. Caught: float depth in millimetres
    (median beyond :data:`MAX_PLAUSIBLE_DEPTH_M`), ``uint16`` depth that is mostly 65535 (saturated,
    or a "no data" value other than 0), ``uint16`` depth beyond the same limit or below 1 cm
    (metres or centimetres stored as integers). Checked on every 4th pixel (a few ms at 640x480).
    """
    d = np.asarray(depth)
    if d.ndim == 3:
        d = d[..., 0]
    sub = d[::4, ::4]
    if sub.dtype == np.uint16:
        valid = sub[sub > 0]
        if valid.size == 0:
            return
        sat = float(np.mean(valid == 65535))
        if sat > 0.5:
            raise InputError(
                f"16UC1 depth looks saturated: {sat:.0%} of the valid pixels are 65535 (= 65.5 m in millimetres): "
                "wrong unit, or a 'no data' value other than 0", "depth_wrong_unit")
        med = float(np.median(valid))
        if med * 1e-3 > MAX_PLAUSIBLE_DEPTH_M:
            raise InputError(f"16UC1 depth median is {med:.0f} (= {med * 1e-3:.1f} m in millimetres): not millimetres?", "depth_wrong_unit")
        if med < 10:
            raise InputError(
                f"16UC1 depth median is {med:.0f} mm: 16UC1 depth must be millimetres (REP 118); this looks like metres or centimetres",
                "depth_wrong_unit")
    elif np.issubdtype(sub.dtype, np.floating):
        valid = sub[np.isfinite(sub) & (sub > 0)]
        if valid.size == 0:
            return
        med = float(np.median(valid))
        if med > MAX_PLAUSIBLE_DEPTH_M:
            raise InputError(
                f"32FC1 depth median is {med:.1f}: 32FC1 depth must be metres (REP 118); this looks like millimetres",
                "depth_wrong_unit")


def prepare(
    rgb: np.ndarray | None,
    depth: np.ndarray | None,
    roi: ROI,
    modality: str,
    depth_ref: str = "mean",
    *,
    metres: bool = False,
) -> tuple[np.ndarray, Prepared]:
    """Full-image frame -> normalised network input (``C x out_h x out_w``) and side products.

    ``depth`` may be uint16 millimetres or float metres; it is always converted (geometry needs it
    even for an RGB model), and an all-invalid depth is an :class:`InputError` for depth models.
    With ``metres`` true, ``depth`` is already :func:`depth_to_metres`' image (float32, invalid
    pixels 0), as the detector converts each frame once at its entry, and is used without a copy.
    ``depth_ref`` is the model's depth reference (:data:`DEPTH_REFERENCES`), passed to :func:`normalise`.
    """
    check_frame(rgb, depth, min_side=1)  # the detector checks MIN_IMAGE_SIDE; training crops may be small
    d_m = depth_net = invalid_net = None
    if depth is not None:
        if metres:
            d_m = np.asarray(depth, dtype=np.float32)
            invalid = d_m <= 0
        else:
            d_m, invalid = depth_to_metres(depth)
        depth_net, invalid_net = _resize_depth(d_m, invalid, roi)
        if "depth" in CHANNEL_ORDER[modality]:
            if invalid_net.all():
                raise InputError("depth has no valid pixel inside the region of interest (all zero, NaN or inf)", "all_invalid_depth")
            depth_net = inpaint_depth(depth_net, invalid_net)
    rgb_net = roi.crop(rgb, cv2.INTER_AREA) if rgb is not None and "r" in CHANNEL_ORDER[modality] else None
    x = normalise(rgb_net, depth_net, modality, depth_ref)
    return x, Prepared(roi, d_m, depth_net, invalid_net)
