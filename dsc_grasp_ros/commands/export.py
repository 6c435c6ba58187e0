"""``dsc-grasp export``: a training run's best checkpoint -> model file (+ ONNX)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DESCRIPTION = """\
Turn the best checkpoint of a training run (RUN/checkpoints/best.pt, or --which last) into a model
file: a plain state_dict .pt plus its .json metadata (modality, channel order, normalisation, input
size, width scale, training details and held-out accuracy), which 'dsc-grasp predict', 'evaluate'
and the ROS node load unchanged. With --onnx, also write an ONNX graph (dynamic batch/height/width)
and check that onnxruntime reproduces PyTorch's maps. SOURCE may also be an existing model file
(then only --onnx makes sense).
"""

EPILOG = """\
examples:
  dsc-grasp export runs/sim_rgbd --out models/dsc_graspnet_rgbd.pt --onnx
  dsc-grasp export models/dsc_graspnet_d.pt --onnx models/dsc_graspnet_d.onnx
"""


def register(sub):
    p = sub.add_parser(
        "export",
        help="export a training run's best checkpoint as a model file (and ONNX)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", help="training run folder (written by 'dsc-grasp train') or a model .pt file")
    p.add_argument("--out", default=None, help="model file to write (default: RUN/model.pt, or SOURCE for a model file)")
    p.add_argument("--which", default="best", choices=["best", "last"], help="checkpoint of the run to export (default: %(default)s)")
    p.add_argument("--onnx", nargs="?", const="", default=None, metavar="PATH", help="also export ONNX (default path: --out with .onnx)")
    p.add_argument("--parity-tol", type=float, default=1e-3, help="largest allowed torch/onnxruntime map difference, relative to the largest map value (at least 1) (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=run)


class RunFileError(ValueError):
    """A file of the run folder that cannot be used; the message names it and what is wrong."""


def _read_run_json(path: Path):
    """A JSON file of the run folder; :class:`RunFileError` naming the file when it is not JSON."""
    try:
        return json.loads(path.read_text())
    except UnicodeDecodeError:
        raise RunFileError(f"{path}: not JSON (not even text)") from None
    except json.JSONDecodeError as e:
        raise RunFileError(f"{path}: not JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def export_run(run_dir, out=None, which: str = "best") -> Path:
    """Write the run's checkpoint as a model file; returns its path."""
    import torch

    from ..core.model_io import ModelMetadata, load_checkpoint, save_model
    from ..core.network import LEGACY_UPSAMPLE_ORDER, dsc_graspnet
    from ..training.trainer import training_record

    run = Path(run_dir)
    cfg_path = run / "config.json"
    ck_path = run / "checkpoints" / f"{which}.pt"
    if not cfg_path.is_file() or not ck_path.is_file():
        raise FileNotFoundError(f"{run} is not a training run folder (needs config.json and checkpoints/{which}.pt)")
    conf = _read_run_json(cfg_path)
    cfg = conf.get("config") if isinstance(conf, dict) else None
    if not isinstance(cfg, dict):
        what = "missing key 'config'" if isinstance(conf, dict) and "config" not in conf else (
            "'config' is not an object" if isinstance(conf, dict) else "expected a JSON object")
        raise RunFileError(f"{cfg_path}: {what} (written by dsc-grasp train: {{\"config\": {{...}}, ...}})")
    missing = [k for k in ("modality", "input_size", "width_scale", "dataset", "split") if k not in cfg]
    if missing:
        raise RunFileError(f"{cfg_path}: missing key 'config.{missing[0]}'")
    ck = load_checkpoint(ck_path)
    model = dsc_graspnet(cfg["modality"], upsample_order=cfg.get("upsample_order", LEGACY_UPSAMPLE_ORDER))  # runs before the option: eq5
    model.load_state_dict(ck["model"])
    summary = _read_run_json(run / "summary.json") if (run / "summary.json").is_file() else {}
    history = _read_run_json(run / "history.json") if (run / "history.json").is_file() else []
    epoch = ck.get("epoch") if which == "best" else (ck.get("epoch", -1) + 1)
    acc = next((h.get("test_accuracy") for h in history if h.get("epoch") == epoch), ck.get("accuracy"))
    split = _read_run_json(run / "split.json") if (run / "split.json").is_file() else {}
    from ..core.preprocess import NORMALISATIONS
    from ..training.trainer import training_scale

    meta = ModelMetadata(
        modality=cfg["modality"],
        input_size=cfg["input_size"],
        width_scale_px=cfg["width_scale"],
        normalisation=NORMALISATIONS[cfg.get("depth_ref", "mean")],
        net_px_per_metre=training_scale(cfg.get("init_from"), cfg.get("net_px_per_metre")),
        training={
            **training_record(cfg, split, conf.get("hardware"), summary.get("wall_minutes")),
            "epoch": epoch,
            "checkpoint": which,
            "run": run.name,
        },
        metrics={
            "held_out_accuracy": acc,
            "held_out_count": len(split.get("test", [])),
            "metric": "top-1, angle < 30 deg and IoU > 0.25",
        },
        description=f"DSC-GraspNet {cfg['modality']} trained on {cfg['dataset']} ({cfg['split']}-wise split) by dsc-grasp train",
    )
    return save_model(Path(out) if out else run / "model.pt", model, meta)


