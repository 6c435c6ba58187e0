"""Evaluation during training, checkpoint selection (held-out accuracy, or grasp success of the
closed-loop check first), and the export of the selected checkpoint as the run's model file."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..core.network import dsc_graspnet
from ..core.preprocess import NORMALISATIONS
from .config import TrainConfig, training_record, training_scale
from .evaluation import evaluate_model
from .loop import precise_bn
from .run_folder import _unwrap, _write_json


def evaluate_and_select(cfg: TrainConfig, model, loader, test_ds, dev, amp: bool, out: Path, epoch: int, step: int,
                        best: dict, rec: dict, writer) -> dict:
    """Evaluate after ``epoch`` (1-based): precise BN statistics, held-out accuracy and the closed-loop
    check (into ``rec``); the weights become ``best.pt`` when their score (closed-loop success, then
    accuracy) is at least the best so far. Returns the best record."""
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
        best = {"accuracy": res["accuracy"], "epoch": epoch, "step": step, "score": list(score)}
        torch.save({"model": _unwrap(model).state_dict(), "epoch": epoch, "accuracy": res["accuracy"]}, out / "checkpoints" / "best.pt")
    writer.add_scalar("test/accuracy", res["accuracy"], epoch)
    return best


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
