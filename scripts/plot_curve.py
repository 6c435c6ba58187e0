#!/usr/bin/env python3
"""Plot an accuracy-vs-training-length curve from a JSON file of measured points.

The training runs behind the shipped models are not kept in the repository, but their measured
numbers are (docs/training.md). This draws them as one picture: accuracy on each evaluation set
against the training samples seen (log scale), the target as a horizontal line and reference
training lengths (the paper's) as vertical lines, so the gap a longer (GPU) run has to close is
visible at a glance. Prints the points it drew (``--json``: one document for scripts).

JSON format (see config/curves/rgbd_csp_first.json): ``{"title", "x_label", "y_label",
"target": number|null, "references": [{"x", "label"}], "series": [{"label", "points": [[x, y],
...], "marker_only": bool}], "sources": [text]}``.

examples:
  .venv/bin/python scripts/plot_curve.py config/curves/rgbd_csp_first.json --out docs/img/rgbd_curve.png
  .venv/bin/python scripts/plot_curve.py config/curves/rgbd_csp_first.json --json

Bad input (a missing file, not JSON, a series without label or points, a non-positive x) exits with
status 2 and one line naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load(path: str) -> dict:
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


def plot(doc: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6.2), dpi=110)
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("curve", help="JSON file of measured points (format above)")
    ap.add_argument("--out", default="curve.png", help="PNG to write (default: curve.png)")
    ap.add_argument("--json", action="store_true", help="print the points as one JSON document instead of text")
    args = ap.parse_args(argv)
    try:
        doc = load(args.curve)
    except ValueError as e:
        print(f"plot_curve: {e}", file=sys.stderr)
        return 2
    plot(doc, Path(args.out))
    if args.json:
        print(json.dumps({"out": args.out, "target": doc.get("target"), "series": doc["series"], "references": doc.get("references", [])}, indent=1))
    else:
        for s in doc["series"]:
            print(f"{s['label']}: " + ", ".join(f"{x:g} -> {y:g} %" for x, y in s["points"]))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
