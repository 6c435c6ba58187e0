"""``dsc-grasp predict``: grasps on one RGB-D image pair, as text, JSON or an annotated picture."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from ..core.imageio import read_depth, read_rgb
from ..core.settings import BACKENDS, CHOICE_SETTINGS, SETTING_HELP, TUNABLE_RANGES, default

EPILOG = """\
Output: one line per grasp, best first: pixel centre (u, v), angle of the jaw-closing axis in the
image (degrees, counter-clockwise), opening in pixels and metres, quality, and the TCP position in
metres in the camera optical frame (x right, y down, z forward). --json prints one JSON object with
a "grasps" list (u, v, angle [rad], width_px, width_m, quality, position, orientation [x,y,z,w]).

example:
  dsc-grasp predict --rgb color.png --depth depth.png --fx 615 --fy 615 --cx 320 --cy 240 \\
      --top-k 5 --out annotated.png
"""


#: detector settings offered as options: (flag, core setting, type); defaults and help come from
#: dsc_grasp_ros.core.settings, the same table the node's parameters use
DETECTOR_OPTIONS = (
    ("--top-k", "top_k", int), ("--min-quality", "min_quality", float), ("--min-distance", "min_distance_px", float),
    ("--sigma", "sigma", float), ("--roi", "roi", int), ("--roi-mode", "roi_mode", str),
    ("--depth-statistic", "depth_statistic", str), ("--min-depth", "min_depth", float), ("--max-depth", "max_depth", float),
    ("--max-opening", "max_gripper_opening", float), ("--finger-check", "finger_check", str),
    ("--finger-max-turn", "finger_max_turn_deg", float), ("--opening-margin", "opening_margin", float),
)
#: where a one-shot command deliberately differs from the node's defaults, and why
CLI_DEFAULTS = {"backend": "eager", "threads": 0, "min_quality": 0.0}
CLI_DEFAULTS_WHY = {
    "backend": "one image does not repay a compile.",
    "threads": "a one-shot command may use every core.",
    "min_quality": "here every peak is shown, with its quality, for inspection.",
}


def register(sub):
    p = sub.add_parser(
        "predict",
        help="detect grasps on an RGB-D image pair",
        description="Detect grasps on one aligned RGB-D image pair and turn them into metric poses.",
        epilog=EPILOG,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    p.add_argument("--rgb", help="colour image (PNG/JPEG); optional for a depth-only model")
    p.add_argument("--depth", required=True, help="depth aligned to --rgb: 16-bit PNG in millimetres or float TIFF in metres")
    p.add_argument("--fx", type=float, required=True, help="focal length x in pixels (CameraInfo K[0])")
    p.add_argument("--fy", type=float, required=True, help="focal length y in pixels (CameraInfo K[4])")
    p.add_argument("--cx", type=float, help="principal point x in pixels (default: image centre)")
    p.add_argument("--cy", type=float, help="principal point y in pixels (default: image centre)")
    p.add_argument("--model", help="model file (.pt with .json beside it); default: the shipped RGB-D model")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--backend", default=CLI_DEFAULTS["backend"], choices=BACKENDS,
                   help="network backend: eager (default: best for one image), compiled = BatchNorm folded + torch.compile "
                        "(the first run compiles for about a minute, later runs load the on-disk cache; pays off on streams), "
                        "auto = compiled on CPU / CUDA graphs on a GPU (default: %(default)s)")
    p.add_argument("--threads", type=int, default=CLI_DEFAULTS["threads"], help="CPU threads of the network, 0 = all cores (default: %(default)s)")
    for flag, name, kind in DETECTOR_OPTIONS:
        d = CLI_DEFAULTS.get(name, default(name))
        extra = {"nargs": 4, "metavar": ("X", "Y", "W", "H")} if name == "roi" else {"metavar": flag[2:].upper().replace("-", "_")}
        if name in CHOICE_SETTINGS:
            extra = {"choices": CHOICE_SETTINGS[name]}
        rng = f" Range {TUNABLE_RANGES[name][0]:g}-{TUNABLE_RANGES[name][1]:g}." if name in TUNABLE_RANGES else ""
        why = f" The node's default is {default(name)!r}; {CLI_DEFAULTS_WHY[name]}" if name in CLI_DEFAULTS else ""
        p.add_argument(flag, dest=name, type=kind, default=d, help=f"{SETTING_HELP[name]}{rng}{why} (default: %(default)s)", **extra)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--out", help="write an annotated PNG: rectangles over the image, the finger footprints of the finger check "
                   "(cyan: clear of the object, magenta: not), quality map beside it")
    p.set_defaults(func=run)


def _unreadable(option: str, path: str) -> str | None:
    """Why the image file given to ``option`` cannot be read (None when it can): checked before
    OpenCV sees it, which would print a warning of its own for a missing file."""
    p = Path(path)
    if not p.exists():
        return f"{option} file {path} does not exist"
    if p.is_dir():
        return f"{option} {path} is a folder, not an image file"
    if not os.access(p, os.R_OK):
        return f"{option} file {path} is not readable (permission denied)"
    return None


def run(args) -> int:
    for option, path in (("--depth", args.depth), ("--rgb", args.rgb)):
        problem = _unreadable(option, path) if path else None
        if problem:
            print(f"dsc-grasp predict: error: {problem}", file=sys.stderr)
            return 2
    from ..core.inference import DetectorConfig, GraspDetector
    from ..core.model_io import ModelError
    from ..core.preprocess import InputError

    try:  # the images are the user's input: a file that does not decode is bad input (status 2)
        depth = read_depth(args.depth)
        rgb = read_rgb(args.rgb) if args.rgb else None
    except (InputError, OSError) as e:
        print(f"dsc-grasp predict: error: {e}", file=sys.stderr)
        return 2
    try:
        h, w = depth.shape[:2]
        cx = (w - 1) / 2 if args.cx is None else args.cx
        cy = (h - 1) / 2 if args.cy is None else args.cy
        K = np.array([[args.fx, 0, cx], [0, args.fy, cy], [0, 0, 1.0]])
        cfg = DetectorConfig(model_path=args.model, device=args.device, backend=args.backend, threads=args.threads,
                             **{name: getattr(args, name) for _, name, _ in DETECTOR_OPTIONS})
        det = GraspDetector(cfg)
        res = det.detect(rgb, depth, K)
    except (ModelError, InputError, ValueError, OSError, RuntimeError) as e:
        print(f"dsc-grasp predict: error: {e}", file=sys.stderr)
        return 1
    model_path = str(args.model or __import__("dsc_grasp_ros.core.model_io", fromlist=["x"]).default_model_path())
    model_info = {"path": model_path, "modality": det.meta.modality, "description": det.meta.description,
                  "training": det.meta.training, "metrics": det.meta.metrics, "device": str(det.device),
                  "backend": det.engine.backend}
    if args.out:
        from ..core.imageio import write_rgb
        from ..core.visualize import draw_grasps

        virtual = res.view is not None  # (predict gives no approach: never virtual today)
        write_rgb(args.out, draw_grasps(rgb, res.grasps, None if virtual else res.quality_map, None if virtual else res.roi, depth=depth,
                                        fingers=det.cfg.fingers()))
    if args.json:
        out = {"model": model_info, "image_size": [w, h], "grasps": [g.as_dict() for g in res.grasps],
               "rejected": res.rejected, "timings_ms": {k: v * 1e3 for k, v in res.timings.items()}}
        if args.out:
            out["annotated_image"] = str(Path(args.out))
        print(json.dumps(out, indent=2))
        return 0
    print(f"model: {model_path} ({det.meta.modality}, {det.meta.description or 'no description'}) on {det.device}")
    if not res.grasps:
        print("no grasp found" + (f" ({'; '.join(res.rejected)})" if res.rejected else ""))
    for i, g in enumerate(res.grasps):
        x, y, z = g.position
        print(
            f"#{i + 1} u={g.u:6.1f} v={g.v:6.1f} angle={np.degrees(g.angle):6.1f} deg "
            f"width={g.width_px:5.1f} px = {g.width_m * 1000:5.1f} mm  quality={g.quality:.3f}  "
            f"position=({x:+.4f}, {y:+.4f}, {z:.4f}) m"
            + {True: "  fingers clear", False: "  fingers NOT clear", None: ""}[g.fingers_clear]
        )
    for r in res.rejected:
        print(f"rejected: {r}")
    t = res.timings
    print("timings: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in t.items()))
    if args.out:
        print(f"annotated image: {args.out}")
    return 0
