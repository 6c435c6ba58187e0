"""The training loop behind ``dsc-grasp train`` (Section IV-A.4 of the paper by default).

Defaults: Ranger optimiser, fixed learning rate 0.001, batch 32, 50 epochs, P-Huber loss,
224x224 inputs, augmentation on Cornell only (the paper's choice), held-out accuracy with the
paper's metric after every epoch. CUDA runs use mixed precision; ``torchrun --nproc_per_node=N``
runs data-parallel (DDP) with the global batch split across the processes.

A run folder holds::

    config.json        the resolved options, package version, hardware
    split.json         the train/test ids (``dsc-grasp evaluate --split-file`` reads it)
    checkpoints/last.pt  model + optimiser + scaler + RNG state (``--resume`` continues from it)
    checkpoints/best.pt  weights of the epoch with the best held-out accuracy
    history.json       per-epoch loss parts, accuracy, time
    model.pt/.json     best weights as a model file (what predict, evaluate and the node load)
    eval_test.json     per-image evaluation of model.pt on the held-out items
    summary.json       the numbers above in one place
    tb/                TensorBoard scalars
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset

from ..core.conventions import INPUT_SIZE, WIDTH_SCALE_PX
from ..data import Augmentation, GraspDataset, collate, find_items, make_split, save_split, load_split, select
from .evaluation import evaluate_model
from ..core.network import LEGACY_UPSAMPLE_ORDER, dsc_graspnet
from ..core.preprocess import DEFAULT_NET_PX_PER_METRE, NORMALISATIONS
from .loss import grasp_loss

__all__ = ["TrainConfig", "train"]


@dataclass
class TrainConfig:
    dataset: str
    path: str
    out: str
    modality: str = "rgbd"
    split: str = "image"
    train_fraction: float = 0.9
    folds: int | None = None
    fold: int = 0
    split_file: str | None = None
    object_map: str | None = None
    depth: str = "perfect"
    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "ranger"
    loss: str = "p-huber"
    label_mode: str = "rect"
    upsample_order: str = "csp_first"
    augment: str = "auto"
    zoom_min: float = 0.5
    protocol: str = "paper"
    depth_ref: str = "plane"
    input_size: int = INPUT_SIZE
    width_scale: float = WIDTH_SCALE_PX
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    amp: bool = True
    workers: int = -1
    max_minutes: float | None = None
    max_steps: int | None = None
    limit: int | None = None
    eval_every: int = 1
    eval_batch_size: int = 8
    precise_bn: int = 8
    resume: bool = False
    init_from: str | None = None
    net_px_per_metre: float | None = None
    #: metres: training width labels clipped to the gripper's largest opening (``None``: as labelled)
    max_opening: float | None = None
    #: closed-loop check per evaluation: scenes per object (10 training objects); 0 = off. With it,
    #: the exported checkpoint is the one with the best grasp success (ties: held-out accuracy).
    closed_loop_trials: int = 0
    #: distillation: a model file whose output maps replace the labels as targets (same modality,
    #: depth reference and input size); ``None``: train on the labels
    teacher: str | None = None
    mix: list = field(default_factory=list)
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def augmentation(self, dataset: str | None = None, mode: str | None = None) -> Augmentation | None:
        """The run's augmentation, or (``dataset``/``mode`` given) that of a ``--mix`` source;
        ``auto`` = on for Cornell only, as in the paper."""
        dataset, mode = dataset or self.dataset, mode or self.augment
        on = {"on": True, "off": False, "auto": dataset == "cornell"}[mode]
        return Augmentation(rotate=True, zoom_min=self.zoom_min, zoom_max=1.0) if on else None


# --------------------------------------------------------------------------- helpers
def training_record(cfg: dict, split: dict, hardware, wall_minutes) -> dict:
    """The ``training`` metadata of a model file, shared by a run's model.json and ``export``."""
    from ..core.model_io import portable_path

    return {
        "dataset": cfg["dataset"],
        "path": portable_path(cfg["path"]),  # relative to the project, else the dataset folder's name
        "split": split.get("kind", cfg["split"]),
        "train_items": len(split.get("train", [])),
        "test_items": len(split.get("test", [])),
        "loss": cfg["loss"],
        "label_mode": cfg["label_mode"],
        "optimizer": cfg["optimizer"],
        "lr": cfg["lr"],
        "batch_size": cfg["batch_size"],
        "augment": cfg.get("augment"),
        "depth": cfg.get("depth"),
        "protocol": cfg.get("protocol", "square"),
        "depth_ref": cfg.get("depth_ref", "mean"),
        "init_from": cfg.get("init_from"),
        "net_px_per_metre": cfg.get("net_px_per_metre"),
        "max_opening": cfg.get("max_opening"),
        "teacher": portable_path(cfg["teacher"]) if cfg.get("teacher") else None,
        "closed_loop_trials": cfg.get("closed_loop_trials") or 0,
        "mix": [_mix_record(m) for m in cfg.get("mix") or []],
        "seed": cfg["seed"],
        "hardware": hardware,
        "wall_minutes": wall_minutes,
    }


