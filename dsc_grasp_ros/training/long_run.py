"""The curve of a long run (``scripts/train_long.sh``): after each invocation, the run's latest
weights (``checkpoints/last.pt``) are scored on fixed evaluation sets and the points are appended to
the run's ``curve.json``, the format of ``config/curves/`` that ``dsc-grasp plot curve`` draws, so
the picture grows run by run.

``python -m dsc_grasp_ros.training.long_run record RUN --base config/curves/rgbd_csp_first.json
--samples-before 5864 --set NAME=EVALUATE-ARGS ...``

* x = training samples seen: ``--samples-before`` (those of the ``--init-from`` model) plus the
  run's optimiser steps times its batch size;
* y = top-1 accuracy (paper metric, %) of ``dsc-grasp evaluate EVALUATE-ARGS --model SNAPSHOT``;
* ``RUN/curve/step_<N>.pt`` (+ .json) is the scored snapshot, ``RUN/curve/points.jsonl`` every
  result with its command, ``RUN/curve.json`` starts as a copy of ``--base`` (the earlier points of
  the recipe) with one series per set for this run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path


def snapshot(run: Path) -> tuple[Path, dict]:
    """``RUN/curve/step_<N>.pt``: the weights of ``last.pt`` as a model file -> (path, checkpoint info)."""
    import torch

    from ..core.model_io import load_checkpoint, save_model
    from ..core.network import dsc_graspnet
    from .config import TrainConfig
    from .selection import _metadata

    ck = load_checkpoint(run / "checkpoints" / "last.pt", map_location="cpu")
    cfg = TrainConfig(**ck["config"])
    model = dsc_graspnet(cfg.modality, upsample_order=cfg.upsample_order)
    model.load_state_dict(ck["model"])
    path = run / "curve" / f"step_{int(ck['step']):07d}.pt"
    path.parent.mkdir(exist_ok=True)
    desc = f"DSC-GraspNet {cfg.modality}: weights of {run.name} after {ck['step']} steps (a point of its curve)"
    save_model(path, model.to(torch.float32), _metadata(cfg, {"steps": int(ck["step"]), "batch_size": cfg.batch_size}, description=desc))
    return path, {"step": int(ck["step"]), "epoch": int(ck["epoch"]) + 1, "batch_size": cfg.batch_size,
                  "precision": cfg.precision, "wall_s": float(ck.get("wall_s", 0.0))}


def evaluate(model: Path, args: str) -> dict:
    """``dsc-grasp evaluate ARGS --model MODEL --json`` in a child process -> its JSON result."""
    cmd = [sys.executable, "-m", "dsc_grasp_ros.cli", "evaluate", *shlex.split(args), "--model", str(model), "--json", "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed: {res.stderr.strip()[-500:]}")
    out = json.loads(res.stdout)
    return {"accuracy": out["accuracy"], "correct": out["correct"], "count": out["count"], "command": shlex.join(cmd[2:])}


def _series(doc: dict, label: str) -> dict:
    for s in doc["series"]:
        if s["label"] == label:
            return s
    s = {"label": label, "points": []}
    doc["series"].append(s)
    return s


def record(run: Path, sets: dict[str, str], base: Path | None, samples_before: int, name: str | None = None,
           initial: Path | None = None) -> dict:
    """Score the latest weights of ``run`` on ``sets`` (name -> evaluate arguments) and append the
    points to ``RUN/curve.json`` -> the record appended to ``RUN/curve/points.jsonl``. ``initial``: the
    ``--init-from`` model file, scored as the run's step-0 point (at ``samples_before``) instead."""
    run = Path(run)
    name = name or run.name
    if initial is not None:
        model = Path(initial)
        info = {"step": 0, "epoch": 0, "batch_size": 0, "precision": None, "wall_s": 0.0}
        (run / "curve").mkdir(parents=True, exist_ok=True)
    else:
        model, info = snapshot(run)
    samples = int(samples_before) + info["step"] * info["batch_size"]
    rec = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "run": name, "samples": samples, **info, "model": str(model), "sets": {}}
    for label, args in sets.items():
        rec["sets"][label] = evaluate(model, args)
    curve = run / "curve.json"
    if curve.exists():
        doc = json.loads(curve.read_text())
    elif base is not None:
        doc = json.loads(Path(base).read_text())
        doc["title"] = f"{doc.get('title', 'accuracy vs training samples')} and the long run {name}"
    else:
        doc = {"title": f"long run {name}: accuracy vs training samples", "x_label": "training samples seen",
               "y_label": "top-1 accuracy, paper metric (%)", "target": 90.0, "references": [], "series": [], "sources": []}
    for label, r in rec["sets"].items():
        pts = _series(doc, f"{name}: {label}")["points"]
        pts[:] = [p for p in pts if p[0] != samples] + [[samples, round(100.0 * r["accuracy"], 1)]]
    src = f"{name}: points from python -m dsc_grasp_ros.training.long_run record (scored snapshots in {name}/curve/)"
    doc.setdefault("sources", [])
    if src not in doc["sources"]:
        doc["sources"].append(src)
    tmp = curve.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(curve)
    with open(run / "curve" / "points.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dsc_grasp_ros.training.long_run", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record", help="score the run's latest weights and append the points to RUN/curve.json")
    r.add_argument("run", type=Path, help="the run folder (holds checkpoints/last.pt)")
    r.add_argument("--set", action="append", default=[], metavar="NAME=ARGS", required=True,
                   help="an evaluation set: its label and the 'dsc-grasp evaluate' arguments that score it (repeatable)")
    r.add_argument("--base", type=Path, default=None, help="curve JSON whose points start RUN/curve.json (the recipe's earlier points)")
    r.add_argument("--samples-before", type=int, default=0, help="training samples the --init-from model had seen (default: 0)")
    r.add_argument("--name", default=None, help="the run's name in the legend (default: the folder's)")
    r.add_argument("--initial", type=Path, default=None, metavar="MODEL",
                   help="score this model file (the run's --init-from) as the step-0 point at --samples-before instead of last.pt")
    args = ap.parse_args(argv)
    sets = {}
    for spec in args.set:
        label, eq, ev = spec.partition("=")
        if not eq or not label or not ev:
            ap.error(f"--set {spec!r}: expected NAME=EVALUATE-ARGS")
        sets[label] = ev
    try:
        rec = record(args.run, sets, args.base, args.samples_before, args.name, args.initial)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"long_run record: {e}", file=sys.stderr)
        return 2
    print(json.dumps(rec, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
