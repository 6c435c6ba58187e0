"""Finger clearance check (dsc_grasp_ros/core/clearance.py) on known geometry: boxes on a table seen
straight down by a pinhole camera, grasps whose fingers land on the box or beside it."""

import math

import numpy as np
import pytest

from dsc_grasp_ros.core.clearance import FingerGeometry, finger_profile, fit_fingers
from dsc_grasp_ros.core.geometry import CameraIntrinsics

F = 600.0
CAM = CameraIntrinsics(F, F, 320.0, 240.0)
TABLE = 0.70
FINGERS = FingerGeometry()  # Franka/Panda: 1 cm thick, 2 cm wide, 1 cm margin, 8 cm opening


def scene(size_x=0.05, size_y=0.03, height=0.04, centre=(0.0, 0.0), yaw_deg=0.0):
    """Depth (m) of a box of ``size_x`` x ``size_y`` (along image u / v at yaw 0) on a table 0.7 m
    below a camera looking straight down; ``centre`` in metres on the table plane."""
    v, u = np.mgrid[0:480, 0:640].astype(np.float64)
    x = (u - CAM.cx) / F * TABLE  # metres on the table (approximation good to the box's height)
    y = (v - CAM.cy) / F * TABLE
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    dx, dy = x - centre[0], y - centre[1]
    a = dx * c + dy * s
    b = -dx * s + dy * c
    depth = np.full((480, 640), TABLE)
    depth[(np.abs(a) <= size_x / 2) & (np.abs(b) <= size_y / 2)] = TABLE - height
    return depth


def px(m, z=TABLE - 0.04):
    return m * F / z


def footprints_clear(depth, fit, z, fingers=FINGERS):
    """Independent check: both finger footprints (at the controller's opening) hold no surface
    nearer than z + the needed depth."""
    ppm = F / z
    opening_px = fit.width_px + 2 * fingers.margin * ppm
    band = int(round(fingers.width / 2 * ppm))
    n = int(opening_px / 2 + (fingers.thickness + fingers.pad) * ppm) + 2
    prof = finger_profile(depth, fit.u, fit.v, fit.angle, n, band)
    s = np.arange(-n, n + 1)
    inner = opening_px / 2
    right = (s >= inner) & (s <= inner + fingers.thickness * ppm)
    left = (s <= -inner) & (s >= -inner - fingers.thickness * ppm)
    return bool(np.all(prof[right] >= z + 0.015) and np.all(prof[left] >= z + 0.015))


def test_a_grasp_whose_fingers_clear_the_box_is_kept_as_it_is():
    d = scene()  # 5 cm along u, 3 cm along v, 4 cm high
    z = TABLE - 0.04
    # across the 3 cm side (closing axis along image v: angle pi/2), opening 3 cm + 2 x 1 cm margin
    fit = fit_fingers(d, CAM, 320.0, 240.0, math.pi / 2, px(0.03), z)
    assert fit is not None and not fit.moved
    assert (fit.u, fit.v, fit.width_px) == (320.0, 240.0, pytest.approx(px(0.03)))


def test_too_narrow_a_grasp_is_opened_until_both_fingers_clear_the_box():
    d = scene()
    z = TABLE - 0.04
    fit = fit_fingers(d, CAM, 320.0, 240.0, math.pi / 2, px(0.005), z)  # faces at 1.25 cm: on the 3 cm box
    assert fit is not None and fit.moved
    assert fit.turn == 0.0 and fit.angle == pytest.approx(math.pi / 2)
    assert fit.opening_m >= 0.03 + 2 * FINGERS.pad - 2 / px(1.0)  # the box plus the pads, to a pixel
    assert fit.opening_m <= 0.03 + 2 * FINGERS.pad + 4 / px(1.0)  # ... and not much wider
    assert abs(fit.v - 240.0) <= 1.0  # still centred on the box
    assert footprints_clear(d, fit, z)


def test_an_off_centre_grasp_is_shifted_onto_the_box():
    d = scene()
    z = TABLE - 0.04
    # centre 1.2 cm below the box centre along the closing axis (image v): the upper finger lands on the box
    v0 = 240.0 + px(0.012)
    fit = fit_fingers(d, CAM, 320.0, v0, math.pi / 2, px(0.03), z)
    assert fit is not None and fit.moved
    # the box spans s = -0.3..+2.7 cm (+s = up in the image at angle pi/2): the upper face moves out to
    # 2.7 + 0.3 (pad) = 3 cm, the lower one stays at 2.5 cm: centre up by 2.5 mm, opening 5.5 cm
    assert fit.shift_m == pytest.approx(0.0025, abs=1.5 / px(1.0))
    assert fit.v == pytest.approx(v0 - px(fit.shift_m))
    assert fit.opening_m == pytest.approx(0.055, abs=2 / px(1.0))
    assert footprints_clear(d, fit, z)


