"""Fast inference paths for DSC-GraspNet (no ROS imports).

``prepare_fast_model`` turns a trained :class:`~dsc_grasp_ros.core.network.DSCGraspNet` into an
inference-only copy: every BatchNorm folded into the convolution before it and the four 3x3 heads
merged into one convolution with four outputs (dropout is the identity at inference). The copy
computes the same maps as the eval-mode network (parity tested, ~1e-6).

CPU: :func:`compile_cpu` runs ``torch.compile`` (Inductor) on that copy, with its on-disk caches
(FX graph + AOTAutograd) in a user cache folder (:func:`compile_cache_dir`), so that a restarted
node loads compiled kernels instead of compiling again; when compiling fails, or the compiled
model disagrees with eager, it says why and the caller keeps eager.

CUDA: :class:`CudaGraphRunner` runs the fp16 channels_last copy as a captured CUDA graph: one
pinned host->device copy of the fp32 input per frame, the fp16 conversion, network and fp32
conversion of the outputs replayed as one graph; outputs stay on the GPU for post-processing.
**Not measured yet (no GPU was available)**; guarded: any failure to
capture falls back to the plain CUDA path.

Threads: :func:`configure_threads` sets intra-op (and, once per process, inter-op) threads.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = [
    "BACKENDS",
    "DEFAULT_THREADS",
    "THREADS_RANGE",
    "FastGraspNet",
    "fold_batchnorm",
    "prepare_fast_model",
    "compile_cache_dir",
    "compile_cpu",
    "CPP_WRAPPER",
    "configure_threads",
    "CudaGraphRunner",
    "max_abs_diff",
    "eager_parity",
    "example_input",
    "ExpMish",
    "with_exp_mish",
]

log = logging.getLogger("dsc_grasp_ros.core.backends")

from .settings import BACKENDS, DEFAULT_THREADS, THREADS_RANGE  # noqa: F401 - part of this module's interface
HEAD_NAMES = ("quality", "cos", "sin", "width")


# --------------------------------------------------------------------------- model transforms
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode deep copy of ``model`` with each ``Conv2d -> BatchNorm2d`` pair folded.

    Handles the pairs inside ``nn.Sequential`` (every CBM block) and Coordinate Attention's
    ``conv1``/``bn1``; a BatchNorm that follows no convolution is left as it is.
    """
    m = copy.deepcopy(model).eval()
    for mod in list(m.modules()):
        if isinstance(mod, nn.Sequential):
            names = list(mod._modules)
            for a, b in zip(names, names[1:]):
                conv, bn = mod._modules[a], mod._modules[b]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    mod._modules[a] = fuse_conv_bn_eval(conv, bn)
                    mod._modules[b] = nn.Identity()
        conv1, bn1 = getattr(mod, "conv1", None), getattr(mod, "bn1", None)
        if isinstance(conv1, nn.Conv2d) and isinstance(bn1, nn.BatchNorm2d):
            mod.conv1 = fuse_conv_bn_eval(conv1, bn1)
            mod.bn1 = nn.Identity()
    return m


