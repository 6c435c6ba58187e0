"""The options of ``dsc-grasp train`` (:class:`TrainConfig`), ``--mix`` sources, and the training
record a model file carries."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.conventions import INPUT_SIZE, WIDTH_SCALE_PX
from ..core.preprocess import DEFAULT_NET_PX_PER_METRE
from ..data import Augmentation


@dataclass
class TrainConfig:
    dataset: str
    path: str
    out: str
    modality: str = "rgbd"
    split: str = "image"
    train_fraction: float = 0.9
    folds: int | None = None
    fold: int = 0
    split_file: str | None = None
    object_map: str | None = None
    depth: str = "perfect"
    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "ranger"
    loss: str = "p-huber"
    label_mode: str = "rect"
    upsample_order: str = "csp_first"
    augment: str = "auto"
    zoom_min: float = 0.5
    protocol: str = "paper"
    depth_ref: str = "plane"
    input_size: int = INPUT_SIZE
    width_scale: float = WIDTH_SCALE_PX
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    amp: bool = True
    #: arithmetic of the training steps (fp32 master weights in every case): ``fp32``, ``bf16``
    #: (autocast to bfloat16) or ``auto`` (:func:`resolve_precision`); a resolved run records
    #: ``fp32``/``bf16``/``fp16`` here, and ``--resume`` keeps it
    precision: str = "auto"
    workers: int = -1
    max_minutes: float | None = None
    max_steps: int | None = None
    limit: int | None = None
    eval_every: int = 1
    eval_batch_size: int = 8
    precise_bn: int = 8
    resume: bool = False
    init_from: str | None = None
    net_px_per_metre: float | None = None
    #: metres: training width labels clipped to the gripper's largest opening (``None``: as labelled)
    max_opening: float | None = None
    #: closed-loop check per evaluation: scenes per object (10 training objects); 0 = off. With it,
    #: the exported checkpoint is the one with the best grasp success (ties: held-out accuracy).
    closed_loop_trials: int = 0
    #: distillation: a model file whose output maps replace the labels as targets (same modality,
    #: depth reference and input size); ``None``: train on the labels
    teacher: str | None = None
    mix: list = field(default_factory=list)
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def augmentation(self, dataset: str | None = None, mode: str | None = None) -> Augmentation | None:
        """The run's augmentation, or (``dataset``/``mode`` given) that of a ``--mix`` source;
        ``auto`` = on for Cornell only, as in the paper."""
        dataset, mode = dataset or self.dataset, mode or self.augment
        on = {"on": True, "off": False, "auto": dataset == "cornell"}[mode]
        return Augmentation(rotate=True, zoom_min=self.zoom_min, zoom_max=1.0) if on else None


PRECISIONS = ("auto", "fp32", "bf16")


def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 natively (oneDNN with AVX512-BF16 or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(requested: str, device_type: str, amp: bool = True, recorded: str | None = None) -> str:
    """The arithmetic a run trains in -> ``fp32``, ``bf16`` or ``fp16``.

    ``requested`` is ``--precision``: ``fp32`` or ``bf16`` as asked; ``auto`` keeps what a resumed run
    ``recorded``, else bfloat16 on a CPU that runs it natively (fp32 on one that does not) and, on
    CUDA, float16 autocast with a gradient scaler (``--no-amp``: fp32). The weights and optimiser
    state stay fp32 in every case; only the forward/backward arithmetic changes."""
    if requested not in PRECISIONS:
        raise ValueError(f"--precision must be one of {PRECISIONS}, got {requested!r}")
    if requested != "auto":
        return requested
    if recorded in ("fp32", "bf16", "fp16") and not (recorded == "fp16" and device_type != "cuda"):
        return recorded
    if device_type == "cuda":
        return "fp16" if amp else "fp32"
    return "bf16" if cpu_bf16_supported() else "fp32"


MIX_KEYS = ("split", "repeat", "protocol", "object_map", "depth", "augment")


def parse_mix(spec: str) -> dict:
    """``DATASET:PATH[,key=value...]`` (``dsc-grasp train --mix``) -> a dict with every key.

    Keys: ``split`` (a split.json: only its *train* ids are used, so its held-out part stays
    unseen), ``repeat`` (times per epoch, default 1), ``protocol`` (default: the run's),
    ``object_map``, ``depth`` (Jacquard perfect/stereo, default: the run's), ``augment``
    (auto/on/off; auto = on for Cornell, as in the paper)."""
    from ..data import DATASETS

    head, sep, rest = spec.partition(":")
    if not sep or head not in DATASETS:
        raise ValueError(f"--mix {spec!r}: expected DATASET:PATH[,key=value...] with DATASET one of {DATASETS}")
    path, *pairs = rest.split(",")
    if not path:
        raise ValueError(f"--mix {spec!r}: no PATH after {head}:")
    out = {"dataset": head, "path": path, "split": None, "repeat": 1, "protocol": None, "object_map": None, "depth": None, "augment": "auto"}
    for kv in pairs:
        k, eq, v = kv.partition("=")
        k = k.strip().replace("-", "_")
        if not eq or k not in MIX_KEYS:
            raise ValueError(f"--mix {spec!r}: {kv!r} is not key=value with a key of {MIX_KEYS}")
        out[k] = v
    try:
        out["repeat"] = int(out["repeat"])
    except ValueError:
        raise ValueError(f"--mix {spec!r}: repeat must be an integer, got {out['repeat']!r}") from None
    if out["repeat"] < 1:
        raise ValueError(f"--mix {spec!r}: repeat must be >= 1")
    if out["augment"] not in ("auto", "on", "off"):
        raise ValueError(f"--mix {spec!r}: augment must be auto, on or off")
    return out


def training_record(cfg: dict, split: dict, hardware, wall_minutes) -> dict:
    """The ``training`` metadata of a model file, shared by a run's model.json and ``export``."""
    from ..core.model_io import portable_path

    return {
        "dataset": cfg["dataset"],
        "path": portable_path(cfg["path"]),  # relative to the project, else the dataset folder's name
        "split": split.get("kind", cfg["split"]),
        "train_items": len(split.get("train", [])),
        "test_items": len(split.get("test", [])),
        "loss": cfg["loss"],
        "label_mode": cfg["label_mode"],
        "optimizer": cfg["optimizer"],
        "lr": cfg["lr"],
        "batch_size": cfg["batch_size"],
        "precision": cfg.get("precision"),  # resolved by the run: fp32, bf16 or fp16 (None: from before the option)
        "augment": cfg.get("augment"),
        "depth": cfg.get("depth"),
        "protocol": cfg.get("protocol", "square"),
        "depth_ref": cfg.get("depth_ref", "mean"),
        "init_from": cfg.get("init_from"),
        "net_px_per_metre": cfg.get("net_px_per_metre"),
        "max_opening": cfg.get("max_opening"),
        "teacher": portable_path(cfg["teacher"]) if cfg.get("teacher") else None,
        "closed_loop_trials": cfg.get("closed_loop_trials") or 0,
        "mix": [_mix_record(m) for m in cfg.get("mix") or []],
        "seed": cfg["seed"],
        "hardware": hardware,
        "wall_minutes": wall_minutes,
    }


def _mix_record(spec) -> dict:
    from ..core.model_io import portable_path

    m = parse_mix(spec) if isinstance(spec, str) else dict(spec)
    return {k: (portable_path(v) if k in ("path", "split", "object_map") and v else v) for k, v in m.items()}


def training_scale(init_from: str | None, net_px_per_metre: float | None = None) -> float | None:
    """``net_px_per_metre`` of a new model: ``--net-px-per-metre`` when given (the scale the
    ``scale`` protocol cropped the synthetic images at), else its ``--init-from`` model's
    (fine-tuning keeps the scale the backbone learned), else ``None`` (the default of
    :data:`preprocess.DEFAULT_NET_PX_PER_METRE`). Cornell/Jacquard files carry no intrinsics, so
    their metric scale cannot be measured here."""
    if net_px_per_metre is not None:
        return float(net_px_per_metre)
    if not init_from:
        return None
    from ..core.model_io import load_metadata

    return load_metadata(init_from).net_px_per_metre


def max_opening_px(max_opening: float | None, net_px_per_metre: float | None) -> float | None:
    """``--max-opening`` (metres) in network pixels at the model's scale: the node's ROI shows a
    metre as ``net_px_per_metre`` network pixels, so a label wider than this is a grasp the node
    would reject as wider than the gripper (``max_gripper_opening``). ``None`` without a limit."""
    if max_opening is None:
        return None
    if not max_opening > 0:
        raise ValueError(f"--max-opening must be > 0 metres, got {max_opening}")
    return float(max_opening) * float(net_px_per_metre or DEFAULT_NET_PX_PER_METRE)