def test_a_box_wider_than_the_gripper_has_no_clear_placement_unless_the_axis_may_turn():
    d = scene(size_x=0.10, size_y=0.03)
    z = TABLE - 0.04
    assert fit_fingers(d, CAM, 320.0, 240.0, 0.0, px(0.04), z) is None  # across the 10 cm side
    fit = fit_fingers(d, CAM, 320.0, 240.0, 0.0, px(0.04), z, max_turn=math.radians(90))
    assert fit is not None and fit.moved
    # the smallest turn that fits: the axis crosses the 3 cm side obliquely, within the 8 cm opening
    assert 0 < abs(fit.turn) <= math.radians(90)
    assert fit.opening_m <= FINGERS.max_opening + 1e-9
    assert footprints_clear(d, fit, z)
    # a turn limit smaller than needed finds nothing
    assert fit_fingers(d, CAM, 320.0, 240.0, 0.0, px(0.04), z, max_turn=math.radians(10)) is None


def test_a_low_object_needs_only_most_of_its_height_beside_it():
    d = scene(size_x=0.05, size_y=0.03, height=0.01)  # 1 cm high: lower than finger_depth (2 cm)
    z = TABLE - 0.01
    fit = fit_fingers(d, CAM, 320.0, 240.0, math.pi / 2, px(0.03, z), z)
    assert fit is not None and not fit.moved  # the table beside it is 1 cm below the top: enough


def test_invalid_depth_under_a_finger_counts_as_free_and_a_flat_surface_is_blocked():
    d = scene()
    z = TABLE - 0.04
    flat = np.full_like(d, z)  # the grasp on a wide flat top: nowhere for the fingers to go
    assert fit_fingers(flat, CAM, 320.0, 240.0, math.pi / 2, px(0.03), z) is None
    holes = flat.copy()
    holes[:, :] = 0.0  # all invalid: nothing known
    assert fit_fingers(holes, CAM, 320.0, 240.0, math.pi / 2, px(0.03), z) is None
    shadow = d.copy()
    shadow[(np.abs(np.arange(480) - 240 - px(0.025)) < px(0.01))[:, None] & np.ones((1, 640), bool)] = 0.0
    fit = fit_fingers(shadow, CAM, 320.0, 240.0, math.pi / 2, px(0.03), z)
    assert fit is not None and not fit.moved  # the hole where a finger goes is a shadow, not an obstacle


def test_the_profile_follows_the_closing_axis_counter_clockwise():
    d = scene(size_x=0.05, size_y=0.01, yaw_deg=0.0)
    # angle 0: the axis runs along +u, the 5 cm side; angle pi/2: along -v, the 1 cm side
    p0 = finger_profile(d, 320.0, 240.0, 0.0, 60, 0)
    p90 = finger_profile(d, 320.0, 240.0, math.pi / 2, 60, 0)
    on0 = np.count_nonzero(p0 < TABLE - 0.02)
    on90 = np.count_nonzero(p90 < TABLE - 0.02)
    assert on0 == pytest.approx(px(0.05, TABLE), abs=2)
    assert on90 == pytest.approx(px(0.01, TABLE), abs=2)


# --------------------------------------------------------------------------- in the detector
@pytest.fixture(scope="module")
def det(tmp_path_factory):
    import torch

    from dsc_grasp_ros.core.inference import DetectorConfig, GraspDetector
    from dsc_grasp_ros.core.model_io import ModelMetadata, save_model
    from dsc_grasp_ros.core.network import dsc_graspnet

    torch.manual_seed(0)
    path = save_model(tmp_path_factory.mktemp("m") / "rgbd.pt", dsc_graspnet("rgbd"), ModelMetadata("rgbd", description="test"))
    # fixed ROI: the centred 480x480 square, 480/224 full-image pixels per network pixel
    return GraspDetector(DetectorConfig(model_path=str(path), device="cpu", backend="eager", top_k=1, min_quality=0.1,
                                        roi=[80, 0, 480, 480]))


def _net(u, v):
    """Full-image pixel -> network pixel of the detector's ROI."""
    return (u - 80) * 224 / 480, v * 224 / 480