class FastGraspNet(nn.Module):
    """Inference-only DSC-GraspNet: BatchNorm folded, the four heads as one 4-output convolution.

    ``forward(x)`` returns ``(quality, cos2θ, sin2θ, width)`` like the source network (views of one
    ``N x 4 x H x W`` tensor).
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = fold_batchnorm(net)
        convs = [self.net.heads[k][-1] for k in HEAD_NAMES]
        c0 = convs[0]
        head = nn.Conv2d(c0.in_channels, len(convs), c0.kernel_size, padding=c0.padding, bias=True)
        with torch.no_grad():
            head.weight.copy_(torch.cat([c.weight for c in convs], 0))
            head.bias.copy_(torch.cat([c.bias if c.bias is not None else torch.zeros(1) for c in convs], 0))
        self.head = head
        del self.net.heads
        self.in_channels = net.in_channels
        self.cfg = net.cfg

    def forward(self, x: torch.Tensor):
        p = self.net.forward_up(self.net.forward_features(x))
        y = self.head(p)
        return y[:, 0:1], y[:, 1:2], y[:, 2:3], y[:, 3:4]


def prepare_fast_model(net: nn.Module) -> nn.Module:
    """:class:`FastGraspNet` for a DSCGraspNet; other modules only get their BatchNorm folded."""
    if hasattr(net, "heads") and hasattr(net, "forward_up") and all(k in net.heads for k in HEAD_NAMES):
        return FastGraspNet(net).eval()
    return fold_batchnorm(net)


class ExpMish(nn.Module):
    """Mish with one exponential: ``x * tanh(softplus(x)) = x * n / (n + 2)``, ``n = e^x (e^x + 2)``.

    The same function as :class:`torch.nn.Mish` (an identity, not an approximation: within 2e-6
    of it in fp32; above x = 20 the factor is 1 to fp32 precision, so the exponent is clamped there).
    For compiled graphs: Inductor fuses its five element-wise operations into one loop with one
    exponential, while it lowers ``nn.Mish`` to ``exp``, ``log1p`` and ``tanh``: the compiled
    RGB-D network took 31-32 ms instead of 52 ms per 224 px frame (2 threads, interleaved;
    docs/results.md). Eagerly it is slower than ``nn.Mish`` (five passes over memory instead of
    one), so only the copy handed to ``torch.compile`` uses it (:func:`with_exp_mish`).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = torch.exp(x.clamp(max=20.0))
        n = e * (e + 2.0)
        return x * (n / (n + 2.0))  # the ratio first: x * n would overflow for x above ~1e21


