"""Scale- and pose-consistent pre-processing: protocols, the camera ROI from K and depth, the
plane-relative depth reference, and the normalisation recorded in model metadata."""

import json

import numpy as np
import pytest
import torch

from conftest import ROOT, box_scene
from dsc_grasp_ros.data import GraspDataset, find_items, read_rects
from dsc_grasp_ros.data.toy import write_toy_cornell
from dsc_grasp_ros.core.model_io import ModelError, ModelMetadata, load_metadata, save_model
from dsc_grasp_ros.core.network import dsc_graspnet
from dsc_grasp_ros.core.preprocess import (
    DEFAULT_NET_PX_PER_METRE,
    NORMALISATION,
    NORMALISATIONS,
    ROI,
    InputError,
    depth_reference_of,
    fit_support_plane,
    normalise,
    prepare,
    protocol_roi,
    scale_roi,
    scene_depth,
)


def tilted_plane(h=224, w=224, f=600.0, tilt_rad=0.6, dist=0.8):
    """Exact pinhole depth of a plane at ``dist`` m along the optical axis, tilted about x."""
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([(uu - w / 2) / f, (vv - h / 2) / f, np.ones_like(uu)], -1)
    n = np.array([0.0, np.sin(tilt_rad), np.cos(tilt_rad)])
    return (dist * np.cos(tilt_rad) / (rays @ n)).astype(np.float32)


# --------------------------------------------------------------------------- depth reference
def test_plane_reference_flattens_a_tilted_table_and_keeps_the_object_height():
    z = tilted_plane()
    assert z.max() - z.min() > 0.2  # a strong ramp, like Cornell's (0.85-1.65 m)
    d = z.copy()
    d[80:140, 90:150] -= 0.05  # a 5 cm object (along the rays)
    p = fit_support_plane(d)
    vv, uu = np.mgrid[0:224, 0:224]
    np.testing.assert_allclose(1.0 / (p[0] * uu + p[1] * vv + p[2]), z, atol=1e-4)  # the table, not the object
    x = normalise(None, d, "d", "plane")[0]
    table = np.ones_like(x, bool)
    table[78:142, 88:152] = False
    assert x[table].std() < 1e-4  # the ramp is gone
    assert abs((x[90:130, 100:140].mean() - x[table].mean()) + 0.05) < 1e-3  # the object is 5 cm up
    legacy = normalise(None, d, "d", "mean")[0]
    assert legacy[table].std() > 0.05  # while minus-the-mean keeps the ramp


def test_plane_reference_equals_legacy_on_a_fronto_parallel_table():
    d = np.full((64, 64), 0.6, np.float32)
    d[20:40, 20:40] = 0.55
    np.testing.assert_allclose(normalise(None, d, "d", "plane"), normalise(None, d, "d", "mean"), atol=1e-5)


def test_plane_fit_falls_back_to_mean_without_enough_pixels_and_local_reference_is_flat_on_a_ramp():
    d = np.zeros((32, 32), np.float32)
    d[0, :10] = 0.5
    assert fit_support_plane(d) is None
    z = tilted_plane(112, 112, f=300.0, tilt_rad=0.4)
    x = normalise(None, z, "d", "local")[0]
    assert x.std() < 0.1 * normalise(None, z, "d", "mean")[0].std()
    with pytest.raises(InputError, match="depth reference"):
        normalise(None, z, "d", "median")


# --------------------------------------------------------------------------- scale ROI
def test_scale_roi_from_intrinsics_and_depth_known_numbers():
    # 224 network px per 0.5 m at 1 m with fx = 600: the ROI is 300 px wide (600 * 0.5)
    roi = scale_roi(480, 640, 600.0, 600.0, 1.0, 448.0, 224)
    assert (roi.w, roi.h, roi.x, roi.y) == (304, 304, 168, 88)  # 300 rounded to 8 px, centred
    # fx != fy: a metre is the same number of network pixels along both axes
    roi = scale_roi(480, 640, 600.0, 400.0, 1.0, 448.0, 224, quantum=1)
    assert (roi.w, roi.h) == (300, 200)
    assert np.isclose(600.0 / roi.sx, 400.0 / roi.sy)
    # twice as far: half the ROI; the same metric size in network pixels
    near, far = (scale_roi(480, 640, 615.0, 615.0, z, 500.0, 224, quantum=1) for z in (0.6, 1.2))
    assert abs(near.w - 2 * far.w) <= 1
    for r, z in ((near, 0.6), (far, 1.2)):
        assert abs(615.0 / z / r.sx - 500.0) < 500.0 * 0.01
    # too close for the image: clamped to it, keeping the aspect
    big = scale_roi(480, 640, 615.0, 615.0, 0.2, 500.0, 224)
    assert (big.w, big.h) == (480, 480)
    with pytest.raises(InputError, match="positive finite depth_m"):
        scale_roi(480, 640, 615.0, 615.0, float("nan"))


