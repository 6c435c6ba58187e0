"""Resume across a stop continues the curve: a run stopped after an epoch and resumed ends with the
step count, weights, optimiser state and history of the same run trained without the stop; a run
stopped mid-epoch (``--max-steps``, as ``--max-minutes`` does) keeps its step count and optimiser
state."""

from __future__ import annotations

import json

import pytest
import torch

from dsc_grasp_ros.cli import main
from dsc_grasp_ros.data.toy import write_toy_jacquard


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_jacquard(tmp_path_factory.mktemp("toy"), n_objects=3, per_object=2, height=96, width=128, seed=1)


def _args(toy, run, *more):
    return ["train", "--dataset", "jacquard-format", "--path", str(toy), "--modality", "d", "--input-size", "32",
            "--batch-size", "2", "--workers", "0", "--no-progress", "--precise-bn", "1", "--precision", "fp32",
            "--seed", "5", "--out", str(run), *more]


def _last(run):
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)


def _assert_same(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def _optimiser_steps(ck) -> set:
    return {int(s["step"]) for s in ck["optimizer"]["state"].values() if "step" in s}


def test_resume_after_an_epoch_continues_the_curve_exactly(toy, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(_args(toy, whole, "--epochs", "3")) == 0
    assert main(_args(toy, split, "--epochs", "1")) == 0
    assert main(_args(toy, split, "--epochs", "3", "--resume")) == 0  # two invocations after the first
    a, b = _last(whole), _last(split)
    assert a["step"] == b["step"] == 3 * 2 and a["epoch"] == b["epoch"] == 2  # 5 training images: 2 full batches of 2
    _assert_same(a["model"], b["model"], "model")
    _assert_same(a["optimizer"], b["optimizer"], "optimizer")
    assert _optimiser_steps(b) == {6}
    ha = json.loads((whole / "history.json").read_text())
    hb = json.loads((split / "history.json").read_text())
    keys = ("epoch", "step", "train_loss", "test_accuracy")
    assert [[h[k] for k in keys] for h in ha] == [[h[k] for k in keys] for h in hb]


def test_resume_after_a_mid_epoch_stop_keeps_step_count_and_optimiser_state(toy, tmp_path):
    run = tmp_path / "run"
    assert main(_args(toy, run, "--epochs", "100", "--batch-size", "1", "--max-steps", "2")) == 0
    ck = _last(run)
    assert ck["step"] == 2 and _optimiser_steps(ck) == {2}
    assert main(_args(toy, run, "--epochs", "100", "--batch-size", "1", "--max-steps", "5", "--resume")) == 0
    ck2 = _last(run)
    assert ck2["step"] == 5 and _optimiser_steps(ck2) == {5}  # continued, not restarted
    hist = json.loads((run / "history.json").read_text())
    assert [h["step"] for h in hist] == [2, 5] and [h["epoch"] for h in hist] == [1, 2]