def with_exp_mish(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every :class:`torch.nn.Mish` replaced by :class:`ExpMish`."""
    m = copy.deepcopy(model)
    for mod in m.modules():
        for name, child in list(mod._modules.items()):
            if isinstance(child, nn.Mish):
                mod._modules[name] = ExpMish()
    return m


def max_abs_diff(a, b) -> float:
    return max(float((x.float() - y.float()).abs().max()) for x, y in zip(a, b))


def eager_parity(out, model: nn.Module, example: torch.Tensor, tolerance: float, what: str) -> tuple[float, str]:
    """How far a fast path's outputs ``out`` on ``example`` are from ``model``'s (eager):
    ``(largest difference, "")``, or with the reason to refuse the fast path when the difference
    exceeds ``tolerance`` x the outputs' scale (at least 1)."""
    with torch.inference_mode():
        ref = tuple(o.float() for o in model(example))
    diff = max_abs_diff(out, ref)
    scale = max(1.0, max(float(r.abs().max()) for r in ref))
    if not diff <= tolerance * scale:
        return diff, f"{what} outputs differ from eager by {diff:.3g} (> {tolerance} x {scale:.3g})"
    return diff, ""


def example_input(shape: tuple) -> torch.Tensor:
    """A smooth, in-range network input (a tilted table with a box on it; colour gradient) for
    parity checks. Random noise is a poor check input: trained models amplify it by orders of
    magnitude (a 1e-5 change of a noise input changed the shipped RGB-D model's maps by ~24)."""
    n, c, h, w = shape
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    x = torch.zeros(shape)
    x[:, 0] = 0.02 * xx - 0.06 * ((xx.abs() < 0.2) & (yy.abs() < 0.3)).float()
    if c > 1:
        x[:, 1:] = 0.1 * yy
    return x


# --------------------------------------------------------------------------- CPU: torch.compile
def compile_cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Folder of the compile caches: ``path``, else ``$TORCHINDUCTOR_CACHE_DIR``, else
    ``$DSC_GRASP_CACHE_DIR/torchinductor``, else ``$XDG_CACHE_HOME`` (``~/.cache``)
    ``/dsc_grasp_ros/torchinductor``. (Inductor's own default is under ``/tmp``, which a reboot of
    the robot PC clears.)"""
    if path:
        return Path(path).expanduser()
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    if os.environ.get("DSC_GRASP_CACHE_DIR"):
        return Path(os.environ["DSC_GRASP_CACHE_DIR"]).expanduser() / "torchinductor"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dsc_grasp_ros" / "torchinductor"


#: Compile with Inductor's C++ wrapper (:func:`compile_cpu`); ``$DSC_GRASP_CPP_WRAPPER=0`` turns it off.
CPP_WRAPPER = os.environ.get("DSC_GRASP_CPP_WRAPPER", "1").strip().lower() not in ("0", "false", "no", "off")


def compile_cpu(model: nn.Module, example: torch.Tensor, cache_dir=None, tolerance: float = 1e-3, cpp_wrapper: bool | None = None):
    """``torch.compile`` ``model`` for inputs shaped like ``example`` and check it against eager.

    What is compiled is a copy with :class:`ExpMish` in place of ``nn.Mish`` (:func:`with_exp_mish`);
    the parity check runs ``model`` itself.

    Returns ``(callable, info)``; ``callable`` is ``None`` when compiling failed or disagreed, and
    ``info["reason"]`` says why. ``info["compile_s"]`` is the time of the first (compiling or
    cache-loading) call. Inductor's cache folder is set to :func:`compile_cache_dir` unless
    ``TORCHINDUCTOR_CACHE_DIR`` is already set (it is read once per process).

    ``cpp_wrapper`` (``None``: :data:`CPP_WRAPPER`, on unless ``$DSC_GRASP_CPP_WRAPPER=0``):
    Inductor's C++ wrapper instead of its Python one (a frame's ~150 kernel and convolution calls
    without Python in between): 0.89-1.01x, median 0.93x, of the Python wrapper's time per frame
    in six interleaved runs (``csp_first`` RGB-D, 224, 2 threads, loaded machine; three through
    the engine, ``dsc-grasp benchmark backends --cpp-wrapper on off``), and cached on disk like
    the Python one (a warm start took 6-16 s either way). When compiling with it fails, the Python wrapper is tried
    (``info["cpp_wrapper"]`` says which one runs). Weight freezing (``freezing=True``, oneDNN
    pre-packed weights) was faster still (0.84 and 0.92x with the C++ wrapper) but Inductor does
    not cache graphs with pre-packed weights (``fxgraph_cache_bypass``): every start paid the
    1-3 min cold compile, so it is not used.
    """
    info: dict = {"cache_dir": None, "compile_s": None, "parity": None, "reason": "", "cpp_wrapper": None}
    if cpp_wrapper is None:
        cpp_wrapper = CPP_WRAPPER
    try:
        cache = compile_cache_dir(cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        if cache_dir or not os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache)
        info["cache_dir"] = os.environ["TORCHINDUCTOR_CACHE_DIR"]
        import torch._inductor.config as inductor_config

        inductor_config.fx_graph_cache = True  # compiled kernels keyed by graph + shapes, on disk
        try:
            import torch._functorch.config as functorch_config

            functorch_config.enable_autograd_cache = True
        except (ImportError, AttributeError):  # older torch: FX graph cache only
            pass
    except Exception as e:  # noqa: BLE001 - cache folder not writable, no Inductor, ...
        info["reason"] = f"torch.compile failed ({_first_line(e)})"
        return None, info
    _raise_recompile_limit()
    target = with_exp_mish(model)  # what Inductor compiles well; checked against ``model`` below
    for wrapper in ((True, False) if cpp_wrapper else (False,)):
        try:
            with inductor_config.patch(cpp_wrapper=wrapper):  # Inductor reads it while compiling (first call)
                compiled = torch.compile(target, dynamic=False, fullgraph=True)
                t0 = time.perf_counter()
                with torch.inference_mode():  # the mode the engine runs in (no recompilation on the first frame)
                    out = compiled(example)
            info["compile_s"] = round(time.perf_counter() - t0, 2)
            info["cpp_wrapper"] = wrapper
            break
        except Exception as e:  # noqa: BLE001 - no compiler, unsupported op, ...
            info["reason"] = f"torch.compile failed ({_first_line(e)})"
            if wrapper:
                info["cpp_wrapper_error"] = info["reason"]
            log.info("torch.compile with cpp_wrapper=%s failed: %s", wrapper, info["reason"])
    else:
        return None, info
    info["parity"], info["reason"] = eager_parity(out, model, example, tolerance, "compiled")
    if info["reason"]:
        return None, info
    return compiled, info


#: Dynamo's per-function cache size that :func:`compile_cpu` guarantees. Every compiled model of
#: one class shares one cache (keyed by ``forward``'s code object): each model of another input
#: channel count, up-sampling order or input size takes an entry. Torch's default (8) was hit by a
#: benchmark of six models in one process (``dsc-grasp bench`` with three eq5 and three csp_first
#: models): Dynamo then ran the rest in eager mode, without telling the engine, and logged a warning per frame.
RECOMPILE_LIMIT = 64


def _raise_recompile_limit(limit: int = RECOMPILE_LIMIT) -> None:
    import torch._dynamo.config as dynamo_config

    for name in ("recompile_limit", "cache_size_limit"):  # torch >= 2.6 name, and the older alias
        if isinstance(getattr(dynamo_config, name, None), int) and getattr(dynamo_config, name) < limit:
            setattr(dynamo_config, name, limit)
            break


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300] if text else ''}"


# --------------------------------------------------------------------------- threads
_INTEROP_SET = False


def configure_threads(threads: int | None = None, interop_threads: int = 1) -> dict:
    """Set torch's intra-op threads (``None``/0: leave as is) and, once per process, inter-op threads.

    Returns the threads in effect. OpenMP environment settings (``OMP_WAIT_POLICY``) only act
    before torch starts its thread pool; see the README's performance section for what helped.
    """
    global _INTEROP_SET
    if threads is not None and threads != 0:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
            raise ValueError(f"threads must be a positive integer (0 or None: keep torch's default), got {threads!r}")
        torch.set_num_threads(threads)
    from .. import PASSIVE_OPENMP

    if torch.get_num_threads() > 1 and not PASSIVE_OPENMP:
        log.warning(
            "%d torch threads with spinning OpenMP waits: on a busy CPU a forward pass can become >10x slower "
            "(measured 3.4-3.7 s instead of 0.25 s). Set OMP_WAIT_POLICY=PASSIVE before torch is imported, "
            "or use threads=1.", torch.get_num_threads())
    if interop_threads and not _INTEROP_SET:
        try:
            torch.set_num_interop_threads(interop_threads)
        except RuntimeError:  # already set, or inter-op work already ran in this process
            pass
        _INTEROP_SET = True
    return {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()}


# --------------------------------------------------------------------------- CUDA graphs
class CudaGraphRunner:
    """A captured CUDA graph of ``model`` (fp16/fp32, channels_last) for one input shape.

    Per frame: the fp32 host input is copied into a pinned buffer, then one asynchronous
    host->device copy; the dtype/layout conversion, the network and the fp32 conversion of the four
    outputs are one graph replay. Outputs are cloned so they stay valid after the next frame.

    NOT MEASURED: written without a GPU; the engine falls back to the plain CUDA path
    when capture fails.
    """

    def __init__(self, model: nn.Module, shape: tuple, device: torch.device, dtype: torch.dtype, warmup: int = 3):
        self.shape = tuple(shape)
        self.device = device
        self.host = torch.empty(self.shape, dtype=torch.float32).pin_memory()
        self.static_in = torch.zeros(self.shape, dtype=torch.float32, device=device)

        def step():
            x = self.static_in.to(dtype).contiguous(memory_format=torch.channels_last)
            return tuple(o.float() for o in model(x))

        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(warmup):  # cuDNN autotuning and allocations happen outside the capture
                step()
        torch.cuda.current_stream(device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode():
            self.static_out = step()
        self._copied = torch.cuda.Event()  # the last host->device copy out of the pinned buffer
        self._copied.record()

    def __call__(self, x: torch.Tensor):
        if x.device.type == "cpu":
            self._copied.synchronize()  # the previous frame's asynchronous copy has left the pinned buffer
            self.host.copy_(x)
            self.static_in.copy_(self.host, non_blocking=True)
            self._copied.record()
        else:
            self.static_in.copy_(x)
        self.graph.replay()
        return tuple(o.clone() for o in self.static_out)
