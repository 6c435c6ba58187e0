"""``dsc-grasp gpu-check``: its dry run on the CPU runs every step and writes the one JSON report
the GPU run will write; on a machine without CUDA it refuses the GPU run, saying why."""

from __future__ import annotations

import json

import torch

from dsc_grasp_ros.cli import main


def test_dry_run_on_cpu_writes_every_step(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert main(["gpu-check", "--device", "cpu", "--quick", "--skip", "node", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    steps = rep["steps"]
    assert list(steps) == ["env", "tests", "network", "core", "node", "train"]
    assert steps["node"] == {"ok": None, "skipped": "--skip"}
    assert all(steps[s]["ok"] is True for s in ("env", "tests", "network", "core", "train")), steps
    assert steps["env"]["result"]["cuda_available"] == torch.cuda.is_available()
    eager = steps["network"]["result"]["backends"]["eager"]
    assert eager["runs"] == "eager" and eager["max_abs_diff_vs_cpu_fp32"] < 1e-4 and eager["median_ms"] > 0
    assert set(steps["core"]["result"]["stages"]) >= {"preprocess", "network", "postprocess", "geometry"}
    tests = steps["tests"]["result"]
    assert tests["returncode"] == 0 and tests["counts"].get("passed", 0) + tests["counts"].get("skipped", 0) >= 2
    if not torch.cuda.is_available():  # the CUDA-graph test says why it did not run
        assert any("no CUDA device" in s for s in tests["skipped"])
    assert steps["train"]["result"]["steps"] == 2 and steps["train"]["result"]["amp"] is False
    assert "report:" in capsys.readouterr().out


def test_refuses_cuda_without_a_gpu_and_unknown_steps(tmp_path, capsys):
    if not torch.cuda.is_available():
        assert main(["gpu-check", "--out", str(tmp_path / "x.json")]) == 2
        assert "no CUDA device here" in capsys.readouterr().err
    assert main(["gpu-check", "--device", "cpu", "--skip", "nodes", "--out", str(tmp_path / "y.json")]) == 2
    assert "unknown step(s) in --skip: ['nodes']" in capsys.readouterr().err
    assert not (tmp_path / "y.json").exists()
