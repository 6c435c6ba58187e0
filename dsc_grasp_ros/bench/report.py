"""Benchmark output: per-trial JSONL, success summaries with Wilson 95% intervals, pictures.

Files a run writes into its output folder:

* ``trials.jsonl``: one JSON object per trial (:data:`TRIAL_KEYS`).
* ``summary.json``: settings, policies, per-policy overall and per-object success with Wilson
  95% intervals, failure-class counts, timings, wall time.
* ``grid_<policy>.png``: per-trial camera crops (rows: objects, columns: trials) with the
  executed grasp drawn (green frame: success, red: failure with its class).
* ``success.png``: bar chart of success per policy with the 95% intervals.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

#: why a trial failed, in the order reports list them
FAILURE_CLASSES = ("no_grasp", "unreachable", "collision_on_descent", "off_object", "empty_or_one_finger", "dropped")
OUTCOMES = ("success",) + FAILURE_CLASSES

#: Keys of every trial record in ``trials.jsonl``.
TRIAL_KEYS = ("object", "trial", "seed", "policy", "outcome", "success", "grasp", "executed", "lift_m", "fingers_in_contact", "timings", "error")

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (``(0, 1)`` for ``n = 0``)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n], got {successes} of {n}")
    ph = successes / n
    den = 1 + z * z / n
    centre = (ph + z * z / (2 * n)) / den
    half = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(successes: int, n: int) -> dict:
    lo, hi = wilson_interval(successes, n)
    return {"successes": int(successes), "trials": int(n), "rate": (successes / n) if n else None, "ci95": [round(lo, 4), round(hi, 4)]}


def summarize(records: list[dict], policies: list[str] | None = None) -> dict:
    """Per policy: overall and per-object success with Wilson 95% intervals, failure counts, timings."""
    by_pol: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_pol[r["policy"]].append(r)
    order = list(policies or []) + [p for p in by_pol if p not in (policies or [])]
    out = {}
    for pol in order:
        rs = by_pol.get(pol, [])
        per_obj: dict[str, list[dict]] = defaultdict(list)
        for r in rs:
            per_obj[r["object"]].append(r)
        fails = Counter(r["outcome"] for r in rs if not r["success"])
        plan = [r["timings"].get("plan_s", 0.0) for r in rs if r.get("timings")]
        execu = [r["timings"].get("execute_s", 0.0) for r in rs if r.get("timings")]
        out[pol] = {
            "overall": rate(sum(r["success"] for r in rs), len(rs)),
            "objects": {o: rate(sum(r["success"] for r in v), len(v)) for o, v in per_obj.items()},
            "failures": {k: int(fails.get(k, 0)) for k in FAILURE_CLASSES},
            "mean_plan_s": round(float(np.mean(plan)), 4) if plan else None,
            "mean_execute_s": round(float(np.mean(execu)), 4) if execu else None,
        }
    return out


def write_jsonl(path, records) -> None:
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=False) + "\n")


def read_jsonl(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def format_table(summary: dict) -> str:
    """A plain-text table: rows = objects (+ overall), columns = policies, ``rate [lo-hi]``."""
    pols = list(summary)
    objs: list[str] = []
    for p in pols:
        for o in summary[p]["objects"]:
            if o not in objs:
                objs.append(o)

    def cell(r):
        if not r or not r["trials"]:
            return "-"
        return f"{r['successes']}/{r['trials']} {100 * r['rate']:.0f}% [{100 * r['ci95'][0]:.0f}-{100 * r['ci95'][1]:.0f}]"

    w0 = max([len("object")] + [len(o) for o in objs] + [len("overall")])
    cols = [max(len(p), 20) for p in pols]
    lines = ["  ".join(["object".ljust(w0)] + [p.ljust(c) for p, c in zip(pols, cols)])]
    for o in objs:
        lines.append("  ".join([o.ljust(w0)] + [cell(summary[p]["objects"].get(o)).ljust(c) for p, c in zip(pols, cols)]))
    lines.append("  ".join(["overall".ljust(w0)] + [cell(summary[p]["overall"]).ljust(c) for p, c in zip(pols, cols)]))
    lines.append("")
    lines.append("failures".ljust(w0) + "  " + "  ".join(
        ", ".join(f"{k}:{v}" for k, v in summary[p]["failures"].items() if v) or "none" for p in pols))
    return "\n".join(lines)


# --------------------------------------------------------------------------- pictures
CROP = 120  # px of the camera image around the grasp
TILE = 96  # px of a tile in the grid


def trial_crop(rgb: np.ndarray, record: dict, centre=None) -> np.ndarray:
    """A ``TILE`` x ``TILE`` crop around the executed image grasp (or ``centre``), grasp drawn,
    framed green (success) or red (failure, class written)."""
    import cv2

    from ..core.visualize import draw_grasps

    g = (record.get("grasp") or {}).get("image")
    img = np.ascontiguousarray(rgb[..., :3]).copy()
    if g is not None:
        from .policies import ImageGrasp

        ig = ImageGrasp(**g)
        img = draw_grasps(img, [ig], labels=False)
        c = (g["u"], g["v"])
    else:
        c = centre if centre is not None else (img.shape[1] / 2, img.shape[0] / 2)
    h, w = img.shape[:2]
    x0 = int(np.clip(round(c[0] - CROP / 2), 0, w - CROP))
    y0 = int(np.clip(round(c[1] - CROP / 2), 0, h - CROP))
    tile = cv2.resize(img[y0 : y0 + CROP, x0 : x0 + CROP], (TILE, TILE), interpolation=cv2.INTER_AREA)
    col = (40, 200, 40) if record["success"] else (220, 40, 40)
    cv2.rectangle(tile, (0, 0), (TILE - 1, TILE - 1), col, 3)
    if not record["success"]:
        txt = {"no_grasp": "none", "unreachable": "unreach", "collision_on_descent": "collide", "off_object": "off",
               "empty_or_one_finger": "empty/1f", "dropped": "drop"}.get(record["outcome"], record["outcome"])
        cv2.rectangle(tile, (3, TILE - 17), (TILE - 4, TILE - 4), (150, 20, 20), -1)
        cv2.putText(tile, txt, (6, TILE - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def grid_image(tiles: dict, objects: list[str], trials: int, title: str) -> np.ndarray:
    """``tiles[(object, trial)]`` -> one image: a row per object (name on the left)."""
    import cv2

    label_w, head = 130, 26
    H = head + len(objects) * (TILE + 2)
    W = label_w + trials * (TILE + 2)
    img = np.full((H, W, 3), 255, np.uint8)
    cv2.putText(img, title, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for i, o in enumerate(objects):
        y = head + i * (TILE + 2)
        cv2.putText(img, o[:18], (4, y + TILE // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for t in range(trials):
            tile = tiles.get((o, t))
            if tile is not None:
                x = label_w + t * (TILE + 2)
                img[y : y + TILE, x : x + TILE] = tile
    return img


def save_png(path, rgb: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def bar_chart(summary: dict, path, title: str = "Closed-loop grasp success") -> None:
    """Bar chart of overall success per policy with the Wilson 95% interval as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pols = list(summary)
    r = [100 * (summary[p]["overall"]["rate"] or 0.0) for p in pols]
    lo = [100 * summary[p]["overall"]["ci95"][0] for p in pols]
    hi = [100 * summary[p]["overall"]["ci95"][1] for p in pols]
    fig, ax = plt.subplots(figsize=(1.3 * len(pols) + 2, 3.6), dpi=110)
    x = np.arange(len(pols))
    ax.bar(x, r, color=["#7f7f7f" if p == "oracle" else "#4878d0" for p in pols])
    ax.errorbar(x, r, yerr=[np.subtract(r, lo), np.subtract(hi, r)], fmt="none", ecolor="k", capsize=4)
    for i, p in enumerate(pols):
        o = summary[p]["overall"]
        ax.text(i + 0.08, min(hi[i] + 1, 104), f"{r[i]:.1f}% ({o['successes']}/{o['trials']})", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, pols, rotation=20, ha="right")
    ax.set_ylim(0, 115)
    ax.set_ylabel("success (%) with Wilson 95% CI")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)


def write_outputs(out_dir, records: list[dict], summary_doc: dict, tiles: dict, objects: list[str], trials: int) -> dict:
    """Write trials.jsonl, summary.json, the grids and the bar chart; returns the file paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"trials": str(out / "trials.jsonl"), "summary": str(out / "summary.json"), "chart": str(out / "success.png"), "grids": {}}
    write_jsonl(out / "trials.jsonl", records)
    (out / "summary.json").write_text(json.dumps(summary_doc, indent=2) + "\n")
    for pol, t in tiles.items():
        f = out / f"grid_{pol}.png"
        s = summary_doc["policies"][pol]["overall"]
        save_png(f, grid_image(t, objects, trials, f"{pol}: {s['successes']}/{s['trials']} grasps succeeded"))
        files["grids"][pol] = str(f)
    bar_chart(summary_doc["policies"], out / "success.png")
    return files


__all__ = ["TRIAL_KEYS", "OUTCOMES", "wilson_interval", "rate", "summarize", "write_jsonl", "read_jsonl", "format_table",
           "trial_crop", "grid_image", "bar_chart", "write_outputs"]
