"""Synthetic scenes, preset ``v2``: real object meshes in clutter, backgrounds, far and tilted cameras.

Differences from the ``v1`` scenes of :mod:`.scene` (which stay as they were, so a v1 dataset is
reproducible):

* **Objects**: the real household meshes of ``../shared/objects/pile_train`` (loaded by
  :func:`.mesh_objects.load_mesh_object`), at their real size (scale 0.8-1.05), 1-N per scene
  dropped into a pile whose radius grows with N. The benchmark set is **never** used: every
  selection goes through :func:`object_selection`, which raises if a benchmark name slips in, and
  :func:`build_scene` checks again before loading.
* **Support and background**: a floor, or a finite table top (its edges and the floor 0.45-0.9 m
  below are often in view), walls behind (0-2), boxes on the table or the floor (0-4), a raised
  board and a mat under the objects; random colours and textures on everything.
* **Camera**: distance 0.35-1.5 m from the scene centre (log-uniform) along the optical axis, tilt
  0-35 degrees from vertical, random roll; intrinsics ``f = 615 * [0.88, 1.12]`` (640x480),
  principal point +-10 px.
* **Lighting and colour**: wider ranges than v1 (ambient, diffuse, specular, shadows), stronger
  exposure / white balance / noise; some objects dark, some shiny (these drive the depth holes of
  :func:`.camera.realsense_depth`).

Object-wise split: :data:`HELD_OUT_MOD` -- an object is held out (the ``test`` selection) when the
first byte of ``sha1(name)`` is divisible by 10. The rule depends on the name alone, so it is
stable whatever else is in the folder.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from . import camera as cam
from .scene import Scene, SceneObject, ground_mesh, random_color, settle, texture_files
from .scene import sample_lighting as _lighting_v1

#: An object is in the held-out (test) selection when ``sha1(name)[0] % HELD_OUT_MOD == 0``.
HELD_OUT_MOD = 10
DIST_RANGE = (0.35, 1.5)
MAX_TILT_DEG = 35.0
FOCAL_RANGE = (0.88, 1.12)  # times the D435 colour focal length


class BenchmarkObjectUsed(RuntimeError):
    """A benchmark object reached the training-data generator (never allowed)."""


def is_held_out(name: str) -> bool:
    return hashlib.sha1(name.encode()).digest()[0] % HELD_OUT_MOD == 0


def check_no_benchmark(names, root=None) -> None:
    """Raise :class:`BenchmarkObjectUsed` if any of ``names`` is a benchmark object."""
    from .mesh_objects import benchmark_names

    bad = sorted(set(names) & set(benchmark_names(root)))
    if bad:
        raise BenchmarkObjectUsed(f"benchmark objects must never be used to generate training data: {bad}")


def object_selection(text: str | None, root=None) -> list[str]:
    """Object names for v2 scenes (sorted): ``all`` (every non-benchmark object), ``train`` (without the
    held-out ones), ``test`` (held-out only) or a comma-separated list of names.

    Benchmark objects are refused (:class:`BenchmarkObjectUsed`), also when named explicitly.
    """
    from .mesh_objects import resolve_names, training_names

    key = (text or "all").strip().lower()
    pool = training_names(root)
    if key == "all":
        sel = pool
    elif key == "train":
        sel = [n for n in pool if not is_held_out(n)]
    elif key in ("test", "held-out", "heldout"):
        sel = [n for n in pool if is_held_out(n)]
    else:
        sel = resolve_names([s for s in text.split(",") if s.strip()], root)
        if any(s.endswith(".urdf") for s in sel):
            raise ValueError("v2 object selections are names in the object folder, not .urdf paths")
    check_no_benchmark(sel, root)
    if not sel:
        raise ValueError(f"object selection {text!r} is empty")
    return sorted(sel)


def catalogue_index(name: str, root=None) -> int:
    """Stable integer id of an object: its index in the sorted list of all ``pile_train`` names."""
    key = None if root is None else str(root)
    if key not in _INDEX_CACHE:
        from .mesh_objects import all_names

        _INDEX_CACHE[key] = {n: i for i, n in enumerate(all_names(root))}
    return _INDEX_CACHE[key][name]


_INDEX_CACHE: dict = {}


# --------------------------------------------------------------------------- scene
@dataclass
class SceneV2(Scene):
    floor_z: float = 0.0
    background: list = None  # [{"kind", "body", ...}]
    shiny: list = None  # bodies with a specular look (depth holes)
    dark: list = None  # bodies with a dark colour (depth holes)


def _surface_look(rng, textures):
    if rng.random() < 0.6:
        return [*rng.uniform(0.55, 1.0, 3), 1.0], textures[int(rng.integers(len(textures)))], float(rng.uniform(0.1, 0.6))
    return random_color(rng), None, 1.0


def _box(p, client, half, pos, yaw, rgba, texture=None):
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=list(half), physicsClientId=client)
    vis = p.createVisualShape(p.GEOM_BOX, halfExtents=list(half), rgbaColor=list(rgba), physicsClientId=client)
    b = p.createMultiBody(0, col, vis, list(pos), p.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=client)
    if texture:
        p.changeVisualShape(b, -1, textureUniqueId=p.loadTexture(texture, physicsClientId=client), physicsClientId=client)
    return b


def _object_color(rng) -> tuple[list, str]:
    r = rng.random()
    if r < 0.15:  # dark: stereo matching fails on it
        return [*(rng.uniform(0.02, 0.12) * rng.uniform(0.6, 1.0, 3)), 1.0], "dark"
    if r < 0.3:  # light grey / white
        return [*(rng.uniform(0.75, 1.0) * rng.uniform(0.92, 1.0, 3)), 1.0], "light"
    return random_color(rng), "colour"


def build_scene(p, client, rng: np.random.Generator, names, n_objects: int, root=None, scale_range=(0.8, 1.05),
                density_range=(150.0, 600.0)) -> SceneV2:
    """Support, background and ``n_objects`` objects from ``names`` dropped into a pile and settled."""
    from .mesh_objects import load_mesh_object, mesh_properties

    tex = texture_files()
    background = []
    # ---- support: floor or a finite table top (support surface at z = 0 either way)
    if rng.random() < 0.3:
        support, floor_z = "floor", 0.0
        col = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client)
        sb = p.createMultiBody(0, col, -1, [0, 0, 0], physicsClientId=client)
        rgba, tfile, tile = _surface_look(rng, tex)
        ground_mesh(p, client, (8.0, 8.0), 0.0, rgba, tfile, 8.0 / tile, cell=0.2)
        table = None
        centre = np.zeros(2)
    else:
        support = "table"
        floor_z = -float(rng.uniform(0.45, 0.9))
        tw, td = float(rng.uniform(0.5, 1.6)), float(rng.uniform(0.45, 1.0))
        th = 0.03
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[tw / 2, td / 2, th / 2], physicsClientId=client)
        sb = p.createMultiBody(0, col, -1, [0, 0, -th / 2], physicsClientId=client)
        rgba, tfile, tile = _surface_look(rng, tex)
        ground_mesh(p, client, (tw, td), 0.0, rgba, tfile, tw / tile, cell=0.1)
        edge_rgba = [*(np.asarray(rgba[:3]) * rng.uniform(0.5, 0.9)), 1.0]
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=[tw / 2, td / 2, th / 2 - 0.0005], rgbaColor=edge_rgba, physicsClientId=client)
        p.createMultiBody(0, -1, vis, [0, 0, -th / 2 - 0.0005], physicsClientId=client)  # the table's edge faces
        fcol = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client)
        p.createMultiBody(0, fcol, -1, [0, 0, floor_z], physicsClientId=client)
        rgba, tfile, tile = _surface_look(rng, tex)
        ground_mesh(p, client, (8.0, 8.0), floor_z, rgba, tfile, 8.0 / tile, cell=0.2)
        table = (tw, td)
        margin = 0.12
        centre = np.array([rng.uniform(-max(tw / 2 - margin, 0), max(tw / 2 - margin, 0)),
                           rng.uniform(-max(td / 2 - margin, 0), max(td / 2 - margin, 0))])
    p.changeDynamics(sb, -1, lateralFriction=float(rng.uniform(0.5, 1.0)), physicsClientId=client)

    def on_table(xy) -> bool:
        return table is not None and abs(xy[0]) < table[0] / 2 - 0.01 and abs(xy[1]) < table[1] / 2 - 0.01

    # ---- background: walls, boxes, a raised board, a mat under the objects
    n_walls = int(rng.choice([0, 1, 2], p=[0.35, 0.45, 0.2]))
    az0 = rng.uniform(0, 2 * math.pi)
    for k in range(n_walls):
        az = az0 + k * (math.pi / 2) * rng.choice([-1, 1]) + rng.uniform(-0.2, 0.2)
        dist = float(rng.uniform(0.25, 0.8))
        top = float(rng.uniform(0.2, 1.2))
        half = [0.01, 1.5, (top - floor_z) / 2]
        pos = [centre[0] + dist * math.cos(az), centre[1] + dist * math.sin(az), floor_z + half[2]]
        rgba, tfile, _ = _surface_look(rng, tex)
        b = _box(p, client, half, pos, az, rgba, tfile)
        background.append({"kind": "wall", "body": b, "distance": round(dist, 4), "height": round(top, 4)})
    for _ in range(int(rng.integers(0, 5))):
        half = [float(rng.uniform(0.03, 0.18)), float(rng.uniform(0.03, 0.18)), float(rng.uniform(0.02, 0.18))]
        az, r = rng.uniform(0, 2 * math.pi), float(rng.uniform(0.18, 0.6))
        xy = centre + r * np.array([math.cos(az), math.sin(az)])
        base = 0.0 if (table is None or on_table(xy)) else floor_z
        rgba, tfile, _ = _surface_look(rng, tex)
        b = _box(p, client, half, [xy[0], xy[1], base + half[2]], rng.uniform(0, math.pi), rgba, tfile)
        background.append({"kind": "box", "body": b, "distance": round(r, 4), "size": [round(2 * h, 4) for h in half]})
    if rng.random() < 0.3:  # another surface beside the objects (a board, a step)
        half = [float(rng.uniform(0.08, 0.25)), float(rng.uniform(0.08, 0.25)), float(rng.uniform(0.005, 0.03))]
        az, r = rng.uniform(0, 2 * math.pi), float(rng.uniform(0.22, 0.45))
        xy = centre + r * np.array([math.cos(az), math.sin(az)])
        base = 0.0 if (table is None or on_table(xy)) else floor_z
        rgba, tfile, _ = _surface_look(rng, tex)
        b = _box(p, client, half, [xy[0], xy[1], base + half[2]], rng.uniform(0, math.pi), rgba, tfile)
        background.append({"kind": "board", "body": b, "distance": round(r, 4)})
    if rng.random() < 0.3:  # a mat / sheet of paper under the objects (visual only)
        size = (float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.2, 0.4)))
        rgba, tfile, tile = _surface_look(rng, tex)
        ground_mesh(p, client, size, 0.0006, rgba, tfile, size[0] / tile, cell=0.05)
        background.append({"kind": "mat", "body": -1})

    # ---- objects
    names = list(names)
    check_no_benchmark(names, root)
    chosen = rng.choice(np.asarray(names, dtype=object), size=n_objects, replace=len(names) < n_objects)
    check_no_benchmark([str(n) for n in chosen], root)
    area = 0.03 + 0.02 * n_objects
    objs, shiny, dark = [], [], []
    for k, name in enumerate(chosen):
        name = str(name)
        s = float(rng.uniform(*scale_range))
        props = mesh_properties(name, root, s)
        ext = np.asarray(props.extent)
        # the folder's masses reach 1.3 kg for a bowl; household objects of this size: 20-500 g
        mass = float(np.clip(props.volume * rng.uniform(*density_range), 0.02, 0.5))
        xy = centre + rng.uniform(-area, area, 2)
        q = rng.standard_normal(4)
        q /= np.linalg.norm(q)
        z = 0.02 + float(np.max(ext)) * 0.6 + 0.1 * k
        rgba, look = _object_color(rng)
        body = load_mesh_object(p, client, name, [xy[0], xy[1], z], q.tolist(), root=root, scale=s, mass=mass, rgba=rgba)
        p.changeDynamics(body, -1, lateralFriction=float(rng.uniform(0.5, 1.0)), physicsClientId=client)
        if rng.random() < 0.2:
            shiny.append(body)
            p.changeVisualShape(body, -1, specularColor=[1.0, 1.0, 1.0], physicsClientId=client)
        if look == "dark":
            dark.append(body)
        objs.append(SceneObject(catalogue_index(name, root), name, body, s, mass))
    settle(p, client, [o.body for o in objs], max_steps=720)
    kept = []
    for o in objs:
        pos, orn = p.getBasePositionAndOrientation(o.body, physicsClientId=client)
        lo, _ = p.getAABB(o.body, physicsClientId=client)
        if lo[2] < -0.02 or np.linalg.norm(np.subtract(pos[:2], centre)) > 0.35:
            p.removeBody(o.body, physicsClientId=client)  # fell off the table / rolled away
            continue
        o.position, o.orientation = list(pos), list(orn)
        kept.append(o)
    bg_bodies = [b["body"] for b in background if b["body"] >= 0]
    keep = {o.body for o in kept}
    return SceneV2(
        support, sb, 0.0, centre, kept, [sb] + [o.body for o in kept] + bg_bodies,
        floor_z=floor_z, background=background, shiny=[b for b in shiny if b in keep], dark=[b for b in dark if b in keep],
    )


# --------------------------------------------------------------------------- camera, light, colour
def sample_camera(
    rng: np.random.Generator,
    target,
    support_z: float = 0.0,
    dist_range=DIST_RANGE,
    max_tilt_deg: float = MAX_TILT_DEG,
    width: int = cam.D435_WIDTH,
    height: int = cam.D435_HEIGHT,
    focal_range=FOCAL_RANGE,
) -> tuple[np.ndarray, cam.Intrinsics, dict]:
    """Camera at a log-uniform distance along its optical axis from a point near ``target``,
    tilted up to ``max_tilt_deg`` from vertical, random roll; jittered D435-like intrinsics."""
    s = width / cam.D435_WIDTH
    f = cam.D435_FX * s * float(rng.uniform(*focal_range))
    intr = cam.Intrinsics(width, height, f, f * float(rng.uniform(0.997, 1.003)),
                          width / 2 + float(rng.uniform(-10, 10)) * s, height / 2 + float(rng.uniform(-10, 10)) * s)
    dist = float(math.exp(rng.uniform(math.log(dist_range[0]), math.log(dist_range[1]))))
    tilt = math.radians(float(rng.uniform(0.0, max_tilt_deg)))
    az = float(rng.uniform(0, 2 * math.pi))
    t = np.array([target[0], target[1], support_z]) + np.r_[rng.uniform(-0.03, 0.03, 2), 0.0]
    eye = t + dist * np.array([math.sin(tilt) * math.cos(az), math.sin(tilt) * math.sin(az), math.cos(tilt)])
    T = cam.look_at(eye, t, roll=float(rng.uniform(0, 2 * math.pi)))
    return T, intr, {"distance_m": round(dist, 4), "tilt_deg": round(math.degrees(tilt), 3)}


def sample_lighting(rng: np.random.Generator) -> dict:
    """v1's lighting model with wider ranges: lower sun, stronger tints, darker/brighter, shinier, more shadows."""
    return _lighting_v1(rng, elevation_deg=(25, 90), tint=(0.8, 1.0), ambient=(0.2, 0.75), diffuse=(0.25, 0.85),
                        specular=(0.0, 0.6), shadow_probability=0.7)


def sensor_rgb(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour-camera effects: exposure, white balance, gamma, vignetting, blur, noise."""
    import cv2

    x = rgb.astype(np.float32) / 255.0
    x = np.clip(x * rng.uniform(0.7, 1.3) * rng.uniform(0.9, 1.1, 3), 0, 1) ** rng.uniform(0.8, 1.25)
    h, w = x.shape[:2]
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:h, 0:w]
        r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
        x *= (1 - rng.uniform(0.0, 0.35) * r2)[..., None].astype(np.float32)
    x *= 255.0
    if rng.random() < 0.6:
        x = cv2.GaussianBlur(x, (3, 3), rng.uniform(0.3, 1.0))
    x += rng.normal(0.0, rng.uniform(0.5, 4.0), x.shape).astype(np.float32)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)
