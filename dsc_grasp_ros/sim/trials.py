"""Grasp labels by simulated grasp trials (as Jacquard), for one rendered view.

Per object visible in the view:

1. **Candidates**: pixels on the object's visible mask (weighted towards the inside by the
   squared distance to the silhouette edge), random closing-axis angles. The grasp is top-down
   along the camera's optical axis (the node's convention: TCP ``+z`` = optical axis, jaws closing
   along the image closing axis). The TCP goes ``d`` (at most 2.5 cm) beyond the observed surface
   point along the approach, less where the object is low so the fingers stay 2 mm above the
   support (down to 4 mm short of the surface point: "too_low" below that). The trial opening is
   twice the farthest reach of the object's silhouette from the centre along the closing axis,
   across the jaw width (metres at the surface depth), plus 2 x 8 mm clearance; candidates wider
   than the gripper are rejected ("too_wide"); if that opening collides, the full stroke is tried
   (the gripper's ``spec``: 8 cm for the default Franka hand, 8.5 or 14 cm for the Robotiq 2F-85 and
   2F-140, :data:`.gripper.SIM_GRIPPERS`).
2. **Collision check**: the open gripper at the grasp pose and at two pre-grasp poses 3 and 8 cm
   back along the approach must be at least 1 mm from everything (support and all objects).
3. **Physical trial** from the saved settled state: the fingers close (velocity motors, force
   limit) until they stall, both must touch the object, then the gripper lifts 12 cm, shakes
   twice sideways (+/-2 cm across the jaws) and holds. Success: the object rose with the gripper,
   is still held by both fingers, and no other object came along.
4. **Label**: success -> rectangle centred on the candidate pixel, angle of the projected closing
   axis, opening = contact width + 1 cm (the opening actually needed, capped at the trial
   opening), jaw size = finger width, both in pixels at the surface depth ``Z``
   (``px = metres * f / Z``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import camera as cam
from . import gripper as grip
from .gripper import GripperIds

GRASP_DEPTH = 0.025  # nominal TCP depth beyond the surface point along the approach (m)
CLEARANCE = 0.008  # per side, added to the estimated width for the trial opening (m)
LABEL_MARGIN = 0.01  # added to the measured contact width for the label opening (m)
LIFT = 0.12  # m
SHAKE = 0.02  # lateral shake amplitude after lifting (m)
MIN_FINGERTIP_HEIGHT = 0.002  # fingertips stay this far above the support (m)
#: The TCP may stay up to 4 mm short of the surface point: the finger pads (1 cm from the tips)
#: still overlap the object by >= 6 mm, enough to pinch a low object.
MIN_TCP_OFFSET = -0.004


@dataclass
class TrialResult:
    success: bool
    reason: str  # "ok", "empty", "no_contact", "dropped", "multiple"
    contact_width: float = 0.0  # finger separation when the fingers stalled (m)
    lift: float = 0.0  # how far the object rose (m)


@dataclass
class LabelStats:
    candidates: int = 0
    rejected: dict = field(default_factory=dict)
    trials: int = 0
    successes: int = 0
    #: Per kept grasp: [opening_m, jaw_m, tcp_offset_m (TCP beyond the surface point), surface depth Z_m,
    #: contact_width_m, trial_opening_m].
    metric: list = field(default_factory=list)

    def reject(self, why: str) -> None:
        self.rejected[why] = self.rejected.get(why, 0) + 1

    def as_dict(self) -> dict:
        return {"candidates": self.candidates, "rejected": dict(sorted(self.rejected.items())), "trials": self.trials, "successes": self.successes}


def _contacts(p, client, g: GripperIds, body: int) -> tuple[bool, bool]:
    return tuple(bool(p.getContactPoints(g.body, body, link, -1, physicsClientId=client)) for link in (0, 1))


def run_trial(
    p,
    client,
    g: GripperIds,
    state_id: int,
    target: int,
    others,
    position,
    orientation,
    opening: float,
    lift: float = LIFT,
    timing: tuple[int, int, int] = (96, 72, 36),
    close_speed: float = grip.CLOSE_SPEED,
) -> TrialResult:
    """Close, lift and hold from the saved state ``state_id``; no collision check here.

    ``timing`` = simulation steps (1/240 s) of the lift, the sideways shake (one cycle per 36
    steps) and the final hold; v1 uses (96, 72, 36), v2 (48, 36, 12). ``close_speed``: finger
    speed while closing (m/s; v1 0.12, v2 0.24).
    """
    p.restoreState(stateId=state_id, physicsClientId=client)
    grip.place(p, client, g, position, orientation, opening)
    z0 = {b: p.getBasePositionAndOrientation(b, physicsClientId=client)[0][2] for b in [target, *others]}
    for j in (0, 1):
        p.setJointMotorControl2(g.body, j, p.VELOCITY_CONTROL, targetVelocity=-close_speed, force=g.spec.grip_force, physicsClientId=client)
    steps_needed = int(opening / 2 / close_speed / (1 / 240)) + 12
    for step in range(1, max(steps_needed, 24) + 48):
        p.stepSimulation(physicsClientId=client)
        if step >= 12 and step % 6 == 0:
            v = [p.getJointState(g.body, j, physicsClientId=client)[1] for j in (0, 1)]
            if max(abs(v[0]), abs(v[1])) < 2e-3:
                break
    width = grip.opening(p, client, g)
    if width < 0.002:
        return TrialResult(False, "empty", width)
    if not all(_contacts(p, client, g, target)):
        return TrialResult(False, "no_contact", width)
    pos = np.asarray(position, dtype=np.float64)
    n_lift, n_shake, n_hold = timing
    shake_dir = np.asarray(cam.quat_to_matrix(orientation))[:, 0]  # across the jaws: the weak direction
    shake_dir = shake_dir - [0, 0, shake_dir[2]]
    shake_dir = shake_dir / max(np.linalg.norm(shake_dir), 1e-9)
    for k in range(1, n_lift + n_shake + n_hold + 1):
        s = min(k / n_lift, 1.0)
        s = s * s * (3 - 2 * s)  # smooth start and stop
        goal = pos + [0, 0, lift * s]
        if n_lift < k <= n_lift + n_shake:  # two lateral shakes, +/-2 cm at ~3.3 Hz (peak ~0.4 m/s)
            goal = goal + shake_dir * SHAKE * math.sin(2 * math.pi * (k - n_lift) / 36)
        p.changeConstraint(g.constraint, goal.tolist(), list(orientation), maxForce=500, physicsClientId=client)
        p.stepSimulation(physicsClientId=client)
    dz = p.getBasePositionAndOrientation(target, physicsClientId=client)[0][2] - z0[target]
    if dz < 0.75 * lift or not all(_contacts(p, client, g, target)):
        return TrialResult(False, "dropped", width, dz)
    for b in others:
        if p.getBasePositionAndOrientation(b, physicsClientId=client)[0][2] - z0[b] > 0.03:
            return TrialResult(False, "multiple", width, dz)
    return TrialResult(True, "ok", width, dz)


def silhouette_extent_px(seg: np.ndarray, body: int, u: float, v: float, angle: float, band_px: float, limit: int) -> tuple[int, int]:
    """How far (pixels) ``body``'s mask reaches from ``(u, v)`` along +/- the closing axis.

    Looks along parallel lines across a band of ``band_px`` (the jaw size) and takes the farthest
    mask pixel within ``limit`` on each side, so the open jaws clear everything of the object that
    the camera sees between them.
    """
    h, w = seg.shape
    du, dv = math.cos(angle), -math.sin(angle)
    ju, jv = math.sin(angle), math.cos(angle)  # across the closing axis
    t = np.arange(1, limit + 1, dtype=np.float64)
    out = []
    for sgn in (1, -1):
        far = 0
        for off in np.linspace(-band_px / 2, band_px / 2, 5):
            x = np.rint(u + off * ju + sgn * t * du).astype(int)
            y = np.rint(v + off * jv + sgn * t * dv).astype(int)
            ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            hit = np.zeros(len(t), bool)
            hit[ok] = seg[y[ok], x[ok]] == body
            if hit.any():
                far = max(far, int(np.nonzero(hit)[0][-1]) + 1)
        out.append(far)
    return out[0], out[1]


def surface_and_axes(u, v, angle, depth, K, T_world_cam):
    """Surface point ``s`` (world), its depth ``z``, approach axis and metric closing axis (world)."""
    K = np.asarray(K, dtype=np.float64)
    T = np.asarray(T_world_cam, dtype=np.float64)
    z = float(depth[int(round(v)), int(round(u))])
    s = cam.deproject(u, v, z, K, T)[0]
    c_cam = np.array([math.cos(angle) / K[0, 0], -math.sin(angle) / K[1, 1], 0.0])
    return s, z, T[:3, 2].copy(), T[:3, :3] @ (c_cam / np.linalg.norm(c_cam))


def grasp_depth_limit(s, approach, closing, opening: float, support_z: float, spec: grip.SimGripper = grip.PANDA) -> float:
    """Deepest TCP offset beyond ``s`` along ``approach`` that keeps the fingers of ``spec`` above the support."""
    quat = grip.tcp_orientation(approach, closing)
    R = cam.quat_to_matrix(quat)
    low = np.inf
    for x in (-spec.jaw_size / 2, spec.jaw_size / 2):
        for y in (opening / 2, opening / 2 + spec.finger_thickness):
            for sy in (1, -1):
                low = min(low, float((R @ [x, sy * y, spec.tip_below_tcp])[2]))
    a_z = min(float(approach[2]), -1e-3)
    return (s[2] + low - support_z - MIN_FINGERTIP_HEIGHT) / -a_z


# --------------------------------------------------------------------------- candidates
@dataclass(frozen=True)
class LabelParams:
    """Settings of :func:`label_view`; the defaults are the ``v1`` preset's labelling.

    The ``v2`` preset labels more cheaply per label: candidates spread over each object's visible
    surface (``spread``: greedy minimum spacing instead of independent draws) and shared by the
    view's objects (``max_candidates_per_view``), the closing angle drawn among the ``angles`` grid
    angles at which the object's silhouette fits the gripper (0: any angle, ~35 % then rejected as
    too wide, 75 % on the real meshes), rectangles that cannot fit the image rejected before the
    trial (``prefilter_outside``), collision checks only against bodies whose bounding box meets the
    gripper's swept box with the saved state restored only after a trial moved something
    (``local_collisions``), and a shorter trial (8 cm lift in 48 steps, one shake cycle, 12 hold steps:
    96 steps instead of 204; the fingers close twice as fast).
    """

    candidates: int = 80  # per object (at most)
    max_candidates_per_view: int | None = None  # shared by the visible objects (at least 4 each); None: no cap
    min_pixels: int = 80  # objects with fewer visible pixels get no candidates
    min_edge_px: float = 2.5  # candidates lie farther than this from the silhouette edge
    spread: bool = False
    angles: int = 0
    prefilter_outside: bool = False
    local_collisions: bool = False
    lift: float = LIFT
    timing: tuple[int, int, int] = (96, 72, 36)  # simulation steps of the lift, the shake and the hold
    close_speed: float = grip.CLOSE_SPEED


def _spread_pick(rng, us, vs, wts, n: int) -> np.ndarray:
    """``n`` indices of mask pixels drawn by weight, greedily kept apart (min spacing from the area)."""
    m = len(us)
    pool = rng.choice(m, size=min(m, 6 * n), replace=False, p=wts / wts.sum())
    spacing2 = 0.5 * m / max(n, 1)  # (0.7 * sqrt(area / n))^2
    chosen: list[int] = []
    for k in pool:
        if all((us[k] - us[j]) ** 2 + (vs[k] - vs[j]) ** 2 >= spacing2 for j in chosen):
            chosen.append(int(k))
            if len(chosen) == n:
                break
    if len(chosen) < n:  # a thin object: fill up with the rest of the pool
        rest = [int(k) for k in pool if int(k) not in set(chosen)]
        chosen += rest[: n - len(chosen)]
    return np.asarray(chosen, dtype=int)


def silhouette_extents_px(seg: np.ndarray, body: int, u: float, v: float, angles, band_px: float, limit: int) -> np.ndarray:
    """:func:`silhouette_extent_px` for many closing angles at once -> ``(len(angles), 2)`` int array."""
    h, w = seg.shape
    a = np.asarray(angles, dtype=np.float64)[:, None, None, None]  # A x sign x offset x t
    sgn = np.array([1.0, -1.0])[None, :, None, None]
    off = np.linspace(-band_px / 2, band_px / 2, 5)[None, None, :, None]
    t = np.arange(1, limit + 1, dtype=np.float64)[None, None, None, :]
    x = np.rint(u + off * np.sin(a) + sgn * t * np.cos(a)).astype(int)
    y = np.rint(v + off * np.cos(a) - sgn * t * np.sin(a)).astype(int)
    ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    hit = np.zeros(x.shape, bool)
    hit[ok] = seg[y[ok], x[ok]] == body
    last = np.where(hit, np.arange(1, limit + 1)[None, None, None, :], 0).max(axis=3)  # farthest hit per line
    return last.max(axis=2)


def _gripper_reach(spec: grip.SimGripper = grip.PANDA) -> float:
    """Radius of a sphere around the TCP that holds the open gripper ``spec`` (m)."""
    half_y = spec.max_opening / 2 + spec.finger_thickness + 0.005
    down = spec.tip_below_tcp
    up = spec.finger_length - spec.tip_below_tcp + spec.palm_thickness
    return float(math.sqrt((spec.jaw_size / 2 + 0.005) ** 2 + half_y**2 + max(down, up) ** 2))


def _candidate_pixels(rng, prm: LabelParams, mask: np.ndarray, n: int):
    """-> ``(us, vs, picked indices)`` of up to ``n`` candidate pixels inside ``mask``, weighted towards
    the inside by the squared distance to the silhouette edge; None when the mask is too thin."""
    import cv2

    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    vs, us = np.nonzero(dist > prm.min_edge_px)
    if len(us) == 0:
        return None
    wts = dist[vs, us].astype(np.float64) ** 2  # favour pixels far from the silhouette edge
    if prm.spread:
        return us, vs, _spread_pick(rng, us, vs, wts, n)
    return us, vs, rng.choice(len(us), size=min(n, len(us)), replace=False, p=wts / wts.sum())


def _fitting_angle(rng, prm: LabelParams, seg, body, u, v, band, limit, z, f, max_opening: float) -> float | None:
    """A closing angle at which the silhouette fits between the jaws (drawn among ``prm.angles`` grid
    angles, then jittered within its cell), or None if none fits."""
    a0 = rng.uniform(0, math.pi / prm.angles)
    grid = a0 + np.arange(prm.angles) * (math.pi / prm.angles)
    ext = silhouette_extents_px(seg, body, u, v, grid, band, limit)
    fits = np.nonzero(2 * ext.max(1) * z / f <= max_opening - 0.004)[0]
    if len(fits) == 0:
        return None
    return float(grid[fits[int(rng.integers(len(fits)))]] + rng.uniform(-0.5, 0.5) * math.pi / prm.angles)  # continuous angles


# --------------------------------------------------------------------------- the labeller
class _Bodies:
    """What the open gripper is checked against: every body with the saved state restored before each
    check, or (``local``) the bodies whose box meets the box swept by the gripper from 8 cm back to the
    grasp, the state restored only after a trial moved something."""

    def __init__(self, p, client, state_id: int, scene, local: bool, spec: grip.SimGripper = grip.PANDA):
        self.p, self.client, self.state_id, self.local = p, client, state_id, local
        self.bodies = list(scene.bodies)
        self.dirty = False
        if local:
            p.restoreState(stateId=state_id, physicsClientId=client)
            self.aabbs = {b: np.asarray(p.getAABB(b, physicsClientId=client)) for b in scene.bodies}
            self.support = getattr(scene, "support_body", None)
            self.reach = _gripper_reach(spec) + 0.002

    def __call__(self, tcp, approach) -> list[int]:
        if not self.local:
            self.p.restoreState(stateId=self.state_id, physicsClientId=self.client)
            return self.bodies
        ends3 = np.stack([tcp, tcp - approach * 0.08])
        lo, hi = ends3.min(0) - self.reach, ends3.max(0) + self.reach
        near = [b for b, bb in self.aabbs.items() if (bb[0] <= hi).all() and (bb[1] >= lo).all()]
        if self.support is not None and self.support not in near:
            near.append(self.support)
        if self.dirty:
            self.p.restoreState(stateId=self.state_id, physicsClientId=self.client)
            self.dirty = False
        return near


def label_view(
    p,
    client,
    g: GripperIds,
    state_id: int,
    scene,
    T_world_cam,
    K,
    depth: np.ndarray,
    seg: np.ndarray,
    rng: np.random.Generator,
    params: LabelParams = LabelParams(),
    grasp_depth: float = GRASP_DEPTH,
) -> tuple[np.ndarray, list[int], LabelStats]:
    """Grasp trials for every object visible in one view -> (Nx5 rectangles, object body per rect, stats).

    The grasp model, trial and rectangle are the module docstring's; ``params`` sets how candidates are
    chosen and checked and how long a trial runs.
    """
    prm = params
    view = _View.of(K, T_world_cam, seg, g.spec.jaw_size)
    stats = LabelStats()
    rects, owners = [], []
    bodies = _Bodies(p, client, state_id, scene, prm.local_collisions, g.spec)
    visible = []
    for obj in scene.objects:
        mask = (seg == obj.body).astype(np.uint8)
        if int(mask.sum()) >= prm.min_pixels:
            visible.append((obj, mask))
    per_obj = prm.candidates
    if prm.max_candidates_per_view is not None:
        per_obj = max(4, min(prm.candidates, int(math.ceil(prm.max_candidates_per_view / max(len(visible), 1)))))
    for obj, mask in visible:
        picked = _candidate_pixels(rng, prm, mask, per_obj)
        if picked is None:
            continue
        us, vs, pick = picked
        free_angles = rng.uniform(-math.pi / 2, math.pi / 2, len(pick)) if not prm.angles else [None] * len(pick)
        others = [o.body for o in scene.objects if o.body != obj.body]
        for k, a_img in zip(pick, free_angles):
            stats.candidates += 1
            rect = _try_candidate(p, client, g, state_id, scene, prm, view, depth, seg, rng, stats, bodies,
                                  obj.body, others, int(us[k]), int(vs[k]), a_img, grasp_depth)
            if rect is not None:
                rects.append(rect)
                owners.append(obj.body)
    return _labels(p, client, state_id, rects, owners, stats)


def _try_candidate(p, client, g, state_id, scene, prm, view, depth, seg, rng, stats, bodies, body, others, u, v, a_img,
                   grasp_depth) -> list[float] | None:
    """One candidate pixel of ``body``: closing angle (``a_img`` or a fitting one), width estimate, a
    collision-free trial pose, the physical trial -> the labelled rectangle or None (reason in ``stats``)."""
    f = view.f
    z0 = float(depth[v, u])
    spec = g.spec
    limit = int(math.ceil(spec.max_opening * f / z0))
    band = spec.jaw_size * f / z0
    if a_img is None:
        a_img = _fitting_angle(rng, prm, seg, body, u, v, band, limit, z0, f, spec.max_opening)
        if a_img is None:
            stats.reject("too_wide")
            return None
    tp, tn = silhouette_extent_px(seg, body, u, v, a_img, band, limit)
    w_est = 2 * max(tp, tn) * z0 / f  # the gripper is centred on the pixel
    if w_est > spec.max_opening - 0.004:
        stats.reject("too_wide")
        return None
    s_w, z, approach, closing = surface_and_axes(u, v, a_img, depth, view.K, view.T_world_cam)
    if prm.prefilter_outside:  # the smallest rectangle this grasp can give must lie inside the image
        open_min = min(w_est + LABEL_MARGIN, spec.max_opening)
        if not view.inside(view.rect(u, v, s_w, closing, open_min, z)):
            stats.reject("outside_image")
            return None
    quat = grip.tcp_orientation(approach, closing)
    chosen, why = _free_grasp(p, client, g, s_w, approach, closing, quat, w_est, grasp_depth, scene.support_z, bodies)
    if chosen is None:
        stats.reject(why)
        return None
    opening, tcp, d = chosen
    stats.trials += 1
    bodies.dirty = True
    res = run_trial(p, client, g, state_id, body, others, tcp, quat, opening, lift=prm.lift, timing=prm.timing,
                    close_speed=prm.close_speed)
    return _label_of_trial(res, stats, view, u, v, s_w, closing, z, opening, d)


def _collides_at(p, client, g, position, quat, opening, bodies) -> bool:
    grip.place(p, client, g, position, quat, opening)
    return grip.collides(p, client, g, bodies)


def _free_grasp(p, client, g, s_w, approach, closing, quat, w_est, grasp_depth, support_z, bodies_at):
    """The trial pose: the first opening (estimated width + clearance, then the full opening) whose TCP
    depth is allowed and whose open gripper, at the grasp and 3 and 8 cm back, is clear of the bodies
    ``bodies_at(tcp, approach)`` -> ``((opening, tcp, d), "")`` or ``(None, "too_low" | "collision")``."""
    d = None
    top = g.spec.max_opening
    for opening in sorted({min(w_est + 2 * CLEARANCE, top), top}):
        d = min(grasp_depth, grasp_depth_limit(s_w, approach, closing, opening, support_z, g.spec))
        if d < MIN_TCP_OFFSET:
            continue
        tcp = s_w + approach * d
        bodies = bodies_at(tcp, approach)
        if not any(_collides_at(p, client, g, tcp - approach * back, quat, opening, bodies) for back in (0.0, 0.03, 0.08)):
            return (opening, tcp, d), ""
    return None, ("too_low" if d is not None and d < MIN_TCP_OFFSET else "collision")


def _corners(rect) -> np.ndarray:
    from ..core.grasp import rect_corners

    return rect_corners(*rect)


@dataclass
class _View:
    """The camera of one labelled view: turns a grasp at a pixel into an image rectangle."""

    K: np.ndarray
    T_world_cam: np.ndarray
    f: float  # mean focal length (px)
    w: int
    h: int
    jaw: float = grip.JAW_SIZE  # the gripper's jaw size (m)

    @classmethod
    def of(cls, K, T_world_cam, seg: np.ndarray, jaw: float = grip.JAW_SIZE) -> "_View":
        K = np.asarray(K, dtype=np.float64)
        h, w = seg.shape
        return cls(K, T_world_cam, 0.5 * (K[0, 0] + K[1, 1]), w, h, jaw)

    def rect(self, u, v, s_w, closing, opening: float, z: float) -> list[float]:
        """``[u, v, angle, opening px, jaw px]``: the jaws' ends ``opening`` apart around ``s_w`` projected; jaw size at depth ``z``."""
        ends, _ = cam.project(np.stack([s_w - closing * opening / 2, s_w + closing * opening / 2]), self.T_world_cam, self.K)
        e = ends[1] - ends[0]
        return [float(u), float(v), float(math.atan2(-e[1], e[0])), float(np.hypot(*e)), self.jaw * self.f / z]

    def inside(self, rect) -> bool:
        corners = _corners(rect)
        return not (corners.min() < 0 or (corners[:, 0] > self.w - 1).any() or (corners[:, 1] > self.h - 1).any())


def _label_of_trial(res: TrialResult, stats: LabelStats, view: _View, u, v, s_w, closing, z, opening, d) -> list[float] | None:
    """The rectangle a trial labels (opening = contact width + margin, capped at the trial opening) or None;
    counts the success (with its metric row) or the reason of the rejection in ``stats``."""
    if not res.success:
        stats.reject("trial_" + res.reason)
        return None
    open_m = min(res.contact_width + LABEL_MARGIN, opening)
    rect = view.rect(u, v, s_w, closing, open_m, z)
    if not view.inside(rect):
        stats.reject("outside_image")
        return None
    stats.successes += 1
    stats.metric.append([round(x, 5) for x in (open_m, view.jaw, d, z, res.contact_width, opening)])
    return rect


def _labels(p, client, state_id, rects, owners, stats) -> tuple[np.ndarray, list[int], LabelStats]:
    """Restore the saved state; the rectangles as an Nx5 array with wrapped angles, their owners, the stats."""
    p.restoreState(stateId=state_id, physicsClientId=client)
    arr = np.asarray(rects, dtype=np.float64).reshape(-1, 5)
    if len(arr):
        from ..core.conventions import wrap_angle

        arr[:, 2] = wrap_angle(arr[:, 2])
    return arr, owners, stats
