"""One training epoch: the steps (with distillation targets from a teacher), and precise BatchNorm
statistics before an evaluation."""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

from .loss import grasp_loss


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


LOSS_PARTS = ("loss", "quality", "cos", "sin", "width")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device_type: str, precision: str):
    """The autocast context of a resolved precision (``config.resolve_precision``): bfloat16 or float16
    arithmetic with fp32 weights, or none for ``fp32``."""
    dtype = _AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None)


def forward(model, x: torch.Tensor, device_type: str, precision: str, channels_last: bool = True) -> tuple[torch.Tensor, ...]:
    """The model's four maps for a training step, channels-last input (the training's layout;
    ``channels_last=False`` for comparisons), in ``precision``; the maps are returned as fp32 (the
    loss and the teacher's targets are computed in fp32)."""
    x = x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    with autocast(device_type, precision):
        pred = model(x)
    return tuple(p.float() for p in pred)


def train_step(model, x: torch.Tensor, y: torch.Tensor, opt, scaler, device_type: str, precision: str, loss_kind: str,
               keep: torch.Tensor | None = None, channels_last: bool = True):
    """One optimiser step -> ``(loss, parts)``: forward in ``precision``, P-Huber (or Huber) loss in
    fp32, backward, step of the fp32 master weights (through the gradient scaler for ``fp16``).
    ``keep``: images whose target is replaced by the model's own maps (no gradient), for distillation."""
    pred = forward(model, x, device_type, precision, channels_last)
    if keep is not None and not bool(keep.all()):
        # an image the teacher does not know: the student's own maps as its target, so it adds
        # no gradient (the batch keeps its shape, which DDP and BatchNorm rely on)
        y = torch.where(keep.view(-1, 1, 1, 1), y, torch.cat([p.detach() for p in pred], 1))
    loss, parts = grasp_loss(pred, y, loss_kind)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return loss, parts


def train_epoch(cfg, model, loader, opt, scaler, dev, amp: bool, teacher, writer, bar, step: int, world: int,
                t_start: float, budget_s: float) -> tuple[dict, int, bool, str | None]:
    """One pass over ``loader`` in ``cfg.precision`` (resolved), stopped early ``budget_s`` after ``t_start`` or at ``--max-steps``
    -> (mean loss parts and, when distilling, ``teacher_dropped_images``; the step count; whether it
    stopped early; why, when this process saw the reason)."""
    sums = {k: 0.0 for k in LOSS_PARTS}
    n_batches = 0
    teacher_dropped = 0
    out_of_time, reason = False, None
    for batch in loader:
        x = batch["x"].to(dev, non_blocking=True)
        if teacher is None:
            y, keep = batch["y"].to(dev, non_blocking=True), None
        else:
            y, keep = teacher_targets(teacher, x)
        if keep is not None:
            teacher_dropped += int((~keep).sum())
        loss, parts = train_step(model, x, y, opt, scaler, dev.type, cfg.precision, cfg.loss, keep)
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
            out_of_time, reason = True, "max-minutes"
        if cfg.max_steps and step >= cfg.max_steps:
            out_of_time, reason = True, "max-steps"
        if world > 1:  # every process stops when one does
            flag = torch.tensor([1.0 if out_of_time else 0.0], device=dev)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            out_of_time = bool(flag.item() > 0)
        if out_of_time:
            break
    rec = {f"train_{k}": v / max(n_batches, 1) for k, v in sums.items()}
    if teacher is not None:
        rec["teacher_dropped_images"] = teacher_dropped
    return rec, step, out_of_time, reason
