"""Fast inference paths: BatchNorm folding + merged heads match the network, torch.compile matches
eager, a failing or disagreeing compile falls back to eager and says why, threads, cache folder."""

import logging
import os
import time

import pytest
import torch

from conftest import randomise_batchnorm
from dsc_grasp_ros.core.backends import (
    ExpMish,
    FastGraspNet,
    compile_cache_dir,
    compile_cpu,
    configure_threads,
    example_input,
    fold_batchnorm,
    max_abs_diff,
    prepare_fast_model,
    with_exp_mish,
)
from dsc_grasp_ros.core.inference import InferenceEngine
from dsc_grasp_ros.core.network import DSCGraspNet, DSCGraspNetConfig, dsc_graspnet


def randomised(net, seed=0):
    """Non-trivial BatchNorm statistics and affine parameters, so folding has something to fold."""
    torch.manual_seed(seed)
    return randomise_batchnorm(net)


def tiny_net(order="csp_first"):
    """A 4-level DSCGraspNet small enough to compile in seconds (same blocks, same graph shape)."""
    cfg = DSCGraspNetConfig(
        stem_channels=8,
        backbone=((8, 3, 1, True), (16, 3, 2, True), (16, 3, 2, True), (16, 5, 2, True)),
        upsample_order=order,
        up_channels=(16, 8, 8),
    )
    return randomised(DSCGraspNet(4, cfg))


def test_exp_mish_is_mish_over_the_whole_range():
    """The one-exponential form is the same function: small, large, negative, non-finite-prone inputs."""
    x = torch.cat([torch.linspace(-100, 100, 20001), torch.tensor([-1e30, -89.0, 0.0, 19.999, 20.0, 20.001, 88.8, 1e30])])
    ref, got = torch.nn.functional.mish(x), ExpMish()(x)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, ref, rtol=1e-6, atol=2e-6), float((got - ref).abs().max())
    assert got[-1] == 1e30 and got[-8].abs() < 1e-20  # x for large x, ~0 (not NaN) for very negative x


def test_with_exp_mish_swaps_every_mish_in_a_copy():
    net = prepare_fast_model(tiny_net())
    n_mish = sum(isinstance(m, torch.nn.Mish) for m in net.modules())
    swapped = with_exp_mish(net)
    assert n_mish > 10
    assert sum(isinstance(m, ExpMish) for m in swapped.modules()) == n_mish
    assert not any(isinstance(m, torch.nn.Mish) for m in swapped.modules())
    assert sum(isinstance(m, torch.nn.Mish) for m in net.modules()) == n_mish  # the source is untouched
    x = example_input((1, 4, 32, 32))
    with torch.no_grad():
        assert max_abs_diff(swapped(x), net(x)) < 1e-5


@pytest.mark.parametrize("order", ["csp_first", "eq5"])
def test_folded_fast_model_matches_the_network(order):
    torch.manual_seed(0)  # the weights too (randomised() seeds only the BatchNorm draws): not the order of the tests before
    net = randomised(dsc_graspnet("rgbd", upsample_order=order))
    fast = prepare_fast_model(net)
    assert isinstance(fast, FastGraspNet)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())  # all folded
    assert fast.head.out_channels == 4  # four heads -> one conv
    for x in (example_input((1, 4, 224, 224)), 0.3 * torch.randn(2, 4, 64, 96, generator=torch.Generator().manual_seed(1))):
        with torch.no_grad():
            ref, out = net(x), fast(x)
        assert max(float(r.abs().max()) for r in ref) > 0.05  # not trivially ~0
        assert [o.shape for o in out] == [r.shape for r in ref]
        assert max_abs_diff(ref, out) < 1e-4
    # the source network is untouched
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_fold_batchnorm_leaves_lone_batchnorm():
    seq = torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.Conv2d(3, 3, 1), torch.nn.BatchNorm2d(3)).eval()
    randomised(seq)
    folded = fold_batchnorm(seq)
    assert isinstance(folded[0], torch.nn.BatchNorm2d) and isinstance(folded[2], torch.nn.Identity)
    x = torch.randn(1, 3, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), seq(x), atol=1e-5, rtol=1e-5)


