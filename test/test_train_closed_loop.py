"""``dsc-grasp train --closed-loop-trials N``: a closed-loop check after every evaluation selects
the exported checkpoint by grasp success (image accuracy does not see an unusable width head)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsc_grasp_ros.data.toy import write_toy_jacquard
from dsc_grasp_ros.training import loop, selection
from dsc_grasp_ros.training import trainer as tr
from dsc_grasp_ros.training.trainer import TrainConfig, train


def _cfg(tmp_path, **kw):
    root = write_toy_jacquard(tmp_path / "toy", n_objects=3, per_object=2, height=96, width=128, seed=5)
    base = dict(dataset="jacquard-format", path=str(root), modality="d", split="object", train_fraction=0.67, input_size=32,
                epochs=3, batch_size=2, workers=0, precise_bn=0, progress=False, out=str(tmp_path / "run"), device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def test_checkpoint_selected_by_closed_loop_success_not_accuracy(tmp_path, monkeypatch):
    """Scripted check results (the simulator is exercised below): the exported model is the epoch
    with the best grasp success, whatever the held-out accuracy says; the card and history record it."""
    script = iter([0.2, 0.6, 0.1])
    calls = []

    def fake(cfg, model, out):
        calls.append(out)
        s = next(script)
        return {"success": s, "successes": int(10 * s), "trials": 10, "outcomes": {"success": int(10 * s)}, "objects": []}

    monkeypatch.setattr(selection, "_closed_loop", fake)
    monkeypatch.setattr("dsc_grasp_ros.training.closed_loop.check_objects", lambda n=None, root=None: ["a", "b"])
    summary = train(_cfg(tmp_path, closed_loop_trials=1))
    assert len(calls) == 3
    assert summary["best_epoch"] == 2
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["closed_loop_success"] for h in hist] == [0.2, 0.6, 0.1]
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["metrics"]["closed_loop_check"]["success"] == 0.6
    assert meta["training"]["best_epoch"] == 2 and meta["training"]["closed_loop_trials"] == 1


def test_bad_closed_loop_trials_is_refused(tmp_path):
    with pytest.raises(ValueError, match="closed-loop-trials must be >= 0"):
        train(_cfg(tmp_path, closed_loop_trials=-1, epochs=1))


def test_closed_loop_check_runs_the_benchmark_on_training_objects(tmp_path):
    """The real check: a model file through the detector and the simulated Panda, on training
    objects only (never the benchmark set, never the v2 held-out objects)."""
    pytest.importorskip("pybullet", reason="the closed-loop check needs pybullet")
    from dsc_grasp_ros.sim import mesh_objects as mo
    from dsc_grasp_ros.sim.mesh_objects import is_held_out
    from dsc_grasp_ros.training.closed_loop import check_objects, closed_loop_check

    try:
        objs = check_objects()
    except mo.ObjectsNotFound as e:
        pytest.skip(f"the shared object meshes are absent: {e}")
    assert len(objs) == 10 and len(set(objs)) == 10
    bench = set(mo.resolve_names("benchmark"))
    assert not bench & set(objs) and not any(is_held_out(o) for o in objs)
    res = closed_loop_check(Path(__file__).resolve().parents[1] / "models" / "dsc_graspnet_rgbd.pt", 1, objects=objs[:2])
    assert res["trials"] == 2 and 0 <= res["successes"] <= 2 and sum(res["outcomes"].values()) == 2
    assert res["objects"] == objs[:2]


def test_training_with_the_real_check(tmp_path, monkeypatch):
    """One epoch of a toy model with the real check (one training object, one scene): the epoch's
    weights reach the simulator through a model file and the result is recorded."""
    pytest.importorskip("pybullet", reason="the closed-loop check needs pybullet")
    from dsc_grasp_ros.sim import mesh_objects as mo
    from dsc_grasp_ros.training import closed_loop

    try:
        mo.objects_root()
    except mo.ObjectsNotFound as e:
        pytest.skip(f"the shared object meshes are absent: {e}")
    monkeypatch.setattr(closed_loop, "CLOSED_LOOP_OBJECTS", 1)
    summary = train(_cfg(tmp_path, closed_loop_trials=1, epochs=1))
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert hist[0]["closed_loop_trials"] == 1 and sum(hist[0]["closed_loop_outcomes"].values()) == 1
    assert summary["best_epoch"] == 1
    assert (tmp_path / "run" / "checkpoints" / "closed_loop.json").is_file()


# --------------------------------------------------------------------------- distillation (--teacher)
def _teacher(tmp_path, modality="d", depth_ref="plane", order="eq5", seed=7):
    import torch

    from dsc_grasp_ros.core.model_io import ModelMetadata, save_model
    from dsc_grasp_ros.core.network import dsc_graspnet
    from dsc_grasp_ros.core.preprocess import NORMALISATIONS

    torch.manual_seed(seed)
    net = dsc_graspnet(modality, upsample_order=order).eval()
    path = tmp_path / f"teacher_{modality}_{depth_ref}.pt"
    save_model(path, net, ModelMetadata(modality=modality, input_size=32, normalisation=NORMALISATIONS[depth_ref]))
    return path


def test_distillation_trains_on_the_teachers_maps(tmp_path, monkeypatch):
    """With --teacher every loss call gets the teacher's maps of that very batch as the target
    (quality clipped to [0, 1]), not the labels; the labels still score the held-out part."""
    import torch

    from dsc_grasp_ros.core.model_io import load_model

    t_path = _teacher(tmp_path)
    teacher, _ = load_model(t_path)
    seen = []
    real_loss = loop.grasp_loss

    def spy(pred, target, kind="p-huber"):
        seen.append(target.detach().clone())
        return real_loss(pred, target, kind)

    xs = []
    real_targets = loop.teacher_targets

    def spy_targets(t, x):
        xs.append(x.detach().clone())
        y, keep = real_targets(t, x)
        assert keep.all()  # an untrained teacher's maps stay near zero: every image is kept
        return y, keep

    monkeypatch.setattr(loop, "grasp_loss", spy)
    monkeypatch.setattr(loop, "teacher_targets", spy_targets)
    summary = train(_cfg(tmp_path, teacher=str(t_path), upsample_order="csp_first", epochs=1))
    assert len(seen) == len(xs) == 2  # 4 training images, batch 2
    for x, y in zip(xs, seen):
        with torch.no_grad():
            q, cos, sin, wid = teacher(x)
        torch.testing.assert_close(y, torch.cat([q.clamp(0, 1), cos, sin, wid], 1))
        assert not torch.equal(y[:, 0] > 0, y[:, 0] > 0.999)  # not a 0/1 label map
    assert summary["count"] == 2  # evaluation on the labelled held-out images
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["training"]["teacher"] and meta["training"]["teacher"].endswith("teacher_d_plane.pt")  # provenance


def test_images_outside_the_teachers_range_add_no_gradient(tmp_path, monkeypatch):
    """An image on which the teacher's maps leave its label range (the shipped RGB-D model gives
    quality 8.7 on a moire floor) is left out: the target there is the student's own output."""
    import torch

    class Exploding(torch.nn.Module):
        def forward(self, x):
            n = x.shape[0]
            q = torch.full((n, 1, *x.shape[2:]), 0.5)
            q[0] = 8.7  # the first image of every batch: out of range
            cos = torch.zeros_like(q)
            cos[1, :, :2, :2] = 3.0  # the second: out of range on a few pixels only (kept)
            wid = torch.full_like(q, 0.2)
            if n > 2:  # the third: width out of range only where it sees no grasp (kept)
                q[2, :, :16] = 0.0
                wid[2, :, :16] = -0.8
            return q, cos, torch.zeros_like(q), wid

    x = torch.zeros(3, 1, 32, 32)
    y, keep = tr.teacher_targets(Exploding(), x)
    assert keep.tolist() == [False, True, True]
    assert float(y[0, 0].max()) == 1.0  # still clipped where it is used
    y_nan, keep_nan = tr.teacher_targets(lambda x: (torch.full((1, 1, 4, 4), float("nan")),) * 4, torch.zeros(1, 1, 4, 4))
    assert keep_nan.tolist() == [False] and torch.isfinite(y_nan).all()

    seen = []
    real_loss = loop.grasp_loss

    def spy(pred, target, kind="p-huber"):
        total, parts = real_loss(pred, target, kind)
        seen.append([float(torch.autograd.grad(total, p, retain_graph=True)[0][0].abs().sum()) for p in pred[:1]])
        return total, parts

    monkeypatch.setattr(loop, "grasp_loss", spy)
    monkeypatch.setattr(tr, "load_teacher", lambda cfg, dev: Exploding())
    train(_cfg(tmp_path, teacher="unused.pt", upsample_order="csp_first", epochs=1))
    assert seen and all(g[0] == 0.0 for g in seen)  # no gradient from the first image of any batch
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert hist[0]["teacher_dropped_images"] == len(seen)


