"""``dsc-grasp train``: train DSC-GraspNet on Cornell, Jacquard or a Jacquard-format folder."""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
Train DSC-GraspNet with the paper's protocol (Section IV-A): 224x224 input, Ranger optimiser at a
fixed learning rate of 0.001, batch 32, 50 epochs, P-Huber loss (Eq. 7), augmentation on Cornell
only (random 0/±90/180° rotation and 50-100 % centred zoom). After every epoch the held-out items
are scored with the paper's metric (top-1 grasp, angle < 30° and IoU > 0.25); the best epoch
becomes OUT/model.pt (+ .json), loadable by 'dsc-grasp predict', 'evaluate' and the ROS node.

The run folder OUT holds config.json, split.json (the held-out ids: pass it to
'dsc-grasp evaluate --split-file'), checkpoints/{last,best}.pt, history.json, eval_test.json,
summary.json and TensorBoard logs (tensorboard --logdir OUT/tb).
"""

EPILOG = """\
examples:
  # the paper's Cornell image-wise RGB-D run (GPU: ~1 h; CPU: days)
  dsc-grasp train --dataset cornell --path ~/data/cornell --modality rgbd --split image --out runs/cornell_iw_rgbd
  # Cornell object-wise needs the image -> object mapping of the full dataset
  dsc-grasp train --dataset cornell --path ~/data/cornell --split object --object-map ~/data/cornell/z.txt --out runs/cornell_ow
  # Jacquard, depth only, 4 GPUs (the global batch of 32 is split across them)
  torchrun --nproc_per_node=4 -m dsc_grasp_ros.cli train --dataset jacquard --path ~/data/jacquard --modality d --out runs/jq_d
  # our synthetic data under a 60-minute budget, then continue later
  dsc-grasp train --dataset jacquard-format --path data/sim --split object --max-minutes 60 --out runs/sim
  dsc-grasp train --dataset jacquard-format --path data/sim --out runs/sim --resume --epochs 80