def _parity_input(src: Path, meta):
    """A held-out sample of the run when its data are reachable (an in-distribution input: a
    model trained on near-constant inputs amplifies noise enormously), else small noise."""
    import numpy as np

    if src.is_dir():
        try:
            from ..data import GraspDataset, find_items, select

            cfg = json.loads((src / "config.json").read_text())["config"]
            split = json.loads((src / "split.json").read_text())
            items = select(find_items(cfg["dataset"], cfg["path"], depth=cfg.get("depth", "perfect"), object_map=cfg.get("object_map")), split["test"][:1])
            ds = GraspDataset(items, meta.modality, meta.input_size, protocol=cfg.get("protocol", "square"), depth_ref=meta.depth_ref, net_px_per_metre=meta.px_per_metre)
            x = ds[0]["x"].numpy()[None]
            return np.ascontiguousarray(x, dtype=np.float32), f"held-out sample {items[0].id}"
        except Exception:  # noqa: BLE001 - data moved or unreadable: fall back to noise
            pass
    x = 0.01 * np.random.default_rng(0).standard_normal((1, meta.in_channels, meta.input_size, meta.input_size))
    return x.astype(np.float32), "gaussian noise, std 0.01"


def run(args) -> int:
    import numpy as np

    from ..core.model_io import ModelError, load_model
    from ..core.onnx_export import check_parity, export_onnx

    src = Path(args.source)
    try:
        if src.is_dir():
            model_path = export_run(src, args.out, args.which)
        elif src.is_file():
            model_path = src
            if args.out and Path(args.out).resolve() != src.resolve():
                import shutil

                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, args.out)
                shutil.copyfile(src.with_suffix(".json"), Path(args.out).with_suffix(".json"))
                model_path = Path(args.out)
        else:
            raise FileNotFoundError(f"{src} does not exist")
        model, meta = load_model(model_path)  # proves that predict and the node can load it
        written = {"model": str(model_path), "metadata": str(model_path.with_suffix(".json")), "modality": meta.modality}
        if args.onnx is not None:
            onnx_path = Path(args.onnx) if args.onnx else model_path.with_suffix(".onnx")
            export_onnx(model, onnx_path, meta.input_size, meta)
            x, parity_input = _parity_input(src, meta)
            diff = check_parity(model, onnx_path, x)
            import torch

            with torch.inference_mode():
                scale = max(1.0, max(float(o.abs().max()) for o in model.float().cpu().eval()(torch.from_numpy(x))))
            written.update({"onnx": str(onnx_path), "onnx_parity_input": parity_input, "onnx_max_abs_diff": diff, "onnx_max_rel_diff": diff / scale})
            if diff / scale > args.parity_tol:
                raise ModelError(f"onnxruntime differs from PyTorch by {diff:.2e} (relative {diff / scale:.2e} > {args.parity_tol}) on a test input")
    except (ModelError, FileNotFoundError, RunFileError, KeyError, RuntimeError) as e:
        print(f"dsc-grasp export: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(written, indent=1))
    else:
        print("wrote " + ", ".join(f"{k}={v}" for k, v in written.items()))
    return 0