def test_engine_eager_matches_network_and_bad_backend_is_named():
    net = randomised(dsc_graspnet("d"))
    eng = InferenceEngine(net, "cpu", backend="eager", threads=0)
    eng.warmup(1, (64, 64), n=1)
    assert eng.backend == "eager"
    x = example_input((1, 1, 64, 64))
    with torch.no_grad():
        assert max_abs_diff(eng(x), net(x)) < 1e-4
    with pytest.raises(ValueError, match="backend must be one of"):
        InferenceEngine(net, "cpu", backend="tensorrt")


def test_compile_failure_falls_back_to_eager_and_says_why(monkeypatch, caplog):
    def broken_compile(*a, **k):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", broken_compile)
    net = tiny_net()
    eng = InferenceEngine(net, "cpu", backend="compiled", threads=0)
    with caplog.at_level(logging.WARNING, logger="dsc_grasp_ros.core.engine"):
        eng.warmup(4, (32, 32), n=1)
    assert eng.backend == "eager"
    assert "torch.compile failed (RuntimeError: no C++ compiler found)" in eng.backend_info["reason"]
    assert any("falling back to eager" in r.getMessage() and "no C++ compiler" in r.getMessage() for r in caplog.records)
    x = example_input((1, 4, 32, 32))
    with torch.no_grad():
        assert max_abs_diff(eng(x), net(x)) < 1e-4


def test_compiled_model_that_disagrees_is_not_used(monkeypatch):
    def wrong_compile(model, **k):
        return lambda x: tuple(o + 1.0 for o in model(x))  # "compiles" to something wrong

    monkeypatch.setattr(torch, "compile", wrong_compile)
    eng = InferenceEngine(tiny_net(), "cpu", backend="compiled", threads=0)
    eng.warmup(4, (32, 32), n=1)
    assert eng.backend == "eager" and "differ from eager" in eng.backend_info["reason"]


def test_cpp_wrapper_failure_falls_back_to_the_python_wrapper(monkeypatch):
    import torch._inductor.config as inductor_config

    seen = []

    def fake_compile(model, **k):  # the C++ wrapper fails to build; the Python one works
        seen.append(inductor_config.cpp_wrapper)
        if inductor_config.cpp_wrapper:
            raise RuntimeError("C++ wrapper: compiler error")
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    net = prepare_fast_model(tiny_net())
    compiled, info = compile_cpu(net, example_input((1, 4, 32, 32)))
    assert seen == [True, False]
    assert info["cpp_wrapper"] is False and info["reason"] == ""
    # what was compiled: a copy of net with the one-exponential Mish (net itself keeps nn.Mish)
    assert compiled is not net and any(isinstance(m, ExpMish) for m in compiled.modules())
    assert any(isinstance(m, torch.nn.Mish) for m in net.modules())
    assert "C++ wrapper: compiler error" in info["cpp_wrapper_error"]
    assert inductor_config.cpp_wrapper is False  # the setting is not left behind
    seen.clear()
    compiled, info = compile_cpu(net, example_input((1, 4, 32, 32)), cpp_wrapper=False)
    assert seen == [False] and info["cpp_wrapper"] is False


def test_compile_raises_dynamos_recompile_limit_for_many_models(monkeypatch):
    """Six models in one process (a benchmark of eq5 and csp_first models) need more than Dynamo's
    default 8 cache entries of the shared ``FastGraspNet.forward``; beyond it Dynamo quietly ran
    eager and warned on every frame (seen in a 9-policy ``dsc-grasp bench``)."""
    import torch._dynamo.config as dynamo_config

    from dsc_grasp_ros.core.backends import RECOMPILE_LIMIT

    # Dynamo's config module answers attributes through __getattr__: monkeypatch would delete the
    # setting on undo (a later compile then fails with "recompile_limit does not exist"), so the
    # setting is saved and restored by hand
    saved = dynamo_config.recompile_limit
    try:
        dynamo_config.recompile_limit = 8  # torch's default
        monkeypatch.setattr(torch, "compile", lambda model, **k: model)
        compiled, info = compile_cpu(prepare_fast_model(tiny_net()), example_input((1, 4, 32, 32)), cpp_wrapper=False)
        assert compiled is not None and info["reason"] == ""
        assert dynamo_config.recompile_limit == RECOMPILE_LIMIT >= 6 * 3  # 6 models x 3 input sizes
        dynamo_config.recompile_limit = 500  # a user's larger setting is kept
        compile_cpu(prepare_fast_model(tiny_net()), example_input((1, 4, 32, 32)), cpp_wrapper=False)
        assert dynamo_config.recompile_limit == 500
    finally:
        dynamo_config.recompile_limit = saved


