"""``dsc-grasp bench``: the closed-loop simulated Panda benchmark (paper section IV.F)."""

from __future__ import annotations

import argparse
import json
import re
import sys

from ..core.clearance import FINGER_CHECK_HELP, FINGER_CHECK_MODES
from ..core.virtual_view import VIEW_HELP, VIEWS

#: Shipped models by policy name, and the peers.
SHIPPED = {"dsc_rgbd": "rgbd", "dsc_d": "d", "dsc_rgb": "rgb"}
PEERS = ("grconvnet3", "ggcnn2")
ALL = ("oracle", "dsc_rgbd", "dsc_d", "dsc_rgb", "grconvnet3", "ggcnn2")
_LABEL = re.compile(r"[A-Za-z0-9_.+-]+")  # a policy label names files (grid_<label>.png)

EPILOG = """\
Protocol (docs/bench.md has every number): one object per scene from ../shared/objects (the
10-object benchmark set by default), dropped from 15-20 cm at a random pose in a 20 x 20 cm
workspace and settled; a camera 0.7 m above the table looking straight down (640x480, 60 deg
vertical FOV, 2 mm depth noise); each policy plans one grasp on the same image; a Panda executes
it (pre-grasp 10 cm back along the approach, descent, close, lift 20 cm, hold 1 s). Success: the
object is more than 10 cm above where it rested. Every policy sees the same scenes (seeded by
--seed, the object and the trial number).

Policies (--policies, comma-separated):
  oracle               knows the object: centre of mass, jaws across its narrowest visible side
  dsc_rgbd, dsc_d, dsc_rgb
                       the shipped DSC-GraspNet models (models/dsc_graspnet_*.pt)
  dsc_MOD=PATH         another model file that must have modality MOD (rgbd, d or rgb)
  PATH.pt              any DSC-GraspNet model file (named after the file)
  LABEL=PATH.pt        the same, named LABEL (two files of the same name: old=a/m.pt,new=b/m.pt)
  grconvnet3, ggcnn2   the peers with the weights in ../shared/peers; NAME=PATH for other weights
  grconvnet3+fingers, ggcnn2+fingers
                       a peer's 5 best grasps through our finger check (--finger-check prefer and
                       --finger-max-turn): the peer's network with our post-processing
  all                  oracle + the three shipped models + both peers (the default)
  dsc_rgbd@node (dsc_d@node, dsc_rgb@node; =PATH for another model file)
                       through the real grasp_node: the simulator publishes colour, aligned
                       depth, camera_info and /tf (camera in panda_link0) over ROS 2, the node
                       (target_frame panda_link0, its tf2 path) answers, its ~/grasp is executed

Output (--out): trials.jsonl (one line per trial), summary.json, grid_<policy>.png (camera crop
of every trial with the executed grasp, green = success, red = failure class), success.png (bar
chart with Wilson 95% intervals). The table printed at the end gives success per object and
overall with Wilson 95% intervals.

examples:
  dsc-grasp bench --out runs/bench                           # paper-size: 10 objects x 20 trials, all policies
  dsc-grasp bench --objects banana,pear --trials 2 --policies oracle,dsc_rgbd --out runs/b
  dsc-grasp bench --camera oblique --table-texture checker --out runs/bench_checker --json
  dsc-grasp bench --objects banana,pear --trials 2 --policies dsc_rgbd,dsc_rgbd@node   # in-process vs the node
"""


