"""The network runner: one device, the backend chosen at load (compiled or eager on a CPU, CUDA
graphs on a GPU). No ROS imports."""

from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np
import torch

from .backends import BACKENDS, CudaGraphRunner, compile_cpu, configure_threads, eager_parity, example_input, prepare_fast_model
from .settings import PRECISIONS

__all__ = ["InferenceEngine", "resolve_device", "PRECISIONS", "cpu_supports_bf16", "BF16Autocast"]

#: largest compiled-vs-eager difference (x output scale) accepted in bf16 (its 8-bit mantissa)
BF16_TOLERANCE = 5e-2


def cpu_supports_bf16() -> bool:
    """Whether oneDNN computes bfloat16 natively on this CPU (else bf16 is emulated, slower than fp32)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class BF16Autocast(torch.nn.Module):
    """Runs the wrapped network under CPU bfloat16 autocast; returns fp32 outputs."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.net(x)
        return tuple(o.float() for o in out)

log = logging.getLogger("dsc_grasp_ros.core.engine")

def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` = CUDA when available, else CPU. An explicit ``cuda`` without a GPU is an error."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available (use 'auto' or 'cpu')")
    return dev


class InferenceEngine:
    """Runs the network on one device with the backend chosen at load.

    ``backend`` (:data:`~dsc_grasp_ros.core.backends.BACKENDS`; ``auto`` takes ``$DSC_GRASP_BACKEND`` when set):

    * CPU, ``auto``: as ``openvino`` below (OpenVINO was 1.6x faster than torch.compile with fp32
      and 2.4x with bf16 on the 2-core AVX512-BF16 VM, and builds in seconds), falling back to ``compiled``.
    * CPU, ``compiled``: an inference copy with BatchNorm folded and the four heads merged
      (:func:`~dsc_grasp_ros.core.backends.prepare_fast_model`), ``torch.compile``-d for the first input
      shape (at :meth:`warmup`), with Inductor's caches on disk (:func:`~dsc_grasp_ros.core.backends.compile_cache_dir`,
      ``compile_cache`` overrides) so that a restart loads instead of compiling. When compiling
      fails or disagrees with eager, the folded copy runs eagerly and ``backend_info["reason"]``
      (also logged) says why. ``eager``: the folded copy, never compiled. ``openvino``: the folded
      copy compiled by OpenVINO for the first input shape (:mod:`~dsc_grasp_ros.core.openvino_backend`;
      seconds, no cache; ``precision: bf16`` becomes OpenVINO's bf16 hint), checked against eager;
      when OpenVINO is missing, fails or disagrees, ``backend_info["openvino_reason"]`` says why and
      torch.compile is tried as with ``compiled``.
    * CUDA: the folded copy in fp16 (``fp16``) and channels_last; ``auto``/``compiled`` replay a
      captured CUDA graph per input shape (one pinned host->device copy per frame), ``eager`` runs
      it directly. The CUDA-graph path was written without a GPU and is NOT MEASURED yet.

    ``prepare(shape, background=True)`` (CPU): the compile (or the on-disk cache load) runs in a
    background thread while calls run the eager copy; the compiled model is swapped in, between two
    calls, once it is ready and agrees with eager. ``backend_info["state"]`` says where it stands:
    ``eager`` (never compiled), ``compiling``, ``compiled`` or ``fallback`` (with ``reason``);
    :meth:`wait_ready` blocks until the swap.

    ``threads`` (CPU): torch intra-op threads (``None``/0 = torch's default, the core count);
    inter-op threads are set to 1 (the network has no parallel branches worth a second pool).
    ``engine.backend`` is what actually runs: ``eager``, ``compiled``, ``openvino``, ``cuda`` or ``cuda_graph``.

    Threads: calls may come from several threads at once. The eager and compiled CPU modules keep
    no state between calls (each call allocates its own outputs); the compiled one is swapped in
    as one attribute. A captured CUDA graph has one set of input and output buffers: its replays
    (copy in, replay, clone out) take turns under a lock.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: str = "auto",
        fp16: bool | None = None,
        backend: str = "auto",
        threads: int | None = None,
        compile_cache: str | None = None,
        precision: str = "fp32",
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "auto" and os.environ.get("DSC_GRASP_BACKEND"):  # a deployment's (or the test suite's) choice
            backend = os.environ["DSC_GRASP_BACKEND"]
            if backend not in BACKENDS:
                raise ValueError(f"$DSC_GRASP_BACKEND must be one of {BACKENDS}, got {backend!r}")
        self.device = resolve_device(device)
        self.requested_backend = backend
        self.compile_cache = compile_cache
        self.threads = configure_threads(threads) if self.device.type == "cpu" else {}
        self.fp16 = (self.device.type == "cuda") if fp16 is None else bool(fp16 and self.device.type == "cuda")
        self.dtype = torch.float16 if self.fp16 else torch.float32
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        requested_precision = precision
        if precision == "auto" and os.environ.get("DSC_GRASP_PRECISION"):  # a deployment's choice
            precision = os.environ["DSC_GRASP_PRECISION"]
            if precision not in PRECISIONS:
                raise ValueError(f"$DSC_GRASP_PRECISION must be one of {PRECISIONS}, got {precision!r}")
        auto_reason = ""
        if precision == "auto":
            precision, auto_reason = self._auto_precision(backend)
        #: CPU: run the convolutions in bfloat16 (weights and outputs stay fp32)
        self.bf16 = False
        self.precision_info = {"requested": requested_precision, "runs": "fp16" if self.fp16 else "fp32", "reason": auto_reason}
        if self.device.type == "cpu" and precision == "bf16":
            if cpu_supports_bf16():
                self.bf16 = True
                self.precision_info["runs"] = "bf16"
            else:
                self.precision_info["reason"] = "this CPU has no native bfloat16 (AVX512-BF16 or AMX): fp32"
                log.warning("precision bf16 requested, but %s", self.precision_info["reason"])
        self.source_model = model.eval()
        fast = prepare_fast_model(model.eval()).to(self.device).eval()
        if self.bf16:
            fast = BF16Autocast(fast)
        if self.device.type == "cuda":
            fast = fast.to(memory_format=torch.channels_last)
            if self.fp16:
                fast = fast.half()
        self._model = fast
        #: CPU: ``(compiled model, input shape)`` once prepare() built it (other shapes run the eager
        #: copy); one attribute, so that a background compile swaps it in atomically between calls
        self._fast: tuple | None = None
        self._pending: threading.Thread | None = None  # a background compile in progress
        self._generation = 0  # bumped when the model is replaced: a late compile of the old one is dropped
        self._graphs: dict[tuple, CudaGraphRunner] = {}
        self._graph_lock = threading.Lock()  # a graph's static buffers: one replay at a time
        self.backend = "cuda" if self.device.type == "cuda" else "eager"
        self.backend_info: dict = {"requested": backend, "reason": "", "state": "eager"}

    def _auto_precision(self, backend: str) -> tuple[str, str]:
        """``precision: auto``: bf16 on a CPU that computes it natively when OpenVINO runs the network
        (there it measured 1.5x faster than fp32; torch's bf16 was not faster), else fp32."""
        if self.device.type != "cpu":
            return "fp32", "auto: not a CPU (CUDA runs fp16)"
        if backend not in ("auto", "openvino"):
            return "fp32", f"auto: fp32 with the {backend} backend (bf16 is only faster through OpenVINO)"
        if not cpu_supports_bf16():
            return "fp32", "auto: this CPU has no native bfloat16 (AVX512-BF16 or AMX)"
        from .openvino_backend import openvino_missing

        missing = openvino_missing()
        if missing:
            return "fp32", f"auto: {missing}"
        return "bf16", "auto: native bfloat16 through OpenVINO"

    @property
    def model(self) -> torch.nn.Module:
        """The module that runs (before compiling). Assigning one replaces it and runs it eagerly."""
        return self._model

    @model.setter
    def model(self, module: torch.nn.Module):
        self._model = module
        self._fast = None
        self._generation += 1
        self.backend_info["state"] = "eager"
        self._graphs.clear()
        self.requested_backend = "eager"
        self.backend = "cuda" if self.device.type == "cuda" else "eager"

    def _fallback(self, reason: str):
        self.backend_info["reason"] = reason
        level = logging.WARNING if self.requested_backend in ("compiled", "openvino") else logging.INFO
        log.log(level, "falling back to %s: %s", self.backend, reason)

    def prepare(self, shape: tuple, background: bool = False):
        """Build the fast path for inputs of ``shape`` (N, C, H, W): compile (CPU) or capture (CUDA).
        ``background`` (CPU): return at once and compile in a thread; calls run eager until then."""
        if self.requested_backend == "eager":
            return
        shape = tuple(int(s) for s in shape)
        if self.device.type == "cpu":
            if self._fast is not None or self._pending is not None:
                return
            build = self._build_openvino if self.requested_backend in ("auto", "openvino") else self._compile
            if background:
                self.backend_info["state"] = "compiling"
                self._pending = threading.Thread(target=build, args=(shape, self._generation), daemon=True,
                                                 name="dsc_grasp_compile")
                self._pending.start()
                log.info("compiling the network in the background; eager inference until it is ready")
            else:
                build(shape, self._generation)
        elif shape not in self._graphs:
            try:  # GPU path: NOT MEASURED (written without a GPU); any failure keeps the plain CUDA path
                self._graphs[shape] = CudaGraphRunner(self._model, shape, self.device, self.dtype)
                self.backend = "cuda_graph"
            except Exception as e:  # noqa: BLE001
                self._fallback(f"CUDA graph capture failed ({type(e).__name__}: {str(e)[:200]})")

    def _build_openvino(self, shape: tuple, generation: int):
        """The ``openvino`` backend: the folded fp32 network compiled by OpenVINO for ``shape`` (bf16
        hint with ``precision: bf16``), checked against eager; torch.compile when that fails."""
        from .openvino_backend import OpenVinoNetwork, openvino_missing

        t0 = time.perf_counter()
        net, reason, parity = None, openvino_missing(), None
        if not reason:
            try:
                fp32 = self._model.net if self.bf16 else self._model  # bf16 is OpenVINO's hint, not an autocast wrapper
                net = OpenVinoNetwork(fp32, shape, self.threads.get("threads") or None, "bf16" if self.bf16 else "fp32")
                x = example_input(shape)
                parity, reason = eager_parity(net(x), self._model, x, BF16_TOLERANCE if self.bf16 else 1e-3, "OpenVINO")
                if reason:
                    net = None
            except Exception as e:  # noqa: BLE001 - export, read or compile failed: say why, keep going
                reason = f"OpenVINO failed ({type(e).__name__}: {str(e)[:200]})"
        if generation != self._generation:  # the model was replaced meanwhile
            self._pending = None
            return
        if net is None:
            self._fallback(f"{reason}; trying torch.compile")
            self.backend_info["openvino_reason"] = reason
            self._compile(shape, generation)
            return
        self.backend_info.update(compile_s=round(time.perf_counter() - t0, 2), parity=parity, reason="", openvino=net.info)
        self._fast = (net, shape)
        self.backend = "openvino"
        self.backend_info["state"] = "compiled"
        self._pending = None
        log.info("OpenVINO backend ready in %.1f s (inference precision %s)", self.backend_info["compile_s"], net.info["inference_precision"])

    def _compile(self, shape: tuple, generation: int):
        try:
            compiled, info = compile_cpu(self._model, example_input(shape), self.compile_cache,
                                         tolerance=BF16_TOLERANCE if self.bf16 else 1e-3)
        except Exception as e:  # noqa: BLE001 - compile_cpu reports its own failures; anything else ends here
            compiled, info = None, {"reason": f"torch.compile failed ({type(e).__name__}: {str(e)[:200]})"}
        try:
            if generation != self._generation:  # the model was replaced meanwhile
                return
            self.backend_info.update(info)
            if compiled is None:
                self.backend_info["state"] = "fallback"
                self._fallback(info["reason"])
            else:
                self._fast = (compiled, shape)
                self.backend = "compiled"
                self.backend_info["state"] = "compiled"
                log.info("compiled backend ready in %.1f s (cache %s)", info["compile_s"], info["cache_dir"])
        finally:
            self._pending = None

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for a background compile; True when none is (still) running."""
        pending = self._pending
        if pending is not None:
            pending.join(timeout)
        return self._pending is None

    @torch.inference_mode()
    def __call__(self, x: np.ndarray | torch.Tensor):
        t = torch.as_tensor(x)
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if self.device.type == "cpu":
            t = t.to(self.dtype)
            fast = self._fast
            if fast is not None and tuple(t.shape) == fast[1]:
                return fast[0](t)
            return tuple(o.float() for o in self._model(t))
        runner = self._graphs.get(tuple(t.shape))
        if runner is not None:
            with self._graph_lock:
                return runner(t.float())
        t = t.to(self.device, non_blocking=True).to(self.dtype).contiguous(memory_format=torch.channels_last)
        return tuple(o.float() for o in self._model(t))

    def synchronize(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def warmup(self, channels: int, size: tuple[int, int], n: int = 3, background: bool = False):
        """Build the fast path for ``1 x channels x size`` inputs (``background``: in a thread, see
        :meth:`prepare`), then run ``n`` frames."""
        shape = (1, channels, *size)
        self.prepare(shape, background)
        x = torch.zeros(shape)
        for _ in range(n):
            self(x)
        self.synchronize()
