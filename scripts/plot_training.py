#!/usr/bin/env python3
"""Plot training runs side by side: held-out accuracy and training loss against optimiser steps.

Reads each run's ``history.json`` (written by ``dsc-grasp train``, one entry per epoch, also across
``--resume``), draws one line per run on two panels (held-out accuracy, training loss) against the
optimiser step, and prints the curve's points (``--json``: a document for scripts). Epochs without a
held-out evaluation (``--eval-every``) appear on the loss panel only.

examples:
  # the shipped RGB-D run and the data-size runs of docs/training.md
  .venv/bin/python scripts/plot_training.py runs/s8_csp_rgbd 66=runs/s7_ds_66 133=runs/s7_ds_133 --out curve.png
  # one JSON document with every point
  .venv/bin/python scripts/plot_training.py runs/s8_csp_rgbd --json

Bad input (a missing run folder or history.json, a history that is not a list of epochs) exits
with status 2 and one line naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load_run(spec: str) -> dict:
    """``[LABEL=]RUN_DIR`` -> {label, path, points: [{epoch, step, accuracy, loss, count}]}."""
    label, sep, path = spec.partition("=")
    if not sep:
        label, path = Path(spec).name, spec
    hist = Path(path) / "history.json"
    if not hist.is_file():
        raise ValueError(f"{path}: no history.json (a run folder of dsc-grasp train?)")
    try:
        rows = json.loads(hist.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{hist}: not JSON ({e})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "step" in r for r in rows):
        raise ValueError(f"{hist}: expected a list of epochs with a 'step' each")
    points = [
        {
            "epoch": r.get("epoch"),
            "step": int(r["step"]),
            "accuracy": None if r.get("test_accuracy") is None else float(r["test_accuracy"]),
            "count": r.get("test_count"),
            "loss": None if r.get("train_loss") is None else float(r["train_loss"]),
        }
        for r in rows
    ]
    return {"label": label, "path": str(path), "points": sorted(points, key=lambda p: p["step"])}


def plot(runs: list[dict], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_a, ax_l) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    for run in runs:
        acc = [(p["step"], 100 * p["accuracy"]) for p in run["points"] if p["accuracy"] is not None]
        loss = [(p["step"], p["loss"]) for p in run["points"] if p["loss"] is not None]
        line = None
        if acc:
            (line,) = ax_a.plot(*zip(*acc), marker="o", ms=3, label=run["label"])
        if loss:
            ax_l.plot(*zip(*loss), marker="o", ms=3, label=run["label"], color=None if line is None else line.get_color())
    ax_a.set(xlabel="optimiser steps", ylabel="held-out accuracy (%)", ylim=(0, 100), title="held-out accuracy")
    ax_l.set(xlabel="optimiser steps", ylabel="training loss", title="training loss")
    ax_l.set_yscale("log")
    for ax in (ax_a, ax_l):
        ax.grid(alpha=0.3)
    ax_a.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", metavar="[LABEL=]RUN", help="run folders of dsc-grasp train (label: the folder name)")
    ap.add_argument("--out", type=Path, default=Path("training_curve.png"), help="the picture (PNG; default training_curve.png)")
    ap.add_argument("--title", default="DSC-GraspNet training", help="the picture's title")
    ap.add_argument("--json", action="store_true", help="print one JSON document with every point instead of the table")
    args = ap.parse_args(argv)
    try:
        runs = [load_run(s) for s in args.runs]
    except ValueError as e:
        print(f"plot_training: {e}", file=sys.stderr)
        return 2
    plot(runs, args.out, args.title)
    if args.json:
        print(json.dumps({"picture": str(args.out), "runs": runs}, indent=1))
        return 0
    for run in runs:
        print(f"{run['label']} ({run['path']}):")
        for p in run["points"]:
            acc = "-" if p["accuracy"] is None else f"{100 * p['accuracy']:.1f} % of {p['count']}"
            loss = "-" if p["loss"] is None else f"{p['loss']:.4f}"
            print(f"  epoch {p['epoch']:>3}  step {p['step']:>6}  held-out {acc:>14}  loss {loss}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