def test_the_detector_moves_a_blocked_grasp_to_a_fixed_point_of_the_check(det, K640):
    from conftest import OracleNet, box_scene

    # box_scene: an 8 x 6 cm box, 5 cm high (top at 0.55 m), centred at x 2 cm, y -1 cm in the optical frame
    rgb, depth = box_scene(K=K640)
    cam = CameraIntrinsics.from_K(K640)
    u0, v0 = cam.project(np.array([0.02, -0.01, 0.55]))[:2]
    un, vn = _net(u0, v0)
    # across the 6 cm side (closing axis along image v), 20 network px = 43 image px = 3.8 cm: fingers on the box
    det.engine.model = OracleNet([un, vn, math.pi / 2, 20.0, 10.0])
    try:
        det.update(finger_check="off")
        off = det.detect(rgb, depth, K640).grasps
        assert len(off) == 1 and off[0].fingers_clear is None and off[0].width_m < 0.045
        det.update(finger_check="require")
        res = det.detect(rgb, depth, K640)
        assert len(res.grasps) == 1, res.rejected
        g = res.grasps[0]
        assert g.fingers_clear is True
        assert g.angle == pytest.approx(off[0].angle)  # no turn needed: the 6 cm side fits the 8 cm hand
        opening = g.width_m + 2 * FINGERS.margin
        assert 0.06 + 2 * FINGERS.pad - 0.003 <= opening <= 0.08 + 1e-6  # the box and the pads, within the hand
        again = fit_fingers(depth, cam, g.u, g.v, g.angle, g.width_px, g.depth_m, FINGERS)
        assert again is not None and not again.moved  # the published grasp passes the check as it is
        # across the 8 cm side: nothing fits without a turn; require rejects, prefer keeps it last
        det.engine.model = OracleNet([un, vn, 0.0, 20.0, 10.0])
        det.update(finger_max_turn_deg=0.0)
        res = det.detect(rgb, depth, K640)
        assert res.grasps == [] and res.rejected_codes == ["fingers_blocked"]
        assert "finger_check" in res.rejected[0]
        det.update(finger_check="prefer")
        res = det.detect(rgb, depth, K640)
        assert len(res.grasps) == 1 and res.grasps[0].fingers_clear is False and res.rejected == []
        det.update(finger_max_turn_deg=90.0)  # a turn of the axis onto the 6 cm side clears it
        g = det.detect(rgb, depth, K640).grasps[0]
        assert g.fingers_clear is True and abs(math.degrees(g.angle)) >= 30
    finally:
        det.update(finger_check="prefer", finger_max_turn_deg=60.0)


def test_bad_finger_settings_are_refused_with_the_reason(det):
    with pytest.raises(ValueError, match="finger_check must be one of"):
        det.update(finger_check="sometimes")
    with pytest.raises(ValueError, match="finger_thickness"):
        det.update(finger_thickness=-0.01)
    with pytest.raises(ValueError, match="finger_max_turn_deg"):
        det.update(finger_max_turn_deg=120.0)
    assert det.cfg.finger_check == "prefer"


class _FixedPeer:
    """A peer network's output fixed to known image grasps (the peer's weights are not under test
    here, only what our policy does with its grasps)."""

    modality = "rgbd"

    def __init__(self, grasps):
        self.grasps = grasps

    def predict(self, rgb, depth, k=1):
        return self.grasps[:k]


def test_a_peer_with_our_finger_check_gets_its_grasp_moved_and_as_published_does_not(K640):
    from conftest import box_scene

    from dsc_grasp_ros.bench.policies import Observation, PeerPolicy

    rgb, depth = box_scene(K=K640)
    cam = CameraIntrinsics.from_K(K640)
    u0, v0 = cam.project(np.array([0.02, -0.01, 0.55]))[:2]
    down = np.diag([1.0, -1.0, -1.0, 1.0])  # a camera looking straight down at the base's table
    obs = Observation(rgb, depth, K640, down)
    narrow = (u0, v0, math.pi / 2, 40.0, 0.9)  # 40 px = 3.6 cm across the 6 cm side: fingers on the box
    as_published = PeerPolicy(_FixedPeer([narrow]), "peer").plan(obs)
    assert as_published.image.width_px == 40.0 and as_published.image.v == v0
    fingers = PeerPolicy(_FixedPeer([narrow]), "peer+fingers", top_k=5, fingers=FINGERS, finger_max_turn_deg=60.0).plan(obs)
    g = fingers.image
    assert fingers.width_m + 2 * FINGERS.margin >= 0.06 + 2 * FINGERS.pad - 0.003
    again = fit_fingers(depth, cam, g.u, g.v, g.angle, g.width_px, fingers.info["depth_m"], FINGERS)
    assert again is not None and not again.moved
    # nothing clear within the gripper: the peer's best grasp, unmoved (prefer)
    flat = np.full_like(depth, 0.55)
    kept = PeerPolicy(_FixedPeer([narrow]), "peer+fingers", top_k=5, fingers=FINGERS).plan(Observation(rgb, flat, K640, down))
    assert kept.image.width_px == 40.0 and kept.image.v == v0


