"""``dsc-grasp train --precision``: bfloat16 autocast on the CPU with fp32 master weights gives the
loss, the gradients and a short loss curve of fp32 within bfloat16's tolerance; ``auto`` resolves
by the CPU and keeps a resumed run's recorded precision."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from dsc_grasp_ros.cli import build_parser, main
from dsc_grasp_ros.core.network import dsc_graspnet
from dsc_grasp_ros.data import GraspDataset, collate, find_items
from dsc_grasp_ros.data.toy import write_toy_jacquard
from dsc_grasp_ros.training.config import cpu_bf16_supported, resolve_precision
from dsc_grasp_ros.training.loop import train_step
from dsc_grasp_ros.training.run_setup import _make_optimizer


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_jacquard(tmp_path_factory.mktemp("toy"), n_objects=3, per_object=2, height=96, width=128, seed=1)


@pytest.fixture(scope="module")
def batch(toy):
    ds = GraspDataset(find_items("jacquard-format", toy), "rgbd", input_size=64)
    return collate([ds[i] for i in range(4)])


class _NoScaler:
    """What ``torch.amp.GradScaler(enabled=False)`` does, spelled out."""

    def scale(self, loss):
        return loss

    def step(self, opt):
        opt.step()

    def update(self):
        pass


def _step(model, batch, precision, opt):
    torch.manual_seed(7)  # the same dropout masks in both precisions
    loss, _ = train_step(model, batch["x"], batch["y"], opt, _NoScaler(), "cpu", precision, "p-huber")
    return float(loss.detach())


def test_bf16_step_matches_fp32_loss_and_gradients(batch):
    torch.manual_seed(0)
    base = dsc_graspnet("rgbd").to(memory_format=torch.channels_last).train()
    grads, losses = {}, {}
    for precision in ("fp32", "bf16"):
        model = copy.deepcopy(base)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)  # keeps the weights: only loss and gradients are compared
        losses[precision] = _step(model, batch, precision, opt)
        grads[precision] = {n: p.grad.clone() for n, p in model.named_parameters()}
        assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
        assert all(p.grad.dtype == torch.float32 for p in model.parameters())
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=2e-2)  # 0.3-0.9 % apart measured (8-bit mantissa)
    g32, g16 = (torch.cat([g.flatten() for g in grads[k].values()]) for k in ("fp32", "bf16"))
    assert torch.isfinite(g16).all()
    assert float(g16.norm() / g32.norm()) == pytest.approx(1.0, abs=0.1)
    # bfloat16 keeps 8 significant bits: the heads' gradients agree closely; the encoder's, behind
    # BatchNorm layers that subtract nearly equal numbers, to a cosine of ~0.85-0.9 on this
    # freshly initialised network (0.88 as a whole)
    cos = float(torch.nn.functional.cosine_similarity(g32, g16, dim=0))
    assert cos > 0.8, cos
    for name in ("heads.quality.1.weight", "heads.width.1.weight"):
        c = float(torch.nn.functional.cosine_similarity(grads["fp32"][name].flatten(), grads["bf16"][name].flatten(), dim=0))
        assert c > 0.99, (name, c)


def test_bf16_loss_curve_has_the_shape_of_fp32(batch):
    torch.manual_seed(0)
    base = dsc_graspnet("rgbd").to(memory_format=torch.channels_last).train()
    curves = {}
    for precision in ("fp32", "bf16"):
        model = copy.deepcopy(base)
        opt = _make_optimizer("adam", model.parameters(), 1e-3)
        curves[precision] = [_step(model, batch, precision, opt) for _ in range(10)]
    a, b = curves["fp32"], curves["bf16"]
    assert a[-1] < 0.7 * a[0] and b[-1] < 0.7 * b[0], curves  # both learn the batch
    for x, y in zip(a, b):
        assert y == pytest.approx(x, rel=0.15), curves
    ratio_a, ratio_b = a[-1] / a[0], b[-1] / b[0]
    assert ratio_b == pytest.approx(ratio_a, abs=0.1), curves


def test_resolve_precision():
    native = "bf16" if cpu_bf16_supported() else "fp32"
    assert resolve_precision("auto", "cpu") == native
    assert resolve_precision("fp32", "cpu", recorded="bf16") == "fp32"  # asked for explicitly
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu", recorded="fp32") == "fp32"  # a resumed run keeps its precision
    assert resolve_precision("auto", "cuda") == "fp16" and resolve_precision("auto", "cuda", amp=False) == "fp32"
    assert resolve_precision("auto", "cpu", recorded="fp16") == native  # a CUDA run continued on a CPU
    with pytest.raises(ValueError, match="--precision"):
        resolve_precision("fp8", "cpu")
    ns = build_parser().parse_args(["train", "--dataset", "cornell", "--path", "x", "--out", "y"])
    assert ns.precision == "auto"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--dataset", "cornell", "--path", "x", "--out", "y", "--precision", "fp16"])


def test_resumed_run_keeps_its_precision(toy, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--dataset", "jacquard-format", "--path", str(toy), "--modality", "d", "--input-size", "32",
            "--batch-size", "2", "--workers", "0", "--no-progress", "--precise-bn", "1", "--out", str(run)]
    assert main(args + ["--epochs", "1", "--precision", "fp32"]) == 0
    assert json.loads((run / "config.json").read_text())["precision"] == "fp32"
    assert main(args + ["--epochs", "2", "--resume"]) == 0  # --precision auto: the run's fp32, not the CPU's choice
    assert json.loads((run / "config.json").read_text())["precision"] == "fp32"
    assert [h["precision"] for h in json.loads((run / "history.json").read_text())] == ["fp32", "fp32"]
    assert json.loads((run / "model.json").read_text())["training"]["precision"] == "fp32"
