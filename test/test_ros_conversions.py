"""Message <-> numpy conversions, stamp pairing, the latest-frame slot, parameter table vs YAML."""

from __future__ import annotations

import array
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from dsc_grasp_ros.ros import conversions as conv  # noqa: E402
from dsc_grasp_ros.ros import params as P  # noqa: E402
from dsc_grasp_ros.ros.sync import LatestSlot, StageStats, StampPairer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
rng = np.random.default_rng(3)
RGB = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
MM = rng.integers(0, 4000, (5, 7), dtype=np.uint16)


def _msg(arr, encoding, pad=0, big=False):
    a = np.ascontiguousarray(arr)
    if big:
        a = a.astype(a.dtype.newbyteorder(">"))
    rows = a.reshape(a.shape[0], -1).view(np.uint8)
    buf = np.full((a.shape[0], rows.shape[1] + pad), 0x5A, np.uint8)
    buf[:, : rows.shape[1]] = rows
    m = Image(height=a.shape[0], width=a.shape[1], encoding=encoding, is_bigendian=int(big), step=rows.shape[1] + pad)
    m.data = array.array("B", buf.tobytes())
    return m


@pytest.mark.parametrize("enc,make", [
    ("rgb8", lambda x: x), ("bgr8", lambda x: x[..., ::-1]),
    ("rgba8", lambda x: np.dstack([x, np.full(x.shape[:2], 7, np.uint8)])),
    ("bgra8", lambda x: np.dstack([x[..., ::-1], np.full(x.shape[:2], 7, np.uint8)])),
])
@pytest.mark.parametrize("pad", [0, 5])
def test_color_encodings_and_padding(enc, make, pad):
    out = conv.color_to_rgb(_msg(make(RGB), enc, pad))
    assert out.shape == RGB.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, RGB)


def test_mono8_becomes_grey_rgb():
    g = RGB[..., 0]
    out = conv.color_to_rgb(_msg(g, "mono8", pad=3))
    np.testing.assert_array_equal(out, np.dstack([g, g, g]))


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("pad", [0, 6])
def test_depth_16uc1_and_32fc1_endianness_and_padding(big, pad):
    d = conv.depth_to_array(_msg(MM, "16UC1", pad, big))
    assert d.dtype == np.uint16 and d.dtype.isnative
    np.testing.assert_array_equal(d, MM)
    f = (MM.astype(np.float32) / 1000).copy()
    f[0, 0], f[1, 1] = np.nan, np.inf
    d = conv.depth_to_array(_msg(f, "32FC1", pad, big))
    assert d.dtype == np.float32 and d.dtype.isnative
    np.testing.assert_array_equal(d, f)


@pytest.mark.parametrize("mutate,reason", [
    (lambda m: setattr(m, "encoding", "yuv422"), "unsupported_encoding"),
    (lambda m: setattr(m, "step", 7 * 3 - 1), "bad_image_step"),
    (lambda m: setattr(m, "data", m.data[:-1]), "bad_image_data_size"),
    (lambda m: setattr(m, "width", 0), "bad_image_size"),
])
def test_bad_color_messages_name_the_problem(mutate, reason):
    m = _msg(RGB, "rgb8")
    mutate(m)
    with pytest.raises(conv.MessageError) as e:
        conv.color_to_rgb(m)
    assert e.value.reason == reason and str(e.value)


def test_depth_rejects_color_encoding():
    with pytest.raises(conv.MessageError, match="'rgb8' is not supported"):
        conv.depth_to_array(_msg(RGB, "rgb8"))