def test_scene_depth_median_of_valid_pixels_in_either_unit():
    d = np.full((48, 64), 0.8, np.float32)
    d[:, :8] = 3.0  # outside the centred square: ignored
    d[10:14, 20:30] = 0.0  # holes: ignored
    assert scene_depth(d) == pytest.approx(0.8)
    assert scene_depth((d * 1000).astype(np.uint16)) == pytest.approx(0.8)
    assert scene_depth(np.zeros((8, 8), np.float32)) is None


def test_default_scale_is_the_synthetic_training_scale():
    # D435 at 0.535 m through the 480 square resized to 224: the first models' training scale
    assert scale_roi(480, 640, 615.0, 615.0, 0.535, DEFAULT_NET_PX_PER_METRE, 224) == ROI.centred_square(480, 640)


def _save(tmp_path, **kw):
    torch.manual_seed(0)
    return save_model(tmp_path / "m.pt", dsc_graspnet("d"), ModelMetadata("d", description="test", **kw))


def test_detector_roi_follows_the_scene_distance(tmp_path, K640):
    from dsc_grasp_ros.core.inference import GraspDetector

    det = GraspDetector(model_path=str(_save(tmp_path, net_px_per_metre=500.0)), device="cpu")
    for plane_z in (0.6, 1.2):
        _, depth = box_scene(K=K640, plane_z=plane_z)
        det._roi_cache.clear()
        roi = det.roi_for(480, 640, K640, depth)
        # a metre on the table spans the model's 500 network px, up to the 8 px rounding
        assert abs(615.0 / scene_depth(depth) / roi.sx - 500.0) < 500.0 * 8 / roi.w
        assert (roi.x + roi.w / 2, roi.y + roi.h / 2) == (320, 240)
        res = det.detect(None, depth, K640)
        assert res.roi == roi
    # small depth changes keep the ROI (steady crop); the user box and square mode override it
    _, depth = box_scene(K=K640, plane_z=1.22)
    assert det.roi_for(480, 640, K640, depth) == roi
    det.update(roi=[10, 20, 200, 100])
    assert det.roi_for(480, 640, K640, depth) == ROI(10, 20, 200, 100)
    sq = GraspDetector(model_path=str(tmp_path / "m.pt"), device="cpu", roi_mode="square")
    assert sq.roi_for(480, 640, K640, depth) == ROI.centred_square(480, 640)
    with pytest.raises(ValueError, match="roi_mode"):
        GraspDetector(model_path=str(tmp_path / "m.pt"), device="cpu", roi_mode="zoom")


