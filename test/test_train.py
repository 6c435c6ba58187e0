"""Training on CPU, small and real: the loss falls, the CLI run folder is complete, resume and
export work, and a briefly trained model scores >= 90 % on the samples it was trained on
(labels, targets, decoding and metric agree end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dsc_grasp_ros.cli import main
from dsc_grasp_ros.data import GraspDataset, collate, find_items
from dsc_grasp_ros.data.toy import write_toy_jacquard
from dsc_grasp_ros.core.model_io import load_model
from dsc_grasp_ros.core.network import dsc_graspnet
from dsc_grasp_ros.training import grasp_loss
from dsc_grasp_ros.training.trainer import _make_optimizer


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_jacquard(tmp_path_factory.mktemp("toy"), n_objects=3, per_object=2, height=96, width=128, seed=1)


def test_a_few_ranger_steps_lower_the_loss(toy):
    torch.manual_seed(0)
    ds = GraspDataset(find_items("jacquard-format", toy), "rgbd", input_size=32)
    batch = collate([ds[i] for i in range(4)])
    model = dsc_graspnet("rgbd")
    opt = _make_optimizer("ranger", model.parameters(), 1e-3)
    losses = []
    model.train()
    for _ in range(8):
        loss, _ = grasp_loss(model(batch["x"]), batch["y"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses


def test_cli_train_resume_export_evaluate(toy, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--dataset", "jacquard-format", "--path", str(toy), "--modality", "d", "--split", "object",
            "--train-fraction", "0.67", "--input-size", "32", "--batch-size", "2", "--epochs", "1", "--workers", "0",
            "--no-progress", "--out", str(run), "--seed", "3"]
    assert main(args + ["--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for f in ("config.json", "split.json", "history.json", "summary.json", "eval_test.json", "model.pt", "model.json",
              "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run / f).is_file(), f
    assert any((run / "tb").iterdir())
    split = json.loads((run / "split.json").read_text())
    assert split["kind"] == "object" and len(split["test"]) == 2 and summary["count"] == 2
    assert {i.split("/")[0] for i in split["test"]}.isdisjoint({i.split("/")[0] for i in split["train"]})
    # an existing run is not overwritten; --resume continues it with the same split
    assert main(args) == 2
    assert main(args[:-4] + ["--epochs", "2", "--resume", "--out", str(run)]) == 0
    hist = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2] and hist[1]["step"] == 4
    assert json.loads((run / "split.json").read_text())["test"] == split["test"]
    capsys.readouterr()
    # dsc-grasp plot training reads the resumed history: both epochs, their steps and held-out scores
    png = tmp_path / "curve.png"
    assert main(["plot", "training", f"toy={run}", "--out", str(png), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    pts = doc["runs"][0]["points"]
    assert doc["runs"][0]["label"] == "toy" and [p["step"] for p in pts] == [2, 4]
    assert [p["accuracy"] for p in pts] == [h["test_accuracy"] for h in hist] and pts[1]["count"] == 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", "training", str(tmp_path / "nowhere"), "--out", str(png)]) == 2
    assert "nowhere: no history.json" in capsys.readouterr().err
    # the run's model loads like a shipped model; export re-writes it and adds ONNX
    model, meta = load_model(run / "model.pt")
    assert meta.modality == "d" and meta.input_size == 32 and meta.training["split"] == "object"
    assert "held_out_accuracy" in meta.metrics
    out = tmp_path / "exported" / "dsc_graspnet_d.pt"
    assert main(["export", str(run), "--out", str(out), "--onnx", "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert Path(written["onnx"]).is_file() and written["onnx_max_rel_diff"] < 1e-3
    load_model(out, "d")
    sample = find_items("jacquard-format", toy)[0]
    assert main(["predict", "--depth", sample.depth, "--rgb", sample.rgb, "--fx", "500", "--fy", "500",
                 "--model", str(out), "--json", "--top-k", "1"]) == 0
    assert "grasps" in json.loads(capsys.readouterr().out)
    # evaluate with the run's split scores exactly its held-out items
    assert main(["evaluate", "--dataset", "jacquard-format", "--path", str(toy), "--model", str(out),
                 "--split-file", str(run / "split.json"), "--json", "--save-images", str(tmp_path / "seen")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["count"] == 2 and [r["id"] for r in res["per_image"]] == split["test"]
    # --save-images: one picture per scored image, the grid, and the wrong ones' grid when there are any
    pics = res["images"]
    assert pics["per_image"] == 2 and Path(pics["grid"]).is_file() and len(list((tmp_path / "seen").glob("*.png"))) == 2 + 1 + ("wrong" in pics)
    assert ("wrong" in pics) == (res["correct"] < 2)
    assert 0.0 <= res["accuracy"] <= 1.0 and res["inference_ms"]["mean"] > 0


def test_cli_errors_are_clear(toy, tmp_path, capsys):
    assert main(["train", "--dataset", "cornell", "--path", str(toy), "--out", str(tmp_path / "r")]) == 2
    assert "no cornell samples" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "jacquard", "--path", str(toy), "--model", str(tmp_path / "none.pt")]) == 2
    assert "not found" in capsys.readouterr().err


def test_brief_training_reaches_90_percent_on_its_samples(tmp_path):
    """A miniature of the 224-px pipeline (48 px input, width scale and objects scaled alike):
    files -> readers -> ROI/prepare -> targets -> Ranger + P-Huber -> decode -> metric."""
    root = write_toy_jacquard(tmp_path / "data", n_objects=2, per_object=2, height=96, width=128, seed=1, size=1.6)
    ids = [it.id for it in find_items("jacquard-format", root)]
    split = tmp_path / "all.json"  # train and score on the same samples
    split.write_text(json.dumps({"format": "dsc_grasp_ros.split/1", "kind": "image", "train": ids, "test": ids}))
    from dsc_grasp_ros.training.trainer import TrainConfig, train

    size = 48
    summary = train(TrainConfig(
        dataset="jacquard-format", path=str(root), out=str(tmp_path / "run"), modality="rgbd", input_size=size,
        width_scale=150.0 * size / 224, epochs=60, batch_size=4, split_file=str(split), workers=0,
        progress=False, eval_every=10, seed=0,
        # The miniature was calibrated with the Eq. (5)-literal order. With the default csp_first
        # order it fits 3 of the 4 samples (measured with 20, 30, 40 and 60 epochs, seeds 0 and 1,
        # lr 1e-3 and 3e-3): at 48 px its deepest level is 6x6 and the only full-resolution layer
        # is the 3x3 head. Open question for the up-sampling-order comparison (README, "The network").
        # 60 epochs: at 20 the result hung on the dropout masks' draw (seeds 0/1/2 gave 4/4, 3/4, 2/4
        # with nn.Dropout and 3/4, 3/4, 3/4 with HeadDropout); at 60 both fit 4/4 with seeds 0 and 1.
        upsample_order="eq5",
    ))
    assert summary["count"] == 4
    assert summary["accuracy"] >= 0.9, summary


def test_ddp_with_torchrun_on_cpu(toy, tmp_path):
    """Two gloo processes (what torchrun does on a multi-GPU machine, with nccl there)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "dsc_grasp_ros.cli",
           "train", "--dataset", "jacquard-format", "--path", str(toy), "--modality", "d", "--input-size", "32",
           "--batch-size", "4", "--epochs", "1", "--workers", "0", "--no-progress", "--out", str(tmp_path / "ddp")]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr[-2000:]
    conf = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert conf["world_size"] == 2
    assert (tmp_path / "ddp" / "model.pt").is_file()
