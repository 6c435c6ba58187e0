"""The two peer networks DSC-GraspNet is compared against, with their own published pipelines.

* **GR-ConvNet3** (Kumra et al. 2020; skumra/robotic-grasping, BSD-3), 16 channels, dropout 0.1,
  RGB-D. Input: the centre 224x224 crop at native resolution; channels depth, R, G, B; depth in
  metres minus the crop mean, clipped to [-1, 1]; RGB /255 minus the crop mean.
* **GG-CNN2** (Morrison et al. 2018/2019; dougsm/ggcnn, BSD-3), depth only. Input: the centre
  300x300 crop; depth minus the crop mean, clipped to [-1, 1].

Invalid (zero/NaN) depth is filled before normalising (the Cornell ``d.tiff`` files the weights
were trained on were inpainted). Both pipelines are exactly the core's
:func:`dsc_grasp_ros.core.preprocess.prepare` with a native-resolution :class:`~dsc_grasp_ros.core.preprocess.ROI`
(crop, inpaint, normalise), so they are not re-implemented here.

Decoding follows the peers' own ``post_process_output`` (robotic-grasping
``inference/post_process.py``; dougsm/ggcnn ``models/common.py``, identical): quality smoothed
with a Gaussian of sigma 2, the angle map ``½·atan2(sin, cos)`` smoothed with sigma 2 (they smooth
the wrapped angle itself, a quirk kept here), the width map x 150 px smoothed with sigma 1, then
the argmax (``k > 1``: distinct local maxima at least 20 px apart, their ``min_distance``).
Both peers' labels use our angle convention (angle of the jaw-closing axis, counter-clockwise as
seen, see :mod:`dsc_grasp_ros.core.conventions`), so decoded grasps need no conversion besides the
mapping of the crop back to full-image pixels.

The architectures are written from the module tree and key list in ``../shared/peers`` (the
weights load with ``strict=True``); files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.model_io import ModelError, load_state_dict_file
from ..core.postprocess import find_peaks, smooth
from ..core.preprocess import ROI, InputError, prepare

__all__ = [
    "PEERS",
    "PeerSpec",
    "PeerError",
    "PeerGrasp",
    "Peer",
    "GRConvNet3",
    "GGCNN2",
    "default_peers_dir",
    "load_peer",
    "check_state_dict",
]


class PeerError(ModelError):
    """A peer that cannot be loaded (unknown name, missing file, weights that do not fit)."""


class PeerGrasp(NamedTuple):
    """A decoded peer grasp in full-image pixels and our conventions (angle in radians)."""

    u: float
    v: float
    angle: float
    width_px: float
    quality: float


# --------------------------------------------------------------------------- architectures
class _ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the identity (GR-ConvNet's ResidualBlock)."""

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(y)) + x


class GRConvNet3(nn.Module):
    """GR-ConvNet3 ("GenerativeResnet"): 3 down convs, 5 residual blocks, 3 transposed convs,
    dropout and four 2x2 output convs (raw maps: quality, cos 2θ, sin 2θ, width).

    An ``S x S`` input (``S`` divisible by 4) gives ``S x S`` maps.
    """

    def __init__(self, in_channels: int = 4, channels: int = 16, dropout: float = 0.1):
        super().__init__()
        c = channels
        self.conv1 = nn.Conv2d(in_channels, c, 9, stride=1, padding=4)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * c)
        self.conv3 = nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1)
        self.bn3 = nn.BatchNorm2d(4 * c)
        for i in range(1, 6):
            setattr(self, f"res{i}", _ResidualBlock(4 * c))
        self.conv4 = nn.ConvTranspose2d(4 * c, 2 * c, 4, stride=2, padding=1, output_padding=1)
        self.bn4 = nn.BatchNorm2d(2 * c)
        self.conv5 = nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=2, output_padding=1)
        self.bn5 = nn.BatchNorm2d(c)
        self.conv6 = nn.ConvTranspose2d(c, c, 9, stride=1, padding=4)
        for head in ("pos", "cos", "sin", "width"):
            setattr(self, f"{head}_output", nn.Conv2d(c, 1, 2))
        for head in ("pos", "cos", "sin", "wid"):
            setattr(self, f"dropout_{head}", nn.Dropout(dropout))

    def forward(self, x: torch.Tensor):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = self.res5(self.res4(self.res3(self.res2(self.res1(x)))))
        x = F.relu(self.bn4(self.conv4(x)))
        x = F.relu(self.bn5(self.conv5(x)))
        x = self.conv6(x)
        return (
            self.pos_output(self.dropout_pos(x)),
            self.cos_output(self.dropout_cos(x)),
            self.sin_output(self.dropout_sin(x)),
            self.width_output(self.dropout_wid(x)),
        )