# --------------------------------------------------------------------------- metadata
def test_normalisation_round_trips_and_old_models_keep_theirs(tmp_path):
    p = _save(tmp_path, normalisation=NORMALISATIONS["plane"], net_px_per_metre=420.0)
    meta = load_metadata(p)
    assert (meta.depth_ref, meta.px_per_metre) == ("plane", 420.0)
    # a model written before the fields existed: mean reference, default scale
    raw = json.loads(p.with_suffix(".json").read_text())
    del raw["normalisation"], raw["net_px_per_metre"]
    p.with_suffix(".json").write_text(json.dumps(raw))
    meta = load_metadata(p)
    assert (meta.depth_ref, meta.px_per_metre) == ("mean", DEFAULT_NET_PX_PER_METRE)
    raw["normalisation"] = "depth: something else"
    p.with_suffix(".json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="unknown normalisation"):
        load_metadata(p)


def test_models_from_before_the_option_keep_the_mean_normalisation(tmp_path):
    """A model file with the original normalisation text (the first shipped models, users'
    fine-tunes of them) is normalised exactly as before: crop mean only, clipped."""
    from dsc_grasp_ros.core.model_io import ModelMetadata, save_model
    from dsc_grasp_ros.core.network import dsc_graspnet

    p = save_model(tmp_path / "old.pt", dsc_graspnet("d", upsample_order="eq5"), ModelMetadata("d"))
    raw = json.loads(p.with_suffix(".json").read_text())
    raw["normalisation"] = NORMALISATION
    p.with_suffix(".json").write_text(json.dumps(raw))
    meta = load_metadata(p)
    assert meta.depth_ref == "mean"
    # and the detector's prepare() gives it exactly the legacy input: crop mean only, clipped
    rng = np.random.default_rng(0)
    d = (0.9 + 0.3 * np.linspace(0, 1, 64)[:, None] + 0.01 * rng.random((64, 64))).astype(np.float32)
    x, _ = prepare(None, d, ROI(0, 0, 64, 64, 64, 64), "d", meta.depth_ref)
    np.testing.assert_allclose(x[0], np.clip(d - d.mean(), -1, 1), atol=1e-6)
    assert depth_reference_of(meta.normalisation) == "mean"


# --------------------------------------------------------------------------- protocols
def test_protocol_rois_and_rectangles_follow_the_crop(tmp_path):
    assert protocol_roi("paper", "cornell", 480, 640) == ROI(208, 128, 224, 224, 224, 224)
    assert protocol_roi("paper", "jacquard", 1024, 1024) == ROI(0, 0, 1024, 1024, 224, 224)
    assert protocol_roi("native", "jacquard", 1024, 1024) == ROI(400, 400, 224, 224, 224, 224)
    assert protocol_roi("square", "cornell", 480, 640) == ROI.centred_square(480, 640)
    assert protocol_roi("native", "cornell", 120, 160) == ROI.centred_square(120, 160)  # too small: square
    root = write_toy_cornell(tmp_path / "c", n=1, height=480, width=640)
    item = find_items("cornell", root)[0]
    full = read_rects(item)
    for proto, scale in (("paper", 1.0), ("square", 224 / 480)):
        _, r = GraspDataset([item], "d", protocol=proto).sample(0)
        np.testing.assert_allclose(r[:, 3], full[:, 3] * scale, rtol=1e-9)  # openings at the crop's scale


def test_evaluate_records_the_protocol(tmp_path, capsys):
    from dsc_grasp_ros.cli import main

    root = write_toy_cornell(tmp_path / "c", n=2, height=240, width=320)
    m = _save(tmp_path)
    assert main(["evaluate", "--dataset", "cornell", "--path", str(root), "--model", str(m), "--protocol", "square",
                 "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["protocol"], out["protocol_crop"], out["depth_ref"], out["count"]) == ("square", "centred square resized to 224", "mean", 2)
    assert main(["evaluate", "--dataset", "cornell", "--path", str(root), "--model", str(m), "--no-progress", "--device", "cpu"]) == 0
    assert "protocol paper: native 224 crop at the centre, depth ref mean" in capsys.readouterr().out


def test_padded_scale_roi_keeps_the_training_scale_at_close_range():
    """A D435-like colour K at 0.25 m: the training-scale crop is 2.3x the image height. Clamped,
    objects look 2.3x larger than in training; padded, the ROI reaches past the image and a metre
    still spans net_px_per_metre network pixels."""
    from dsc_grasp_ros.core.preprocess import MAX_PAD_FACTOR, scale_roi

    fx = fy = 615.0
    want = 224 * fx / (0.25 * 536.0)  # ~1028 px
    clamped = scale_roi(480, 640, fx, fy, 0.25, 536.0)
    padded = scale_roi(480, 640, fx, fy, 0.25, 536.0, pad=True)
    assert clamped.h == 480 and clamped.x >= 0 and clamped.y == 0
    assert abs(padded.w - want) <= 8 and abs(padded.h - want) <= 8
    assert padded.x < 0 and padded.y < 0 and padded.x + padded.w > 640  # centred, past every edge
    assert np.allclose(padded.to_full(padded.to_net([[100.0, 50.0]])), [[100.0, 50.0]])
    # a metre at 0.25 m: fx / 0.25 image px = 536 network px padded, 536 x 2.1 clamped
    assert abs(fx / 0.25 / padded.sx - 536.0) < 5.0
    assert fx / 0.25 / clamped.sx > 2.0 * 536.0
    # far away nothing changes; very near, the padding stops at MAX_PAD_FACTOR image sides
    assert scale_roi(480, 640, fx, fy, 0.8, 536.0, pad=True) == scale_roi(480, 640, fx, fy, 0.8, 536.0)
    assert scale_roi(480, 640, fx, fy, 0.05, 536.0, pad=True).h <= MAX_PAD_FACTOR * 480


def test_crop_past_the_image_repeats_its_border():
    from dsc_grasp_ros.core.preprocess import ROI

    img = np.arange(12 * 16, dtype=np.float32).reshape(12, 16)
    roi = ROI(-4, -2, 24, 16, 24, 16)  # native size: no resize, only the padding
    out = roi.crop(img)
    assert out.shape == (16, 24)
    assert np.array_equal(out[2:14, 4:20], img)  # the image itself, in place
    assert np.all(out[0, 4:20] == img[0]) and np.all(out[:, 0][2:14] == img[:, 0])  # replicated border
    assert out[0, 0] == img[0, 0] and out[-1, -1] == img[-1, -1]


def test_detector_close_range_pad_sees_the_box_at_training_size(K640):
    """A camera 0.25 m above the table: with close_range pad a metre spans the model's training
    scale in the network input; clamped, the ROI is the image height."""
    from dsc_grasp_ros.core.inference import GraspDetector

    det = GraspDetector(backend="eager", threads=0, min_quality=0.0, close_range="pad")
    near = np.full((480, 640), 0.25, np.float32)
    roi = det.roi_for(480, 640, K640, near, metres=True)
    assert roi.y < 0 and abs(K640[1, 1] / 0.25 / roi.sy - det.px_per_metre) < 0.02 * det.px_per_metre
    rgb, depth = box_scene(K=K640, plane_z=0.30, box=(0.0, 0.0, 0.04, 0.03, 0.025))
    res = det.detect(rgb, depth, K640)  # the padded crop runs through the whole core
    assert res.roi == det.roi_for(480, 640, K640, depth) and res.roi.h > 480
    det.update(close_range="clamp")
    assert det.roi_for(480, 640, K640, near, metres=True).y == 0
