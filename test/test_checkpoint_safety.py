"""Checkpoints a user may hand us load with ``torch.load(weights_only=True)``.

A crafted ``checkpoints/best.pt`` / ``last.pt`` whose unpickling would run code (here: create a
marker file) must be refused by ``dsc-grasp export`` and ``train --resume`` with a clear message,
and the code must never run. Real checkpoints store only tensors and plain data, so
``weights_only=True`` suffices; a ``last.pt`` of the earlier format (numpy RNG state) still resumes.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from dsc_grasp_ros.cli import main
from dsc_grasp_ros.data.toy import write_toy_jacquard


class RunsCode:
    """Unpickling this calls ``open(marker, "w")``: it creates a file (any code could run instead)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("ck")
    toy = write_toy_jacquard(base / "toy", n_objects=3, per_object=2, height=96, width=128, seed=1)
    run = base / "run"
    args = ["train", "--dataset", "jacquard-format", "--path", str(toy), "--modality", "d", "--split", "object",
            "--train-fraction", "0.67", "--input-size", "32", "--batch-size", "2", "--epochs", "1", "--workers", "0",
            "--no-progress", "--out", str(run), "--seed", "3"]
    assert main(args) == 0
    return run, args


def _copy(run, dst):
    shutil.copytree(run, dst)
    return dst


def test_real_checkpoints_hold_only_weights_only_types(run_dir):
    run, _ = run_dir
    for name in ("best.pt", "last.pt"):
        ck = torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert "model" in ck


def test_export_refuses_a_crafted_checkpoint(run_dir, tmp_path, capsys):
    run = _copy(run_dir[0], tmp_path / "run")
    marker = tmp_path / "code_ran"
    good = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    torch.save({"model": good["model"], "epoch": 1, "accuracy": RunsCode(marker)}, run / "checkpoints" / "best.pt")
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert not marker.exists(), "unpickling ran code"
    assert "best.pt" in err and "weights_only" in err and "not loaded" in err, err


def test_resume_refuses_a_crafted_checkpoint(run_dir, tmp_path, capsys):
    run, args = run_dir
    run = _copy(run, tmp_path / "run")
    marker = tmp_path / "code_ran"
    torch.save({"model": {}, "epoch": 0, "step": RunsCode(marker)}, run / "checkpoints" / "last.pt")
    capsys.readouterr()
    rc = main(args[:-4] + ["--epochs", "2", "--resume", "--out", str(run)])
    err = capsys.readouterr().err
    assert rc == 2 and not marker.exists(), err
    assert "last.pt" in err and "not loaded" in err, err


def test_an_earlier_last_pt_with_numpy_rng_state_still_resumes(run_dir, tmp_path):
    run, args = run_dir
    run = _copy(run, tmp_path / "run")
    path = run / "checkpoints" / "last.pt"
    ck = torch.load(path, weights_only=True)
    ck["rng"]["numpy"] = np.random.get_state()  # what checkpoints stored before: a numpy array in a tuple
    torch.save(ck, path)
    assert main(args[:-4] + ["--epochs", "2", "--resume", "--out", str(run)]) == 0
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2]