class GGCNN2(nn.Module):
    """GG-CNN2: 11x11 and 5x5 convs, max-pool, two 5x5 convs, max-pool, dilated 5x5 convs
    (dilation 2, 4), two (bilinear x2 up-sampling + 3x3 conv) stages, four 1x1 heads; ReLU after
    every hidden conv. Module indices of ``features`` match the published state_dict.

    Up-sampling is ``nn.UpsamplingBilinear2d`` (``align_corners=True``) as in dougsm/ggcnn
    ``models/ggcnn2.py``. An ``S x S`` input (``S`` divisible by 4) gives ``S x S`` maps.
    """

    def __init__(self, in_channels: int = 1, filters=(16, 16, 32, 16), dilations=(2, 4)):
        super().__init__()
        f0, f1, f2, f3 = filters
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, f0, 11, padding=5),  # 0
            nn.ReLU(inplace=True),
            nn.Conv2d(f0, f0, 5, padding=2),  # 2
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(f0, f1, 5, padding=2),  # 5
            nn.ReLU(inplace=True),
            nn.Conv2d(f1, f1, 5, padding=2),  # 7
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(f1, f2, 5, dilation=dilations[0], padding=2 * dilations[0]),  # 10
            nn.ReLU(inplace=True),
            nn.Conv2d(f2, f2, 5, dilation=dilations[1], padding=2 * dilations[1]),  # 12
            nn.ReLU(inplace=True),
            nn.UpsamplingBilinear2d(scale_factor=2),
            nn.Conv2d(f2, f3, 3, padding=1),  # 15
            nn.ReLU(inplace=True),
            nn.UpsamplingBilinear2d(scale_factor=2),
            nn.Conv2d(f3, f3, 3, padding=1),  # 18
            nn.ReLU(inplace=True),
        )
        for head in ("pos", "cos", "sin", "width"):
            setattr(self, f"{head}_output", nn.Conv2d(f3, 1, 1))

    def forward(self, x: torch.Tensor):
        x = self.features(x)
        return self.pos_output(x), self.cos_output(x), self.sin_output(x), self.width_output(x)


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class PeerSpec:
    """What a peer is: its weights file, architecture, input and published decoding."""

    name: str
    title: str
    file: str
    modality: str  # our modality names: 'rgbd' (depth, R, G, B) or 'd'
    input_size: int
    build: Callable[[], nn.Module]
    quality_sigma: float = 2.0
    angle_sigma: float = 2.0
    width_sigma: float = 1.0
    width_scale_px: float = 150.0
    min_distance_px: float = 20.0
    source: str = ""


PEERS: dict[str, PeerSpec] = {
    "grconvnet3": PeerSpec(
        name="grconvnet3",
        title="GR-ConvNet3 (RGB-D, 16 ch)",
        file="grconvnet3_cornell_rgbd_ch16.pt",
        modality="rgbd",
        input_size=224,
        build=lambda: GRConvNet3(in_channels=4, channels=16, dropout=0.1),
        source="skumra/robotic-grasping cornell-randsplit-rgbd-grconvnet3-drop1-ch16 (BSD-3)",
    ),
    "ggcnn2": PeerSpec(
        name="ggcnn2",
        title="GG-CNN2 (depth)",
        file="ggcnn2_cornell_d.pt",
        modality="d",
        input_size=300,
        build=lambda: GGCNN2(in_channels=1),
        source="dougsm/ggcnn ggcnn2_weights_cornell epoch_50 (BSD-3)",
    ),
}


def default_peers_dir() -> Path:
    """``<project root>/../shared/peers`` (resolved from this file, never an absolute path)."""
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "peers"


