"""``dsc-grasp plot``: pictures for the docs (training curves, measured-points curves, the finger check)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import add_group

RAW = argparse.RawDescriptionHelpFormatter

# --------------------------------------------------------------------------- curve
CURVE_DESCRIPTION = """\
Plot an accuracy-vs-training-length curve from a JSON file of measured points.

The training runs behind the shipped models are not kept in the repository, but their measured
numbers are (docs/training.md). This draws them as one picture: accuracy on each evaluation set
against the training samples seen (log scale), the target as a horizontal line and reference
training lengths (the paper's) as vertical lines, so the gap a longer (GPU) run has to close is
visible at a glance. Prints the points it drew (--json: one document for scripts).
"""

CURVE_EPILOG = """\
JSON format (see config/curves/rgbd_csp_first.json): {"title", "x_label", "y_label",
"target": number|null, "references": [{"x", "label"}], "series": [{"label", "points": [[x, y],
...], "marker_only": bool}], "sources": [text]}.

Bad input (a missing file, not JSON, a series without label or points, a non-positive x) exits with
status 2 and one line naming it.

examples:
  dsc-grasp plot curve config/curves/rgbd_csp_first.json --out docs/img/rgbd_curve.png
  dsc-grasp plot curve config/curves/rgbd_csp_first.json --json
"""


def load_curve(path: str) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except (FileNotFoundError, IsADirectoryError):
        raise ValueError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    series = doc.get("series") if isinstance(doc, dict) else None
    if not isinstance(series, list) or not series:
        raise ValueError(f"{path}: expected an object with a non-empty 'series' list")
    for s in series:
        if not (isinstance(s, dict) and isinstance(s.get("label"), str)):
            raise ValueError(f"{path}: series {s!r} needs a 'label' text")
        pts = s.get("points")
        if not isinstance(pts, list) or not pts:
            raise ValueError(f"{path}: series {s['label']!r} has no points")
        for pt in pts:
            if not (isinstance(pt, list) and len(pt) == 2 and all(isinstance(v, (int, float)) for v in pt)):
                raise ValueError(f"{path}: series {s['label']!r}: point {pt!r} is not [x, y]")
            if pt[0] <= 0:
                raise ValueError(f"{path}: series {s['label']!r}: x must be positive for a log axis, got {pt[0]}")
    for r in doc.get("references", []):
        if not (isinstance(r, dict) and isinstance(r.get("x"), (int, float)) and r["x"] > 0 and isinstance(r.get("label"), str)):
            raise ValueError(f"{path}: reference {r!r} needs a positive 'x' and a 'label' text")
    return doc


def plot_curve(doc: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6.2), dpi=110)
    if len(doc["series"]) > 10:  # the default cycle repeats after 10 colours
        ax.set_prop_cycle(color=plt.cm.tab20.colors)
    for s in doc["series"]:
        pts = sorted(s["points"]) if not s.get("marker_only") else s["points"]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        ax.plot(xs, ys, "s" if s.get("marker_only") else "o-", label=s["label"], ms=5)
    if doc.get("target") is not None:
        ax.axhline(doc["target"], color="k", ls="--", lw=1)
        ax.text(ax.get_xlim()[0], doc["target"] + 1, f" target {doc['target']:g} %", va="bottom", fontsize=8)
    for r in doc.get("references", []):
        ax.axvline(r["x"], color="grey", ls=":", lw=1)
        ax.text(r["x"], 3, " " + r["label"], rotation=90, va="bottom", ha="right", fontsize=8, color="dimgrey")
    ax.set_xscale("log")
    xs_all = [p[0] for s in doc["series"] for p in s["points"]] + [r["x"] for r in doc.get("references", [])]
    ax.set_xlim(min(xs_all) / 1.5, max(xs_all) * 1.5)
    ax.set_ylim(0, 100)
    ax.set_xlabel(doc.get("x_label", "training samples"))
    ax.set_ylabel(doc.get("y_label", "accuracy (%)"))
    ax.set_title(doc.get("title", ""), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def _register_curve(sub):
    ap = sub.add_parser("curve", help="accuracy vs training length from a JSON file of measured points",
                        description=CURVE_DESCRIPTION, epilog=CURVE_EPILOG, formatter_class=RAW)
    ap.add_argument("curve", help="JSON file of measured points (format below)")
    ap.add_argument("--out", default="curve.png", help="PNG to write (default: curve.png)")
    ap.add_argument("--json", action="store_true", help="print the points as one JSON document instead of text")
    ap.set_defaults(func=run_curve)


def run_curve(args) -> int:
    try:
        doc = load_curve(args.curve)
    except ValueError as e:
        print(f"dsc-grasp plot curve: {e}", file=sys.stderr)
        return 2
    plot_curve(doc, Path(args.out))
    if args.json:
        print(json.dumps({"out": args.out, "target": doc.get("target"), "series": doc["series"], "references": doc.get("references", [])}, indent=1))
    else:
        for s in doc["series"]:
            print(f"{s['label']}: " + ", ".join(f"{x:g} -> {y:g} %" for x, y in s["points"]))
        print(f"wrote {args.out}")
    return 0


# --------------------------------------------------------------------------- training
TRAINING_DESCRIPTION = """\
Plot training runs side by side: held-out accuracy and training loss against optimiser steps.

Reads each run's history.json (written by 'dsc-grasp train', one entry per epoch, also across
--resume), draws one line per run on two panels (held-out accuracy, training loss) against the
optimiser step, and prints the curve's points (--json: a document for scripts). Epochs without a
held-out evaluation (--eval-every) appear on the loss panel only.
"""

TRAINING_EPILOG = """\
Bad input (a missing run folder or history.json, a history that is not a list of epochs) exits
with status 2 and one line naming it.

