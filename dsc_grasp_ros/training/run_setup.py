"""Setting a run up: processes and seeds, the split, the datasets and loader (with ``--mix``
sources), the network (``--init-from``), the teacher (``--teacher``) and the optimiser."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ..core.preprocess import DEFAULT_NET_PX_PER_METRE
from ..data import GraspDataset, collate, find_items, load_split, make_split, save_split, select
from .config import TrainConfig, max_opening_px, parse_mix, training_scale
from .run_folder import _log


# --------------------------------------------------------------------------- processes and seeds
def _seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def _dist_setup(device: str) -> tuple[int, int, int, torch.device]:
    """``(rank, local_rank, world, device)``; initialises DDP when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device in ("auto", "", None):
        dev = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"--device {device} requested but CUDA is not available")
        if dev.type == "cuda" and world > 1:
            dev = torch.device(f"cuda:{local}")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return rank, local, world, dev


# --------------------------------------------------------------------------- data
def prepare_run(cfg: TrainConfig, rank: int = 0):
    """Items and split (a resumed run or ``--split-file`` reuses the saved split)."""
    out = Path(cfg.out)
    items = find_items(cfg.dataset, cfg.path, depth=cfg.depth, object_map=cfg.object_map)
    if cfg.dataset == "cornell" and cfg.split == "object" and not cfg.object_map and not cfg.split_file:
        raise ValueError(
            "an object-wise Cornell split needs the image -> object mapping (--object-map FILE, lines "
            "'<image> <object-id>'); these files do not say which object an image shows"
        )
    saved = out / "split.json"
    if cfg.resume and saved.exists():
        split = load_split(saved)
    elif cfg.split_file:
        split = load_split(cfg.split_file)
    else:
        if cfg.limit:
            items = items[: cfg.limit]
        split = make_split(items, cfg.split, cfg.train_fraction, cfg.seed, cfg.folds, cfg.fold)
    train_items = select(items, split["train"], "training")
    test_items = select(items, split["test"], "held-out")
    if rank == 0 and not (cfg.resume and saved.exists()):
        save_split(saved, split, dataset=cfg.dataset, root=str(Path(cfg.path).resolve()))
    return train_items, test_items, split


def mix_datasets(cfg: TrainConfig, net_px_per_metre: float | None) -> list[tuple[dict, GraspDataset]]:
    """The ``--mix`` sources as training datasets (their split file's training ids only)."""
    from ..core.preprocess import PROTOCOLS

    res = []
    for spec in cfg.mix:
        m = parse_mix(spec) if isinstance(spec, str) else dict(spec)
        m["protocol"] = m["protocol"] or cfg.protocol
        if m["protocol"] not in PROTOCOLS:
            raise ValueError(f"--mix {m['dataset']}:{m['path']}: unknown protocol {m['protocol']!r}: use one of {PROTOCOLS}")
        items = find_items(m["dataset"], m["path"], depth=m["depth"] or cfg.depth, object_map=m["object_map"])
        if m["split"]:
            items = select(items, load_split(m["split"])["train"], "training")
        aug = cfg.augmentation(m["dataset"], m["augment"])
        ds = GraspDataset(items, cfg.modality, cfg.input_size, aug, cfg.label_mode, cfg.width_scale, m["protocol"], cfg.depth_ref, net_px_per_metre,
                          skip_invalid=True, max_opening_px=max_opening_px(cfg.max_opening, net_px_per_metre))
        res.append((m, ds))
    return res


@dataclass
class TrainData:
    train_ds: torch.utils.data.Dataset  # the run's training items, with the --mix sources
    test_ds: GraspDataset
    loader: DataLoader
    sampler: torch.utils.data.DistributedSampler | None
    generator: torch.Generator  # the loader's shuffling (saved in checkpoints)
    workers: int


