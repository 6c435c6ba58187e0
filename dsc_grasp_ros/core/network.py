"""DSC-GraspNet (Zhou et al.), as Section III, Table I and Eq. (4)-(6) of the paper describe it.

Layout follows timm: building blocks, then the model, then the configurations.

Architecture (input ``n x 224 x 224``)::

    stem      3x3 conv n->32 + BN + Mish                                    224
    backbone  DepthSepConv = DW kxk + BN + Mish, PW 1x1 + BN + Mish, Coordinate Attention (Eq. 4)
              32->32 s1 (C1, 224) | 32->64 s2 | 64->64 s1 (C2, 112) | 64->128 s2 | 128->128 s1 (C3, 56)
              | 128->256 s2 | 5 x (256->256, 5x5, s1) (C4, 28)
    up        3 stages, Eq. (6) P = F2(C1, F1(C2, F0(C3, C4))); a CSP block is Path1: CBM 1x1 to c/2;
              Path2: CBM 1x1 to c/2 + N bottlenecks [CBM 1x1, CBM 3x3, residual]; concat; transition
              CBM 1x1 (whose Mish is the Mish of Eq. 5). Two orders of CSP and up-sampling:
    heads     dropout, then a 3x3 conv per map on P: quality, cos 2θ, sin 2θ, width.

Up-sampling order (``DSCGraspNetConfig.upsample_order``)::

    "csp_first" (default) -- the prose: "we first upsample the output features of the CSP block
                by bilinear interpolation to obtain F_up, and then concatenate F_up and c_i"
        F0 = Concat(C3, Up(CSP(C4)))      CSP 256->144 @28     -> 128+144 @56
        F1 = Concat(C2, Up(CSP(F0)))      CSP 272->64  @56     -> 64+64   @112
        F2 = Concat(C1, Up(CSP(F1)))      CSP 128->16  @112    -> 32+16   @224 = P (48 channels)
        The last up-sampling reaches the input size; the heads' 3x3 convs fuse C1 with it.
    "eq5" -- a literal reading of Eq. (5), F(x1, x2) = Mish(CSP(Concat(x1, Up(x2)))):
        F0 = CSP(Concat(C3, Up(C4)))      384->128 @56
        F1 = CSP(Concat(C2, Up(F0)))      192->64  @112
        F2 = CSP(Concat(C1, Up(F1)))      96->32   @224 = P (32 channels)
        Every model file shipped before the option existed uses it (its metadata has no
        ``upsample_order``: :data:`LEGACY_UPSAMPLE_ORDER`).

Parameters and convolution FLOPs (2 x multiply-adds, batch 1, 224 x 224; measured with forward hooks
on every ``Conv2d``; the paper gives 0.643 M for RGB)::

                 parameters d / RGB / RGB-D        vs paper (RGB)   conv GFLOPs d / RGB / RGB-D
    csp_first    634,156 / 634,732 / 635,020       -1.29 %          1.74 / 1.80 / 1.83
    eq5          629,228 / 629,804 / 630,092       -2.05 %          3.24 / 3.30 / 3.33

The ``csp_first`` channels (144, 64, 16) were chosen to keep the parameters within 3 % of the paper
while moving the work to low resolution: (128, 64, 32) is 3.6 % under (1.97 GFLOPs), and the
backbone (stem + 11 blocks) is 1.21 GFLOPs (RGB-D) in either order; csp_first adds 0.45 (CSP blocks
at 28/56/112) + 0.17 (heads at 224), eq5 adds 2.00 (CSP blocks at 56/112/224) + 0.12 (heads).

Choices the paper leaves open (documented here, used by both orders and every shipped model):

* ``N = 1`` bottleneck per CSP block (with eq5, N = 2 would give 0.68 M parameters, 6 % over the
  paper's 0.643 M).
* Coordinate Attention follows Hou et al. exactly: reduction ``r = 32`` with a floor of 8 hidden
  channels, h-swish activation, sigmoid gates.
* Dropout ``p = 0.1`` applied to the shared feature before each head (GR-ConvNet places it the
  same way; a dropout *after* the output map would only add noise to the regression targets).
  On a CPU its masks come from 15 random bits per element (:class:`HeadDropout`), which makes a
  training step faster than ``nn.Dropout``'s per-element Bernoulli draws.
* Output activations: none. All four maps are linear; decoding clamps quality to [0, 1]
  (:mod:`dsc_grasp_ros.core.postprocess`), so training targets and decoding agree.
* Skip features are taken after each backbone block's attention (C1..C4 at 224/112/56/28).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DSCGraspNet", "DSCGraspNetConfig", "GraspMaps", "HeadDropout", "count_parameters"]


# --------------------------------------------------------------------------- blocks
class HeadDropout(nn.Dropout):
    """``nn.Dropout`` whose CPU training masks are drawn 4 elements per 64-bit random number.

    ``torch.nn.functional.dropout`` draws one Bernoulli sample per element; on a CPU the four
    head dropouts at 224 x 224 took 0.2 s each per batch of 8 in a bf16 training step. Here an
    int64 tensor of a quarter of the elements is filled by ``random_()`` (63 random bits each) and
    read as four 16-bit fields, of which the low 15 bits are uniform: an element is kept where
    they are at least ``round(p * 2^15)``. The drop probability is that threshold / 2^15
    (0.100006 for p = 0.1) and the kept elements are scaled by its complement, so the expectation
    is the input's, as with ``nn.Dropout``. The masks follow torch's seeded CPU generator (a run
    resumes reproducibly). Elsewhere (CUDA, eval mode, p = 0) it is ``nn.Dropout``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0.0 or x.device.type != "cpu" or x.numel() % 4 or self.inplace:
            return super().forward(x)
        thr = round(self.p * 32768)
        if thr >= 32768:
            return torch.zeros_like(x)
        bits = torch.empty(x.numel() // 4, dtype=torch.int64).random_().view(torch.int16)
        if x.is_contiguous(memory_format=torch.channels_last) and x.dim() == 4:
            n, c, h, w = x.shape  # fields laid out as x is, so the product below runs over memory in order
            fields = bits.view(n, h, w, c).permute(0, 3, 1, 2)
        else:
            fields = bits.view(x.shape)
        keep = (fields & 0x7FFF) >= thr
        return x.mul(32768.0 / (32768 - thr)).mul_(keep)


class ConvBNMish(nn.Sequential):
    """CBM: convolution (no bias) + BatchNorm + Mish."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.Mish(inplace=True),
        )


class CoordinateAttention(nn.Module):
    """Coordinate Attention (Hou et al., CVPR 2021), reduction ``r`` with a floor of 8."""

    def __init__(self, channels: int, reduction: int = 32, min_hidden: int = 8):
        super().__init__()
        hidden = max(min_hidden, channels // reduction)
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.act = nn.Hardswish(inplace=True)
        self.conv_h = nn.Conv2d(hidden, channels, 1)
        self.conv_w = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x_h = x.mean(dim=3, keepdim=True)  # N C H 1  ("X Avg Pool")
        x_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # N C W 1  ("Y Avg Pool")
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = torch.sigmoid(self.conv_h(y_h))
        a_w = torch.sigmoid(self.conv_w(y_w.transpose(2, 3)))
        return x * a_h * a_w


class DepthSepConv(nn.Module):
    """Eq. (4): DW conv + BN + Mish, PW conv + BN + Mish, then Coordinate Attention."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, ca_reduction: int = 32):
        super().__init__()
        self.dw = ConvBNMish(cin, cin, k, stride, groups=cin)
        self.pw = ConvBNMish(cin, cout, 1)
        self.ca = CoordinateAttention(cout, ca_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ca(self.pw(self.dw(x)))


class Bottleneck(nn.Module):
    """Fig. 3(b): CBM 1x1, CBM 3x3, residual connection."""

    def __init__(self, c: int):
        super().__init__()
        self.cv1 = ConvBNMish(c, c, 1)
        self.cv2 = ConvBNMish(c, c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cv2(self.cv1(x))


class CSPBlock(nn.Module):
    """Fig. 3(a): two paths halving the channels, N bottlenecks on Path2, concat, transition CBM."""

    def __init__(self, cin: int, cout: int, n: int = 1):
        super().__init__()
        mid = cout // 2
        self.path1 = ConvBNMish(cin, mid, 1)
        self.path2 = nn.Sequential(ConvBNMish(cin, mid, 1), *[Bottleneck(mid) for _ in range(n)])
        self.transition = ConvBNMish(2 * mid, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transition(torch.cat([self.path1(x), self.path2(x)], dim=1))


class UpStage(nn.Module):
    """Eq. (5)-literal stage: ``Mish(CSP(Concat(skip, Upsample(deep))))`` at the skip's resolution.

    The Mish of Eq. (5) is the transition CBM's. Used by ``upsample_order="eq5"``.
    """

    def __init__(self, c_skip: int, c_deep: int, cout: int, n: int = 1):
        super().__init__()
        self.csp = CSPBlock(c_skip + c_deep, cout, n)

    def forward(self, skip: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(deep, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.csp(torch.cat([skip, up], dim=1))


class CSPUpStage(nn.Module):
    """The prose's stage ("we first upsample the output features of the CSP block"):
    ``Concat(skip, Upsample(Mish(CSP(deep))))`` -- the CSP block runs at the *lower* resolution.

    Used by ``upsample_order="csp_first"`` (the default).
    """

    def __init__(self, c_deep: int, cout: int, n: int = 1):
        super().__init__()
        self.csp = CSPBlock(c_deep, cout, n)

    def forward(self, skip: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(self.csp(deep), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([skip, up], dim=1)


# --------------------------------------------------------------------------- model
#: Up-sampling orders and their default CSP output channels (both within 3 % of the paper's
#: 0.643 M parameters for RGB; see the module docstring for the counts and FLOPs).
UP_CHANNELS = {"csp_first": (144, 64, 16), "eq5": (128, 64, 32)}
UPSAMPLE_ORDERS = tuple(UP_CHANNELS)
#: The order of model files whose metadata predates ``upsample_order`` (all of them used Eq. (5)).
LEGACY_UPSAMPLE_ORDER = "eq5"


@dataclass(frozen=True)
class DSCGraspNetConfig:
    """Backbone rows of Table I: (out_channels, kernel, stride, is_skip_output)."""

    stem_channels: int = 32
    backbone: tuple = (
        (32, 3, 1, True),  # C1 @ 224
        (64, 3, 2, False),
        (64, 3, 1, True),  # C2 @ 112
        (128, 3, 2, False),
        (128, 3, 1, True),  # C3 @ 56
        (256, 3, 2, False),
        (256, 5, 1, False),
        (256, 5, 1, False),
        (256, 5, 1, False),
        (256, 5, 1, False),
        (256, 5, 1, True),  # C4 @ 28
    )
    #: ``"csp_first"`` (default): CSP at 28/56/112, then bilinear x2 and concatenation with the skip
    #: (the paper's prose, the authors' order); ``"eq5"``: concatenation first, CSP at 56/112/224
    #: (a literal reading of Eq. (5); the models shipped before this option use it).
    upsample_order: str = "csp_first"
    #: Output channels of the three CSP blocks; ``None`` = the variant's default (:data:`UP_CHANNELS`).
    up_channels: tuple | None = None
    csp_bottlenecks: int = 1
    ca_reduction: int = 32
    dropout: float = 0.1
    head_kernel: int = 3
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.upsample_order not in UP_CHANNELS:
            raise ValueError(f"unknown upsample_order {self.upsample_order!r}: use one of {sorted(UP_CHANNELS)}")
        up = UP_CHANNELS[self.upsample_order] if self.up_channels is None else tuple(int(c) for c in self.up_channels)
        if len(up) != 3:
            raise ValueError(f"up_channels must name 3 stages, got {up}")
        object.__setattr__(self, "up_channels", up)


class GraspMaps(tuple):
    """``(quality, cos2, sin2, width)``, each ``N x 1 x H x W``."""

    __slots__ = ()


class DSCGraspNet(nn.Module):
    """DSC-GraspNet for ``in_channels`` = 1 (depth), 3 (RGB) or 4 (RGB-D).

    ``forward(x)`` returns ``(quality, cos2θ, sin2θ, width)`` at the input resolution. The input
    height and width must be multiples of 8 (three stride-2 stages).
    """

    def __init__(self, in_channels: int = 4, cfg: DSCGraspNetConfig | None = None):
        super().__init__()
        if in_channels not in (1, 3, 4):
            raise ValueError(f"in_channels must be 1 (depth), 3 (RGB) or 4 (RGB-D), got {in_channels}")
        cfg = cfg or DSCGraspNetConfig()
        self.in_channels = in_channels
        self.cfg = cfg
        self.stem = ConvBNMish(in_channels, cfg.stem_channels, 3)
        blocks, skips, c = [], [], cfg.stem_channels
        for i, (cout, k, s, is_skip) in enumerate(cfg.backbone):
            blocks.append(DepthSepConv(c, cout, k, s, cfg.ca_reduction))
            if is_skip:
                skips.append((i, cout))
            c = cout
        self.blocks = nn.ModuleList(blocks)
        self.skip_ids = [i for i, _ in skips]
        skip_ch = [ch for _, ch in skips]  # C1..C4
        if len(skip_ch) != 4:
            raise ValueError("the backbone must expose exactly four skip outputs C1..C4")
        u0, u1, u2 = cfg.up_channels
        n = cfg.csp_bottlenecks
        c1, c2, c3, c4 = skip_ch
        if cfg.upsample_order == "eq5":  # CSP after the concatenation: at 56, 112, 224
            stages = [UpStage(c3, c4, u0, n), UpStage(c2, u0, u1, n), UpStage(c1, u1, u2, n)]
            head_in = u2
        else:  # csp_first: CSP at 28, 56, 112; P = Concat(C1, Upsample(CSP)) at 224
            stages = [CSPUpStage(c4, u0, n), CSPUpStage(c3 + u0, u1, n), CSPUpStage(c2 + u1, u2, n)]
            head_in = c1 + u2
        self.up = nn.ModuleList(stages)  # F0(C3, C4), F1(C2, .), F2(C1, .)
        self.p_channels = head_in
        self.heads = nn.ModuleDict(
            {
                name: nn.Sequential(HeadDropout(cfg.dropout), nn.Conv2d(head_in, 1, cfg.head_kernel, padding=cfg.head_kernel // 2))
                for name in ("quality", "cos", "sin", "width")
            }
        )

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Backbone: returns ``[C1, C2, C3, C4]``."""
        feats = []
        x = self.stem(x)
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in self.skip_ids:
                feats.append(x)
        return feats

    def forward_up(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Eq. (6): ``P = F2(C1, F1(C2, F0(C3, C4)))``."""
        c1, c2, c3, c4 = feats
        return self.up[2](c1, self.up[1](c2, self.up[0](c3, c4)))

    def forward(self, x: torch.Tensor):
        p = self.forward_up(self.forward_features(x))
        h = self.heads
        return h["quality"](p), h["cos"](p), h["sin"](p), h["width"](p)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- configs
MODALITY_CHANNELS = {"d": 1, "rgb": 3, "rgbd": 4}
#: Channel order of the network input for each modality (depth first for RGB-D, as GR-ConvNet).
CHANNEL_ORDER = {"d": ["depth"], "rgb": ["r", "g", "b"], "rgbd": ["depth", "r", "g", "b"]}


def dsc_graspnet(modality: str = "rgbd", **kwargs) -> DSCGraspNet:
    """Build the paper's network for a modality: ``'d'``, ``'rgb'`` or ``'rgbd'``."""
    if modality not in MODALITY_CHANNELS:
        raise ValueError(f"unknown modality {modality!r}: use one of {sorted(MODALITY_CHANNELS)}")
    return DSCGraspNet(MODALITY_CHANNELS[modality], DSCGraspNetConfig(**kwargs) if kwargs else None)