def _mix_record(spec) -> dict:
    from ..core.model_io import portable_path

    m = parse_mix(spec) if isinstance(spec, str) else dict(spec)
    return {k: (portable_path(v) if k in ("path", "split", "object_map") and v else v) for k, v in m.items()}


def training_scale(init_from: str | None, net_px_per_metre: float | None = None) -> float | None:
    """``net_px_per_metre`` of a new model: ``--net-px-per-metre`` when given (the scale the
    ``scale`` protocol cropped the synthetic images at), else its ``--init-from`` model's
    (fine-tuning keeps the scale the backbone learned), else ``None`` (the default of
    :data:`preprocess.DEFAULT_NET_PX_PER_METRE`). Cornell/Jacquard files carry no intrinsics, so
    their metric scale cannot be measured here."""
    if net_px_per_metre is not None:
        return float(net_px_per_metre)
    if not init_from:
        return None
    from ..core.model_io import load_metadata

    return load_metadata(init_from).net_px_per_metre


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


# A teacher map value this far outside the range of the labels it learnt from (quality, width in
# [0, 1]; cos, sin in [-1, 1]) is not a grasp it predicts but an input it has never seen: on the
# shipped eq5 RGB-D model a strongly textured (moire) floor gives quality 8.7 and cos 9 over 74 %
# of the image, while its usual maps stay within ~1.1.
TEACHER_RANGE_TOLERANCE = 0.5
TEACHER_MAX_OUT_OF_RANGE = 0.01  # fraction of pixels
TEACHER_GRASP_QUALITY = 0.1  # angle and width are checked where the teacher's quality exceeds this