def test_the_bench_parses_peers_with_fingers_and_our_finger_settings():
    from dsc_grasp_ros.commands.bench import build_policies
    from dsc_grasp_ros.bench.policies import PolicyError

    try:
        pols = build_policies("grconvnet3+fingers,dsc_rgbd", finger_check="require", finger_max_turn=30.0)
    except PolicyError as e:
        pytest.skip(f"peer weights not available here: {e}")
    peer, ours = pols
    assert peer.name == "grconvnet3+fingers" and peer.fingers == FINGERS and peer.top_k == 5
    assert math.degrees(peer.finger_max_turn) == pytest.approx(30.0)
    assert ours.detector.cfg.finger_check == "require" and ours.detector.cfg.finger_max_turn_deg == 30.0
    assert ours.describe()["finger_check"] == "require"


# --------------------------------------------------------------------------- a tilted camera, vertical fingers
def tilted_scene(tilt_deg=30.0, half=(0.04, 0.015), height=0.05, K=None):
    """Depth (m along the optical axis) of an upright box on a table (z = 0 up) seen by a camera
    0.7 m from the box, tilted ``tilt_deg`` from vertical, ray-cast exactly. Returns
    ``(depth, cam, R_world_camera, C)``."""
    cam = CAM if K is None else CameraIntrinsics.from_K(K)
    t = math.radians(tilt_deg)
    C = np.array([0.0, -0.7 * math.sin(t), 0.7 * math.cos(t)])
    zc = -C / np.linalg.norm(C)  # optical axis towards the box
    xc = np.array([1.0, 0.0, 0.0])
    yc = np.cross(zc, xc)
    R = np.column_stack([xc, yc, zc])  # camera -> world
    v, u = np.mgrid[0:480, 0:640].astype(np.float64)
    r = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u)], -1) @ R.T  # world ray per unit optical depth
    with np.errstate(divide="ignore", invalid="ignore"):
        t_table = np.where(r[..., 2] < 0, -C[2] / r[..., 2], np.inf)
        lo = np.array([-half[0], -half[1], 0.0])
        hi = np.array([half[0], half[1], height])
        t1 = (lo - C) / r
        t2 = (hi - C) / r
        near = np.nanmax(np.minimum(t1, t2), axis=-1)
        far = np.nanmin(np.maximum(t1, t2), axis=-1)
    hit = (near <= far) & (far > 0)
    depth = np.where(hit, np.minimum(near, t_table), t_table)
    return depth, cam, R, C


def test_under_a_tilted_camera_vertical_fingers_are_checked_along_the_vertical():
    depth, cam, R, C = tilted_scene()  # box 8 x 3 cm, 5 cm high, centred at the origin
    a = R.T @ np.array([0.0, 0.0, -1.0])  # world down, in the optical frame
    top = np.array([0.0, 0.0, 0.05])
    P = R.T @ (top - C)  # the box top's centre in the optical frame
    u, v = cam.project(P)[:2]
    # the closing axis across the 3 cm side (world y) as the image shows it
    q = cam.project(R.T @ (top + np.array([0.0, 0.01, 0.0]) - C))[:2]
    angle = math.atan2(-(q[1] - v), q[0] - u)
    fit = fit_fingers(depth, cam, u, v, angle, 10.0, float(P[2]), FINGERS, approach=a)  # 10 px: fingers on the box
    assert fit is not None and fit.moved and fit.position is not None
    c_w = R @ fit.closing
    assert abs(c_w[2]) < 1e-9 and abs(abs(c_w[1]) - 1.0) < 0.02  # horizontal, across the 3 cm side
    centre_w = R @ fit.position + C
    faces = [centre_w + sgn * fit.opening_m / 2 * c_w for sgn in (-1, 1)]
    for f in faces:  # each inner face outside the box (plus the pad, to a bin)
        assert abs(f[1]) >= 0.015 + FINGERS.pad - 0.0025, faces
    assert fit.opening_m <= FINGERS.max_opening + 1e-9
    # looking along the viewing ray instead, the same grasp is judged on a slanted column
    optical = fit_fingers(depth, cam, u, v, angle, 10.0, float(P[2]), FINGERS)
    assert optical is None or optical.position is None
    # an approach within 2 degrees of the optical axis uses the image profile: identical results
    d2 = scene()
    same = fit_fingers(d2, CAM, 320.0, 240.0, math.pi / 2, px(0.005), TABLE - 0.04, approach=np.array([0.0, 0.01, 1.0]))
    plain = fit_fingers(d2, CAM, 320.0, 240.0, math.pi / 2, px(0.005), TABLE - 0.04)
    assert same == plain