def test_teacher_must_see_the_students_input(tmp_path):
    with pytest.raises(ValueError, match="modality is 'rgbd', the student's 'd'"):
        train(_cfg(tmp_path, teacher=str(_teacher(tmp_path, modality="rgbd")), epochs=1))
    with pytest.raises(ValueError, match="depth reference is 'mean', the student's 'plane'"):
        train(_cfg(tmp_path, teacher=str(_teacher(tmp_path, depth_ref="mean")), epochs=1, out=str(tmp_path / "r2")))


def test_candidates_command_lists_accepted_and_rejected(tmp_path, capsys):
    """dsc-grasp candidates: one JSON line per scene and model with every candidate, and a
    rejected one names its reason (here: a gripper that opens 1 mm rejects everything as too wide)."""
    pytest.importorskip("pybullet", reason="dsc-grasp candidates needs pybullet")
    from dsc_grasp_ros import cli
    from dsc_grasp_ros.sim import mesh_objects as mo

    try:
        mo.objects_root()
    except mo.ObjectsNotFound as e:
        pytest.skip(f"the shared object meshes are absent: {e}")
    root = Path(__file__).resolve().parents[1]
    model = str(root / "models" / "dsc_graspnet_rgbd.pt")
    assert cli.main(["candidates", model, "--objects", "1", "--trials", "1", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(lines) == 1 and lines[0]["model"] == model
    assert lines[0]["accepted"] and all(0 <= q <= 1 and mm > 0 for q, mm in lines[0]["accepted"][:1])
    total = len(lines[0]["accepted"]) + len(lines[0]["rejected"])
    assert cli.main(["candidates", model, "--objects", "1", "--trials", "1", "--json", "--max-opening", "0.001"]) == 0
    narrow = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")][0]
    assert narrow["accepted"] == [] and len(narrow["rejected"]) == total
    assert {c for c, _ in narrow["rejected"]} <= {"too_wide", "no_valid_depth"} and "too_wide" in {c for c, _ in narrow["rejected"]}