def check_state_dict(model: nn.Module, sd: dict, source: str) -> None:
    """Raise :class:`PeerError` naming missing/unexpected keys and shape mismatches, if any."""
    want = model.state_dict()
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    shapes = [
        f"{k}: file {tuple(sd[k].shape)} vs architecture {tuple(want[k].shape)}"
        for k in want
        if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return

    def few(xs, n=6):
        return ", ".join(xs[:n]) + (f", ... ({len(xs)} in all)" if len(xs) > n else "")

    parts = []
    if missing:
        parts.append(f"missing keys: {few(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {few(unexpected)}")
    if shapes:
        parts.append(f"shape mismatches: {few(shapes, 4)}")
    raise PeerError(f"weights in {source} do not match the {type(model).__name__} architecture; " + "; ".join(parts))


# --------------------------------------------------------------------------- the peer object
class Peer:
    """A loaded peer: ``prepare`` (its own pre-processing), ``forward`` (raw maps), ``decode``
    (its own post-processing, full-image grasps) and ``predict`` (all three)."""

    def __init__(self, spec: PeerSpec, model: nn.Module, device: torch.device, path: Path):
        self.spec = spec
        self.name = spec.name
        self.modality = spec.modality
        self.input_size = spec.input_size
        self.model = model
        self.device = device
        self.path = path

    def __repr__(self) -> str:
        return f"Peer({self.name!r}, modality={self.modality!r}, input_size={self.input_size}, device={str(self.device)!r})"

    def roi_for(self, height: int, width: int, crop: str = "centre") -> ROI:
        """The crop the peer sees: ``centre`` = the centred ``input_size`` square at native
        resolution (its published Cornell pipeline); ``square`` = the largest centred square
        resized to ``input_size`` (GR-ConvNet's Jacquard pipeline, for large images).
        An image smaller than the input falls back to ``square``."""
        s = self.input_size
        if crop == "square" or height < s or width < s:
            return ROI.centred_square(height, width, s)
        if crop != "centre":
            raise ValueError(f"unknown crop {crop!r}: use 'centre' or 'square'")
        return ROI((width - s) // 2, (height - s) // 2, s, s, s, s)

    def prepare(self, rgb: np.ndarray | None, depth_m: np.ndarray, roi: ROI | str | None = None) -> tuple[torch.Tensor, ROI]:
        """Full frame -> ``1 x C x S x S`` input on the peer's device, and the ROI used.

        ``depth_m``: float metres (or uint16 mm); ``rgb``: HxWx3 uint8 RGB (needed for RGB-D).
        ``roi``: an :class:`ROI`, a crop name for :meth:`roi_for`, or ``None`` (``centre``).
        """
        if depth_m is None:
            raise InputError(f"peer {self.name} needs a depth image", "missing_image")
        h, w = np.asarray(depth_m).shape[:2]
        if not isinstance(roi, ROI):
            roi = self.roi_for(h, w, roi or "centre")
        x, _ = prepare(rgb if self.modality == "rgbd" else None, depth_m, roi, self.modality)
        return torch.from_numpy(x)[None].to(self.device), roi

    @torch.inference_mode()
    def forward(self, x: torch.Tensor):
        """Raw maps ``(quality, cos 2θ, sin 2θ, width)``, each ``1 x 1 x S x S``."""
        return self.model(x)

    @torch.inference_mode()
    def decode(self, maps, roi: ROI | None = None, k: int = 1) -> list[PeerGrasp]:
        """The peer's own post-processing; grasps in full-image pixels (network pixels without
        ``roi``), best first."""
        sp = self.spec
        q, cos, sin, wid = (m.float().reshape(1, 1, *m.shape[-2:]) for m in maps)
        q = smooth(q, sp.quality_sigma)[0, 0]
        ang = smooth(0.5 * torch.atan2(sin, cos), sp.angle_sigma)[0, 0]
        wid = smooth(wid * sp.width_scale_px, sp.width_sigma)[0, 0]
        peaks = find_peaks(q, max(1, int(k)), sp.min_distance_px, -math.inf)
        out = []
        if len(peaks):
            rr, cc = peaks[:, 0].to(q.device), peaks[:, 1].to(q.device)
            vals = torch.stack([q[rr, cc], ang[rr, cc], wid[rr, cc]], 1).cpu().tolist()
            for (r, c), (qv, a, wv) in zip(peaks.tolist(), vals):
                u, v, a, wpx = float(c), float(r), float(a), max(float(wv), 0.0)
                if roi is not None:
                    u, v, a, wpx = roi.grasp_to_full(u, v, a, wpx)
                a = (a + math.pi / 2) % math.pi - math.pi / 2
                out.append(PeerGrasp(u, v, a, wpx, float(qv)))
        return out[: max(1, int(k))]

    def predict(self, rgb: np.ndarray | None, depth_m: np.ndarray, k: int = 1, roi: ROI | str | None = None) -> list[PeerGrasp]:
        """Frame -> up to ``k`` grasps ``(u, v, angle, width_px, quality)`` in full-image pixels."""
        x, roi = self.prepare(rgb, depth_m, roi)
        return self.decode(self.forward(x), roi, k)


def load_peer(name: str, path=None, device="cpu") -> Peer:
    """Build peer ``name`` (``grconvnet3`` or ``ggcnn2``) and load its weights strictly.

    ``path``: the weights file, or a folder holding it; default ``<project root>/../shared/peers``.
    Raises :class:`PeerError` for an unknown name, a missing or unreadable file, or weights that
    do not match the architecture (naming the keys and shapes).
    """
    if name not in PEERS:
        raise PeerError(f"unknown peer {name!r}: use one of {sorted(PEERS)}")
    spec = PEERS[name]
    p = Path(path) if path is not None else default_peers_dir()
    if p.is_dir() or path is None:
        p = p / spec.file
    p = p.resolve() if p.exists() else p
    if not p.is_file():
        raise PeerError(
            f"weights of peer {name} not found: looked for {p}; pass the file or its folder "
            f"(dsc-grasp bench: {name}=PATH; dsc-grasp eval-peers and dsc-grasp benchmark network: --peers-dir DIR; "
            f"Python: load_peer({name!r}, path)); the default is <project root>/../shared/peers"
        )
    sd = load_state_dict_file(p, PeerError, "weights file")
    model = spec.build()
    check_state_dict(model, sd, str(p))
    model.load_state_dict(sd, strict=True)
    dev = torch.device(device)
    return Peer(spec, model.to(dev).eval(), dev, p)
