"""Shared fixtures. Tests run on CPU with few threads so the suite fits CI's 2 cores."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import dsc_grasp_ros  # noqa: F401  - before torch: passive OpenMP waits (the package's default)
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
# The compiled network backend (the detector's default) pays a cold torch.compile of 1-4 min per
# process on CI's 2 cores: detector and node tests (and the nodes they launch) run eager unless a test
# asks otherwise; test_backends.py covers folding, compile parity and the fallback.
os.environ.setdefault("DSC_GRASP_BACKEND", "eager")


@pytest.fixture
def shared_data() -> Path:
    """The real Cornell/Jacquard samples beside the project; skip (saying why) when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real dataset samples not found at {SHARED_DATA} (CI and dev machines have ../shared/data)")
    return SHARED_DATA


@pytest.fixture
def K640() -> np.ndarray:
    """RealSense-D435-like intrinsics at 640x480 (fx != fy on purpose)."""
    return np.array([[615.0, 0, 321.5], [0, 612.0, 238.25], [0, 0, 1.0]])


def box_scene(h=480, w=640, K=None, plane_z=0.60, box=(0.02, -0.01, 0.05, 0.04, 0.03), seed=0):
    """A table plane at ``plane_z`` m with a box whose top is ``box[2]`` m above it.

    ``box = (x, y, height, half_x, half_y)`` in the camera optical frame (metres). Returns
    ``(rgb uint8, depth float32 metres)`` rendered exactly with the pinhole model.
    """
    K = np.array([[615.0, 0, 321.5], [0, 612.0, 238.25], [0, 0, 1.0]]) if K is None else K
    bx, by, bh, hx, hy = box
    top = plane_z - bh
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
    x = (uu - K[0, 2]) / K[0, 0] * top
    y = (vv - K[1, 2]) / K[1, 1] * top
    on_box = (np.abs(x - bx) <= hx) & (np.abs(y - by) <= hy)
    depth = np.where(on_box, top, plane_z).astype(np.float32)
    rng = np.random.default_rng(seed)
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = (170, 160, 150)
    rgb[on_box] = (200, 50, 40)
    rgb = np.clip(rgb.astype(int) + rng.integers(-5, 6, rgb.shape), 0, 255).astype(np.uint8)
    return rgb, depth


class OracleNet(torch.nn.Module):
    """Stands in for trained weights: returns maps drawn for one known network-pixel grasp [u, v, angle, width, jaw]."""

    def __init__(self, rect):
        super().__init__()
        from dsc_grasp_ros.core.grasp import draw_grasp_maps

        self.maps = [torch.from_numpy(m)[None, None] for m in draw_grasp_maps(np.array([rect]), (224, 224), mode="gaussian")]

    def forward(self, x):
        return tuple(m.to(x.dtype) for m in self.maps)


def randomise_batchnorm(net: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters (drawn from torch's global RNG): outputs
    far from zero and something for BatchNorm folding to fold. Returns the net in eval mode."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()