def _floats3(text: str) -> tuple:
    try:
        v = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected R,G,B in [0, 1], got {text!r}") from None
    if len(v) != 3 or not all(0 <= x <= 1 for x in v):
        raise argparse.ArgumentTypeError(f"expected 3 values in [0, 1], got {text!r}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def register(sub):
    p = sub.add_parser(
        "bench",
        help="closed-loop simulated Panda picking benchmark (paper IV.F): models, oracle and peers on the same scenes",
        description="Closed-loop grasping benchmark in PyBullet: a Franka Panda picks single objects with the "
        "best grasp of each policy, seen by the authors' top-down RGB-D camera. Prints success per object and "
        "overall with Wilson 95% intervals and writes per-trial JSONL, a summary and pictures.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--policies", default="all", metavar="LIST", help="comma-separated policies (see below; default: all)")
    p.add_argument("--objects", default="benchmark", metavar="SPEC",
                   help="'benchmark' (default: the 10 objects of benchmark_objects.txt), 'train', 'held-out' (the "
                   "objects no training set is generated from: neither benchmark nor training objects), 'all', a folder of "
                   "URDFs, or NAME[,NAME...]")
    p.add_argument("--objects-root", metavar="DIR", help="object folder (default: ../shared/objects beside the project)")
    p.add_argument("--trials", type=_positive_int, default=20, help="scenes per object (default: 20, as in the paper)")
    p.add_argument("--seed", type=int, default=0, help="run seed; scene seeds derive from it, the object and the trial (default: 0)")
    p.add_argument("--out", metavar="DIR", help="output folder for trials.jsonl, summary.json and the PNGs (default: none written)")
    g = p.add_argument_group("scene (recorded in the summary)")
    g.add_argument("--camera", choices=("top", "oblique"), default="top",
                   help="top: 0.7 m above the table looking straight down (authors, default); oblique: 0.7 m away, tilted 30 deg")
    g.add_argument("--table-color", type=_floats3, default=(0.62, 0.6, 0.56), metavar="R,G,B", help="table colour, values in [0, 1] (default: 0.62,0.6,0.56)")
    g.add_argument("--table-texture", default="none", metavar="NAME",
                   help="none (default), checker, wood, speckle, or an image file tiled every 30 cm")
    g.add_argument("--lighting", choices=("fixed", "random"), default="fixed", help="fixed light (default) or random per scene (seeded)")
    g.add_argument("--object-color", default="random", metavar="R,G,B|random", help="object colour (default: random per scene, seeded)")
    g.add_argument("--depth-noise", type=float, default=0.002, metavar="M", help="depth noise sigma in metres, range 0-0.05 (default: 0.002)")
    e = p.add_argument_group("execution")
    e.add_argument("--opening", choices=("predicted", "full"), default="predicted",
                   help="gripper opening: the predicted width + 2 x 1 cm, at most 8 cm (default), or always 8 cm")
    e.add_argument("--approach", choices=("vertical", "camera"), default="vertical",
                   help="vertical: execute the grasp straight down with the planned closing axis projected onto the table "
                   "(default; the same as the plan for the top camera); camera: along the optical axis as planned")
    e.add_argument("--grasp-depth", type=float, default=0.025, metavar="M",
                   help="how far the TCP goes beyond the planned (surface) point, range 0-0.05 m (default: 0.025)")
    e.add_argument("--finger-check", choices=FINGER_CHECK_MODES, default=None,
                   help="our models' finger check (default: the node's, prefer): "
                   + "; ".join(f"{m}: {FINGER_CHECK_HELP[m]}" for m in FINGER_CHECK_MODES))
    e.add_argument("--finger-max-turn", type=float, default=None, metavar="DEG",
                   help="largest turn (degrees, 0-90) of a grasp's closing axis the finger check may make to clear the "
                   "fingers (default: the node's finger_max_turn_deg)")
    e.add_argument("--view", choices=VIEWS, default=None,
                   help="what our models' network sees (default: the node's, camera): "
                   + "; ".join(f"{m}: {VIEW_HELP[m]}" for m in VIEWS) + " (the approach is --approach's)")
    e.add_argument("--device", default="cpu", help="device of the networks: cpu (default), cuda or auto")
    v = p.add_argument_group("closed-loop servo (--mode servo: a wrist camera, re-detection every frame, a tracked target)")
    v.add_argument("--mode", choices=("single", "servo"), default="single",
                   help="single: one detection by the fixed camera, then open-loop execution (default); servo: a camera on the "
                   "hand, every frame detected and tracked, the TCP servoed to the target until the grasp depth (bench/servo.py)")
    v.add_argument("--scenario", choices=("static", "moved", "clutter"), default="static",
                   help="servo: static single objects; moved (the object slides 10 cm and turns 30 deg during the approach); "
                   "clutter (5 objects, the first one moved; any object lifted counts) (default: static)")
    v.add_argument("--rate", type=float, default=10.0, metavar="HZ",
                   help="servo: perception and control frames per simulated second, 0.5-100 (default: 10)")
    v.add_argument("--support-plane", choices=("off", "remove"), default="off",
                   help="servo: the node's support_plane for every policy: remove = grasps on the table fitted in the depth "
                   "image are dropped (default: off)")
    v.add_argument("--jitter-frames", type=int, default=10, metavar="N",
                   help="servo: frames with the camera held still over each object's first scene, for the target's jitter (default: 10; 0: off)")
    p.add_argument("--json", action="store_true", help="print the summary document as JSON instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def build_policies(spec: str, device: str = "cpu", finger_check: str | None = None, finger_max_turn: float | None = None,
                   approach: str = "vertical", view: str | None = None, node_params: dict | None = None) -> list:
    """Parse ``--policies`` into policy objects (errors name the bad item).

    ``finger_check`` / ``finger_max_turn`` (degrees): our models' finger check settings (None: the
    detector's defaults, those of the node); ``PEER+fingers`` peers use the same turn. ``approach``
    (the executor's): what our models and the finger check plan the descent along; ``view``: what
    our models' network sees (None: the detector's default, the node's)."""
    from ..core.inference import DetectorConfig
    from pathlib import Path

    from ..bench.policies import ModelPolicy, OraclePolicy, PeerPolicy, PolicyError

    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise PolicyError("--policies is empty")
    expanded = []
    for it in items:
        expanded.extend(ALL if it == "all" else [it])
    model_settings = {}
    if finger_check is not None:
        model_settings["finger_check"] = finger_check
    if finger_max_turn is not None:
        model_settings["finger_max_turn_deg"] = finger_max_turn
    peer_cfg = DetectorConfig(**model_settings)
    model_settings["approach"] = approach
    if view is not None:
        model_settings["view"] = view
    out = []
    for it in expanded:
        name, _, path = it.partition("=")
        if it == "oracle":
            out.append(OraclePolicy())
        elif name in SHIPPED:
            out.append(ModelPolicy(path or None, modality=SHIPPED[name], name=name, device=device, **model_settings))
        # --- through-the-node mode: the real grasp_node over DDS, tf2 path;
        # ROS is imported only for this mode (dsc_grasp_ros/devtools/bench_driver.py). Before the dsc_MOD=PATH
        # and .pt forms: dsc_rgbd@node=PATH.pt is the node with that model file.
        elif name.endswith("@node") and name[: -len("@node")] in SHIPPED:
            from ..devtools.bench_driver import NodePolicy

            node_settings = {k: v for k, v in model_settings.items() if k != "approach"}
            node_settings["approach"] = "target_down" if approach == "vertical" else "optical"  # the node's names
            node_settings.update(node_params or {})  # e.g. the servo's tracking parameters
            out.append(NodePolicy(name=name, model_path=path or None, modality=SHIPPED[name[: -len("@node")]], device=device,
                                  **node_settings))
        elif name in PEERS:
            out.append(PeerPolicy.load(name, path or None))
        elif name.endswith("+fingers") and name[: -len("+fingers")] in PEERS:
            out.append(PeerPolicy.load(name[: -len("+fingers")], path or None, policy_name=name, top_k=peer_cfg.top_k,
                                       fingers=peer_cfg.fingers(), finger_max_turn_deg=peer_cfg.finger_max_turn_deg,
                                       approach=approach))
        elif name.startswith("dsc_") and path:
            mod = name[4:]
            if mod not in ("rgbd", "d", "rgb"):
                raise PolicyError(f"policy {it!r}: modality {mod!r} is not one of rgbd, d, rgb")
            out.append(ModelPolicy(path, modality=mod, name=name, device=device, **model_settings))
        elif path and path.endswith(".pt"):  # LABEL=PATH.pt: a model file under a name of the user's
            if not _LABEL.fullmatch(name):
                raise PolicyError(f"policy {it!r}: the label {name!r} names the output pictures; use letters, digits and _ . + -")
            out.append(ModelPolicy(path, name=name, device=device, **model_settings))
        elif it.endswith(".pt"):
            out.append(ModelPolicy(it, name=Path(it).stem, device=device, **model_settings))
        else:
            raise PolicyError(f"unknown policy {it!r}: use {', '.join(ALL)}, all, dsc_MOD=PATH, LABEL=PATH.pt, "
                              "NAME=PATH for a peer, or a .pt model file")
    names = [p.name for p in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        for p in out:
            p.close()
        given = [it for it, n in zip(expanded, names) if n == dup]
        raise PolicyError(f"{len(given)} policies are named {dup!r} ({', '.join(given)}): a model file is named after "
                          f"the file; give each a label of its own, e.g. old={given[0]}")
    return out


def run(args) -> int:
    if getattr(args, "mode", "single") == "servo":
        from .bench_servo import run_servo_bench

        return run_servo_bench(args, build_policies)
    from ..bench import report
    from ..bench.policies import PolicyError
    from ..bench.runner import ExecutionSettings, run_benchmark
    from ..bench.scene import SceneSettings
    from ..sim import mesh_objects as mo

    try:
        if not 0 <= args.grasp_depth <= 0.05:
            raise ValueError(f"--grasp-depth must be in [0, 0.05] m, got {args.grasp_depth}")
        objects = mo.resolve_names(args.objects, args.objects_root)
        scene = SceneSettings(camera=args.camera, table_color=args.table_color, table_texture=args.table_texture,
                              lighting=args.lighting, object_color=args.object_color, depth_noise=args.depth_noise).validate()
        policies = build_policies(args.policies, args.device, args.finger_check, args.finger_max_turn, args.approach, args.view)
    except (mo.ObjectsNotFound, mo.UnknownObject, PolicyError, ValueError) as e:
        print(f"dsc-grasp bench: error: {e}", file=sys.stderr)
        return 2
    ex = ExecutionSettings(opening=args.opening, grasp_depth=args.grasp_depth, approach=args.approach)
    sink = None
    if args.out:  # trials are appended as they finish, so an interrupted run keeps what it did
        from pathlib import Path

        Path(args.out).mkdir(parents=True, exist_ok=True)
        sink = open(Path(args.out) / "trials.jsonl", "w")

    def on_record(rec):
        if sink is not None:
            sink.write(json.dumps(rec) + "\n")
            sink.flush()

    try:
        records, doc, tiles = run_benchmark(policies, objects, args.trials, args.seed, scene, ex, args.objects_root,
                                            progress=not args.quiet, on_record=on_record)
    finally:
        if sink is not None:
            sink.close()
    for p in policies:
        p.close()
    if args.out:
        doc["files"] = report.write_outputs(args.out, records, doc, tiles, doc["objects"], args.trials)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        sc = doc["scene"]
        print(f"scene: camera {sc['camera']} at {sc['camera_distance']} m, table {'plain' if sc['table_texture'] == 'none' else sc['table_texture']} RGB {tuple(sc['table_color'])}, "
              f"lighting {sc['lighting']}, objects {sc['object_color']}, depth noise {1000 * sc['depth_noise']:g} mm; "
              f"{len(doc['objects'])} objects x {doc['trials_per_object']} trials, seed {doc['seed']}\n")
        print(report.format_table(doc["policies"]))
        print(f"\n{len(records)} trials, wall time {doc['wall_time_s']:.1f} s"
              + (f"; outputs in {args.out}" if args.out else ""))
    return 0
