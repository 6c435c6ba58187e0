"""Model files: a plain ``state_dict`` (never a pickled module) plus a JSON metadata file.

``models/dsc_graspnet_rgbd.pt`` is loaded with ``torch.load(weights_only=True)``; beside it,
``models/dsc_graspnet_rgbd.json`` holds the modality and channel order, the normalisation, the
input size, the width scale, the network configuration, what it was trained on, its metrics and
the SHA-256 of the weights file (so a truncated or swapped file is caught before it is used).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .conventions import INPUT_SIZE, WIDTH_SCALE_PX
from .network import CHANNEL_ORDER, LEGACY_UPSAMPLE_ORDER, UPSAMPLE_ORDERS, DSCGraspNet, DSCGraspNetConfig, MODALITY_CHANNELS
from .preprocess import DEFAULT_NET_PX_PER_METRE, NORMALISATION, InputError, depth_reference_of

__all__ = ["ModelError", "ModelMetadata", "save_model", "load_model", "load_metadata", "load_checkpoint", "network_config", "default_model_path",
           "models_dir", "portable_path", "DEFAULT_MODEL"]

FORMAT_VERSION = 1
DEFAULT_MODEL = "dsc_graspnet_rgbd.pt"


class ModelError(RuntimeError):
    """A model file that cannot be used; the message names the file and the problem."""


@dataclass
class ModelMetadata:
    modality: str
    channel_order: list = field(default_factory=list)
    input_size: int = INPUT_SIZE
    width_scale_px: float = WIDTH_SCALE_PX
    normalisation: str = NORMALISATION
    network: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    description: str = ""
    format_version: int = FORMAT_VERSION
    architecture: str = "DSCGraspNet"
    weights_sha256: str = ""
    #: network pixels per metre at the scene's median depth in the training data (None: a model
    #: from before this field, trained at preprocess.DEFAULT_NET_PX_PER_METRE)
    net_px_per_metre: float | None = None

    def __post_init__(self):
        if self.modality not in MODALITY_CHANNELS:
            raise ModelError(f"unknown modality {self.modality!r} in model metadata: use one of {sorted(MODALITY_CHANNELS)}")
        if not self.channel_order:
            self.channel_order = list(CHANNEL_ORDER[self.modality])
        try:
            depth_reference_of(self.normalisation)
        except InputError as e:
            raise ModelError(str(e)) from None
        if self.net_px_per_metre is not None and not (isinstance(self.net_px_per_metre, (int, float)) and self.net_px_per_metre > 0):
            raise ModelError(f"net_px_per_metre in model metadata must be a positive number, got {self.net_px_per_metre!r}")

    @property
    def depth_ref(self) -> str:
        """The depth reference of :func:`dsc_grasp_ros.core.preprocess.normalise` this model expects
        (``mean`` for models whose metadata predates the others)."""
        return depth_reference_of(self.normalisation)

    @property
    def px_per_metre(self) -> float:
        """The training scale (network pixels per metre), defaulted for older models."""
        return float(self.net_px_per_metre or DEFAULT_NET_PX_PER_METRE)

    @property
    def in_channels(self) -> int:
        return MODALITY_CHANNELS[self.modality]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def models_dir() -> Path:
    """The shipped ``models/`` folder: in the source tree, else the installed share directory."""
    src = Path(__file__).resolve().parents[2] / "models"
    if src.is_dir():
        return src
    try:  # an installed (colcon) package
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("dsc_grasp_ros")) / "models"
    except Exception:  # noqa: BLE001 - no ament index: fall back to the source layout
        return src


def default_model_path(modality: str | None = None) -> Path:
    """The shipped model for a modality (RGB-D when ``None``); ``$DSC_GRASP_MODEL`` overrides it."""
    if modality is None and os.environ.get("DSC_GRASP_MODEL"):
        return Path(os.environ["DSC_GRASP_MODEL"])
    return models_dir() / (DEFAULT_MODEL if modality in (None, "rgbd") else f"dsc_graspnet_{modality}.pt")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _config_dict(model: DSCGraspNet) -> dict:
    d = dataclasses.asdict(model.cfg)
    d["backbone"] = [list(r) for r in d["backbone"]]
    d["up_channels"] = list(d["up_channels"])  # resolved: files never depend on a default
    return d


def save_model(path, model: DSCGraspNet, metadata: ModelMetadata) -> Path:
    """Write ``path`` (state_dict, fp32 on CPU) and ``path.with_suffix('.json')``; returns ``path``."""
    path = Path(path)
    if metadata.in_channels != model.in_channels:
        raise ModelError(f"metadata modality {metadata.modality!r} does not match a {model.in_channels}-channel network")
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().float().cpu().contiguous() if v.is_floating_point() else v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(sd, tmp)
    os.replace(tmp, path)
    metadata.network = _config_dict(model)
    metadata.weights_sha256 = _sha256(path)
    path.with_suffix(".json").write_text(json.dumps(metadata.to_dict(), indent=2) + "\n")
    return path


def load_metadata(path) -> ModelMetadata:
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        raise ModelError(f"model metadata {meta_path} is missing: every model file needs its .json beside it")
    try:
        raw = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"model metadata {meta_path} is not valid JSON: {e}") from e
    if raw.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(f"model {path} has format version {raw['format_version']}; this package reads up to {FORMAT_VERSION}")
    known = {f.name for f in dataclasses.fields(ModelMetadata)}
    try:
        return ModelMetadata(**{k: v for k, v in raw.items() if k in known})
    except TypeError as e:
        raise ModelError(f"model metadata {meta_path} lacks a required field: {e}") from e


def portable_path(path) -> str | None:
    """A path as model metadata records it: relative to the project root when inside it or beside it
    (``data/x``, ``../simdata/train``), else only its last component (the dataset folder's name), so
    that a model card never carries a path of one machine."""
    if path is None:
        return None
    p = Path(path).expanduser().resolve()
    root = Path(__file__).resolve().parents[2]
    for base, prefix in ((root, ""), (root.parent, "../")):
        try:
            return prefix + p.relative_to(base).as_posix()
        except ValueError:
            pass
    return p.name


def _numpy_array_globals() -> list:
    """What pickling a plain numpy array refers to (array reconstruction, dtypes; no code)."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a training checkpoint (``RUN/checkpoints/best.pt`` or ``last.pt``) safely.

    Always ``torch.load(weights_only=True)``: tensors and plain Python data only, so a crafted file
    cannot run code while it is read. Checkpoints written before the RNG state was stored as tensors
    hold a numpy array (``np.random.get_state()``); for those, numpy's array reconstruction alone is
    allowlisted. Anything else is refused with a :class:`ModelError` naming the file.
    """
    import pickle

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} not found")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as first:
        if not _is_refusal(first):
            raise ModelError(f"checkpoint {path} is corrupt or not a torch checkpoint (UnpicklingError: {unpickling_detail(first)})") from None
        if "numpy" not in str(first):
            raise _refused(path, first) from None
        try:
            with torch.serialization.safe_globals(_numpy_array_globals()):
                ck = torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as e:
            raise _refused(path, e) from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for broken files
        raise ModelError(f"checkpoint {path} is corrupt or not a torch checkpoint ({type(e).__name__}: {_clean(str(e))[:200]})") from None
    if not isinstance(ck, dict) or "model" not in ck:
        raise ModelError(f"checkpoint {path} is not a dsc-grasp training checkpoint (no 'model' entry)")
    return ck


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_GLOBAL = re.compile(r"GLOBAL\s+([A-Za-z_][\w.]*)")


def _clean(text: str) -> str:
    """``text`` without terminal colour codes, on one line."""
    return " ".join(_ANSI.sub("", text).split())


def _is_refusal(err: Exception) -> bool:
    """torch.load(weights_only=True) refused what the file holds (rather than failing to read it)."""
    text = str(err)
    if _GLOBAL.search(text):
        return True
    # bytes that are no pickle at all ("Unsupported operand"): corrupt, not refused
    return "Weights only load failed" in text and "Unsupported operand" not in text


def unpickling_detail(err: Exception) -> str:
    """What ``torch.load(weights_only=True)`` refused, in a few words: ``found posix.system`` when it
    names the global (torch's advice to load the file unrestricted is left out: never do that)."""
    text = _ANSI.sub("", str(err))
    found = _GLOBAL.search(text)
    if found:
        return f"found {found.group(1)}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "weights_only" not in ln and "trusted source" not in ln]
    return _clean(lines[0])[:200] if lines else type(err).__name__


def _refused(path: Path, err: Exception, what: str = "checkpoint", holds: str = "objects other than tensors and plain data",
             fine: str = "Checkpoints written by 'dsc-grasp train' load") -> ModelError:
    return ModelError(
        f"{what} {path} was not loaded: it holds {holds} ({unpickling_detail(err)}), and unpickling it could run code "
        f"(torch.load weights_only=True refused it). {fine}; do not use files of unknown origin."
    )


def load_state_dict_file(path, error: type[Exception] = ModelError, what: str = "model file") -> dict:
    """A plain state_dict of tensors from ``path`` (``torch.load(..., weights_only=True)``); ``error``
    naming the file (``what``) and the problem when it is unreadable or holds something else."""
    import pickle

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if _is_refusal(e):
            raise error(str(_refused(path, e, what, "more than a plain state_dict of tensors",
                                     "Model files written by 'dsc-grasp train' or 'dsc-grasp export' load"))) from None
        raise error(f"{what} {path} is corrupt or not a plain state_dict (UnpicklingError: {unpickling_detail(e)})") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        raise error(f"{what} {path} is corrupt or not a plain state_dict ({type(e).__name__}: {_clean(str(e))[:200]})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise error(f"{what} {path} does not hold a state_dict of tensors")
    return sd


def load_model(path=None, modality: str | None = None, device: str | torch.device = "cpu"):
    """Load a model file; returns ``(model.eval(), metadata)``.

    ``path=None`` loads the shipped model for ``modality`` (RGB-D by default). A ``modality`` that
    differs from the model's, a missing, truncated or corrupt file, a pickled module instead of a
    state_dict, or weights that do not fit the architecture raise :class:`ModelError`.
    """
    path = Path(path) if path is not None else default_model_path(modality)
    if not path.is_file():
        raise ModelError(f"model file {path} not found")
    meta = load_metadata(path)
    if modality is not None and modality != meta.modality:
        raise ModelError(
            f"model {path.name} was trained for modality {meta.modality!r} (channels {meta.channel_order}) "
            f"but {modality!r} was requested"
        )
    if meta.weights_sha256 and _sha256(path) != meta.weights_sha256:
        raise ModelError(f"model file {path} does not match the SHA-256 in its metadata: truncated, corrupt or replaced")
    sd = load_state_dict_file(path)
    try:
        cfg = network_config(meta.network)
        model = DSCGraspNet(meta.in_channels, cfg)
    except (TypeError, KeyError, ValueError) as e:
        raise ModelError(f"model metadata {path.with_suffix('.json')} describes no valid DSCGraspNet: {str(e)[:300]}") from e
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        other = _fitting_order(meta.in_channels, cfg, sd)
        if other is not None:
            raise ModelError(
                f"weights in {path} are a DSCGraspNet with upsample_order={other!r}, but its metadata says "
                f"{cfg.upsample_order!r}: the .json does not belong to these weights (set network.upsample_order "
                f"to {other!r} if you know it was trained that way)"
            ) from e
        raise ModelError(f"weights in {path} do not fit the DSCGraspNet described by its metadata: {str(e)[:300]}") from e
    return model.to(device).eval(), meta


def network_config(network: dict | None) -> DSCGraspNetConfig:
    """The network configuration recorded in a model's metadata.

    Metadata written before ``upsample_order`` existed has none: those models were trained with the
    Eq. (5)-literal order (:data:`~dsc_grasp_ros.core.network.LEGACY_UPSAMPLE_ORDER`), so they load and
    run exactly as before. An empty dict (very old files) means the same.
    """
    net_cfg = dict(network or {})
    net_cfg.setdefault("upsample_order", LEGACY_UPSAMPLE_ORDER)
    if "backbone" in net_cfg:
        net_cfg["backbone"] = tuple(tuple(r) for r in net_cfg["backbone"])
    if net_cfg.get("up_channels") is not None:
        net_cfg["up_channels"] = tuple(net_cfg["up_channels"])
    return DSCGraspNetConfig(**net_cfg)


def _fitting_order(in_channels: int, cfg: DSCGraspNetConfig, sd: dict) -> str | None:
    """The other up-sampling order whose default network the weights fit, if any."""
    for order in UPSAMPLE_ORDERS:
        if order == cfg.upsample_order:
            continue
        other = DSCGraspNet(in_channels, dataclasses.replace(cfg, upsample_order=order, up_channels=None))
        ref = other.state_dict()
        if ref.keys() == sd.keys() and all(ref[k].shape == sd[k].shape for k in ref):
            return order
    return None