COMPILE_SKIP = (
    "torch.compile (Inductor, C++ codegen) took 201 s for a 4-block network with a cold cache on this "
    "project's loaded 2-core CI machine; set DSC_GRASP_TEST_COMPILE=1 to run the compile parity tests"
)


def test_torch_compile_matches_eager_and_uses_the_cache_folder(tmp_path, monkeypatch):
    if os.environ.get("DSC_GRASP_TEST_COMPILE") != "1":
        pytest.skip(COMPILE_SKIP)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "elsewhere"))  # restored after the test
    net = prepare_fast_model(tiny_net())
    x = example_input((1, 4, 32, 32))
    t0 = time.perf_counter()
    compiled, info = compile_cpu(net, x, cache_dir=tmp_path / "cache")
    took = time.perf_counter() - t0
    if compiled is None and "failed" in info["reason"]:
        pytest.skip(f"torch.compile is unavailable here: {info['reason']}")
    print(f"tiny network compiled in {took:.1f} s")
    assert compiled is not None, info["reason"]
    assert info["parity"] < 1e-4
    with torch.inference_mode():
        assert max_abs_diff(compiled(x), net(x)) < 1e-4
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cache")
    assert any((tmp_path / "cache").rglob("*")), "Inductor wrote nothing to the cache folder"


def test_full_network_compiles_like_eager():
    if os.environ.get("DSC_GRASP_TEST_COMPILE") != "1":
        pytest.skip(COMPILE_SKIP)
    net = randomised(dsc_graspnet("rgbd"))
    eng = InferenceEngine(net, "cpu", backend="compiled", threads=0)
    eng.warmup(4, (224, 224), n=1)
    assert eng.backend == "compiled", eng.backend_info
    x = example_input((1, 4, 224, 224))
    with torch.no_grad():
        assert max_abs_diff(eng(x), net(x)) < 1e-4


