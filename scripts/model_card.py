#!/usr/bin/env python3
"""Evaluate shipped models and write the results into their metadata (the model card's numbers).

For each model: the paper's metric on a held-out Jacquard-format set (objects never seen in
training) and, sim-to-real, on the real Cornell and Jacquard samples in ../shared/data when present.
Results go into the model's .json (``metrics``; the weights and their SHA-256 are untouched) and a
Markdown table row per model is printed.

  .venv/bin/python scripts/model_card.py --heldout /work/simdata/test models/dsc_graspnet_*.pt
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dsc_grasp_ros.model_io import portable_path  # noqa: E402


def evaluate(model: Path, dataset: str, path: Path, depth: str | None) -> dict:
    cmd = [sys.executable, "-m", "dsc_grasp_ros.cli", "evaluate", "--dataset", dataset, "--path", str(path),
           "--model", str(model), "--json", "--no-progress"]
    if depth:
        cmd += ["--depth", depth]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    r = json.loads(out)
    return {"accuracy": r["accuracy"], "correct": r["correct"], "count": r["count"],
            "inference_ms_median": r["inference_ms"]["median"], "depth": depth}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help="model files (.pt with .json beside them)")
    ap.add_argument("--heldout", type=Path, required=True, help="Jacquard-format folder of held-out objects")
    ap.add_argument("--depth", default="stereo", help="depth image of Jacquard-format/Jacquard data: perfect or stereo")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data", help="real samples (default ../shared/data)")
    args = ap.parse_args()
    rows = []
    for model in args.models:
        meta_path = model.with_suffix(".json")
        meta = json.loads(meta_path.read_text())
        m = meta.setdefault("metrics", {})
        m["heldout_objects"] = {**evaluate(model, "jacquard-format", args.heldout, args.depth), "path": portable_path(args.heldout)}
        real = {}
        if (args.shared / "cornell").is_dir():
            real["cornell_samples"] = evaluate(model, "cornell", args.shared / "cornell", None)
        if (args.shared / "jacquard").is_dir():
            real["jacquard_samples"] = evaluate(model, "jacquard", args.shared / "jacquard", "perfect")
        m["sim_to_real"] = real
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        h = m["heldout_objects"]
        cells = [f"{model.name}", meta["modality"], f"{100 * h['accuracy']:.1f} % ({h['correct']}/{h['count']})"]
        for key in ("cornell_samples", "jacquard_samples"):
            r = real.get(key)
            cells.append(f"{100 * r['accuracy']:.1f} % ({r['correct']}/{r['count']})" if r else "n/a")
        rows.append("| " + " | ".join(cells) + " |")
        print(json.dumps({"model": str(model), "metrics": m}), file=sys.stderr)
    print("| model | modality | held-out objects (sim) | Cornell samples (real) | Jacquard samples (real) |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
