"""Training-side ``scale`` protocol (the node's ROI on synthetic images with intrinsics) and
``--mix`` (a second dataset's training ids in the same epochs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsc_grasp_ros.data import GraspDataset, find_items
from dsc_grasp_ros.data.toy import write_toy_cornell, write_toy_jacquard
from dsc_grasp_ros.core.inference import DetectorConfig, GraspDetector
from dsc_grasp_ros.core.model_io import ModelMetadata, save_model
from dsc_grasp_ros.core.network import dsc_graspnet
from dsc_grasp_ros.core.preprocess import ROI, protocol_roi, scale_roi
from dsc_grasp_ros.training.trainer import parse_mix


def _add_cameras(root, f=(300.0, 302.0)):
    """camera.json next to every toy sample, as our simulator writes it."""
    for g in sorted(root.rglob("*_grasps.txt")):
        K = [[f[0], 0.0, 80.0], [0.0, f[1], 60.0], [0.0, 0.0, 1.0]]
        g.with_name(g.name.replace("_grasps.txt", "_camera.json")).write_text(json.dumps({"K": K, "image_size": [160, 120]}))


@pytest.fixture
def toy_cam(tmp_path):
    root = write_toy_jacquard(tmp_path / "sim", n_objects=2, per_object=2, height=120, width=160, seed=3)
    _add_cameras(root)
    return root


def test_protocol_roi_scale_is_scale_roi_and_falls_back_to_paper():
    depth = np.full((120, 160), 0.7, np.float32)
    K = [[300.0, 0, 80], [0, 302.0, 60], [0, 0, 1]]
    got = protocol_roi("scale", "jacquard", 120, 160, 32, K, depth, 900.0)
    assert got == scale_roi(120, 160, 300.0, 302.0, 0.7, 900.0, 32)
    # side = 32 * 300 / (0.7 * 900) = 15.2 px -> 16 (quantum 8): objects at the trained scale
    assert (got.w, got.h) == (16, 16)
    assert protocol_roi("scale", "jacquard", 120, 160, 32) == ROI.centred_square(120, 160, 32)  # no K: paper
    assert protocol_roi("scale", "cornell", 480, 640, 224) == protocol_roi("paper", "cornell", 480, 640, 224)


def test_scale_protocol_crops_what_the_node_crops(toy_cam, tmp_path):
    """One concept, one place: the training crop of a synthetic image equals the detector's ROI
    for the same frame and intrinsics, for every modality (an RGB model crops by the depth too)."""
    items = find_items("jacquard-format", toy_cam, depth="stereo")
    assert all(it.camera for it in items)
    px = 700.0
    model = dsc_graspnet("rgbd")
    save_model(tmp_path / "m.pt", model, ModelMetadata(modality="rgbd", input_size=32, net_px_per_metre=px))
    det = GraspDetector(DetectorConfig(model_path=str(tmp_path / "m.pt"), device="cpu", roi_mode="scale", backend="eager"))
    for modality in ("rgbd", "rgb"):
        ds = GraspDataset(items, modality, 32, protocol="scale", net_px_per_metre=px)
        for i, it in enumerate(items):
            rgb, depth, _ = ds.load(i)
            from dsc_grasp_ros.data.formats import read_depth

            d = read_depth(it.depth)
            K = json.loads(open(it.camera).read())["K"]
            want = det.roi_for(120, 160, np.asarray(K), d)
            base = protocol_roi("scale", it.format, 120, 160, 32, np.asarray(K), d, px)
            assert (base.x, base.y, base.w, base.h) == (want.x, want.y, want.w, want.h)
            x, rects = ds.sample(i)
            # the rectangles were mapped through that ROI: the box centre lands at its network pixel
            full = np.loadtxt(it.grasps, delimiter=";")
            u_net = (full[1, 0] - base.x) * 32 / base.w
            assert rects[1][0] == pytest.approx(u_net, abs=0.6)
    # the scale changes the crop: a larger px/m is a smaller ROI
    small = protocol_roi("scale", "jacquard", 120, 160, 32, K, d, 2 * px)
    assert small.w < want.w


def test_parse_mix_and_its_errors():
    m = parse_mix("cornell:../shared/data/cornell,split=s.json,repeat=8,augment=on")
    assert m == {"dataset": "cornell", "path": "../shared/data/cornell", "split": "s.json", "repeat": 8, "protocol": None,
                 "object_map": None, "depth": None, "augment": "on"}
    for bad, msg in [("cornell", "DATASET:PATH"), ("nope:/x", "DATASET:PATH"), ("cornell:", "no PATH"),
                     ("cornell:/x,repeat=0", ">= 1"), ("cornell:/x,repeat=a", "integer"), ("cornell:/x,colour=1", "key=value"),
                     ("cornell:/x,augment=maybe", "augment")]:
        with pytest.raises(ValueError, match=msg):
            parse_mix(bad)


def test_cli_train_with_mix_uses_only_the_split_training_ids(toy_cam, tmp_path, capsys):
    from dsc_grasp_ros.cli import main

    cornell = write_toy_cornell(tmp_path / "cornell", n=4, seed=2)
    items = find_items("cornell", cornell)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"format": "dsc_grasp_ros.split/1", "kind": "image", "train": [items[0].id, items[1].id],
                                 "test": [items[2].id, items[3].id]}))
    out = tmp_path / "run"
    args = ["train", "--dataset", "jacquard-format", "--path", str(toy_cam), "--depth", "stereo", "--modality", "d",
            "--split", "object", "--train-fraction", "0.5", "--protocol", "scale", "--net-px-per-metre", "650",
            "--mix", f"cornell:{cornell},split={split},repeat=3", "--input-size", "32", "--epochs", "1",
            "--batch-size", "2", "--workers", "0", "--precise-bn", "0", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "mixing in cornell" in err and "2 training images x 3" in err
    meta = json.loads((out / "model.json").read_text())
    assert meta["net_px_per_metre"] == 650.0
    assert meta["training"]["protocol"] == "scale"
    assert meta["training"]["mix"][0]["repeat"] == 3 and meta["training"]["mix"][0]["dataset"] == "cornell"
    # 2 synthetic training images + 2 Cornell training ids x 3 = 8 samples = 4 steps of batch 2
    hist = json.loads((out / "history.json").read_text())
    assert hist[-1]["step"] == 4
    assert main(args[:-2] + ["--mix", "cornell:/no/such/folder", "--out", str(tmp_path / "r2")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_frame_the_node_would_skip_is_skipped_in_training_and_named_in_evaluation(tmp_path):
    """A stereo depth with no valid pixel in the crop (one view of the first v2 set had that):
    the training dataset takes the next sample and warns once; evaluation names the sample."""
    from dsc_grasp_ros.data.formats import write_depth
    from dsc_grasp_ros.core.preprocess import InputError

    root = write_toy_jacquard(tmp_path / "sim", n_objects=1, per_object=3, height=96, width=128, seed=4)
    items = find_items("jacquard-format", root, depth="stereo")
    write_depth(items[0].depth, np.full((96, 128), -1.0, np.float32))  # all holes
    train = GraspDataset(items, "rgbd", 32, skip_invalid=True)
    with pytest.warns(UserWarning, match=f"{items[0].id} skipped"):
        s = train[0]
    assert s["index"] == 1 and s["x"].shape == (4, 32, 32)
    assert list(train.skipped) == [items[0].id]
    assert train[2]["index"] == 2  # the others are untouched
    with pytest.raises(InputError, match=f"{items[0].id}: depth has no valid pixel"):
        GraspDataset(items, "rgbd", 32)[0]


def test_max_opening_clips_training_labels_in_gripper_terms(toy_cam, tmp_path, capsys):
    """--max-opening: training width labels never exceed the gripper's opening at the model's scale
    (the node would reject such a grasp as too wide); held-out labels keep their width."""
    from dsc_grasp_ros.training.trainer import max_opening_px

    assert max_opening_px(None, 536.0) is None
    assert max_opening_px(0.08, 500.0) == pytest.approx(40.0)
    with pytest.raises(ValueError, match="max-opening"):
        max_opening_px(0.0, 500.0)
    items = find_items("jacquard-format", toy_cam, depth="stereo")
    free = GraspDataset(items, "d", 32, protocol="scale", net_px_per_metre=700.0)
    _, r_free = free.sample(0)
    limit = 0.6 * float(r_free[:, 3].max())  # labels wider than this exist
    assert (r_free[:, 3] > limit + 1e-6).any()
    clipped = GraspDataset(items, "d", 32, protocol="scale", net_px_per_metre=700.0, max_opening_px=limit)
    _, r = clipped.sample(0)
    np.testing.assert_allclose(r[:, 3], np.minimum(r_free[:, 3], limit), rtol=1e-6)
    np.testing.assert_allclose(r[:, :3], r_free[:, :3])  # only the opening changes
    _, r_zoom = clipped.sample(0, zoom=0.8)  # a zoom magnifies the view: the limit grows with it
    assert r_zoom[:, 3].max() == pytest.approx(min(limit / 0.8, free.sample(0, zoom=0.8)[1][:, 3].max()), rel=1e-6)
    y = clipped.targets(r)
    assert y[3].max() <= limit / clipped.width_scale + 1e-6
    with pytest.raises(ValueError, match="max_opening_px"):
        GraspDataset(items, "d", 32, max_opening_px=0.0)

    from dsc_grasp_ros.cli import main

    out = tmp_path / "run"
    args = ["train", "--dataset", "jacquard-format", "--path", str(toy_cam), "--depth", "stereo", "--modality", "d",
            "--split", "object", "--train-fraction", "0.5", "--protocol", "scale", "--net-px-per-metre", "650",
            "--max-opening", "0.05", "--input-size", "32", "--epochs", "1", "--batch-size", "2", "--workers", "0",
            "--precise-bn", "0", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    assert "clipped to the gripper's 50 mm opening: 32.5 network px at 650.0 px/m" in capsys.readouterr().err
    assert json.loads((out / "model.json").read_text())["training"]["max_opening"] == 0.05