def test_compile_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.delenv("DSC_GRASP_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache_dir() == tmp_path / "xdg" / "dsc_grasp_ros" / "torchinductor"
    monkeypatch.setenv("DSC_GRASP_CACHE_DIR", str(tmp_path / "ours"))
    assert compile_cache_dir() == tmp_path / "ours" / "torchinductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    assert compile_cache_dir() == tmp_path / "inductor"
    assert compile_cache_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_threads_setting(monkeypatch, caplog):
    import dsc_grasp_ros

    before = torch.get_num_threads()
    try:
        assert configure_threads(1)["threads"] == 1 == torch.get_num_threads()
        assert configure_threads(0)["threads"] == 1  # 0: leave as is
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            configure_threads(-2)
        monkeypatch.setattr(dsc_grasp_ros, "PASSIVE_OPENMP", False)  # torch imported first, spinning waits
        with caplog.at_level(logging.WARNING, logger="dsc_grasp_ros.core.backends"):
            configure_threads(2)
        assert any("spinning OpenMP waits" in r.getMessage() for r in caplog.records)
    finally:
        torch.set_num_threads(before)


def test_cuda_graph_path_matches_eager():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the CUDA-graph path (fp16, channels_last, pinned input) is not exercised here")
    net = randomised(dsc_graspnet("rgbd"))
    eng = InferenceEngine(net, "cuda", backend="compiled")
    eng.warmup(4, (224, 224), n=2)
    assert eng.backend == "cuda_graph", eng.backend_info
    x = example_input((1, 4, 224, 224))
    out = eng(x)
    assert all(o.device.type == "cuda" and o.dtype == torch.float32 for o in out)
    with torch.no_grad():
        ref = net(x)
    assert max_abs_diff([o.cpu() for o in out], ref) < 2e-2  # fp16
    out2 = eng(2 * x)  # a new frame does not overwrite the previous frame's outputs
    assert max_abs_diff([o.cpu() for o in out], ref) < 2e-2 and max_abs_diff(out2, out) > 0


def test_package_sets_passive_openmp_waiting_unless_the_user_did():
    import subprocess
    import sys

    code = "import dsc_grasp_ros, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == "ACTIVE"


def _gated_compile(monkeypatch, gate, served):
    """A stand-in for torch.compile whose first call (the compile) waits for ``gate``; every call of
    the "compiled" model is counted in ``served``."""
    def fake_compile(model, **k):
        def run(x):
            if not served:
                assert gate.wait(30), "the test never released the compile"
            served.append(tuple(x.shape))
            return model(x)
        return run

    monkeypatch.setattr(torch, "compile", fake_compile)


def test_background_compile_serves_eager_frames_then_swaps_in_the_compiled_model(monkeypatch):
    import threading

    gate, served = threading.Event(), []
    _gated_compile(monkeypatch, gate, served)
    net = tiny_net()
    eng = InferenceEngine(net, "cpu", backend="compiled", threads=0)
    eng.warmup(4, (32, 32), n=2, background=True)  # returns while the "compiler" is still busy
    assert eng.backend == "eager" and eng.backend_info["state"] == "compiling" and not eng.wait_ready(0.01)
    x = example_input((1, 4, 32, 32))
    with torch.no_grad():
        ref = net(x)
        for _ in range(3):  # frames while compiling: answered by the eager copy, none waits or is lost
            assert max_abs_diff(eng(x), ref) < 1e-4
    assert served == []
    gate.set()
    assert eng.wait_ready(30)
    assert eng.backend == "compiled" and eng.backend_info["state"] == "compiled" and eng.backend_info["reason"] == ""
    n = len(served)
    with torch.no_grad():
        assert max_abs_diff(eng(x), ref) < 1e-4
    assert len(served) == n + 1  # now the compiled model answers


def test_background_compile_of_a_replaced_model_is_dropped(monkeypatch):
    import threading

    gate, served = threading.Event(), []
    _gated_compile(monkeypatch, gate, served)
    eng = InferenceEngine(tiny_net(), "cpu", backend="compiled", threads=0)
    eng.prepare((1, 4, 32, 32), background=True)
    other = prepare_fast_model(tiny_net())
    eng.model = other  # e.g. a test oracle, or a reload: the compile of the old model must not come back
    gate.set()
    assert eng.wait_ready(30)
    assert eng.backend == "eager" and eng.backend_info["state"] == "eager"
    x = example_input((1, 4, 32, 32))
    with torch.no_grad():
        assert max_abs_diff(eng(x), other(x)) < 1e-6


def test_bf16_precision_runs_bfloat16_close_to_fp32(monkeypatch):
    from dsc_grasp_ros.core import engine as engine_mod

    monkeypatch.setattr(engine_mod, "cpu_supports_bf16", lambda: True)  # numerics only: emulated bf16 works anywhere
    net = randomised(tiny_net())
    eng = InferenceEngine(net, "cpu", backend="eager", threads=0, precision="bf16")
    assert eng.bf16 and eng.precision_info["runs"] == "bf16"
    x = example_input((1, 4, 32, 32))
    out = eng(x)
    assert all(o.dtype == torch.float32 for o in out)  # the maps stay fp32 for post-processing
    with torch.no_grad():
        ref = net(x)
    scale = max(float(r.abs().max()) for r in ref)
    assert 0 < max_abs_diff(out, ref) < 0.05 * scale  # not bit-identical (it is bf16), but close


def test_bf16_on_a_cpu_without_it_runs_fp32_and_says_why(monkeypatch, caplog):
    from dsc_grasp_ros.core import engine as engine_mod

    monkeypatch.setattr(engine_mod, "cpu_supports_bf16", lambda: False)
    net = tiny_net()
    with caplog.at_level(logging.WARNING, logger="dsc_grasp_ros.core.engine"):
        eng = InferenceEngine(net, "cpu", backend="eager", threads=0, precision="bf16")
    assert not eng.bf16 and eng.precision_info["runs"] == "fp32" and "no native bfloat16" in eng.precision_info["reason"]
    assert any("no native bfloat16" in r.getMessage() for r in caplog.records)
    x = example_input((1, 4, 32, 32))
    with torch.no_grad():
        assert max_abs_diff(eng(x), net(x)) < 1e-4
    with pytest.raises(ValueError, match="precision must be one of"):
        InferenceEngine(net, "cpu", precision="int4")


def test_backend_benchmark_times_fp32_and_bf16_side_by_side():
    from dsc_grasp_ros.bench.backend_latency import measure

    doc = measure(["csp_first"], ["eager"], [1], size=32, iters=2, warmup=0, progress=False, precisions=("fp32", "bf16"))
    names = list(doc["results"])
    assert names[0] == "csp_first/eager/1t" and len(names) == 2
    assert names[1] in ("csp_first/eager/1t/bf16", "csp_first/eager/1t/fp32")  # fp32 where the CPU has no native bf16
    assert all(r["median_ms"] > 0 for r in doc["results"].values())
