"""The OpenVINO runner: the same maps as the eager network, one input shape, bf16 within its
tolerance, and two threads inferring at once (one request each)."""

import threading

import pytest
import torch

from dsc_grasp_ros.core.backends import example_input, max_abs_diff, prepare_fast_model
from dsc_grasp_ros.core.openvino_backend import openvino_missing

from test_backends import tiny_net

MISSING = openvino_missing()
needs_openvino = pytest.mark.skipif(bool(MISSING), reason=MISSING or "-")


@needs_openvino
def test_openvino_matches_eager_and_refuses_other_shapes():
    from dsc_grasp_ros.core.openvino_backend import OpenVinoNetwork

    net = prepare_fast_model(tiny_net())
    x = example_input((1, 4, 64, 64))
    ov_net = OpenVinoNetwork(net, x.shape, threads=1)
    with torch.no_grad():
        ref = net(x)
    out = ov_net(x)
    assert len(out) == 4 and all(isinstance(o, torch.Tensor) and o.dtype == torch.float32 for o in out)
    assert [tuple(o.shape) for o in out] == [tuple(r.shape) for r in ref]
    scale = max(float(r.abs().max()) for r in ref)
    assert scale > 1e-3 and max_abs_diff(out, ref) <= 1e-4 * max(1.0, scale)
    assert ov_net.info["inference_precision"] == "f32"
    with pytest.raises(ValueError, match="compiled for inputs of shape"):
        ov_net(example_input((1, 4, 32, 32)))


@needs_openvino
def test_openvino_bf16_within_its_tolerance():
    from dsc_grasp_ros.core.openvino_backend import OpenVinoNetwork

    net = prepare_fast_model(tiny_net())
    x = example_input((1, 4, 64, 64))
    out = OpenVinoNetwork(net, x.shape, threads=1, precision="bf16")(x)
    with torch.no_grad():
        ref = net(x)
    scale = max(1.0, max(float(r.abs().max()) for r in ref))
    assert max_abs_diff(out, ref) <= 5e-2 * scale  # the engine's bf16 tolerance
    with pytest.raises(ValueError, match="fp32 or bf16"):
        OpenVinoNetwork(net, x.shape, precision="int4")