def test_the_detector_refuses_an_approach_towards_the_camera(det, K640):
    from conftest import box_scene

    from dsc_grasp_ros.core.preprocess import InputError

    rgb, depth = box_scene(K=K640)
    with pytest.raises(InputError, match="towards the camera") as e:
        det.detect(rgb, depth, K640, approach=[0.0, 0.0, -1.0])
    assert e.value.code == "bad_approach"
    with pytest.raises(InputError, match="finite non-zero"):
        det.detect(rgb, depth, K640, approach=[0.0, float("nan"), 1.0])
    a = np.array([0.0, 0.5, 1.0]) / math.hypot(0.5, 1.0)  # 27 degrees off the optical axis
    from dsc_grasp_ros.core.geometry import quaternion_to_rotation

    from conftest import OracleNet

    det.engine.model = OracleNet([112.0, 112.0, 0.3, 20.0, 10.0])
    grasps = det.detect(rgb, depth, K640, approach=a).grasps
    assert len(grasps) == 1
    assert np.allclose(quaternion_to_rotation(grasps[0].orientation)[:, 2], a)


def test_the_annotated_image_shows_the_finger_footprints_where_the_controller_opens():
    from types import SimpleNamespace

    from dsc_grasp_ros.core.visualize import FINGERS_BLOCKED_COLOUR, FINGERS_CLEAR_COLOUR, draw_grasps

    rgb = np.full((240, 320, 3), 128, np.uint8)
    # a horizontal grasp 40 px = 4 cm wide (1000 px/m): fingers 1 cm thick centred 20 + 10 + 5 = 35 px off centre
    g = SimpleNamespace(u=160.0, v=120.0, angle=0.0, width_px=40.0, jaw_px=20.0, quality=0.9, width_m=0.04, fingers_clear=True)
    img = draw_grasps(rgb, [g], labels=False, fingers=FINGERS)
    ys, xs = np.nonzero(np.all(img == FINGERS_CLEAR_COLOUR, axis=2))
    assert len(xs) > 0
    left, right = xs[xs < 160], xs[xs > 160]
    assert left.min() >= 160 - 41 and left.max() <= 160 - 29 and right.min() >= 160 + 29 and right.max() <= 160 + 41
    assert ys.min() >= 120 - 11 and ys.max() <= 120 + 11  # 2 cm jaw = 20 px across
    g.fingers_clear = False
    img = draw_grasps(rgb, [g], labels=False, fingers=FINGERS)
    assert np.any(np.all(img == FINGERS_BLOCKED_COLOUR, axis=2)) and not np.any(np.all(img == FINGERS_CLEAR_COLOUR, axis=2))
    g.fingers_clear = None  # not checked: no footprints
    img = draw_grasps(rgb, [g], labels=False, fingers=FINGERS)
    assert not np.any(np.all(img == FINGERS_BLOCKED_COLOUR, axis=2)) and not np.any(np.all(img == FINGERS_CLEAR_COLOUR, axis=2))


@pytest.mark.parametrize("approach", [None, (0.0, 0.3, 1.0)], ids=["optical axis", "tilted approach"])
def test_an_absurd_focal_length_costs_no_more_than_the_image(approach):
    """A focal length of 80000 px on a 640x480 image (a unit error in a CameraInfo) used to make the
    finger check allocate arrays growing with f^2 (gigabytes per frame); the work is bounded by the
    image: the check answers, and its peak memory stays that of an ordinary frame."""
    import tracemalloc

    huge = CameraIntrinsics(80000.0, 80000.0, 320.0, 240.0)
    d = scene()
    a = None if approach is None else np.asarray(approach) / np.linalg.norm(approach)
    tracemalloc.start()
    try:
        fit_fingers(d, huge, 320.0, 240.0, math.pi / 2, 40.0, TABLE - 0.04, FINGERS, max_turn=math.radians(60), approach=a)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 150e6, f"finger check peak memory {peak / 1e6:.0f} MB for a 640x480 image"
    # an ordinary camera's results are those of the unbounded check (the bounds never bind there)
    fit = fit_fingers(d, CAM, 320.0, 240.0, math.pi / 2, px(0.03), TABLE - 0.04)
    assert fit is not None and not fit.moved
