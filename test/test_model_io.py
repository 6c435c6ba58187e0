"""Model files: round trip, and every bad-file case is an error naming the problem."""

import json

import numpy as np
import pytest
import torch

from conftest import randomise_batchnorm
from dsc_grasp_ros.core.model_io import ModelError, ModelMetadata, default_model_path, load_model, save_model
from dsc_grasp_ros.core.network import dsc_graspnet
from dsc_grasp_ros.core.onnx_export import OnnxGraspNet, check_parity, export_onnx


def randomised(modality="rgbd", seed=0):
    """A network with non-trivial BatchNorm statistics so outputs are far from zero."""
    torch.manual_seed(seed)
    return randomise_batchnorm(dsc_graspnet(modality))


@pytest.fixture
def saved(tmp_path):
    net = randomised()
    path = save_model(tmp_path / "m.pt", net, ModelMetadata("rgbd", description="test"))
    return net, path


def test_round_trip_gives_identical_outputs(saved):
    net, path = saved
    loaded, meta = load_model(path)
    assert meta.modality == "rgbd" and meta.channel_order == ["depth", "r", "g", "b"] and meta.weights_sha256
    x = torch.randn(1, 4, 64, 64)
    with torch.no_grad():
        for a, b in zip(net(x), loaded(x)):
            torch.testing.assert_close(a, b)
    # plain state_dict, loadable without our code and without pickle
    sd = torch.load(path, weights_only=True)
    assert isinstance(sd, dict) and all(isinstance(v, torch.Tensor) for v in sd.values())


def test_modality_mismatch_names_both(saved):
    _, path = saved
    with pytest.raises(ModelError, match=r"trained for modality 'rgbd'.*'d' was requested"):
        load_model(path, modality="d")