examples:
  # the shipped RGB-D run and the data-size runs of docs/training.md
  dsc-grasp plot training runs/s8_csp_rgbd 66=runs/s7_ds_66 133=runs/s7_ds_133 --out curve.png
  # one JSON document with every point
  dsc-grasp plot training runs/s8_csp_rgbd --json
"""


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


def plot_training(runs: list[dict], out: Path, title: str) -> None:
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


def _register_training(sub):
    ap = sub.add_parser("training", help="held-out accuracy and training loss of training runs against optimiser steps",
                        description=TRAINING_DESCRIPTION, epilog=TRAINING_EPILOG, formatter_class=RAW)
    ap.add_argument("runs", nargs="+", metavar="[LABEL=]RUN", help="run folders of dsc-grasp train (label: the folder name)")
    ap.add_argument("--out", type=Path, default=Path("training_curve.png"), help="the picture (PNG; default training_curve.png)")
    ap.add_argument("--title", default="DSC-GraspNet training", help="the picture's title")
    ap.add_argument("--json", action="store_true", help="print one JSON document with every point instead of the table")
    ap.set_defaults(func=run_training)


def run_training(args) -> int:
    try:
        runs = [load_run(s) for s in args.runs]
    except ValueError as e:
        print(f"dsc-grasp plot training: {e}", file=sys.stderr)
        return 2
    plot_training(runs, args.out, args.title)
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


# --------------------------------------------------------------------------- finger-check
FINGER_DESCRIPTION = """\
Picture of the finger clearance check: benchmark scenes, the shipped model's best grasp with the
check off (left) and on (right, finger footprints cyan = clear of the object, magenta = not).

Rows: one benchmark scene each ('dsc-grasp bench' scenes: object, trial, --seed); the crop is the
object's neighbourhood in the camera image. Needs PyBullet and the meshes in ../shared/objects.
"""

FINGER_EPILOG = """\
examples:
  dsc-grasp plot finger-check --out docs/img/finger_check.png
  dsc-grasp plot finger-check --objects tomato_soup_can,mustard_bottle --trials 0,1 --camera oblique
"""


def _trial_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected trial numbers, comma-separated, got {text!r}") from None


def _register_finger_check(sub):
    ap = sub.add_parser("finger-check", help="picture of the finger clearance check off and on, on benchmark scenes",
                        description=FINGER_DESCRIPTION, epilog=FINGER_EPILOG, formatter_class=RAW)
    ap.add_argument("--objects", default="tomato_soup_can,potted_meat_can,mustard_bottle", help="benchmark objects, comma-separated")
    ap.add_argument("--trials", type=_trial_list, default=[0], help="trial numbers, comma-separated (default: 0)")
    ap.add_argument("--seed", type=int, default=0, help="run seed of the scenes, as dsc-grasp bench --seed (default: %(default)s)")
    ap.add_argument("--camera", choices=("top", "oblique"), default="top", help="camera of the scenes (default: %(default)s)")
    ap.add_argument("--modality", choices=("rgbd", "d", "rgb"), default="rgbd", help="shipped model (default: rgbd)")
    ap.add_argument("--crop", type=int, default=200, help="crop size in pixels around the object (default: 200)")
    ap.add_argument("--out", default="finger_check.png", help="PNG to write (default: %(default)s)")
    ap.set_defaults(func=run_finger_check)


def run_finger_check(args) -> int:
    from ..bench.finger_check import figure

    n = figure(args.out, args.objects, args.trials, args.seed, args.camera, args.modality, args.crop)
    print(f"wrote {args.out} ({n} scenes)")
    return 0


# --------------------------------------------------------------------------- the group
DESCRIPTION = """\
Pictures for the docs, each a PNG (--out) plus its numbers on stdout (--json for scripts where offered):

  curve         accuracy vs training length from a JSON file of measured points
  training      held-out accuracy and loss of 'dsc-grasp train' runs against optimiser steps
  finger-check  the finger clearance check off and on, on benchmark scenes (needs PyBullet)
"""

EPILOG = """\
examples:
  dsc-grasp plot training runs/sim_rgbd --out curve.png
  dsc-grasp plot curve config/curves/rgbd_csp_first.json --out docs/img/rgbd_curve.png
"""


def register(sub):
    s = add_group(sub, "plot", help="pictures: training curves, measured-points curves, the finger check",
                  description=DESCRIPTION, epilog=EPILOG)
    _register_curve(s)
    _register_training(s)
    _register_finger_check(s)
