"""The training loop behind ``dsc-grasp train`` (Section IV-A.4 of the paper by default).

Defaults: Ranger optimiser, fixed learning rate 0.001, batch 32, 50 epochs, P-Huber loss,
224x224 inputs, augmentation on Cornell only (the paper's choice), held-out accuracy with the
paper's metric after every epoch. CUDA runs use float16 mixed precision, CPUs with native bfloat16
bfloat16 autocast (``--precision``; fp32 master weights either way); ``torchrun --nproc_per_node=N``
runs data-parallel (DDP) with the global batch split across the processes.

The parts: :mod:`.config` (options, ``--mix``), :mod:`.run_setup` (split, datasets, model,
optimiser), :mod:`.loop` (an epoch's steps), :mod:`.selection` (evaluation, checkpoint selection,
export), :mod:`.run_folder` (config, checkpoints, resume); :func:`train` runs them.

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

import math
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist

from ..core.network import dsc_graspnet
# the training's public names stay importable from here (commands, tools and tests use them)
from .config import MIX_KEYS, TrainConfig, max_opening_px, parse_mix, resolve_precision, training_record, training_scale  # noqa: F401
from .loop import TEACHER_GRASP_QUALITY, TEACHER_MAX_OUT_OF_RANGE, TEACHER_RANGE_TOLERANCE, precise_bn, teacher_targets, train_epoch  # noqa: F401
from .run_folder import RunState, _hardware, _log, check_run_folder, recorded_precision, resume_run, save_last, write_config
from .run_setup import (  # noqa: F401
    _dist_setup, _make_optimizer, _seed_everything, load_teacher, make_data, mix_datasets, prepare_run, transfer_weights,
)
from .selection import _closed_loop, evaluate_and_select, finish_run  # noqa: F401

__all__ = ["TrainConfig", "train"]


def train(cfg: TrainConfig) -> dict:
    """Run a training; returns the summary (also written to ``OUT/summary.json``)."""
    t_start = time.time()
    rank, local, world, dev = _dist_setup(cfg.device)
    out = Path(cfg.out)
    check_run_folder(cfg, out, rank, world)
    _announce_closed_loop(cfg, rank)
    _seed_everything(cfg.seed + rank, cfg.deterministic)
    train_items, test_items, split = prepare_run(cfg, rank)
    cfg = replace(cfg, precision=resolve_precision(cfg.precision, dev.type, cfg.amp, recorded_precision(out) if cfg.resume else None))
    amp = cfg.precision == "fp16"  # float16 autocast with a gradient scaler (CUDA)
    data = make_data(cfg, train_items, test_items, rank, world, dev)
    model, teacher, opt, scaler = _model_and_optimiser(cfg, dev, world, rank, amp)
    state = resume_run(cfg, out, dev, model, opt, scaler, data.generator, rank) if cfg.resume else RunState()

    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"))
        write_config(cfg, out, dev, world, amp, data.workers, len(train_items), len(test_items), rank)

    budget_s = cfg.max_minutes * 60.0 if cfg.max_minutes else math.inf  # per invocation
    stop_reason = "epochs"
    for epoch in range(state.start_epoch, cfg.epochs):
        if data.sampler is not None:
            data.sampler.set_epoch(epoch)
        model.train()
        t_ep = time.time()
        bar = None
        if rank == 0 and cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(data.loader), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", dynamic_ncols=True, leave=False)
        losses, state.step, out_of_time, reason = train_epoch(cfg, model, data.loader, opt, scaler, dev, amp, teacher, writer, bar,
                                                             state.step, world, t_start, budget_s)
        stop_reason = reason or stop_reason
        if bar is not None:
            bar.close()
        train_s = time.time() - t_ep
        rec = {"epoch": epoch + 1, "step": state.step, "train_s": round(train_s, 2), "precision": cfg.precision, **losses}
        last_epoch = epoch + 1 == cfg.epochs or out_of_time
        if rank == 0 and (last_epoch or (epoch + 1) % max(cfg.eval_every, 1) == 0):
            state.best = evaluate_and_select(cfg, model, data.loader, data.test_ds, dev, amp, out, epoch + 1, state.step, state.best, rec, writer)
        if rank == 0:
            _log_epoch(cfg, writer, rec, epoch, train_s, rank)
            state.history.append(rec)
            save_last(cfg, out, model, opt, scaler, data.generator, epoch, state, t_start)
        if out_of_time:
            _log(f"stopping: {stop_reason} reached after epoch {epoch + 1} (step {state.step})", rank)
            break

    summary = None
    if rank == 0:
        writer.close()
        summary = finish_run(cfg, out, data.test_ds, split, state.history, state.best, stop_reason,
                             state.prior_wall_s + time.time() - t_start, _hardware(dev, world), dev, amp)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def _announce_closed_loop(cfg: TrainConfig, rank: int) -> None:
    """Check ``--closed-loop-trials`` now (the simulator is there), not after the first epoch."""
    if cfg.closed_loop_trials < 0:
        raise ValueError(f"--closed-loop-trials must be >= 0, got {cfg.closed_loop_trials}")
    if cfg.closed_loop_trials and rank == 0:
        try:
            import pybullet  # noqa: F401
        except ImportError as e:
            raise ValueError(f"--closed-loop-trials needs the simulator: {e}") from e
        from .closed_loop import check_objects

        _log(f"closed-loop check after every evaluation: {cfg.closed_loop_trials} scenes x {', '.join(check_objects())}", rank)


def _model_and_optimiser(cfg: TrainConfig, dev, world: int, rank: int, amp: bool):
    """-> ``(model, teacher or None, optimiser, grad scaler)``; the model starts from ``--init-from``
    (a new run) and is wrapped in DDP when several processes train."""
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
    return model, teacher, opt, scaler


def _log_epoch(cfg: TrainConfig, writer, rec: dict, epoch: int, train_s: float, rank: int) -> None:
    """TensorBoard scalars and the log line of an epoch."""
    for k in ("loss", "quality", "cos", "sin", "width"):
        writer.add_scalar(f"train/{k}", rec[f"train_{k}"], epoch + 1)
    writer.flush()
    acc = f", held-out accuracy {rec['test_accuracy']:.3f}" if "test_accuracy" in rec else ""
    if "closed_loop_success" in rec:
        acc += f", closed loop {rec['closed_loop_success']:.3f} of {rec['closed_loop_trials']} ({rec['closed_loop_s']:.0f} s)"
    if rec.get("teacher_dropped_images"):
        acc += f", {rec['teacher_dropped_images']} images outside the teacher's range left out"
    _log(f"epoch {epoch + 1}/{cfg.epochs}: loss {rec['train_loss']:.4f} ({train_s:.0f} s){acc}", rank)