@torch.no_grad()
def teacher_targets(teacher, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(targets, keep)``: ``N x 4 x H x W`` targets from the teacher's maps (quality clipped to
    [0, 1] as it is decoded, which also weights the angle and width terms of P-Huber; cos, sin and
    width raw) and an ``N`` bool mask of the images on which the teacher stays within its training
    range: more than ``TEACHER_MAX_OUT_OF_RANGE`` of the pixels further than
    ``TEACHER_RANGE_TOLERANCE`` outside the label range (angle and width only where the quality
    exceeds ``TEACHER_GRASP_QUALITY``), or any non-finite value, drop the image."""
    q, cos, sin, wid = (o.float() for o in teacher(x))
    tol = TEACHER_RANGE_TOLERANCE
    # angle and width count only where the teacher sees a grasp: elsewhere P-Huber never trained them
    # (the shipped models' width is -0.8 on empty table) and the loss weights them by the quality
    seen = q > TEACHER_GRASP_QUALITY
    bad = ((q > 1 + tol) | (q < -tol) | ~torch.isfinite(q + cos + sin + wid)
           | (seen & ((cos.abs() > 1 + tol) | (sin.abs() > 1 + tol) | (wid > 1 + tol) | (wid < -tol))))
    keep = bad.flatten(1).float().mean(1) <= TEACHER_MAX_OUT_OF_RANGE
    y = torch.cat([q.clamp(0.0, 1.0), cos, sin, wid], 1)
    return torch.nan_to_num(y), keep


def max_opening_px(max_opening: float | None, net_px_per_metre: float | None) -> float | None:
    """``--max-opening`` (metres) in network pixels at the model's scale: the node's ROI shows a
    metre as ``net_px_per_metre`` network pixels, so a label wider than this is a grasp the node
    would reject as wider than the gripper (``max_gripper_opening``). ``None`` without a limit."""
    if max_opening is None:
        return None
    if not max_opening > 0:
        raise ValueError(f"--max-opening must be > 0 metres, got {max_opening}")
    return float(max_opening) * float(net_px_per_metre or DEFAULT_NET_PX_PER_METRE)


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


@torch.no_grad()
def precise_bn(model: torch.nn.Module, loader, n_batches: int, device, amp: bool = False) -> int:
    """Recompute BatchNorm statistics as exact averages over ``n_batches`` training batches
    with the current weights ("precise BN", as in pycls / Detectron2); returns the batches used.

    The running statistics start at mean 0 / variance 1 and follow the weights with momentum
    0.1, while the first layers' activations here have variances near 1e-3 (normalised inputs of
    a few centimetres); without this, held-out scores of the first ~100 steps (a Cornell epoch is
    25 steps) measure stale statistics rather than the weights.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or n_batches <= 0:
        return 0
    momenta = [m.momentum for m in bns]
    was_training = model.training
    saved = [(m.running_mean.clone(), m.running_var.clone()) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    used = 0
    for batch in loader:
        if used >= n_batches:
            break
        with torch.autocast(torch.device(device).type, dtype=torch.float16, enabled=amp):
            model(batch["x"].to(device, non_blocking=True))
        used += 1
    for m, mom, (rm, rv) in zip(bns, momenta, saved):
        m.momentum = mom
        if used == 0:
            m.running_mean.copy_(rm)
            m.running_var.copy_(rv)
    model.train(was_training)
    return used


def _rng_state() -> dict:
    """RNG states as tensors and plain data only (the checkpoint loads with weights_only=True)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                   "cached_gaussian": float(cached)}
    s = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    n = s["numpy"]
    if isinstance(n, dict):
        n = (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    np.random.set_state(n)  # a tuple with a numpy array in checkpoints of the earlier format
    random.setstate(s["python"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def _hardware(dev: torch.device, world: int) -> str:
    if dev.type == "cuda":
        return f"{world}x {torch.cuda.get_device_name(dev)}"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _log(msg: str, rank: int) -> None:
    if rank == 0:
        print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- mixtures
MIX_KEYS = ("split", "repeat", "protocol", "object_map", "depth", "augment")


def parse_mix(spec: str) -> dict:
    """``DATASET:PATH[,key=value...]`` (``dsc-grasp train --mix``) -> a dict with every key.

    Keys: ``split`` (a split.json: only its *train* ids are used, so its held-out part stays
    unseen), ``repeat`` (times per epoch, default 1), ``protocol`` (default: the run's),
    ``object_map``, ``depth`` (Jacquard perfect/stereo, default: the run's), ``augment``
    (auto/on/off; auto = on for Cornell, as in the paper)."""
    from ..data import DATASETS

    head, sep, rest = spec.partition(":")
    if not sep or head not in DATASETS:
        raise ValueError(f"--mix {spec!r}: expected DATASET:PATH[,key=value...] with DATASET one of {DATASETS}")
    path, *pairs = rest.split(",")
    if not path:
        raise ValueError(f"--mix {spec!r}: no PATH after {head}:")
    out = {"dataset": head, "path": path, "split": None, "repeat": 1, "protocol": None, "object_map": None, "depth": None, "augment": "auto"}
    for kv in pairs:
        k, eq, v = kv.partition("=")
        k = k.strip().replace("-", "_")
        if not eq or k not in MIX_KEYS:
            raise ValueError(f"--mix {spec!r}: {kv!r} is not key=value with a key of {MIX_KEYS}")
        out[k] = v
    try:
        out["repeat"] = int(out["repeat"])
    except ValueError:
        raise ValueError(f"--mix {spec!r}: repeat must be an integer, got {out['repeat']!r}") from None
    if out["repeat"] < 1:
        raise ValueError(f"--mix {spec!r}: repeat must be >= 1")
    if out["augment"] not in ("auto", "on", "off"):
        raise ValueError(f"--mix {spec!r}: augment must be auto, on or off")
    return out


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


# --------------------------------------------------------------------------- main entry
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


def train(cfg: TrainConfig) -> dict:
    """Run a training; returns the summary (also written to ``OUT/summary.json``)."""
    t_start = time.time()
    rank, local, world, dev = _dist_setup(cfg.device)
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "checkpoints").mkdir(exist_ok=True)
        if not cfg.resume and (out / "checkpoints" / "last.pt").exists():
            raise FileExistsError(f"{out} already holds a run: use --resume to continue it or choose another --out")
    if world > 1:
        dist.barrier()
    if cfg.closed_loop_trials < 0:
        raise ValueError(f"--closed-loop-trials must be >= 0, got {cfg.closed_loop_trials}")
    if cfg.closed_loop_trials and rank == 0:  # fail now, not after the first epoch
        try:
            import pybullet  # noqa: F401
        except ImportError as e:
            raise ValueError(f"--closed-loop-trials needs the simulator: {e}") from e
        from .closed_loop import check_objects

        _log(f"closed-loop check after every evaluation: {cfg.closed_loop_trials} scenes x {', '.join(check_objects())}", rank)
    _seed_everything(cfg.seed + rank, cfg.deterministic)
    train_items, test_items, split = prepare_run(cfg, rank)
    amp = bool(cfg.amp and dev.type == "cuda")

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

    # channels_last on every device: 3x faster training steps on a 2-core CPU (measured), and
    # the layout tensor cores want on CUDA
    model = dsc_graspnet(cfg.modality, upsample_order=cfg.upsample_order)
    if cfg.init_from and not cfg.resume:
        _log(transfer_weights(model, cfg.modality, cfg.init_from), rank)
    model = model.to(dev).to(memory_format=torch.channels_last)
    teacher = load_teacher(cfg, dev)
    if teacher is not None:
        _log(f"distilling from {cfg.teacher}: its output maps are the targets (the labels are used for evaluation only)", rank)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    opt = _make_optimizer(cfg.optimizer, model.parameters(), cfg.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    start_epoch, step, best, history = 0, 0, {"accuracy": -1.0, "epoch": None}, []
    prior_wall_s = 0.0  # wall time of earlier invocations of a resumed run
    last_path = out / "checkpoints" / "last.pt"
    if cfg.resume:
        if not last_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint {last_path}")
        from ..core.model_io import load_checkpoint

        ck = load_checkpoint(last_path, map_location=dev)
        old = ck.get("config", {})
        for key in ("dataset", "modality", "input_size", "loss", "label_mode", "width_scale"):
            if key in old and old[key] != getattr(cfg, key):
                raise ValueError(f"--resume: the run in {out} was trained with {key}={old[key]!r}, not {getattr(cfg, key)!r}")
        old_order = old.get("upsample_order", LEGACY_UPSAMPLE_ORDER) if old else cfg.upsample_order
        if old_order != cfg.upsample_order:
            raise ValueError(f"--resume: the run in {out} was trained with --upsample-order {old_order}, not {cfg.upsample_order}")
        for key, legacy in (("protocol", "square"), ("depth_ref", "mean")):  # runs from before these options
            was = old.get(key, legacy) if old else getattr(cfg, key)
            if was != getattr(cfg, key):
                raise ValueError(f"--resume: the run in {out} was trained with --{key.replace('_', '-')} {was}, not {getattr(cfg, key)}")
        _unwrap(model).load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        scaler.load_state_dict(ck["scaler"])
        start_epoch, step, best, history = ck["epoch"] + 1, ck["step"], ck["best"], ck["history"]
        prior_wall_s = float(ck.get("wall_s", 0.0))
        _set_rng_state(ck["rng"])
        g.set_state(ck["loader_rng"])
        _log(f"resumed {out} at epoch {start_epoch + 1} (step {step})", rank)

    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"))
        meta = {
            "config": asdict(cfg),
            "augmentation": asdict(aug) if aug else None,
            "hardware": _hardware(dev, world),
            "host": socket.gethostname(),
            "torch": torch.__version__,
            "amp": amp,
            "world_size": world,
            "workers": workers,
            "train_items": len(train_items),
            "test_items": len(test_items),
            "argv": sys.argv,
        }
        _write_json(out / "config.json", meta)
        _log(
            f"training {cfg.modality} on {cfg.dataset} ({len(train_items)} train / {len(test_items)} held-out, "
            f"{cfg.split}-wise), {meta['hardware']}, AMP {'on' if amp else 'off'}, augmentation "
            f"{'on' if aug else 'off'}, loss {cfg.loss}, {cfg.optimizer} lr {cfg.lr}, batch {cfg.batch_size}",
            rank,
        )

    budget_s = cfg.max_minutes * 60.0 if cfg.max_minutes else math.inf  # per invocation
    stop_reason = "epochs"
    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        t_ep = time.time()
        sums = {"loss": 0.0, "quality": 0.0, "cos": 0.0, "sin": 0.0, "width": 0.0}
        n_batches = 0
        teacher_dropped = 0
        bar = None
        if rank == 0 and cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", dynamic_ncols=True, leave=False)
        out_of_time = False
        for batch in loader:
            x = batch["x"].to(dev, non_blocking=True)
            if teacher is None:
                y, keep = batch["y"].to(dev, non_blocking=True), None
            else:
                y, keep = teacher_targets(teacher, x)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                pred = model(x)
            if keep is not None and not bool(keep.all()):
                # an image the teacher does not know: the student's own maps as its target, so it adds
                # no gradient (the batch keeps its shape, which DDP and BatchNorm rely on)
                y = torch.where(keep.view(-1, 1, 1, 1), y, torch.cat([p.detach().float() for p in pred], 1))
                teacher_dropped += int((~keep).sum())
            loss, parts = grasp_loss(pred, y, cfg.loss)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            step += 1
            n_batches += 1
            lv = float(loss.detach())
            sums["loss"] += lv
            for k, v in parts.items():
                sums[k] += float(v)
            if writer is not None:
                writer.add_scalar("train/loss_step", lv, step)
            if bar is not None:
                bar.set_postfix(loss=f"{lv:.4f}")
                bar.update(1)
            if time.time() - t_start > budget_s:
                out_of_time, stop_reason = True, "max-minutes"
            if cfg.max_steps and step >= cfg.max_steps:
                out_of_time, stop_reason = True, "max-steps"
            if world > 1:
                flag = torch.tensor([1.0 if out_of_time else 0.0], device=dev)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                out_of_time = bool(flag.item() > 0)
            if out_of_time:
                break
        if bar is not None:
            bar.close()
        train_s = time.time() - t_ep
        rec = {"epoch": epoch + 1, "step": step, "train_s": round(train_s, 2)}
        rec.update({f"train_{k}": v / max(n_batches, 1) for k, v in sums.items()})
        if teacher is not None:
            rec["teacher_dropped_images"] = teacher_dropped
        last_epoch = epoch + 1 == cfg.epochs or out_of_time
        if rank == 0 and (last_epoch or (epoch + 1) % max(cfg.eval_every, 1) == 0):
            t_ev = time.time()
            precise_bn(_unwrap(model), loader, cfg.precise_bn, dev, amp)
            res = evaluate_model(
                _unwrap(model), test_ds, dev, cfg.width_scale, amp=amp, batch_size=cfg.eval_batch_size, progress=cfg.progress
            )
            rec.update({"test_accuracy": res["accuracy"], "test_count": res["count"], "eval_s": round(time.time() - t_ev, 2)})
            score = (res["accuracy"],)
            if cfg.closed_loop_trials:
                t_cl = time.time()
                cl = _closed_loop(cfg, _unwrap(model), out)
                rec.update({"closed_loop_success": cl["success"], "closed_loop_trials": cl["trials"],
                            "closed_loop_outcomes": cl["outcomes"], "closed_loop_s": round(time.time() - t_cl, 2)})
                score = (cl["success"], res["accuracy"])
            prev = best.get("score") or ([best["accuracy"]] if best.get("epoch") else None)  # runs from before closed-loop checks
            if prev is None or len(prev) != len(score) or tuple(score) >= tuple(prev):
                best = {"accuracy": res["accuracy"], "epoch": epoch + 1, "step": step, "score": list(score)}
                torch.save({"model": _unwrap(model).state_dict(), "epoch": epoch + 1, "accuracy": res["accuracy"]}, out / "checkpoints" / "best.pt")
            writer.add_scalar("test/accuracy", res["accuracy"], epoch + 1)
        if rank == 0:
            for k in ("loss", "quality", "cos", "sin", "width"):
                writer.add_scalar(f"train/{k}", rec[f"train_{k}"], epoch + 1)
            writer.flush()
            history.append(rec)
            acc = f", held-out accuracy {rec['test_accuracy']:.3f}" if "test_accuracy" in rec else ""
            if "closed_loop_success" in rec:
                acc += f", closed loop {rec['closed_loop_success']:.3f} of {rec['closed_loop_trials']} ({rec['closed_loop_s']:.0f} s)"
            if rec.get("teacher_dropped_images"):
                acc += f", {rec['teacher_dropped_images']} images outside the teacher's range left out"
            _log(f"epoch {epoch + 1}/{cfg.epochs}: loss {rec['train_loss']:.4f} ({train_s:.0f} s){acc}", rank)
            ck = {
                "model": _unwrap(model).state_dict(),
                "optimizer": opt.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "step": step,
                "best": best,
                "history": history,
                "rng": _rng_state(),
                "loader_rng": g.get_state(),
                "wall_s": prior_wall_s + time.time() - t_start,
                "config": asdict(cfg),
            }
            torch.save(ck, str(last_path) + ".tmp")
            os.replace(str(last_path) + ".tmp", last_path)
            _write_json(out / "history.json", history)
        if out_of_time:
            _log(f"stopping: {stop_reason} reached after epoch {epoch + 1} (step {step})", rank)
            break

    summary = None
    if rank == 0:
        writer.close()
        summary = finish_run(
            cfg, out, test_ds, split, history, best, stop_reason, prior_wall_s + time.time() - t_start, _hardware(dev, world), dev, amp
        )
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def _metadata(cfg: TrainConfig, training=None, metrics=None, description: str = ""):
    """The model metadata of a run's network (what the node needs to pre-process like training)."""
    from ..core.model_io import ModelMetadata

    return ModelMetadata(
        modality=cfg.modality,
        input_size=cfg.input_size,
        width_scale_px=cfg.width_scale,
        training=training or {},
        metrics=metrics or {},
        description=description,
        normalisation=NORMALISATIONS[cfg.depth_ref],
        net_px_per_metre=training_scale(cfg.init_from, cfg.net_px_per_metre),
    )


def _closed_loop(cfg: TrainConfig, model: torch.nn.Module, out: Path) -> dict:
    """Grasp success of the current weights (:mod:`.closed_loop`), through a model file on the CPU
    (``save_model`` writes a CPU copy of the state_dict; the training model is left as it is)."""
    from ..core.model_io import save_model
    from .closed_loop import closed_loop_check

    path = out / "checkpoints" / "closed_loop.pt"
    save_model(path, model, _metadata(cfg, description="closed-loop check of a training epoch"))
    return closed_loop_check(path, cfg.closed_loop_trials)


def finish_run(cfg, out, test_ds, split, history, best, stop_reason, wall_s, hardware, dev, amp) -> dict:
    """Export the best checkpoint as ``OUT/model.pt``, evaluate it per image, write the summary."""
    from ..core.model_io import ModelMetadata, load_checkpoint, save_model

    model = dsc_graspnet(cfg.modality, upsample_order=cfg.upsample_order)
    ck = load_checkpoint(out / "checkpoints" / "best.pt")
    model.load_state_dict(ck["model"])
    model.to(dev).eval()
    res = evaluate_model(model, test_ds, dev, cfg.width_scale, amp=amp, batch_size=1, progress=cfg.progress)
    _write_json(out / "eval_test.json", res)
    training = {
        **training_record(asdict(cfg), split, hardware, round(wall_s / 60.0, 2)),
        "split_file": "split.json",
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "augmentation": cfg.augmentation() is not None,
        "stop_reason": stop_reason,
    }
    metrics = {"held_out_accuracy": res["accuracy"], "held_out_count": res["count"], "metric": "top-1, angle < 30 deg and IoU > 0.25"}
    if cfg.closed_loop_trials and len(best.get("score") or ()) == 2:  # score = (closed-loop success, accuracy)
        metrics["closed_loop_check"] = {"success": best["score"][0], "trials_per_object": cfg.closed_loop_trials,
                                        "objects": "10 synthetic training objects (dsc_grasp_ros/training/closed_loop.py)"}
    meta = _metadata(cfg, training, metrics, f"DSC-GraspNet {cfg.modality} trained on {cfg.dataset} ({split['kind']}-wise split) by dsc-grasp train")
    save_model(out / "model.pt", model.cpu(), meta)
    summary = {
        "run": str(out),
        "model": str(out / "model.pt"),
        "accuracy": res["accuracy"],
        "correct": res["correct"],
        "count": res["count"],
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        "stop_reason": stop_reason,
        "wall_minutes": round(wall_s / 60.0, 2),
        "inference_ms": res["inference_ms"],
        "hardware": hardware,
        "training": training,
    }
    _write_json(out / "summary.json", summary)
    return summary