def test_camera_info():
    K = np.array([[600.0, 0, 320], [0, 601, 240], [0, 0, 1]])
    info = conv.k_to_camera_info(K, 640, 480)
    np.testing.assert_array_equal(conv.camera_info_to_k(info), K)
    for bad, text in ((CameraInfo(), "all zeros"), (None, "no CameraInfo")):
        with pytest.raises(conv.MessageError, match=text):
            conv.camera_info_to_k(bad)
    info.k = [float("nan")] + list(info.k[1:])
    with pytest.raises(conv.MessageError, match="non-finite"):
        conv.camera_info_to_k(info)
    with pytest.raises(conv.MessageError, match="320x240"):
        conv.check_camera_info_size(conv.k_to_camera_info(K, 320, 240), 640, 480)


def test_image_round_trip_through_cdr():
    h = Header(stamp=Time(sec=5, nanosec=7), frame_id="cam")
    for arr, enc in ((RGB, "rgb8"), (MM, "16UC1"), (MM.astype(np.float32), "32FC1")):
        m = deserialize_message(serialize_message(conv.array_to_image(arr, enc, h)), Image)
        assert m.header.frame_id == "cam" and m.header.stamp.nanosec == 7
        back = conv.color_to_rgb(m) if enc == "rgb8" else conv.depth_to_array(m)
        np.testing.assert_array_equal(back, arr)


def test_candidate_cloud_round_trip():
    rows = rng.normal(size=(4, len(conv.CANDIDATE_FIELDS)))
    h = Header(frame_id="base_link")
    msg = deserialize_message(serialize_message(conv.candidates_to_cloud(rows, h)), PointCloud2)
    assert [f.name for f in msg.fields] == list(conv.CANDIDATE_FIELDS)
    assert msg.point_step == 52 and msg.width == 4 and msg.height == 1 and msg.header.frame_id == "base_link"
    assert msg.is_dense
    rec = conv.cloud_to_records(msg)
    for i, name in enumerate(conv.CANDIDATE_FIELDS):
        np.testing.assert_allclose(rec[name], rows[:, i].astype(np.float32))
    assert conv.cloud_to_records(conv.candidates_to_cloud(np.zeros((0, 13)), h)).shape == (0,)
    rows[:, -1] = np.nan  # fingers_clear not checked (finger_check off): kept as NaN, the cloud is not dense
    msg = conv.candidates_to_cloud(rows, h)
    assert not msg.is_dense and np.all(np.isnan(conv.cloud_to_records(msg)["fingers_clear"]))


def test_gripper_marker_opens_to_width():
    from geometry_msgs.msg import Pose

    m = conv.gripper_marker(Header(frame_id="f"), Pose(), 0.06, 0.9, 3)
    ys = sorted({round(p.y, 6) for p in m.points})
    assert ys[0] == -0.03 and ys[-1] == 0.03 and m.id == 3
    assert max(p.z for p in m.points) == 0.0  # fingertips at the TCP, gripper behind it (-z)
    assert m.color.g > m.color.r  # high quality -> green


def test_stamp_pairing_exact_and_tolerance():
    p = StampPairer(0)
    assert p.add_color(100, "c100") is None
    assert p.add_depth(101, "d101") is None  # 1 ns apart: not exact
    pair = p.add_depth(100, "d100")
    assert (pair.color, pair.depth, pair.stamp_ns) == ("c100", "d100", 100)
    p = StampPairer(tolerance_ns=5)
    p.add_depth(200, "d200")
    p.add_depth(210, "d210")
    pair = p.add_color(208, "c208")
    assert pair.depth == "d210"  # nearest within tolerance
    assert p.unmatched == 1  # d200 is older than the pair: dropped, counted
    assert (p.unmatched_color, p.unmatched_depth) == (0, 1)


