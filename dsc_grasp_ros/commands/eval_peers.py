"""``dsc-grasp eval-peers``: the peer networks (GR-ConvNet3, GG-CNN2) with the paper's metric, beside ours."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from . import ROOT

DESCRIPTION = """\
Accuracy of the peer networks (GR-ConvNet3, GG-CNN2) with the paper's metric, beside ours.

Each peer runs its OWN published pipeline (see dsc_grasp_ros/bench/peers.py): GR-ConvNet3 sees
the centre 224x224 crop at native resolution, GG-CNN2 the centre 300x300 crop; its top-1 grasp
(argmax of the smoothed quality map) is mapped back to full-image pixels and scored against the
full-image ground truth: correct when, for one ground-truth rectangle, the angle difference
(mod 180°) is < 30° and the polygon IoU > 0.25 (jaw size of the predicted rectangle = opening / 2).
Our shipped model (or --model) runs in the same process through `dsc-grasp evaluate`'s code path
and pre-processing (--protocol, default paper; the model's own depth reference) unless --no-ours.

With 50 Cornell images this is a check of the peer implementations, not a reproduction of the
papers' numbers (the GR-ConvNet weights were trained on a random split that includes most
Cornell images).
"""

EPILOG = """\
examples:
  dsc-grasp eval-peers                                   # Cornell samples
  dsc-grasp eval-peers --dataset jacquard                # Jacquard samples
  dsc-grasp eval-peers --dataset jacquard --crop square  # whole image resized
  dsc-grasp eval-peers --crop gt --no-ours               # crop placed as the peers' own loaders do
  dsc-grasp eval-peers --peers grconvnet3 --limit 10 --json
  dsc-grasp eval-peers --split-file config/splits/cornell_shared_split.json --no-ours   # Cornell held-out part
  dsc-grasp eval-peers --dataset jacquard-format --path SIM/test --depth stereo --crop square --no-ours