@needs_openvino
def test_two_threads_infer_at_once():
    from dsc_grasp_ros.core.openvino_backend import OpenVinoNetwork

    net = prepare_fast_model(tiny_net())
    inputs = [example_input((1, 4, 64, 64)) * s for s in (0.5, 1.0, 1.5, 2.0)]
    ov_net = OpenVinoNetwork(net, inputs[0].shape, threads=1)
    serial = [ov_net(x) for x in inputs]
    got = {}

    def work(i):
        for _ in range(5):
            got.setdefault(i, []).append(ov_net(inputs[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for i, outs in got.items():
        assert len(outs) == 5 and all(max_abs_diff(o, serial[i]) == 0.0 for o in outs)


def test_missing_openvino_names_the_install_command(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_openvino(name, *a, **k):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("No module named 'openvino'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    msg = openvino_missing()
    assert "pip install openvino==" in msg and "not installed" in msg


@needs_openvino
@pytest.mark.parametrize("background", [False, True])
def test_engine_openvino_backend_serves_the_same_maps(background):
    from dsc_grasp_ros.core.inference import InferenceEngine

    net = tiny_net()
    eng = InferenceEngine(net, "cpu", backend="openvino", threads=1)
    x = example_input((1, 4, 64, 64))
    eng.prepare(tuple(x.shape), background=background)
    first = eng(x)  # eager while a background build runs, or already OpenVINO
    assert eng.wait_ready(60)
    assert eng.backend == "openvino" and eng.backend_info["state"] == "compiled", eng.backend_info
    assert eng.backend_info["openvino"]["inference_precision"] == "f32"
    with torch.no_grad():
        ref = net.eval()(x)
    assert max_abs_diff(eng(x), ref) < 1e-4 and max_abs_diff(first, ref) < 1e-4
    other = example_input((1, 4, 32, 32))  # another shape runs the eager copy
    assert max_abs_diff(eng(other), net(other)) < 1e-4


def test_engine_openvino_missing_falls_back_to_torch_compile(monkeypatch):
    import dsc_grasp_ros.core.engine as engine_mod
    import dsc_grasp_ros.core.openvino_backend as ov_mod
    from dsc_grasp_ros.core.inference import InferenceEngine

    monkeypatch.setattr(ov_mod, "openvino_missing", lambda: "OpenVINO is not installed: pip install openvino==2026.4.1")
    calls = []

    def fake_compile(model, example, cache=None, tolerance=1e-3):  # stands in for torch.compile (minutes on CI)
        calls.append(tuple(example.shape))
        return model, {"compile_s": 0.0, "cache_dir": None, "reason": "", "parity": 0.0}

    monkeypatch.setattr(engine_mod, "compile_cpu", fake_compile)
    eng = InferenceEngine(tiny_net(), "cpu", backend="openvino", threads=1)
    eng.prepare((1, 4, 32, 32))
    assert calls == [(1, 4, 32, 32)]
    assert eng.backend == "compiled" and "pip install openvino" in eng.backend_info["openvino_reason"]


def test_precision_auto_is_bf16_only_through_openvino_on_a_bf16_cpu(monkeypatch):
    import dsc_grasp_ros.core.engine as engine_mod
    import dsc_grasp_ros.core.openvino_backend as ov_mod
    from dsc_grasp_ros.core.inference import InferenceEngine

    monkeypatch.delenv("DSC_GRASP_PRECISION", raising=False)
    monkeypatch.delenv("DSC_GRASP_BACKEND", raising=False)  # the test suite's eager default
    monkeypatch.setattr(ov_mod, "openvino_missing", lambda: "")
    monkeypatch.setattr(engine_mod, "cpu_supports_bf16", lambda: True)
    for backend, runs in (("openvino", "bf16"), ("auto", "bf16"), ("compiled", "fp32"), ("eager", "fp32")):
        eng = InferenceEngine(tiny_net(), "cpu", backend=backend, threads=1, precision="auto")
        assert eng.precision_info["runs"] == runs and eng.precision_info["requested"] == "auto", (backend, eng.precision_info)
        assert eng.precision_info["reason"].startswith("auto:")
    monkeypatch.setattr(engine_mod, "cpu_supports_bf16", lambda: False)
    eng = InferenceEngine(tiny_net(), "cpu", backend="openvino", threads=1, precision="auto")
    assert eng.precision_info["runs"] == "fp32" and "no native bfloat16" in eng.precision_info["reason"]
    monkeypatch.setattr(engine_mod, "cpu_supports_bf16", lambda: True)
    monkeypatch.setattr(ov_mod, "openvino_missing", lambda: "OpenVINO is not installed: pip install openvino==2026.4.1")
    eng = InferenceEngine(tiny_net(), "cpu", backend="auto", threads=1, precision="auto")
    assert eng.precision_info["runs"] == "fp32" and "not installed" in eng.precision_info["reason"]
    # a deployment's choice overrides auto (not an explicit setting)
    monkeypatch.setenv("DSC_GRASP_PRECISION", "bf16")
    assert InferenceEngine(tiny_net(), "cpu", backend="compiled", threads=1, precision="auto").precision_info["runs"] == "bf16"
    assert InferenceEngine(tiny_net(), "cpu", backend="compiled", threads=1, precision="fp32").precision_info["runs"] == "fp32"
    monkeypatch.setenv("DSC_GRASP_PRECISION", "fp16")
    with pytest.raises(ValueError, match="DSC_GRASP_PRECISION"):
        InferenceEngine(tiny_net(), "cpu", backend="compiled", threads=1, precision="auto")


@needs_openvino
def test_backend_auto_runs_openvino_on_cpu(monkeypatch):
    from dsc_grasp_ros.core.inference import InferenceEngine

    monkeypatch.delenv("DSC_GRASP_BACKEND", raising=False)  # the test suite's eager default
    eng = InferenceEngine(tiny_net(), "cpu", backend="auto", threads=1)
    eng.prepare((1, 4, 32, 32))
    assert eng.backend == "openvino" and eng.backend_info["state"] == "compiled", eng.backend_info