def test_stamp_pairing_accounts_for_every_message_per_stream():
    """A color whose depth was lost (best-effort DDS) is pending, then unmatched once a newer pair
    passes it: each color message is in exactly one of paired / unmatched_color / pending."""
    p = StampPairer(0, buffer_size=3)
    paired = 0
    for t in range(10):
        if p.add_color(t, f"c{t}") is not None:
            paired += 1
        if t != 4 and p.add_depth(t, f"d{t}") is not None:  # depth 4 lost
            paired += 1
    assert p.add_color(10, "c10") is None  # its depth has not come yet
    assert p.add_depth(20, "d20") is None  # its color was lost
    assert paired == 9
    assert (p.unmatched_color, p.unmatched_depth) == (1, 0)  # c4, passed by pair 5
    assert p.pending() == (1, 1)
    assert paired + p.unmatched_color + p.pending()[0] == 11  # colors added
    assert paired + p.unmatched_depth + p.pending()[1] == 10  # depths added
    for t in range(30, 34):
        p.add_color(t, f"c{t}")  # no depth: the buffer of 3 overflows
    assert p.pending() == (3, 1) and p.unmatched_color == 1 + 2
    p.clear()  # deactivate: the buffered messages will never be paired
    assert p.pending() == (0, 0) and (p.unmatched_color, p.unmatched_depth) == (6, 1) and p.unmatched == 7
    p.add_depth(50, "d50")
    p.add_depth(50, "d50 again")  # the same stamp twice (e.g. a bag played in a loop): the first is lost
    assert p.pending() == (0, 1) and p.unmatched_depth == 2
    assert p.add_color(50, "c50").depth == "d50 again"


def test_latest_slot_keeps_only_newest():
    s = LatestSlot()
    for i in range(5):
        s.put(i)
    assert s.get(0.1) == 4 and s.dropped == 4
    assert s.get(0.01) is None
    s.close()
    assert s.get(None) is None


def test_stage_stats_median_p95():
    st = StageStats(size=100)
    for i in range(1, 101):
        st.add({"network": i / 1000})
    med, p95, n = st.summary()["network"]
    assert n == 100 and abs(med - 0.0505) < 1e-9 and abs(p95 - 0.09505) < 1e-9


def test_params_yaml_matches_table():
    text = (ROOT / "config" / "dsc_grasp.yaml").read_text()
    values = yaml.safe_load(text)["/**"]["ros__parameters"]
    for spec in P.PARAMS:
        if isinstance(spec.default, list):  # empty lists cannot be typed in YAML: documented as comments
            assert f"# {spec.name}:" in text, spec.name
            assert spec.name not in values
        else:
            assert values[spec.name] == spec.default, spec.name
    assert set(values) <= set(P.BY_NAME)


def test_param_descriptors_have_descriptions_and_ranges():
    from rcl_interfaces.msg import ParameterType

    for spec in P.PARAMS:
        d = P.descriptor(spec)
        assert len(d.description) > 20
        if d.type in (ParameterType.PARAMETER_DOUBLE, ParameterType.PARAMETER_INTEGER) and spec.name not in ("qos_depth",):
            assert d.floating_point_range or d.integer_range, spec.name
    assert P.validate("static_camera_transform", [0, 0, 0, 0, 0, 0, 0]) == "static_camera_transform quaternion is zero"
    assert "7 numbers" in P.validate("static_camera_transform", [1, 2, 3])
    assert P.validate("static_camera_transform", []) is None
    assert "cuda:N" in P.validate("device", "gpu")
    assert P.validate("device", "cuda:1") is None


def test_restamp_cdr_matches_a_deserialise_round_trip():
    from dsc_grasp_ros.devtools.replay import restamp_cdr

    h = Header(stamp=Time(sec=5, nanosec=999), frame_id="cam")
    raw = serialize_message(conv.array_to_image(RGB, "rgb8", h))
    m = deserialize_message(restamp_cdr(raw, 7_000_000_123), Image)
    assert (m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id) == (7, 123, "cam")
    np.testing.assert_array_equal(conv.color_to_rgb(m), RGB)
    m = deserialize_message(restamp_cdr(raw, None, 2_000_000_001), Image)
    assert (m.header.stamp.sec, m.header.stamp.nanosec) == (7, 1000)