"""


def gt_centred_roi(gts, shape, size: int):
    """The crop of the peers' own dataset loaders (robotic-grasping / ggcnn ``_get_crop_attrs``):
    ``size`` square at native resolution centred on the mean ground-truth centre, kept inside the
    image. It uses the labels, so it measures the network, not a deployable pipeline."""
    from ..core.preprocess import ROI

    h, w = shape[:2]
    cu, cv = (int(round(c)) for c in gts[:, :2].mean(0)) if len(gts) else (w // 2, h // 2)
    x = max(0, min(cu - size // 2, w - size))
    y = max(0, min(cv - size // 2, h - size))
    return ROI(x, y, size, size, size, size)


def evaluate_peer(peer, items, crop: str, progress: bool) -> dict:
    """Top-1 accuracy of one peer on dataset items (full-image ground truth)."""
    from tqdm import tqdm

    from ..core.conventions import PREDICTED_JAW_RATIO
    from ..data.datasets import read_rects
    from ..data.formats import read_depth, read_rgb
    from ..training.evaluation import match_grasp

    per_image, correct = [], 0
    t0 = time.perf_counter()
    for it in tqdm(items, desc=peer.name, unit="img", disable=not progress, leave=False, file=sys.stderr):
        rgb = read_rgb(it.rgb) if peer.modality == "rgbd" else None
        depth = read_depth(it.depth)
        gts = read_rects(it)
        roi = gt_centred_roi(gts, depth.shape, peer.input_size) if crop == "gt" else crop
        g = peer.predict(rgb, depth, k=1, roi=roi)[0]
        pred = [g.u, g.v, g.angle, g.width_px, g.width_px * PREDICTED_JAW_RATIO]
        res = match_grasp(pred, gts)
        correct += bool(res["correct"])
        per_image.append(
            {
                "id": it.id,
                "correct": bool(res["correct"]),
                "best_iou": round(res["best_iou"], 4),
                "grasp": {"u": round(g.u, 2), "v": round(g.v, 2), "angle_deg": round(math.degrees(g.angle), 2),
                          "width_px": round(g.width_px, 2), "quality": round(g.quality, 4)},
            }
        )
    n = len(per_image)
    return {
        "network": peer.name,
        "title": peer.spec.title,
        "modality": peer.modality,
        "input": f"{peer.input_size}x{peer.input_size}, crop {crop}",
        "weights": str(peer.path),
        "accuracy": correct / n if n else float("nan"),
        "correct": correct,
        "count": n,
        "wall_s": round(time.perf_counter() - t0, 2),
        "per_image": per_image,
    }


def evaluate_ours(items, model_path, progress: bool, protocol: str = "paper", dataset: str = "cornell") -> dict:
    """Our model through ``dsc-grasp evaluate``'s pre-processing: ``protocol``'s crop and the model's
    own depth reference (a ``plane`` model normalised with the mean instead scored 0/17 on Cornell)."""
    from ..core.model_io import default_model_path, load_model
    from ..data import GraspDataset
    from ..training.evaluation import evaluate_model
    from .evaluate import PROTOCOL_CROPS

    path = Path(model_path) if model_path else default_model_path()
    model, meta = load_model(path, None, "cpu")
    ds = GraspDataset(items, meta.modality, meta.input_size, None, "rect", meta.width_scale_px, protocol, meta.depth_ref,
                      meta.px_per_metre)
    t0 = time.perf_counter()
    res = evaluate_model(model, ds, "cpu", meta.width_scale_px, progress=progress)
    return {
        "network": "dsc_graspnet",
        "title": f"DSC-GraspNet ({meta.modality}, {path.name})",
        "modality": meta.modality,
        "input": f"{meta.input_size}x{meta.input_size}, {protocol}: {PROTOCOL_CROPS[protocol][dataset]}",
        "protocol": protocol,
        "depth_ref": meta.depth_ref,
        "weights": str(path),
        "accuracy": res["accuracy"],
        "correct": res["correct"],
        "count": res["count"],
        "wall_s": round(time.perf_counter() - t0, 2),
        "per_image": res["per_image"],
    }


#: the peers' names (as dsc_grasp_ros.bench.peers.PEERS has them; listed here so that the parser
#: is built without importing torch)
PEER_NAMES = ("ggcnn2", "grconvnet3")


def register(sub):
    ap = sub.add_parser("eval-peers", help="accuracy of GR-ConvNet3 and GG-CNN2 (their own pipelines) beside ours",
                        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="cornell", choices=["cornell", "jacquard", "jacquard-format"],
                    help="dataset format; jacquard-format = our synthetic sets (dsc-grasp sim-dataset) (default: %(default)s)")
    ap.add_argument("--path", default=None, help="dataset folder (default: <project root>/../shared/data/<dataset>; required for jacquard-format)")
    ap.add_argument("--split-file", default=None, help="split.json (dsc-grasp train, or config/splits/cornell_shared_split.json): score only its --part ids, "
                                                     "as 'dsc-grasp evaluate --split-file' does")
    ap.add_argument("--part", default="test", choices=["test", "train"], help="with --split-file: the held-out (test) or the training ids (default: %(default)s)")
    ap.add_argument("--peers", nargs="+", default=list(PEER_NAMES), choices=PEER_NAMES, help="peers to score (default: all)")
    ap.add_argument("--peers-dir", default=None, help="folder with the peer weights (default: <project root>/../shared/peers)")
    ap.add_argument("--crop", default=None, choices=["centre", "square", "gt"],
                    help="peer input: 'centre' = centred input-size crop at native resolution (the peers' Cornell pipeline), "
                         "'square' = largest centred square resized to the input size (GR-ConvNet's Jacquard pipeline), "
                         "'gt' = input-size crop centred on the ground-truth grasps (the peers' own dataset loaders; uses the labels) "
                         "(default: centre, the peers' published input)")
    ap.add_argument("--depth", default="perfect", choices=["perfect", "stereo"], help="Jacquard depth image (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N images (>= 1)")
    ap.add_argument("--model", default=None, help="our model file for the comparison row (default: the shipped RGB-D model)")
    ap.add_argument("--protocol", default="paper", choices=("paper", "native", "square", "scale"),
                    help="our model's crop, as in 'dsc-grasp evaluate --protocol' (default: %(default)s); the peers keep --crop")
    ap.add_argument("--no-ours", dest="ours", action="store_false", help="skip our model")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--json", action="store_true", help="print the results (accuracy, per-image grasps) as JSON")
    ap.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    ap.set_defaults(func=run, _parser=ap)


def run(args) -> int:
    import torch

    from ..bench.peers import PeerError, load_peer
    from ..core.model_io import ModelError
    from ..data import DatasetFormatError, find_items

    ap = args._parser

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be >= 1")
    if args.dataset == "jacquard-format" and not args.path:
        ap.error("--dataset jacquard-format needs --path")
    path = Path(args.path) if args.path else ROOT.parent / "shared" / "data" / args.dataset
    crop = args.crop or "centre"
    try:
        items = find_items(args.dataset, path, depth=args.depth)
        if args.split_file:  # the same selection as dsc-grasp evaluate --split-file
            from ..data import load_split, select

            items = select(items, load_split(args.split_file)[args.part], "held-out" if args.part == "test" else "training")
        items = items[: args.limit]
        peers = [load_peer(n, args.peers_dir) for n in args.peers]
    except (PeerError, ModelError, DatasetFormatError, FileNotFoundError, ValueError) as e:
        print(f"dsc-grasp eval-peers: error: {e}", file=sys.stderr)
        return 2
    progress = args.progress and not args.json
    rows = [evaluate_peer(p, items, crop, progress) for p in peers]
    if args.ours:
        try:
            rows.append(evaluate_ours(items, args.model, progress, args.protocol, args.dataset))
        except (ModelError, FileNotFoundError) as e:
            print(f"dsc-grasp eval-peers: our model skipped: {e}", file=sys.stderr)
    out = {
        "dataset": args.dataset,
        "path": str(path.resolve()),
        "split_file": args.split_file,
        "part": args.part if args.split_file else "all",
        "depth": args.depth,
        "crop": crop,
        "images": len(items),
        "metric": "top-1 grasp; correct if angle difference < 30 deg (mod 180) and IoU > 0.25 with one ground-truth rectangle",
        "threads": torch.get_num_threads(),
        "results": rows,
    }
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"{args.dataset} ({len(items)} images, {path}); peer crop: {crop}")
    print(f"  {'network':<14} {'input':<40} {'accuracy':>9} {'correct':>9} {'wall s':>7}")
    for r in rows:
        print(f"  {r['network']:<14} {r['input']:<40} {r['accuracy']:>9.3f} {r['correct']:>4}/{r['count']:<4} {r['wall_s']:>7.1f}")
    return 0
