"""Grasp datasets: find the samples of Cornell, Jacquard or a Jacquard-format folder, and turn
each into a network input plus training targets.

One sample's path (training and evaluation alike)::

    files --read--> full-res RGB / depth / rectangles
          --ROI (preprocess.protocol_roi: Cornell a native 224 crop, Jacquard the square resized;
          zoomed when augmenting)--> prepare() (crop, resize, inpaint, normalise with the
          model's depth reference: the same code inference runs) --quarter turn (augmenting)--> x (C x S x S)
    rectangles --transform_rects(ROI matrix, rotation)--> network-pixel rectangles
          --draw_grasp_maps()--> targets (quality, cos 2θ, sin 2θ, width)
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.conventions import INPUT_SIZE, WIDTH_SCALE_PX
from ..core.grasp import draw_grasp_maps, transform_rects
from ..core.network import CHANNEL_ORDER
from ..core.preprocess import DEPTH_REFERENCES, PROTOCOLS, InputError, prepare, protocol_roi
from .augment import Augmentation, rot90_array, rot90_matrix, zoom_roi
from .formats import DatasetFormatError, read_cornell_grasps, read_depth, read_jacquard_grasps, read_rgb

__all__ = ["DATASETS", "Item", "find_items", "read_object_map", "GraspDataset", "collate"]

#: ``--dataset`` choices. ``jacquard-format`` is any folder in Jacquard's file layout (our synthetic
#: data): images of any size, one folder per object or scene.
DATASETS = ("cornell", "jacquard", "jacquard-format")

#: Quality-label styles accepted by :func:`dsc_grasp_ros.core.grasp.draw_grasp_maps`.
LABEL_MODES = ("rect", "gaussian")


@dataclass(frozen=True)
class Item:
    """One sample on disk. ``id`` is its path relative to the dataset root without the suffix
    (stable across machines, used in split files); ``group`` is the object (or scene) it shows."""

    id: str
    group: str
    rgb: str
    depth: str
    grasps: str
    format: str  # 'cornell' or 'jacquard'
    camera: str | None = None  # our synthetic data's N_<id>_camera.json (intrinsics), if any

    def as_dict(self) -> dict:
        return asdict(self)


def read_object_map(path) -> dict[str, str]:
    """Cornell image -> object id, from a text file of lines ``<image> <object> [ignored...]``.

    ``<image>`` may be ``100``, ``0100`` or ``pcd0100`` (comma, tab or space separated; ``#``
    comments allowed), which covers the ``z.txt``-style mapping shipped with the full dataset.
    """
    mapping = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        s = line.split("#", 1)[0].replace(",", " ").split()
        if not s:
            continue
        if len(s) < 2:
            raise DatasetFormatError(f"{path}:{lineno}: expected '<image> <object>', got {line!r}")
        m = re.search(r"(\d+)", s[0])
        if not m:
            raise DatasetFormatError(f"{path}:{lineno}: no image number in {s[0]!r}")
        mapping[str(int(m.group(1)))] = s[1]
    return mapping


def _cornell_items(root: Path, object_map: dict[str, str] | None) -> list[Item]:
    items = []
    for g in sorted(root.rglob("pcd*cpos.txt")):
        stem = g.name[: -len("cpos.txt")]  # pcd0100
        rgb, depth = g.with_name(stem + "r.png"), g.with_name(stem + "d.tiff")
        if not rgb.exists() or not depth.exists():
            raise DatasetFormatError(f"{g}: missing {rgb.name} or {depth.name} next to it")
        num = str(int(re.sub(r"\D", "", stem)))
        group = object_map.get(num) if object_map else None
        if object_map is not None and group is None:
            raise DatasetFormatError(f"object map has no entry for image {stem}")
        rel = g.relative_to(root).with_name(stem).as_posix()
        items.append(Item(rel, group or rel, str(rgb), str(depth), str(g), "cornell"))
    return items


def _jacquard_items(root: Path, depth: str) -> list[Item]:
    if depth not in ("perfect", "stereo"):
        raise ValueError(f"depth must be 'perfect' or 'stereo', got {depth!r}")
    items = []
    for g in sorted(root.rglob("*_grasps.txt")):
        stem = g.name[: -len("_grasps.txt")]  # N_<id>
        rgb, d = g.with_name(stem + "_RGB.png"), g.with_name(stem + f"_{depth}_depth.tiff")
        if not rgb.exists() or not d.exists():
            raise DatasetFormatError(f"{g}: missing {rgb.name} or {d.name} next to it")
        rel = g.relative_to(root).with_name(stem).as_posix()
        group = g.parent.relative_to(root).as_posix()
        cam = g.with_name(stem + "_camera.json")
        items.append(
            Item(rel, group if group != "." else stem.split("_", 1)[-1], str(rgb), str(d), str(g), "jacquard", str(cam) if cam.exists() else None)
        )
    return items


def find_items(dataset: str, root, depth: str = "perfect", object_map=None) -> list[Item]:
    """All samples of ``dataset`` under ``root``, sorted by id.

    ``depth`` picks Jacquard's ``perfect`` or ``stereo`` depth. ``object_map`` (a path or a dict)
    gives Cornell's image -> object mapping, needed for an object-wise split; without it each
    Cornell image is its own group.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    if dataset == "cornell":
        om = read_object_map(object_map) if isinstance(object_map, (str, Path)) else object_map
        items = _cornell_items(root, om)
    elif dataset in ("jacquard", "jacquard-format"):
        items = _jacquard_items(root, depth)
    else:
        raise ValueError(f"unknown dataset {dataset!r}: use one of {DATASETS}")
    if not items:
        pattern = "pcd*cpos.txt" if dataset == "cornell" else "*_grasps.txt"
        raise DatasetFormatError(f"no {dataset} samples ({pattern}) found under {root}")
    return items


