"""``dsc-grasp evaluate``: the paper's grasp metric for a model on a dataset."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DESCRIPTION = """\
Score a model with the paper's metric (Jiang et al.): the top-1 predicted grasp of an image is
correct when, for some ground-truth rectangle, the angle difference (modulo 180°) is below 30°
and the Jaccard index (exact polygon IoU) exceeds 0.25. The predicted rectangle's side along the
closing axis is the predicted opening, its side along the jaws half of it (GR-ConvNet).

--protocol picks the crop, and every result says which one it used (JSON "protocol", and the
printed line): "paper" (default) = the paper's/GR-ConvNet's 224 protocol: Cornell a native
224x224 crop at the image centre, Jacquard the whole (square) image resized to 224; "native" = a
native 224 crop at the centre for every dataset; "square" = the largest centred square resized to
224 for every dataset (this package's first protocol: Cornell objects 2.1x smaller than in the
paper, the wall behind the table in view). Depth is normalised as the model's metadata says
(--depth-ref overrides it, for experiments only).

Without --split-file every sample under --path is scored; with the split.json of a training run
only its held-out ids are (so the numbers are the run's test accuracy).
"""

EPILOG = """\
examples:
  dsc-grasp evaluate --dataset cornell --path ~/data/cornell --model runs/cw/model.pt --split-file runs/cw/split.json
  dsc-grasp evaluate --dataset jacquard --path ../shared/data/jacquard --json > eval.json   # shipped RGB-D model
  dsc-grasp evaluate --dataset cornell --path ../shared/data/cornell --modality rgb --protocol square  # the old crop
  dsc-grasp evaluate --dataset cornell --path ../shared/data/cornell --split-file config/splits/cornell_shared_split.json \
      --save-images runs/eval_cornell   # look at what it got wrong: runs/eval_cornell/wrong.png
"""


#: What each protocol does to an image of each dataset (recorded with every result).
PROTOCOL_CROPS = {
    "paper": {"cornell": "native 224 crop at the centre", "jacquard": "centred square resized to 224", "jacquard-format": "centred square resized to 224"},
    "native": {k: "native 224 crop at the centre" for k in ("cornell", "jacquard", "jacquard-format")},
    "square": {k: "centred square resized to 224" for k in ("cornell", "jacquard", "jacquard-format")},
    "scale": {
        "cornell": "native 224 crop at the centre (no intrinsics: as paper)",
        "jacquard": "centred square resized to 224 (no intrinsics: as paper)",
        "jacquard-format": "the node's scale ROI from camera.json intrinsics and the median depth, resized to 224 (as paper without camera.json)",
    },
}


def register(sub):
    from ..data import DATASETS
    from ..core.preprocess import DEPTH_REFERENCES, PROTOCOLS

    p = sub.add_parser(
        "evaluate",
        help="grasp-detection accuracy of a model on Cornell/Jacquard/Jacquard-format data",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, choices=DATASETS, help="on-disk format of --path")
    p.add_argument("--path", required=True, help="dataset root (searched recursively)")
    p.add_argument("--model", default=None, help="model file (.pt with its .json); default: the shipped model (RGB-D, or the one for --modality)")
    p.add_argument("--modality", default=None, choices=["rgb", "d", "rgbd"], help="pick the shipped model of this modality (ignored with --model except as a check)")
    p.add_argument("--split-file", default=None, help="split.json of a training run: score only its held-out ids")
    p.add_argument("--part", default="test", choices=["test", "train"], help="with --split-file: score the held-out (test) or the training ids (a fit diagnostic) (default: %(default)s)")
    p.add_argument("--object-map", default=None, help="Cornell image -> object mapping (only needed to record groups)")
    p.add_argument("--depth", default="perfect", choices=["perfect", "stereo"], help="Jacquard depth image (default: %(default)s)")
    p.add_argument("--protocol", default="paper", choices=PROTOCOLS, help="crop of each image: paper (Cornell native 224 centre crop, Jacquard whole image resized), native (224 centre crop), square (centred square resized) or scale (the node's ROI: a metre spans the model's net_px_per_metre at the median depth; needs our synthetic data's camera.json, else as paper) (default: %(default)s)")
    p.add_argument("--depth-ref", default=None, choices=DEPTH_REFERENCES, help="depth normalisation reference (default: the model's, from its metadata; others are for experiments)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N samples")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--sigma", type=float, default=2.0, help="Gaussian smoothing of the maps before decoding (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=1, help="images per forward pass; 1 gives per-frame inference time (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the full result (accuracy, count, per-image results, timing) as JSON")
    p.add_argument("--output", default=None, help="also write the JSON result to this file")
    p.add_argument("--save-images", default=None, metavar="DIR",
                   help="also draw every scored image as the network saw it (its crop), with the ground-truth rectangles (blue) "
                        "and the top-1 grasp (green: correct, red: wrong): DIR/grid.png (all images), DIR/wrong.png (the wrong "
                        "ones) and one DIR/<id>.png each")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def save_images(ds, per_image: list[dict], out: Path, cols: int = 8, tile_px: int = 160) -> dict:
    """Draw the scored images (:func:`~dsc_grasp_ros.core.visualize.evaluation_tile`): one PNG per
    image, a grid of all of them and one of the wrong ones; returns what was written."""
    import re

    import cv2

    from ..core.visualize import evaluation_tile, tile_grid

    out.mkdir(parents=True, exist_ok=True)
    tiles, wrong = [], []
    for i, r in enumerate(per_image):
        img, rects = ds.view(i)
        full = evaluation_tile(img, rects, r)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(r["id"])) + ".png"
        cv2.imwrite(str(out / name), cv2.cvtColor(full, cv2.COLOR_RGB2BGR))
        tiles.append(evaluation_tile(img, rects, r, tile_px))
        if not r["correct"]:
            wrong.append(tiles[-1])
    written = {"dir": str(out), "per_image": len(tiles)}
    for key, group in (("grid", tiles), ("wrong", wrong)):
        if group:
            path = out / f"{key}.png"
            cv2.imwrite(str(path), cv2.cvtColor(tile_grid(group, cols), cv2.COLOR_RGB2BGR))
            written[key] = str(path)
    return written


def run(args) -> int:
    from ..data import DatasetFormatError, GraspDataset, find_items, load_split, select
    from ..training.evaluation import evaluate_model
    from ..core.inference import resolve_device
    from ..core.model_io import ModelError, default_model_path, load_model

    try:
        device = resolve_device(args.device)
        model_path = Path(args.model) if args.model else default_model_path(args.modality)
        model, meta = load_model(model_path, args.modality, device)
        items = find_items(args.dataset, args.path, depth=args.depth, object_map=args.object_map)
        if args.split_file:
            split = load_split(args.split_file)
            items = select(items, split[args.part], "held-out" if args.part == "test" else "training")
        if args.limit:
            items = items[: args.limit]
        depth_ref = args.depth_ref or meta.depth_ref
        ds = GraspDataset(items, meta.modality, meta.input_size, None, "rect", meta.width_scale_px, args.protocol, depth_ref, meta.px_per_metre)
    except (ModelError, DatasetFormatError, FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"dsc-grasp evaluate: error: {e}", file=sys.stderr)
        return 2
    t0 = time.time()
    res = evaluate_model(
        model, ds, device, meta.width_scale_px, sigma=args.sigma, progress=args.progress and not args.json,
        amp=False, batch_size=args.batch_size,
    )
    result = {
        "dataset": args.dataset,
        "path": str(Path(args.path).resolve()),
        "split_file": args.split_file,
        "part": args.part if args.split_file else "all",
        "model": str(model_path),
        "modality": meta.modality,
        "protocol": args.protocol,
        "protocol_crop": PROTOCOL_CROPS[args.protocol][args.dataset],
        "depth_ref": depth_ref,
        "depth_ref_source": "--depth-ref" if args.depth_ref else "model metadata",
        "device": str(device),
        "metric": "top-1 grasp; correct if angle difference < 30 deg (mod 180) and IoU > 0.25 with one ground-truth rectangle",
        "accuracy": res["accuracy"],
        "correct": res["correct"],
        "count": res["count"],
        "inference_ms": res["inference_ms"],
        "wall_s": round(time.time() - t0, 2),
        "per_image": res["per_image"],
    }
    if args.save_images:
        result["images"] = save_images(ds, res["per_image"], Path(args.save_images))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(
            f"accuracy {res['accuracy']:.4f} ({res['correct']}/{res['count']}) on {args.dataset} "
            f"[{meta.modality} model {model_path.name}, protocol {args.protocol}: {PROTOCOL_CROPS[args.protocol][args.dataset]}, "
            f"depth ref {depth_ref}, {device}]; inference {res['inference_ms']['mean']:.1f} ms/image "
            f"(forward + decode)"
        )
        if args.save_images:
            print(f"images: {result['images']['dir']} (grid.png, wrong.png, one per image)")
    return 0
