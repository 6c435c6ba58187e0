"""The object catalogue: which meshes scenes are built from, how they are scaled, the hold-out.

Catalogue indices (stable; they are what ``--object-range`` selects and what each scene records):

* ``0..999``: pybullet_data ``random_urdfs/NNN`` (procedural convex-decomposed blobs, ~3x9x12 cm
  at their URDF scale). ``random_168`` has NaN vertices and is left out.
* ``1000..``: the other small objects in pybullet_data (:data:`EXTRAS`).

Scaling: each object is drawn at a random size (longest side 4-13 cm), then shrunk where needed so
that its middle dimension is at most 6.5 cm, i.e. it can be grasped by an 8 cm parallel gripper
at least across its narrow side. The scale is drawn from the scene's random generator, so it is
reproducible and recorded in each view's ``camera.json``.

Hold-out: :data:`HELD_OUT` (random_urdfs 900-999 plus two of the extras) is never used by the
``train`` preset; the ``test`` preset uses only those objects.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

N_RANDOM = 1000
BROKEN = {168}

#: (name, URDF path relative to pybullet_data, native extent in metres (sorted ascending) or None).
EXTRAS: list[tuple[str, str]] = [
    ("duck", "duck_vhacd.urdf"),
    ("lego", "lego/lego.urdf"),
    ("jenga", "jenga/jenga.urdf"),
    ("domino", "domino/domino.urdf"),
    ("mug", "objects/mug.urdf"),
    ("cube_small", "cube_small.urdf"),
    ("sphere_small", "sphere_small.urdf"),
    ("teddy", "teddy_vhacd.urdf"),
    ("block", "block.urdf"),
    ("soccerball", "soccerball.urdf"),
]

#: Catalogue indices never used for training (object-wise split).
HELD_OUT: frozenset[int] = frozenset(list(range(900, 1000)) + [1000 + 7, 1000 + 4])  # + teddy, mug


@dataclass(frozen=True)
class ObjectSpec:
    index: int
    name: str
    urdf: str  # absolute path
    extent: tuple[float, float, float]  # native size along x, y, z (m), at globalScaling 1


def data_path() -> str:
    import pybullet_data

    return pybullet_data.getDataPath()


def _obj_extent(path: str, scale: float) -> tuple[float, float, float]:
    v = []
    with open(path) as f:
        for line in f:
            if line.startswith("v "):
                v.append(line.split()[1:4])
    a = np.asarray(v, dtype=np.float64)
    a = a[np.isfinite(a).all(1)]
    e = (a.max(0) - a.min(0)) * scale
    return tuple(float(x) for x in e)


#: Native extents of the extras at globalScaling 1 (measured with pybullet.getAABB).
_EXTRA_EXTENTS = {
    "duck": (0.0907, 0.0854, 0.066),
    "lego": (0.034, 0.034, 0.025),
    "jenga": (0.15, 0.05, 0.03),
    "domino": (0.0063, 0.0254, 0.0508),
    "mug": (0.088, 0.1276, 0.106),
    "cube_small": (0.05, 0.05, 0.05),
    "sphere_small": (0.06, 0.06, 0.06),
    "teddy": (0.0841, 0.1012, 0.0707),
    "block": (0.1, 0.018, 0.018),
    "soccerball": (1.0, 1.0, 1.0),
}


@functools.lru_cache(maxsize=1)
def catalogue() -> dict[int, ObjectSpec]:
    """All usable objects by catalogue index (parses the random_urdfs OBJ files once, ~0.3 s)."""
    root = data_path()
    out: dict[int, ObjectSpec] = {}
    for i in range(N_RANDOM):
        if i in BROKEN:
            continue
        d = os.path.join(root, "random_urdfs", f"{i:03d}")
        out[i] = ObjectSpec(i, f"random_{i:03d}", os.path.join(d, f"{i:03d}.urdf"), _obj_extent(os.path.join(d, f"{i:03d}.obj"), 0.015))
    for k, (name, rel) in enumerate(EXTRAS):
        out[N_RANDOM + k] = ObjectSpec(N_RANDOM + k, name, os.path.join(root, rel), _EXTRA_EXTENTS[name])
    return out


def parse_object_range(text: str | None) -> list[int]:
    """``"0-899,1000-1009"``, ``"5"``, or a preset ``all`` / ``train`` / ``test`` -> sorted indices.

    Only indices present in the catalogue are returned; an empty selection is an error.
    """
    cat = catalogue()
    text = (text or "all").strip().lower()
    if text == "all":
        sel = set(cat)
    elif text == "train":
        sel = set(cat) - HELD_OUT
    elif text in ("test", "held-out", "heldout"):
        sel = set(cat) & HELD_OUT
    else:
        sel = set()
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError(f"bad object range {part!r}: end before start")
                sel.update(range(lo, hi + 1))
            else:
                sel.add(int(part))
        sel &= set(cat)
    if not sel:
        raise ValueError(f"object range {text!r} selects no catalogue object (indices 0-{max(cat)})")
    return sorted(sel)


def sample_scale(spec: ObjectSpec, rng: np.random.Generator, max_middle: float = 0.055, min_small: float = 0.02) -> float:
    """Random globalScaling so the longest side is 4-13 cm and the middle one at most ``max_middle``.

    Flat objects are thickened where possible so the smallest side is at least ``min_small``
    (without breaking the other limits).
    """
    e = np.sort(np.asarray(spec.extent, dtype=np.float64))
    small, middle, large = (max(x, 1e-4) for x in e)
    s = rng.uniform(0.04, 0.12) / large
    s = min(s, max_middle / middle)
    if small * s < min_small:
        s = min(min_small / small, max_middle / middle, 0.15 / large)
    return float(s)
