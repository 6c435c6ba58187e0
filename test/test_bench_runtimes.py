"""dsc-grasp benchmark network with our network in other runtimes: onnxruntime beside the eager
path in one quick interleaved run (both rows, the parity column), the OpenVINO names only where
OpenVINO imports, and one error line with the install command when a requested runtime is missing.
No torch.compile runs here; OpenVINO is optional (its test is skipped without it)."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from dsc_grasp_ros import cli
from dsc_grasp_ros.bench import networks
from dsc_grasp_ros.commands import benchmark

from test_cli import _run


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_onnxruntime_beside_eager_with_its_parity(tmp_path):
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    rc, out, err = _run(["benchmark", "network", "--networks", "dsc-csp_first-eager", "dsc-csp_first-onnxruntime", "--iters", "2",
                         "--warmup", "0", "--threads", "1", "--no-progress", "--json", str(js), "--markdown", str(md)])
    assert rc == 0, err
    res = json.loads(js.read_text())
    assert list(res["networks"]) == ["dsc-csp_first-eager", "dsc-csp_first-onnxruntime"]
    eager, ort = res["networks"]["dsc-csp_first-eager"], res["networks"]["dsc-csp_first-onnxruntime"]
    assert all(s["n"] == 2 and s["median_ms"] > 0 for s in (eager, ort))
    assert eager["max_abs_diff_vs_eager"] == 0.0
    scale = ort["eager_output_scale"]
    assert scale > 0 and ort["max_abs_diff_vs_eager"] < 1e-3 * scale
    assert ort["runtime_info"]["intra_op_threads"] == 1 and ort["runtime_info"]["provider"] == "CPUExecutionProvider"
    assert ort["params"] == eager["params"] and "ran_instead" not in ort
    assert "max abs diff from eager" in md.read_text() and "| `dsc-csp_first-onnxruntime` |" in md.read_text()
    assert "diff eager" in out and "dsc-csp_first-onnxruntime" in out


def test_a_missing_openvino_is_one_error_line_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # what an environment without OpenVINO looks like
    rc, out, _ = _run(["benchmark", "network", "--networks", "list"])
    assert rc == 0 and "dsc-csp_first-onnxruntime" in out and "openvino" not in out
    assert "dsc-csp_first-openvino" not in networks.default_networks()
    rc, out, err = _run(["benchmark", "network", "--networks", "dsc-csp_first-eager", "dsc-csp_first-openvino-bf16",
                         "--iters", "1", "--warmup", "0", "--no-progress"])
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dsc-grasp benchmark network: error: ") and "dsc-csp_first-openvino-bf16" in lines[0]
    assert "needs openvino" in lines[0] and lines[0].endswith("pip install openvino==2026.4.1")


def test_int8_names_nncf_when_only_nncf_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "nncf", None)
    msg = networks.missing_runtime("dsc-eq5-openvino-int8")
    if "openvino" in dict(networks.missing_packages("openvino")):
        assert msg.endswith("pip install openvino==2026.4.1 nncf==3.4.0")
    else:
        assert "needs nncf," in msg and msg.endswith("pip install nncf==3.4.0")
    assert networks.missing_runtime("dsc-eq5-eager") is None and networks.missing_runtime("grconvnet3") is None
    with pytest.raises(networks.RuntimeMissing, match="nncf"):
        networks.measure(["dsc-eq5-openvino-int8"], torch.device("cpu"), iters=1, warmup=0, progress=False)


def test_names_help_and_install_pins_agree():
    assert networks.split_name("dsc-csp_first-openvino-int8") == ("csp_first", "openvino-int8")
    assert networks.split_name("dsc-eq5-compiled-bf16") == ("eq5", "compiled-bf16")
    assert networks.split_name("grconvnet3") is None
    every = networks.available_networks()
    assert "dsc-csp_first-onnxruntime" in every and "dsc-csp_first-compiled-bf16" in every
    assert not any((networks.split_name(n) or ("", ""))[1] in networks.RUNTIMES for n in networks.default_networks())
    rc, out, _ = _run(["benchmark", "network", "--help"])
    assert rc == 0
    for r in networks.RUNTIMES:
        assert f"dsc-<order>-{r} " in out, r
    pins = {req for reqs in networks.RUNTIME_PACKAGES.values() for mod, req in reqs if mod in ("openvino", "nncf")}
    assert f"pip install {' '.join(sorted(pins, reverse=True))}" in benchmark.NETWORK_EPILOG
    requirements = (networks.Path(__file__).resolve().parents[1] / "requirements.txt").read_text().split()
    assert {req for mod, req in networks.RUNTIME_PACKAGES["onnxruntime"]} <= set(requirements)
    # OpenVINO is a dependency (the engine's openvino backend); NNCF (int8 row only) stays optional
    assert {req for mod, req in networks.RUNTIME_PACKAGES["openvino"]} <= set(requirements)
    assert not any(r.startswith("nncf") for r in requirements)


def test_openvino_fp32_and_int8_compute_our_network():
    pytest.importorskip("openvino", reason="OpenVINO is optional (pip install openvino nncf)")
    pytest.importorskip("nncf", reason="NNCF is optional")
    cpu = torch.device("cpu")
    for name in ("dsc-csp_first-openvino", "dsc-csp_first-openvino-int8"):
        fn, x, info, _ = networks.build(name, cpu, None, 1, calibration=2)
        maps = fn(x)
        assert len(maps) == 4 and all(m.shape == (1, 1, 224, 224) for m in maps)
        assert info["runtime_info"]["threads"] == 1 and info["runtime_info"]["inference_precision"] == "f32"
        tol = 1e-3 if name.endswith("openvino") else 0.1  # int8: quantised, 2 calibration frames
        assert info["max_abs_diff_vs_eager"] < tol * info["eager_output_scale"], (name, info)
    assert info["runtime_info"]["calibration_inputs"] == 2 and info["runtime_info"]["nncf"]
    assert len(networks.calibration_inputs(3, (1, 4, 224, 224))) == 3