def test_missing_and_corrupt_files(saved, tmp_path):
    _, path = saved
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nope.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ModelError, match="SHA-256"):
        load_model(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["weights_sha256"] = ""  # without the checksum, torch itself must still fail cleanly
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="corrupt or not a plain state_dict"):
        load_model(path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_model(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="metadata .* is missing"):
        load_model(path)


def test_pickled_module_is_refused(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save(dsc_graspnet("d"), path)  # the habit we do not accept: a whole pickled module
    path.with_suffix(".json").write_text(json.dumps(ModelMetadata("d").to_dict()))
    with pytest.raises(ModelError, match="was not loaded: it holds more than a plain state_dict"):
        load_model(path)


class _RunsSystem:
    """Unpickling this would call ``os.system`` (what a crafted model file does)."""

    def __reduce__(self):
        import os

        return (os.system, ("true",))


def _crafted_model(tmp_path):
    path = tmp_path / "crafted.pt"
    torch.save({"weights": _RunsSystem()}, path)
    path.with_suffix(".json").write_text(json.dumps(ModelMetadata("d").to_dict()))
    return path


def test_crafted_model_file_names_the_global_and_gives_no_unsafe_advice(tmp_path):
    with pytest.raises(ModelError) as err:
        load_model(_crafted_model(tmp_path))
    msg = str(err.value)
    assert "posix.system" in msg and "was not loaded" in msg and "crafted.pt" in msg, msg
    assert "weights_only=False" not in msg and "weights_only` set to `False" not in msg, msg
    assert "\x1b" not in msg and "\n" not in msg, repr(msg)


def test_unpickling_detail_strips_colour_codes():
    from dsc_grasp_ros.core.model_io import unpickling_detail

    e = Exception("Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` will likely "
                  "succeed.\n\x1b[1mTrying to load unsupported GLOBAL posix.system\x1b[0m whose module posix is blocked.")
    assert unpickling_detail(e) == "found posix.system"
    assert unpickling_detail(Exception("\x1b[31mbad opcode\x1b[0m")) == "bad opcode"


def test_predict_refuses_a_crafted_model_in_one_line(tmp_path, capsys):
    import cv2

    from dsc_grasp_ros.cli import main

    depth = tmp_path / "depth.png"
    cv2.imwrite(str(depth), np.full((120, 160), 600, np.uint16))
    rc = main(["predict", "--depth", str(depth), "--fx", "200", "--fy", "200", "--model", str(_crafted_model(tmp_path)),
               "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc != 0 and "posix.system" in err and "not loaded" in err, err
    assert "Traceback" not in err and "weights_only=False" not in err and len(err.strip().splitlines()) == 1, err


def test_weights_for_another_architecture(tmp_path):
    path = save_model(tmp_path / "d.pt", dsc_graspnet("d"), ModelMetadata("d"))
    meta = json.loads(path.with_suffix(".json").read_text())
    meta.update(modality="rgbd", channel_order=[], weights_sha256="")
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="do not fit"):
        load_model(path)


def test_shipped_default_model_loads():
    path = default_model_path()
    model, meta = load_model()
    assert path.is_file() and meta.modality == "rgbd" and meta.input_size == 224


@pytest.mark.parametrize("order", ["csp_first", "eq5"])
def test_upsample_order_round_trip(tmp_path, order):
    torch.manual_seed(0)
    net = dsc_graspnet("d", upsample_order=order).eval()
    path = save_model(tmp_path / f"{order}.pt", net, ModelMetadata("d"))
    recorded = json.loads(path.with_suffix(".json").read_text())["network"]
    assert recorded["upsample_order"] == order and recorded["up_channels"] == list(net.cfg.up_channels)
    loaded, _ = load_model(path)
    assert loaded.cfg == net.cfg
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        for a, b in zip(net(x), loaded(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_metadata_of_another_upsample_order_is_named(tmp_path):
    path = save_model(tmp_path / "m.pt", dsc_graspnet("d"), ModelMetadata("d"))  # csp_first weights
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["network"].update(upsample_order="eq5", up_channels=[128, 64, 32])  # a .json of an eq5 model
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"upsample_order='csp_first', but its metadata says 'eq5'"):
        load_model(path)
    meta["network"]["upsample_order"] = "deconv"
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="describes no valid DSCGraspNet.*upsample_order"):
        load_model(path)


def test_model_files_from_before_upsample_order_load_as_eq5_with_mean_depth(tmp_path):
    """The first shipped models (and users' fine-tunes of them) have no ``upsample_order`` and the
    original normalisation text: they must keep loading as the Eq. (5)-literal network with mean
    depth, and give the outputs they were saved with."""
    torch.manual_seed(1)
    net = randomise_batchnorm(dsc_graspnet("rgbd", upsample_order="eq5")).eval()
    path = save_model(tmp_path / "old.pt", net, ModelMetadata("rgbd"))
    raw = json.loads(path.with_suffix(".json").read_text())
    raw["network"].pop("upsample_order")  # as written before the option existed
    raw["normalisation"] = "depth: invalid pixels inpainted, minus the mean, clipped to +-1 m; rgb: /255 minus per-image mean"
    path.with_suffix(".json").write_text(json.dumps(raw))
    model, meta = load_model(path)
    assert model.cfg.upsample_order == "eq5" and model.cfg.up_channels == (128, 64, 32)
    assert meta.depth_ref == "mean"
    x = 0.1 * torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for a, b in zip(net(x), model(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("modality", ["rgbd", "d", "rgb"])
def test_shipped_models_build_the_architecture_their_card_names(modality):
    model, meta = load_model(modality=modality)
    order = meta.network.get("upsample_order", "eq5")
    assert model.cfg.upsample_order == order and meta.modality == modality
    with torch.no_grad():
        out = model(torch.zeros(1, meta.in_channels, 64, 64))
    assert len(out) == 4 and all(o.shape == (1, 1, 64, 64) and torch.isfinite(o).all() for o in out)


def test_onnx_export_matches_torch(tmp_path):
    net = randomised("rgbd", seed=3)
    meta = ModelMetadata("rgbd")
    onnx_path = export_onnx(net, tmp_path / "m.onnx", metadata=meta)
    x = np.random.default_rng(0).normal(size=(1, 4, 224, 224)).astype(np.float32)
    with torch.no_grad():
        ref = [o.numpy() for o in net(torch.from_numpy(x))]
    assert max(float(np.abs(r).max()) for r in ref) > 0.05  # outputs are not trivially ~0
    assert check_parity(net, onnx_path, x) < 1e-4
    # dynamic spatial size
    x2 = np.random.default_rng(1).normal(size=(2, 4, 96, 160)).astype(np.float32)
    assert check_parity(net, onnx_path, x2) < 1e-4
    assert OnnxGraspNet(onnx_path)(x2)[0].shape == (2, 1, 96, 160)
    import onnx

    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(props["dsc_grasp"])["modality"] == "rgbd"


def test_a_file_that_is_no_pickle_reads_as_corrupt_without_unsafe_advice(tmp_path):
    from dsc_grasp_ros.core.model_io import load_state_dict_file

    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ModelError) as e:
        load_state_dict_file(bad)
    msg = str(e.value)
    assert "corrupt or not a plain state_dict" in msg and "Unsupported operand" in msg
    assert "weights_only" not in msg.replace("weights_only=True", "") and "was not loaded" not in msg