"""


def _positive_float(s):
    v = float(s)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {s}")
    return v


def register(sub):
    from ..data import DATASETS, LABEL_MODES, SPLITS
    from ..training import LOSSES

    p = sub.add_parser(
        "train",
        help="train a model on Cornell/Jacquard/Jacquard-format data (paper protocol by default)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("data")
    g.add_argument("--dataset", required=True, choices=DATASETS, help="on-disk format: cornell (pcd*cpos.txt, pcd*r.png, pcd*d.tiff), jacquard or jacquard-format (N_<id>_grasps.txt, _RGB.png, _perfect_depth.tiff; any image size)")
    g.add_argument("--path", required=True, help="dataset root (searched recursively)")
    g.add_argument("--modality", default="rgbd", choices=["rgb", "d", "rgbd"], help="network input (default: %(default)s)")
    g.add_argument("--split", default="image", choices=SPLITS, help="image-wise (shuffled samples) or object-wise (shuffled objects: Jacquard/Jacquard-format by folder, Cornell by --object-map) (default: %(default)s)")
    g.add_argument("--train-fraction", type=float, default=0.9, help="fraction of images/objects used for training (default: %(default)s)")
    g.add_argument("--folds", type=int, default=None, help="k-fold cross-validation: hold out fold --fold of K instead of using --train-fraction")
    g.add_argument("--fold", type=int, default=0, help="which fold (0..K-1) to hold out with --folds (default: %(default)s)")
    g.add_argument("--split-file", default=None, help="reuse the split.json of another run instead of drawing a new split")
    g.add_argument("--object-map", default=None, help="Cornell only: text file of lines '<image> <object-id>' (e.g. the dataset's z.txt), needed for --split object")
    g.add_argument("--depth", default="perfect", choices=["perfect", "stereo"], help="Jacquard depth image to use (default: %(default)s)")
    g.add_argument("--limit", type=int, default=None, help="use only the first N samples (smoke tests)")
    g.add_argument("--augment", default="auto", choices=["auto", "on", "off"], help="rotation+zoom augmentation; auto = on for Cornell only, as in the paper (default: %(default)s)")
    g.add_argument("--zoom-min", type=float, default=0.5, help="smallest fraction of the centred square kept by the zoom augmentation (default: %(default)s)")
    g.add_argument("--protocol", default="paper", choices=["paper", "native", "square", "scale"], help="crop of each image: paper = Cornell a native 224 centre crop, Jacquard(-format) the centred square resized (the paper's/GR-ConvNet's protocol); native = a native 224 centre crop everywhere; square = the centred square resized everywhere (models shipped before this option); scale = the ROS node's crop: on our synthetic images (camera.json intrinsics) the centred ROI in which a metre at the median depth spans --net-px-per-metre network pixels, so the model sees objects at the size the node will show it; images without intrinsics as paper (default: %(default)s)")
    g.add_argument("--depth-ref", default="plane", choices=["mean", "plane", "local"], help="depth normalisation, recorded in the model's metadata so inference uses the same: plane = minus a robust support-plane fit, then the mean (tilt-invariant; best on the real samples, docs/training.md); mean = minus the crop mean only (GR-ConvNet; models shipped before this option); local = minus a large-scale median, then the mean (default: %(default)s)")
    g.add_argument("--net-px-per-metre", type=_positive_float, default=None, metavar="PX", help="with --protocol scale: network pixels per metre at the scene's median depth, the scale the node's ROI reproduces on a camera (recorded in the model; default: the --init-from model's, else 536, the scale of the first synthetic set and about Cornell's native crop)")
    g.add_argument("--max-opening", type=_positive_float, default=None, metavar="M", help="width labels in the gripper's terms: clip every training label's opening to M metres (the gripper's largest opening, e.g. 0.08 for the Panda hand), converted to network pixels with the model's net px per metre. Human Cornell rectangles and contact+margin labels can be wider than the gripper opens; a model that learns them predicts grasps the node then rejects as too wide. Held-out labels are left as they are (default: no clipping)")
    g.add_argument("--closed-loop-trials", type=int, default=0, metavar="N", help="after every evaluation, run N closed-loop scenes for each of 10 synthetic training objects (never the benchmark set, never the held-out objects) through the detector and the simulated Panda of dsc-grasp bench, and export the checkpoint with the best grasp success (ties: held-out accuracy). Image accuracy does not see a width head whose grasps the gripper cannot open to; this does. About 1 s per scene on a CPU; needs pybullet and ../shared/objects (default: 0, off: the best held-out accuracy)")
    g.add_argument("--teacher", default=None, metavar="MODEL", help="distillation: train on MODEL's output maps instead of the labels (quality clipped to [0, 1]; the same P-Huber loss, so angle and width are learnt where the teacher sees a grasp; images on which its maps leave their label range, i.e. inputs it does not know, add no gradient and are counted in history.json). The teacher must have the student's modality, depth reference (--depth-ref) and input size. Used to move a trained model to another architecture (e.g. --upsample-order csp_first from an eq5 model); the labels still drive evaluation and checkpoint selection (default: none)")
    g.add_argument("--mix", action="append", default=[], metavar="DATASET:PATH[,key=value...]", help="train on another dataset too (repeatable); keys: split=FILE (use only that split's training ids, so its held-out part stays unseen), repeat=N (times per epoch), protocol=P, object_map=FILE, depth=perfect|stereo, augment=auto|on|off. The held-out part and model selection stay those of --dataset. Example: --mix cornell:../shared/data/cornell,split=config/splits/cornell_shared_split.json,repeat=8")
    g.add_argument("--input-size", type=int, default=224, help="network input side in pixels, a multiple of 8; the paper uses 224 (default: %(default)s)")
    g.add_argument("--upsample-order", default="csp_first", choices=["csp_first", "eq5"], help="network up-sampling order: csp_first = CSP block at the lower resolution, then bilinear x2 and concatenation with the skip (the paper's prose; 1.8 GFLOPs); eq5 = concatenation first, CSP at 56/112/224 (literal Eq. 5; models shipped before this option; 3.3 GFLOPs) (default: %(default)s)")
    g.add_argument("--label-mode", default="rect", choices=LABEL_MODES, help="quality labels: rect = GR-ConvNet filled compact rectangles, gaussian = 2-D Gaussian per rectangle (default: %(default)s)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=50, help="number of epochs (default: %(default)s)")
    o.add_argument("--batch-size", type=int, default=32, help="global batch size (default: %(default)s)")
    o.add_argument("--lr", type=_positive_float, default=1e-3, help="fixed learning rate (default: %(default)s)")
    o.add_argument("--optimizer", default="ranger", choices=["ranger", "adam"], help="Ranger (RAdam + Lookahead, pytorch-ranger) as in the paper, or Adam (default: %(default)s)")
    o.add_argument("--loss", default="p-huber", choices=LOSSES, help="P-Huber (Eq. 7) or plain Huber for the ablation (default: %(default)s)")
    o.add_argument("--seed", type=int, default=0, help="seed of the split, initialisation, shuffling and augmentation (default: %(default)s)")
    o.add_argument("--deterministic", action="store_true", help="deterministic CUDA kernels (slower)")
    r = p.add_argument_group("run")
    r.add_argument("--out", required=True, help="run folder (created)")
    r.add_argument("--init-from", metavar="MODEL", help="initialise the weights from a model file (.pt + .json), also of another modality: the stem's channels are matched by name, so an RGB-D model can start a depth-only or RGB one")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt (same split; raise --epochs to train longer)")
    r.add_argument("--max-minutes", type=_positive_float, default=None, help="wall-clock budget of this invocation: stop after the step that exceeds it, then evaluate and export the best epoch")
    r.add_argument("--max-steps", type=int, default=None, help="stop after this many optimiser steps")
    r.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N (default: %(default)s)")
    r.add_argument("--no-amp", dest="amp", action="store_false", help="disable mixed precision on CUDA")
    r.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="arithmetic of the training steps; the weights and optimiser state stay fp32 (master weights) in every "
                   "case. bf16 = bfloat16 autocast (1.3-1.4x the samples per second of fp32 measured on a 2-core CPU with "
                   "AVX512-BF16, docs/training.md); fp32 = none; auto = bf16 where the CPU runs it natively, else fp32, and on CUDA "
                   "float16 autocast with a gradient scaler (--no-amp: fp32). Recorded in config.json and history.json; "
                   "--resume with auto keeps the run's recorded precision (default: %(default)s)")
    r.add_argument("--workers", type=int, default=-1, help="data-loader processes; -1 = half the CPU cores (default: %(default)s)")
    r.add_argument("--eval-every", type=int, default=1, help="score the held-out items every N epochs (default: %(default)s)")
    r.add_argument("--eval-batch-size", type=int, default=8, help="batch size of the per-epoch evaluation (default: %(default)s)")
    r.add_argument("--precise-bn", type=int, default=8, metavar="N", help="before each evaluation, recompute BatchNorm statistics over N training batches with the current weights (0: keep the running averages) (default: %(default)s)")
    r.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    r.add_argument("--json", action="store_true", help="print the final summary as JSON on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data import DatasetFormatError
    from ..training.trainer import TrainConfig, train

    if args.folds is not None and args.folds < 2:
        print("error: --folds must be >= 2", file=sys.stderr)
        return 2
    if args.input_size % 8 or args.input_size < 16:
        print("error: --input-size must be a multiple of 8 and at least 16", file=sys.stderr)
        return 2
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__})
    from ..training.trainer import parse_mix

    try:
        for spec in cfg.mix:
            parse_mix(spec)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from ..core.model_io import ModelError

    try:
        summary = train(cfg)
    except (FileNotFoundError, FileExistsError, DatasetFormatError, ValueError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if summary is None:  # a non-zero DDP rank
        return 0
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(
            f"held-out accuracy {summary['accuracy']:.3f} ({summary['correct']}/{summary['count']}), best epoch "
            f"{summary['best_epoch']} of {summary['epochs_run']}, {summary['wall_minutes']:.1f} min; model: {summary['model']}"
        )
    return 0