def make_data(cfg: TrainConfig, train_items, test_items, rank: int, world: int, dev: torch.device) -> TrainData:
    """The datasets (width labels clipped to ``--max-opening``, ``--mix`` sources appended) and the
    training loader (each process its share of the global batch)."""
    aug = cfg.augmentation()
    px = training_scale(cfg.init_from, cfg.net_px_per_metre)
    max_px = max_opening_px(cfg.max_opening, px)
    if max_px is not None:
        _log(f"width labels clipped to the gripper's {cfg.max_opening * 1000:.0f} mm opening: {max_px:.1f} network px at {px or DEFAULT_NET_PX_PER_METRE:.1f} px/m", rank)
    train_ds = GraspDataset(train_items, cfg.modality, cfg.input_size, aug, cfg.label_mode, cfg.width_scale, cfg.protocol, cfg.depth_ref, px,
                            skip_invalid=True, max_opening_px=max_px)
    test_ds = GraspDataset(test_items, cfg.modality, cfg.input_size, None, cfg.label_mode, cfg.width_scale, cfg.protocol, cfg.depth_ref, px)
    mixed = mix_datasets(cfg, px)
    if mixed:
        for m, ds in mixed:
            _log(f"mixing in {m['dataset']} {m['path']}: {len(ds.items)} training images x {m['repeat']} (protocol {m['protocol']}, augmentation {'on' if ds.augment else 'off'})", rank)
        train_ds = torch.utils.data.ConcatDataset([train_ds] + [ds for m, ds in mixed for _ in range(m["repeat"])])
    if cfg.batch_size % world:
        raise ValueError(f"--batch-size {cfg.batch_size} must be divisible by the {world} processes")
    per_proc = cfg.batch_size // world
    workers = cfg.workers if cfg.workers >= 0 else min(8, max(0, (os.cpu_count() or 2) // (2 * world)))
    g = torch.Generator()
    g.manual_seed(cfg.seed)
    sampler = torch.utils.data.DistributedSampler(train_ds, world, rank, shuffle=True, seed=cfg.seed) if world > 1 else None
    loader = DataLoader(
        train_ds,
        batch_size=min(per_proc, len(train_ds)),
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        drop_last=len(train_ds) > per_proc,
        pin_memory=dev.type == "cuda",
        persistent_workers=workers > 0,
        generator=g,
    )
    return TrainData(train_ds, test_ds, loader, sampler, g, workers)


# --------------------------------------------------------------------------- network, teacher, optimiser
def transfer_weights(model: torch.nn.Module, modality: str, source_path: str) -> str:
    """Initialise ``model`` from another model file, possibly of another modality.

    Every tensor of matching name and shape is copied. The stem's input channels are matched by
    name (``depth``, ``r``, ``g``, ``b`` from both models' channel orders), so an RGB-D model's
    backbone can start a depth-only or RGB model. Returns a one-line summary.
    """
    from ..core.model_io import load_model
    from ..core.network import CHANNEL_ORDER

    src_model, src_meta = load_model(source_path)
    src = src_model.state_dict()
    dst = model.state_dict()
    dst_channels = CHANNEL_ORDER[modality]
    copied = 0
    for k, v in dst.items():
        if k not in src:
            continue
        if src[k].shape == v.shape:
            dst[k] = src[k].clone()
            copied += 1
        elif k == "stem.0.weight" and src[k].shape[0] == v.shape[0]:
            idx = [src_meta.channel_order.index(c) for c in dst_channels if c in src_meta.channel_order]
            if len(idx) == len(dst_channels):
                dst[k] = src[k][:, idx].clone()
                copied += 1
    model.load_state_dict(dst)
    return f"initialised {copied}/{len(dst)} tensors from {source_path} ({src_meta.modality} -> {'/'.join(dst_channels)})"


def load_teacher(cfg: TrainConfig, dev):
    """The ``--teacher`` network (eval, on ``dev``) or ``None``. It must take the student's input:
    same modality, depth reference and input size (else :class:`ValueError` naming both)."""
    if not cfg.teacher:
        return None
    from ..core.model_io import load_model

    teacher, meta = load_model(cfg.teacher, device=dev)
    for what, theirs, ours in (("modality", meta.modality, cfg.modality), ("depth reference", meta.depth_ref, cfg.depth_ref),
                               ("input size", meta.input_size, cfg.input_size)):
        if theirs != ours:
            raise ValueError(f"--teacher {cfg.teacher}: its {what} is {theirs!r}, the student's {ours!r} "
                             "(the teacher must see the student's input)")
    return teacher  # load_model returns it in eval mode; teacher_targets runs it without autograd


def _make_optimizer(name: str, params, lr: float):
    if name == "ranger":
        import warnings

        from pytorch_ranger import Ranger

        # pytorch-ranger 0.1.1 calls a deprecated addcmul_ overload (harmless, noisy once per run)
        warnings.filterwarnings("ignore", message="This overload of addcmul_ is deprecated")

        return Ranger(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown optimiser {name!r}: use 'ranger' or 'adam'")