def read_camera_K(path) -> np.ndarray:
    """3x3 intrinsics from a synthetic sample's ``camera.json`` (key ``K``)."""
    import json

    try:
        K = np.asarray(json.loads(Path(path).read_text())["K"], dtype=float).reshape(3, 3)
    except (OSError, ValueError, KeyError) as e:
        raise DatasetFormatError(f"{path}: no readable 3x3 'K' intrinsics ({e})") from e
    if not (np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0):
        raise DatasetFormatError(f"{path}: intrinsics must be finite with positive focal lengths, got {K.tolist()}")
    return K


def read_rects(item: Item) -> np.ndarray:
    """Full-image Nx5 rectangles of one item."""
    return read_cornell_grasps(item.grasps) if item.format == "cornell" else read_jacquard_grasps(item.grasps)


class GraspDataset(Dataset):
    """Samples -> ``{'x': C x S x S, 'y': 4 x S x S, 'rects': Nx5 network px, 'index': i}``.

    ``augment`` (an :class:`Augmentation`) draws a quarter turn and zoom per sample from torch's
    RNG, so a seeded run (``torch.manual_seed``; DataLoader workers are seeded from it) is
    reproducible. ``label_mode`` is the quality-label style of :func:`draw_grasp_maps`.
    ``protocol`` picks the crop (:data:`~dsc_grasp_ros.core.preprocess.PROTOCOLS`), ``depth_ref`` the
    depth normalisation (:data:`~dsc_grasp_ros.core.preprocess.DEPTH_REFERENCES`, the model's).
    ``max_opening_px`` (training labels only): openings wider than this many network pixels (at zoom
    1; ``/ zoom`` under a zoom) are clipped to it, i.e. the gripper's largest opening times the
    model's ``net_px_per_metre``: the width head then never learns an opening the node would reject.
    """

    def __init__(
        self,
        items: Sequence[Item],
        modality: str,
        input_size: int = INPUT_SIZE,
        augment: Augmentation | None = None,
        label_mode: str = "rect",
        width_scale: float = WIDTH_SCALE_PX,
        protocol: str = "paper",
        depth_ref: str = "mean",
        net_px_per_metre: float | None = None,
        skip_invalid: bool = False,
        max_opening_px: float | None = None,
    ):
        if modality not in CHANNEL_ORDER:
            raise ValueError(f"unknown modality {modality!r}: use one of {sorted(CHANNEL_ORDER)}")
        if label_mode not in LABEL_MODES:
            raise ValueError(f"unknown label mode {label_mode!r}: use one of {LABEL_MODES}")
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}: use one of {PROTOCOLS}")
        if depth_ref not in DEPTH_REFERENCES:
            raise ValueError(f"unknown depth reference {depth_ref!r}: use one of {DEPTH_REFERENCES}")
        self.protocol = protocol
        self.depth_ref = depth_ref
        self.net_px_per_metre = net_px_per_metre
        self.skip_invalid = bool(skip_invalid)
        if max_opening_px is not None and not max_opening_px > 0:
            raise ValueError(f"max_opening_px must be > 0, got {max_opening_px}")
        self.max_opening_px = None if max_opening_px is None else float(max_opening_px)
        self.skipped: dict[str, str] = {}  # id -> reason, this process's (a worker's) skips
        self.items = list(items)
        self.modality = modality
        self.input_size = int(input_size)
        self.augment = augment
        self.label_mode = label_mode
        self.width_scale = float(width_scale)
        self.needs_depth = "depth" in CHANNEL_ORDER[modality]
        self.needs_rgb = "r" in CHANNEL_ORDER[modality]

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int):
        """Full-resolution ``(rgb or None, depth or None, rects)`` of sample ``i``."""
        it = self.items[i]
        rgb = read_rgb(it.rgb) if self.needs_rgb else None
        depth = read_depth(it.depth) if self.needs_depth else None
        return rgb, depth, read_rects(it)

    def _roi(self, i: int, h: int, w: int, depth, zoom: float = 1.0):
        """The crop of sample ``i`` (``h x w`` full image) under this dataset's protocol and ``zoom``."""
        K, roi_depth = None, depth
        if self.protocol == "scale" and self.items[i].camera:
            K = read_camera_K(self.items[i].camera)
            if roi_depth is None:  # an RGB model still crops at the scale the depth says
                roi_depth = read_depth(self.items[i].depth)
        base = protocol_roi(self.protocol, self.items[i].format, h, w, self.input_size, K, roi_depth, self.net_px_per_metre)
        return zoom_roi(h, w, zoom, self.input_size, base)

    def view(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """What the network sees of sample ``i``, for people: ``(S x S x 3 uint8, rects_net)``, the
        colour image (the depth in grey when the sample has none) in the same crop as :meth:`sample`
        at zoom 1 without rotation, and the ground-truth rectangles in its network pixels."""
        from ..core.visualize import depth_to_rgb

        it = self.items[i]
        rgb = read_rgb(it.rgb) if it.rgb else None
        depth = read_depth(it.depth) if rgb is None else None  # (the scale ROI reads the depth itself)
        rects = read_rects(it)
        h, w = (rgb if rgb is not None else depth).shape[:2]
        roi = self._roi(i, h, w, depth)
        img = roi.crop(np.ascontiguousarray(rgb[..., :3])) if rgb is not None else depth_to_rgb(roi.crop(depth))
        return img, transform_rects(rects, roi.matrix)

    def sample(self, i: int, quarter_turns: int = 0, zoom: float = 1.0):
        """Deterministic sample: ``(x, rects_net)`` for a given rotation and zoom."""
        rgb, depth, rects = self.load(i)
        h, w = (rgb if rgb is not None else depth).shape[:2]
        roi = self._roi(i, h, w, depth, zoom)
        x, _ = prepare(rgb, depth, roi, self.modality, self.depth_ref)
        r = transform_rects(rects, roi.matrix)
        if self.max_opening_px is not None and len(r):
            # labels in the gripper's terms: no opening wider than the gripper's (at zoom 1 the node's
            # scale; a zoom < 1 magnifies the view, and the limit with it)
            r = r.copy()
            r[:, 3] = np.minimum(r[:, 3], self.max_opening_px / zoom)
        if quarter_turns % 4:
            x = rot90_array(x, quarter_turns)
            r = transform_rects(r, rot90_matrix(quarter_turns, self.input_size))
        return x, r

    def targets(self, rects: np.ndarray) -> np.ndarray:
        """``4 x S x S`` targets (quality, cos 2θ, sin 2θ, width) of network-pixel rectangles."""
        return np.stack(draw_grasp_maps(rects, (self.input_size, self.input_size), self.label_mode, self.width_scale))

    def __getitem__(self, i: int) -> dict:
        k, zoom = 0, 1.0
        if self.augment is not None:
            u = torch.rand(2).tolist()
            k, zoom = self.augment.sample(u[0], u[1])
        for attempt in range(len(self) if self.skip_invalid else 1):
            j = (i + attempt) % len(self)
            try:
                x, r = self.sample(j, k, zoom)
                break
            except InputError as e:
                # a frame the node would skip too (e.g. stereo depth all holes in the crop): in
                # training, take the next sample instead of stopping the run; never in evaluation
                if not self.skip_invalid:
                    raise InputError(f"{self.items[j].id}: {e}", e.code) from e
                if self.items[j].id not in self.skipped:
                    self.skipped[self.items[j].id] = str(e)
                    warnings.warn(f"training sample {self.items[j].id} skipped (zoom {zoom:.2f}): {e}", stacklevel=2)
        else:
            raise InputError(f"no usable sample in this dataset ({len(self.skipped)} skipped)", "all_invalid")
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(self.targets(r)), "rects": r, "index": j}


def collate(batch: list[dict]) -> dict:
    """Stack inputs and targets; keep the per-sample rectangles as a list."""
    return {
        "x": torch.stack([b["x"] for b in batch]),
        "y": torch.stack([b["y"] for b in batch]),
        "rects": [b["rects"] for b in batch],
        "index": torch.tensor([b["index"] for b in batch]),
    }