@pytest.mark.parametrize("frame_id", ["", "c", "camera_color_optical_frame"])
@pytest.mark.parametrize("enc,arr,pad,big", [("rgb8", RGB, 0, False), ("bgra8", np.dstack([RGB, RGB[..., :1]]), 3, False),
                                             ("16UC1", MM, 2, True), ("32FC1", MM.astype(np.float32), 0, False), ("mono8", RGB[..., 0], 1, False)])
def test_parse_image_cdr_matches_rclpy(frame_id, enc, arr, pad, big):
    m = _msg(arr, enc, pad, big)
    m.header = Header(stamp=Time(sec=-3, nanosec=123456789), frame_id=frame_id)
    raw = serialize_message(m)
    v = conv.parse_image_cdr(raw)
    ref = deserialize_message(raw, Image)
    for f in ("height", "width", "encoding", "is_bigendian", "step"):
        assert getattr(v, f) == getattr(ref, f), f
    assert bytes(v.data) == bytes(ref.data)
    assert conv.header_msg(v.header) == ref.header
    read = conv.color_to_rgb if enc in conv.COLOR_ENCODINGS else conv.depth_to_array
    np.testing.assert_array_equal(read(v), read(ref))


def test_parse_image_cdr_rejects_truncated_and_unknown():
    raw = serialize_message(conv.array_to_image(RGB, "rgb8"))
    with pytest.raises(ValueError, match="data bytes"):
        conv.parse_image_cdr(raw[:-10])
    with pytest.raises(ValueError, match="encapsulation"):
        conv.parse_image_cdr(b"\x00\x07" + raw[2:])


def test_camera_info_binning_roi_and_checks():
    """sensor_msgs/CameraInfo: K is for the calibrated resolution; binning divides it, roi shifts it."""
    K = np.array([[1230.0, 0, 641.0], [0, 1224.0, 476.5], [0, 0, 1]])
    info = conv.k_to_camera_info(K, 1280, 960)
    info.binning_x = info.binning_y = 2
    cam = conv.camera_info_intrinsics(info, 640, 480)
    np.testing.assert_allclose(cam.K, [[615.0, 0, 320.5], [0, 612.0, 238.25], [0, 0, 1]])
    assert cam.D is None and cam.binning == (2, 2)
    with pytest.raises(conv.MessageError, match="binning 2x2") as e:
        conv.camera_info_intrinsics(info, 1280, 960)
    assert e.value.reason == "camera_info_size_mismatch"
    info.binning_x = info.binning_y = 0  # 0 = no binning
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 100, 40, 800, 600
    cam = conv.camera_info_intrinsics(info, 800, 600)
    np.testing.assert_allclose(cam.K[:2, 2], [541.0, 436.5])
    info.binning_x = info.binning_y = 2  # roi in unbinned pixels, then binned
    cam = conv.camera_info_intrinsics(info, 400, 300)
    np.testing.assert_allclose(cam.K[:2], [[615.0, 0, 270.5], [0, 612.0, 218.25]])
    d = conv.k_to_camera_info(K, 1280, 960)
    d.d = [0.1, 0, 0, 0, 0]
    assert conv.camera_info_intrinsics(d, 1280, 960).D is not None
    d.distortion_model = "unknown_model"
    cam = conv.camera_info_intrinsics(d, 1280, 960)
    assert cam.D is None and cam.ignored_distortion == "unknown_model"
    bad = conv.k_to_camera_info(K, 1280, 960)
    bad.k = [1230.0, 0, 641.0, 0, 1224.0, 476.5, 0, 0, 2.0]
    with pytest.raises(conv.MessageError, match="last row"):
        conv.camera_info_intrinsics(bad, 1280, 960)
    bad.k = [1230.0, 0, -5.0, 0, 1224.0, 476.5, 0, 0, 1.0]
    with pytest.raises(conv.MessageError, match="principal point"):
        conv.camera_info_intrinsics(bad, 1280, 960)
