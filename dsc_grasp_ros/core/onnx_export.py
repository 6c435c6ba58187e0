"""ONNX export of a DSC-GraspNet model and an onnxruntime backend whose maps match torch's."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from .model_io import ModelMetadata

__all__ = ["export_onnx", "OnnxGraspNet", "check_parity"]

OUTPUT_NAMES = ["quality", "cos2", "sin2", "width"]


def export_onnx(model: torch.nn.Module, path, input_size: int = 224, metadata: ModelMetadata | None = None, opset: int = 18) -> Path:
    """Export ``model`` (fp32, eval) to ``path``; the batch, height and width axes are dynamic.

    With ``metadata`` it is embedded as the ONNX ``metadata_props`` entry ``dsc_grasp`` (JSON).
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.float().cpu().eval()
    x = torch.zeros(1, model.in_channels, input_size, input_size)
    dyn = {"input": {0: "batch", 2: "height", 3: "width"}, **{n: {0: "batch", 2: "height", 3: "width"} for n in OUTPUT_NAMES}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), input_names=["input"], output_names=OUTPUT_NAMES,
            dynamic_axes=dyn, opset_version=opset, dynamo=False,
        )
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    if metadata is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = "dsc_grasp", json.dumps(metadata.to_dict())
        onnx.save(proto, str(path))
    return path


class OnnxGraspNet:
    """Runs an exported model with onnxruntime; call with an ``N x C x H x W`` float32 array (or tensor).

    ``threads``: intra-op threads (one inter-op thread, sequential execution; none spin-waiting when
    the package's OpenMP waits are passive); ``None``: onnxruntime's defaults. ``shape``: fix the
    batch, height and width axes to it (``N, C, H, W``), so that onnxruntime plans for one size.
    """

    def __init__(self, path, providers: list[str] | None = None, threads: int | None = None, shape: tuple | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.info = {"onnxruntime": ort.__version__}
        if threads:
            from .. import PASSIVE_OPENMP

            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            if PASSIVE_OPENMP:
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.info.update(intra_op_threads=int(threads), inter_op_threads=1, spinning=not PASSIVE_OPENMP)
        if shape is not None:
            for dim, n in (("batch", shape[0]), ("height", shape[2]), ("width", shape[3])):
                opts.add_free_dimension_override_by_name(dim, int(n))
        self.session = ort.InferenceSession(str(path), opts, providers=providers or ort.get_available_providers())
        self.info["provider"] = self.session.get_providers()[0]

    def __call__(self, x) -> list[np.ndarray]:
        arr = x.numpy() if isinstance(x, torch.Tensor) else x
        return self.session.run(OUTPUT_NAMES, {"input": np.ascontiguousarray(arr, dtype=np.float32)})


def check_parity(model: torch.nn.Module, onnx_path, x: np.ndarray) -> float:
    """Largest absolute difference between torch's and onnxruntime's four maps on ``x``."""
    with torch.inference_mode():
        ref = [o.numpy() for o in model.float().cpu().eval()(torch.from_numpy(x))]
    got = OnnxGraspNet(onnx_path)(x)
    return max(float(np.abs(a - b).max()) for a, b in zip(ref, got))
