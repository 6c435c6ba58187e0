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
