"""The network through OpenVINO on the CPU (no ROS imports): the engine's ``openvino`` backend and
the OpenVINO rows of ``dsc-grasp benchmark network``.

The BatchNorm-folded network (:func:`~dsc_grasp_ros.core.backends.prepare_fast_model`) is exported
to ONNX (:func:`~dsc_grasp_ros.core.onnx_export.export_onnx`), fixed to one input shape (OpenVINO
plans its kernels for it: the same file left with dynamic axes ran about 4x slower here) and
compiled by OpenVINO's CPU plugin with ``PERFORMANCE_HINT`` LATENCY, ``INFERENCE_NUM_THREADS`` and
``INFERENCE_PRECISION_HINT`` f32 or bf16 (bf16 on CPUs with AVX512-BF16 or AMX; OpenVINO runs f32
elsewhere and :attr:`OpenVinoNetwork.info` says which precision it chose). Building takes a few
seconds (export + compile), with no cache to warm.

Checked against OpenVINO 2026.4.1 (``openvino.Core.read_model``, ``Model.reshape``,
``Core.compile_model``, ``CompiledModel.create_infer_request``, ``InferRequest.infer``). An
``InferRequest`` must not run two inferences at once: each calling thread gets its own.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Callable

import numpy as np
import torch

__all__ = ["OpenVinoNetwork", "openvino_missing", "OPENVINO_PIN"]

#: what ``pip install`` needs when OpenVINO is missing (the version requirements.txt pins)
OPENVINO_PIN = "openvino==2026.4.1"


def openvino_missing() -> str:
    """``""`` when OpenVINO imports, else why not (with the install command)."""
    try:
        import openvino  # noqa: F401
    except ImportError as e:  # also a broken install (missing shared library)
        return f"OpenVINO is not installed ({e.__class__.__name__}: {str(e)[:120]}): pip install {OPENVINO_PIN}"
    return ""


class OpenVinoNetwork:
    """A network compiled by OpenVINO for inputs of ``shape`` (N, C, H, W).

    ``source``: a torch module (exported to ONNX in a temporary folder, removed after loading) or
    the path of an ONNX file. ``threads``: ``INFERENCE_NUM_THREADS`` (``None``/0: torch's thread
    count). ``precision``: ``fp32`` or ``bf16``. ``transform``: applied to the ``openvino.Model``
    before compiling (e.g. NNCF quantisation). Calling it with an ``N x C x H x W`` array or tensor
    returns the network's outputs as fp32 torch tensors.
    """

    def __init__(self, source, shape: tuple, threads: int | None = None, precision: str = "fp32",
                 transform: Callable | None = None):
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
        import openvino as ov

        self.shape = tuple(int(s) for s in shape)
        threads = int(threads) if threads else torch.get_num_threads()
        core = ov.Core()
        if isinstance(source, torch.nn.Module):
            from .onnx_export import export_onnx

            with tempfile.TemporaryDirectory(prefix="dsc_grasp_openvino_") as tmp:
                path = export_onnx(source, Path(tmp) / "network.onnx", input_size=self.shape[2])
                model = core.read_model(str(path))  # reads the file completely: the folder may go
        else:
            model = core.read_model(str(source))
        model.reshape(list(self.shape))
        if transform is not None:
            model = transform(model)
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
        self.compiled = core.compile_model(model, "CPU", config)
        self.info = {"openvino": ov.__version__.split("-")[0], "threads": threads, "requested_precision": precision,
                     "inference_precision": self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()}
        self._local = threading.local()

    def _request(self):
        req = getattr(self._local, "request", None)
        if req is None:
            req = self._local.request = self.compiled.create_infer_request()
        return req

    def __call__(self, x) -> tuple[torch.Tensor, ...]:
        arr = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
        if tuple(arr.shape) != self.shape:
            raise ValueError(f"this OpenVINO network was compiled for inputs of shape {self.shape}, got {tuple(arr.shape)}")
        out = self._request().infer({0: np.ascontiguousarray(arr)})  # outputs are copies (share_outputs=False)
        return tuple(torch.from_numpy(np.asarray(o)) for o in out.to_tuple())

