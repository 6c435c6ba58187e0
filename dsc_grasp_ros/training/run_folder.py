"""The run folder: its checks, ``config.json``, the ``last.pt`` checkpoint (with RNG states) that
``--resume`` continues from, and ``history.json``."""

from __future__ import annotations

import json
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

from ..core.network import LEGACY_UPSAMPLE_ORDER


def _log(msg: str, rank: int) -> None:
    if rank == 0:
        print(msg, file=sys.stderr, flush=True)


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def _hardware(dev: torch.device, world: int) -> str:
    if dev.type == "cuda":
        return f"{world}x {torch.cuda.get_device_name(dev)}"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


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


# --------------------------------------------------------------------------- the folder
def check_run_folder(cfg, out: Path, rank: int, world: int) -> None:
    """Create ``out`` and ``out/checkpoints``; refuse a folder holding a run unless resuming."""
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "checkpoints").mkdir(exist_ok=True)
        if not cfg.resume and (out / "checkpoints" / "last.pt").exists():
            raise FileExistsError(f"{out} already holds a run: use --resume to continue it or choose another --out")
    if world > 1:
        dist.barrier()


def write_config(cfg, out: Path, dev, world: int, amp: bool, workers: int, n_train: int, n_test: int, rank: int) -> None:
    """``config.json`` (options, hardware, versions) and the run's first log line."""
    aug = cfg.augmentation()
    meta = {
        "config": asdict(cfg),
        "augmentation": asdict(aug) if aug else None,
        "hardware": _hardware(dev, world),
        "host": socket.gethostname(),
        "torch": torch.__version__,
        "amp": amp,
        "precision": cfg.precision,
        "world_size": world,
        "workers": workers,
        "train_items": n_train,
        "test_items": n_test,
        "argv": sys.argv,
    }
    _write_json(out / "config.json", meta)
    _log(
        f"training {cfg.modality} on {cfg.dataset} ({n_train} train / {n_test} held-out, "
        f"{cfg.split}-wise), {meta['hardware']}, precision {cfg.precision}, augmentation "
        f"{'on' if aug else 'off'}, loss {cfg.loss}, {cfg.optimizer} lr {cfg.lr}, batch {cfg.batch_size}",
        rank,
    )


def recorded_precision(out: Path) -> str | None:
    """The precision a run in ``out`` trained in (its ``config.json``), None when it records none."""
    try:
        meta = json.loads((Path(out) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return meta.get("precision") or None


# --------------------------------------------------------------------------- checkpoints
@dataclass
class RunState:
    """Where a run stands: what ``last.pt`` saves and ``--resume`` restores."""

    start_epoch: int = 0
    step: int = 0
    best: dict = field(default_factory=lambda: {"accuracy": -1.0, "epoch": None})
    history: list = field(default_factory=list)
    prior_wall_s: float = 0.0  # wall time of earlier invocations of a resumed run


def resume_run(cfg, out: Path, dev, model, opt, scaler, loader_rng: torch.Generator, rank: int) -> RunState:
    """Load ``last.pt`` into the model, optimiser, scaler and RNGs after checking that the run was
    trained with the same data and network options -> where it stopped."""
    last_path = out / "checkpoints" / "last.pt"
    if not last_path.exists():
        raise FileNotFoundError(f"--resume: no checkpoint {last_path}")
    from ..core.model_io import load_checkpoint

    ck = load_checkpoint(last_path, map_location=dev)
    _check_resumed_config(cfg, out, ck.get("config", {}))
    _unwrap(model).load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    scaler.load_state_dict(ck["scaler"])
    state = RunState(ck["epoch"] + 1, ck["step"], ck["best"], ck["history"], float(ck.get("wall_s", 0.0)))
    _set_rng_state(ck["rng"])
    loader_rng.set_state(ck["loader_rng"])
    _log(f"resumed {out} at epoch {state.start_epoch + 1} (step {state.step})", rank)
    return state


def _check_resumed_config(cfg, out: Path, old: dict) -> None:
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


def save_last(cfg, out: Path, model, opt, scaler, loader_rng: torch.Generator, epoch: int, state: RunState,
              t_start: float) -> None:
    """``last.pt`` (written atomically) after ``epoch`` (0-based), and ``history.json``."""
    last_path = out / "checkpoints" / "last.pt"
    ck = {
        "model": _unwrap(model).state_dict(),
        "optimizer": opt.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": epoch,
        "step": state.step,
        "best": state.best,
        "history": state.history,
        "rng": _rng_state(),
        "loader_rng": loader_rng.get_state(),
        "wall_s": state.prior_wall_s + time.time() - t_start,
        "config": asdict(cfg),
    }
    torch.save(ck, str(last_path) + ".tmp")
    os.replace(str(last_path) + ".tmp", last_path)
    _write_json(out / "history.json", state.history)
