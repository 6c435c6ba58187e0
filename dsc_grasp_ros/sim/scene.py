"""Scene generation and rendering in a headless PyBullet client (DIRECT, CPU TinyRenderer).

A scene is a support (a ground plane, pybullet_data's table or a finite table top) with optional
background clutter and one or several objects dropped onto it and left to settle, with random
colours / textures. :func:`build_scene` is the one scene builder; what it builds is set by a
:class:`.presets.SceneConfig` (the blocks it picks from: :data:`SUPPORTS`, :func:`_clutter`,
:data:`OBJECT_SOURCES`). Lighting (:func:`sample_lighting`) and rendering (:func:`render`) follow.

:func:`render_sequence` renders a short, deterministic sequence of a static scene seen by a
slowly moving camera, for bundling as a rosbag.
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np

from . import camera as cam
from . import mesh_objects as mo
from .objects import catalogue, data_path, parse_object_range, sample_scale

TABLE_TOP_Z = 0.625
TIME_STEP = 1.0 / 240.0


# --------------------------------------------------------------------------- client
def connect():
    """A fresh DIRECT client set up for reproducible simulation -> ``(pybullet module, client id)``."""
    import pybullet as p

    client = p.connect(p.DIRECT)
    p.setAdditionalSearchPath(data_path(), physicsClientId=client)
    p.setGravity(0, 0, -9.81, physicsClientId=client)
    p.setTimeStep(TIME_STEP, physicsClientId=client)
    p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, numSolverIterations=50, physicsClientId=client)
    return p, client


def disconnect(p, client) -> None:
    try:
        p.disconnect(physicsClientId=client)
    except Exception:  # already gone
        pass


# --------------------------------------------------------------------------- textures
@functools.lru_cache(maxsize=1)
def texture_files() -> tuple[str, ...]:
    """Procedural textures (written once per process from a fixed seed) + a few of pybullet_data's."""
    import cv2

    d = tempfile.mkdtemp(prefix="dsc_sim_tex_")
    atexit.register(shutil.rmtree, d, True)
    rng = np.random.default_rng(12345)
    files = []
    n = 128
    yy, xx = np.mgrid[0:n, 0:n] / n
    for k in range(10):
        base = rng.uniform(40, 220, 3)
        alt = rng.uniform(40, 220, 3)
        kind = k % 5
        if kind == 0:  # wood-like stripes
            t = 0.5 + 0.5 * np.sin(2 * math.pi * (rng.uniform(4, 12) * yy + 0.3 * np.sin(2 * math.pi * 3 * xx)))
        elif kind == 1:  # checker
            c = int(rng.integers(4, 16))
            t = ((np.floor(xx * c) + np.floor(yy * c)) % 2).astype(float)
        elif kind == 2:  # smooth blotches
            g = rng.random((8, 8))
            t = cv2.resize(g, (n, n), interpolation=cv2.INTER_CUBIC)
        elif kind == 3:  # speckle
            t = rng.random((n, n))
        else:  # fabric-like weave
            t = 0.5 + 0.25 * (np.sin(2 * math.pi * 20 * xx) + np.sin(2 * math.pi * 20 * yy))
        t = np.clip(t, 0, 1)[..., None]
        img = (base * (1 - t) + alt * t).clip(0, 255).astype(np.uint8)
        f = os.path.join(d, f"tex{k}.png")
        cv2.imwrite(f, img)
        files.append(f)
    root = data_path()
    for k, rel in enumerate(("checker_blue.png", "tex256.png", "table/table.png", "tray/tray.jpg", "jenga/jenga.png")):
        img = cv2.imread(os.path.join(root, rel), cv2.IMREAD_COLOR)
        if img is None:
            continue
        # TinyRenderer has no mip-mapping: keep textures coarse so they do not alias (moire).
        f = os.path.join(d, f"data{k}.png")
        cv2.imwrite(f, cv2.resize(img, (n, n), interpolation=cv2.INTER_AREA))
        files.append(f)
    return tuple(files)


def ground_mesh(p, client, size, z: float, rgba, texture: str | None = None, tiles: float = 1.0, cell: float = 0.1) -> int:
    """A visual-only, finely subdivided textured rectangle centred at the origin at height ``z``.

    TinyRenderer shades per vertex and interpolates textures per (large) triangle, so a two-
    triangle ground looks faceted; ~10 cm cells avoid that. No collision shape.
    """
    nx, ny = max(1, int(round(size[0] / cell))), max(1, int(round(size[1] / cell)))
    xs, ys = np.linspace(-size[0] / 2, size[0] / 2, nx + 1), np.linspace(-size[1] / 2, size[1] / 2, ny + 1)
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    verts = np.stack([X.ravel(), Y.ravel(), np.zeros(X.size)], 1)
    uvs = np.stack([(X.ravel() / size[0] + 0.5) * tiles, (Y.ravel() / size[1] + 0.5) * tiles * size[1] / size[0]], 1)
    idx = []
    for i in range(nx):
        for j in range(ny):
            a, b, c, d = i * (ny + 1) + j, (i + 1) * (ny + 1) + j, (i + 1) * (ny + 1) + j + 1, i * (ny + 1) + j + 1
            idx += [a, b, c, a, c, d]
    vis = p.createVisualShape(
        p.GEOM_MESH, vertices=verts.tolist(), indices=idx, uvs=uvs.tolist(), normals=[[0, 0, 1]] * len(verts),
        rgbaColor=list(rgba), physicsClientId=client,
    )
    body = p.createMultiBody(0, -1, vis, [0, 0, z], physicsClientId=client)
    if texture:
        p.changeVisualShape(body, -1, textureUniqueId=p.loadTexture(texture, physicsClientId=client), physicsClientId=client)
    return body


def random_color(rng: np.random.Generator) -> list[float]:
    import colorsys

    h, s, v = rng.random(), rng.uniform(0.2, 1.0), rng.uniform(0.25, 1.0)
    return [*colorsys.hsv_to_rgb(h, s, v), 1.0]


# --------------------------------------------------------------------------- scene
@dataclass
class SceneObject:
    index: int  # catalogue index
    name: str
    body: int
    scale: float
    mass: float
    position: list = field(default_factory=list)  # after settling (world)
    orientation: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "name": self.name,
            "body": self.body,
            "segmentation_id": self.body,
            "scale": round(self.scale, 6),
            "mass": round(self.mass, 6),
            "position": [round(float(x), 6) for x in self.position],
            "orientation": [round(float(x), 6) for x in self.orientation],
        }


@dataclass
class Scene:
    support: str  # "plane", "floor" or "table"
    support_body: int
    support_z: float
    centre: np.ndarray  # xy centre of the object area on the support (world)
    objects: list[SceneObject]
    bodies: list[int]  # every body a gripper may collide with (support, objects, background)
    floor_z: float = 0.0
    background: list = field(default_factory=list)  # [{"kind", "body", ...}]
    shiny: list = field(default_factory=list)  # object bodies with a specular look (depth holes)
    dark: list = field(default_factory=list)  # object bodies with a dark colour (depth holes)


def settle(p, client, bodies, max_steps: int = 720, lin_tol: float = 2e-3, ang_tol: float = 2e-2) -> int:
    """Step until every body in ``bodies`` is (nearly) at rest; returns the steps taken."""
    for step in range(1, max_steps + 1):
        p.stepSimulation(physicsClientId=client)
        if step % 24 == 0 and step >= 96:
            moving = False
            for b in bodies:
                lin, ang = p.getBaseVelocity(b, physicsClientId=client)
                if np.linalg.norm(lin) > lin_tol or np.linalg.norm(ang) > ang_tol:
                    moving = True
                    break
            if not moving:
                return step
    return max_steps


# --------------------------------------------------------------------------- blocks: surfaces and supports
@dataclass(frozen=True)
class SurfaceLook:
    """How a surface (support, floor, wall, box) is coloured: textured with probability ``textured``."""

    textured: float = 0.7
    tint: tuple[float, float] = (0.6, 1.0)  # colour of a textured surface, per channel
    tile_m: tuple[float, float] = (0.15, 0.6)  # texture tile size

    def draw(self, rng: np.random.Generator, textures) -> tuple[list, str | None, float]:
        """-> ``(rgba, texture file or None, tile size m)``."""
        if rng.random() < self.textured:
            return [*rng.uniform(*self.tint, 3), 1.0], textures[int(rng.integers(len(textures)))], float(rng.uniform(*self.tile_m))
        return random_color(rng), None, 1.0


@dataclass
class _Support:
    name: str
    body: int
    z: float  # height of the support surface
    floor_z: float
    table: tuple | None  # (width, depth) of a finite table top at z = 0, for the background
    centre: np.ndarray


def _flat_support(p, client, rng, cfg, tex, name: str) -> _Support:
    """A ground plane (collision) under a textured ground of ``cfg.floor_size``."""
    col = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client)
    sb = p.createMultiBody(0, col, -1, [0, 0, 0], physicsClientId=client)
    rgba, tfile, tile = cfg.look.draw(rng, tex)
    ground_mesh(p, client, (cfg.floor_size, cfg.floor_size), 0.0, rgba, tfile, cfg.floor_size / tile, cell=cfg.floor_cell)
    return _Support(name, sb, 0.0, 0.0, None, np.zeros(2))


def _urdf_table(p, client, rng, cfg, tex) -> _Support:
    """pybullet_data's table (top at :data:`TABLE_TOP_Z`) on a 6 x 6 m floor; objects at its centre."""
    sb = p.loadURDF("table/table.urdf", [0, 0, 0], physicsClientId=client)
    rgba, tfile, tile = cfg.look.draw(rng, tex)
    ground_mesh(p, client, (1.5, 1.0), TABLE_TOP_Z + 0.0004, rgba, tfile, 1.5 / tile)
    rgba, tfile, tile = cfg.look.draw(rng, tex)
    ground_mesh(p, client, (6.0, 6.0), 0.0, rgba, tfile, 6.0 / tile)  # the floor around the table
    return _Support("table", sb, TABLE_TOP_Z, 0.0, None, np.zeros(2))


def _board_table(p, client, rng, cfg, tex) -> _Support:
    """A finite table top of random size at z = 0 (its edges and the floor 0.45-0.9 m below are often in
    view); the objects lie anywhere on it, 12 cm from its edges."""
    floor_z = -float(rng.uniform(0.45, 0.9))
    tw, td = float(rng.uniform(0.5, 1.6)), float(rng.uniform(0.45, 1.0))
    th = 0.03
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[tw / 2, td / 2, th / 2], physicsClientId=client)
    sb = p.createMultiBody(0, col, -1, [0, 0, -th / 2], physicsClientId=client)
    rgba, tfile, tile = cfg.look.draw(rng, tex)
    ground_mesh(p, client, (tw, td), 0.0, rgba, tfile, tw / tile, cell=0.1)
    edge_rgba = [*(np.asarray(rgba[:3]) * rng.uniform(0.5, 0.9)), 1.0]
    vis = p.createVisualShape(p.GEOM_BOX, halfExtents=[tw / 2, td / 2, th / 2 - 0.0005], rgbaColor=edge_rgba, physicsClientId=client)
    p.createMultiBody(0, -1, vis, [0, 0, -th / 2 - 0.0005], physicsClientId=client)  # the table's edge faces
    fcol = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client)
    p.createMultiBody(0, fcol, -1, [0, 0, floor_z], physicsClientId=client)
    rgba, tfile, tile = cfg.look.draw(rng, tex)
    ground_mesh(p, client, (cfg.floor_size, cfg.floor_size), floor_z, rgba, tfile, cfg.floor_size / tile, cell=cfg.floor_cell)
    margin = 0.12
    centre = np.array([rng.uniform(-max(tw / 2 - margin, 0), max(tw / 2 - margin, 0)),
                       rng.uniform(-max(td / 2 - margin, 0), max(td / 2 - margin, 0))])
    return _Support("table", sb, 0.0, floor_z, (tw, td), centre)


#: Support kinds: a name in :attr:`SceneConfig.supports` -> builder.
SUPPORTS = {
    "plane": lambda p, client, rng, cfg, tex: _flat_support(p, client, rng, cfg, tex, "plane"),
    "floor": lambda p, client, rng, cfg, tex: _flat_support(p, client, rng, cfg, tex, "floor"),
    "table": _urdf_table,
    "board_table": _board_table,
}


# --------------------------------------------------------------------------- blocks: background clutter
def _box(p, client, half, pos, yaw, rgba, texture=None):
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=list(half), physicsClientId=client)
    vis = p.createVisualShape(p.GEOM_BOX, halfExtents=list(half), rgbaColor=list(rgba), physicsClientId=client)
    b = p.createMultiBody(0, col, vis, list(pos), p.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=client)
    if texture:
        p.changeVisualShape(b, -1, textureUniqueId=p.loadTexture(texture, physicsClientId=client), physicsClientId=client)
    return b


def _clutter(p, client, rng, sup: _Support, look: SurfaceLook, tex) -> list[dict]:
    """Walls behind the objects (0-2), boxes on the table or the floor (0-4), a raised board, a mat under
    the objects -> ``[{"kind", "body", ...}]``."""
    background = []
    centre, floor_z, table = sup.centre, sup.floor_z, sup.table

    def on_table(xy) -> bool:
        return table is not None and abs(xy[0]) < table[0] / 2 - 0.01 and abs(xy[1]) < table[1] / 2 - 0.01

    def base_at(xy) -> float:
        return 0.0 if (table is None or on_table(xy)) else floor_z

    n_walls = int(rng.choice([0, 1, 2], p=[0.35, 0.45, 0.2]))
    az0 = rng.uniform(0, 2 * math.pi)
    for k in range(n_walls):
        az = az0 + k * (math.pi / 2) * rng.choice([-1, 1]) + rng.uniform(-0.2, 0.2)
        dist = float(rng.uniform(0.25, 0.8))
        top = float(rng.uniform(0.2, 1.2))
        half = [0.01, 1.5, (top - floor_z) / 2]
        pos = [centre[0] + dist * math.cos(az), centre[1] + dist * math.sin(az), floor_z + half[2]]
        rgba, tfile, _ = look.draw(rng, tex)
        b = _box(p, client, half, pos, az, rgba, tfile)
        background.append({"kind": "wall", "body": b, "distance": round(dist, 4), "height": round(top, 4)})
    for _ in range(int(rng.integers(0, 5))):
        half = [float(rng.uniform(0.03, 0.18)), float(rng.uniform(0.03, 0.18)), float(rng.uniform(0.02, 0.18))]
        az, r = rng.uniform(0, 2 * math.pi), float(rng.uniform(0.18, 0.6))
        xy = centre + r * np.array([math.cos(az), math.sin(az)])
        rgba, tfile, _ = look.draw(rng, tex)
        b = _box(p, client, half, [xy[0], xy[1], base_at(xy) + half[2]], rng.uniform(0, math.pi), rgba, tfile)
        background.append({"kind": "box", "body": b, "distance": round(r, 4), "size": [round(2 * h, 4) for h in half]})
    if rng.random() < 0.3:  # another surface beside the objects (a board, a step)
        half = [float(rng.uniform(0.08, 0.25)), float(rng.uniform(0.08, 0.25)), float(rng.uniform(0.005, 0.03))]
        az, r = rng.uniform(0, 2 * math.pi), float(rng.uniform(0.22, 0.45))
        xy = centre + r * np.array([math.cos(az), math.sin(az)])
        rgba, tfile, _ = look.draw(rng, tex)
        b = _box(p, client, half, [xy[0], xy[1], base_at(xy) + half[2]], rng.uniform(0, math.pi), rgba, tfile)
        background.append({"kind": "board", "body": b, "distance": round(r, 4)})
    if rng.random() < 0.3:  # a mat / sheet of paper under the objects (visual only)
        size = (float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.2, 0.4)))
        rgba, tfile, tile = look.draw(rng, tex)
        ground_mesh(p, client, size, 0.0006, rgba, tfile, size[0] / tile, cell=0.05)
        background.append({"kind": "mat", "body": -1})
    return background


# --------------------------------------------------------------------------- blocks: object sources
@dataclass
class _Dropped:
    obj: SceneObject
    shiny: bool = False
    dark: bool = False


class CatalogueObjects:
    """pybullet_data's procedural objects and small extras (:mod:`.objects`), at a random graspable size,
    random mass, recoloured (the extras keep their own look half the time). Items are catalogue indices."""

    def __init__(self, root=None):
        self.cat = catalogue()

    def select(self, text: str | None) -> list[int]:
        return parse_object_range(text)

    def check(self, items) -> None:
        pass

    def drop(self, p, client, rng, item, k: int, centre, area: float, support_z: float, cfg) -> _Dropped:
        spec = self.cat[int(item)]
        s = sample_scale(spec, rng)
        xy = centre + rng.uniform(-area, area, 2)
        q = rng.standard_normal(4)
        q /= np.linalg.norm(q)
        z = support_z + 0.06 + 0.08 * k
        body = p.loadURDF(spec.urdf, [xy[0], xy[1], z], [0, 0, 0, 1], globalScaling=s, physicsClientId=client)
        lo, hi = p.getAABB(body, physicsClientId=client)
        ext = np.maximum(np.subtract(hi, lo), 0.005)
        mass = float(rng.uniform(0.05, 0.3))
        inertia = mass / 12.0 * np.array([ext[1] ** 2 + ext[2] ** 2, ext[0] ** 2 + ext[2] ** 2, ext[0] ** 2 + ext[1] ** 2])
        p.changeDynamics(
            body, -1, mass=mass, localInertiaDiagonal=inertia.tolist(), lateralFriction=float(rng.uniform(0.5, 1.0)),
            spinningFriction=0.001, rollingFriction=0.0002, restitution=0.0, physicsClientId=client,
        )
        p.resetBasePositionAndOrientation(body, [xy[0], xy[1], z + 0.5 * float(np.max(ext))], q.tolist(), physicsClientId=client)
        if spec.index >= 1000 and rng.random() < 0.5:
            pass  # keep the object's own texture / colour
        else:
            p.changeVisualShape(body, -1, rgbaColor=random_color(rng), physicsClientId=client)
        return _Dropped(SceneObject(int(item), spec.name, body, s, mass))


def _object_color(rng) -> tuple[list, str]:
    r = rng.random()
    if r < 0.15:  # dark: stereo matching fails on it
        return [*(rng.uniform(0.02, 0.12) * rng.uniform(0.6, 1.0, 3)), 1.0], "dark"
    if r < 0.3:  # light grey / white
        return [*(rng.uniform(0.75, 1.0) * rng.uniform(0.92, 1.0, 3)), 1.0], "light"
    return random_color(rng), "colour"


class MeshObjects:
    """The real household meshes of the shared object folder (:mod:`.mesh_objects`) at their real size
    (scale 0.8-1.05), mass from volume and density (20-500 g), some dark, some shiny. Items are names;
    the benchmark set is refused at selection and again before loading."""

    def __init__(self, root=None):
        self.root = root

    def select(self, text: str | None) -> list[str]:
        return mo.object_selection(text, self.root)

    def check(self, items) -> None:
        mo.check_no_benchmark([str(n) for n in items], self.root)

    def drop(self, p, client, rng, item, k: int, centre, area: float, support_z: float, cfg) -> _Dropped:
        name = str(item)
        s = float(rng.uniform(*cfg.scale_range))
        props = mo.mesh_properties(name, self.root, s)
        ext = np.asarray(props.extent)
        # the folder's masses reach 1.3 kg for a bowl; household objects of this size: 20-500 g
        mass = float(np.clip(props.volume * rng.uniform(*cfg.density_range), 0.02, 0.5))
        xy = centre + rng.uniform(-area, area, 2)
        q = rng.standard_normal(4)
        q /= np.linalg.norm(q)
        z = support_z + 0.02 + float(np.max(ext)) * 0.6 + 0.1 * k
        rgba, look = _object_color(rng)
        body = mo.load_mesh_object(p, client, name, [xy[0], xy[1], z], q.tolist(), root=self.root, scale=s, mass=mass, rgba=rgba)
        p.changeDynamics(body, -1, lateralFriction=float(rng.uniform(0.5, 1.0)), physicsClientId=client)
        shiny = rng.random() < 0.2
        if shiny:
            p.changeVisualShape(body, -1, specularColor=[1.0, 1.0, 1.0], physicsClientId=client)
        return _Dropped(SceneObject(mo.catalogue_index(name, self.root), name, body, s, mass), shiny, look == "dark")


#: Object sources: :attr:`SceneConfig.objects` -> class (constructed with the mesh folder).
OBJECT_SOURCES = {"catalogue": CatalogueObjects, "meshes": MeshObjects}


# --------------------------------------------------------------------------- the scene builder
def build_scene(p, client, rng: np.random.Generator, cfg, items, n_objects: int, root=None) -> Scene:
    """Support, background and ``n_objects`` objects drawn from ``items`` (of the source ``cfg.objects``),
    dropped into a pile around the support's centre and settled. ``cfg``: a :class:`.presets.SceneConfig`.

    Objects that fall off the support or roll farther than ``cfg.keep_radius`` are removed.
    """
    source = OBJECT_SOURCES[cfg.objects](root)
    tex = texture_files()
    first, p_first, other = cfg.supports
    sup = SUPPORTS[first if rng.random() < p_first else other](p, client, rng, cfg, tex)
    p.changeDynamics(sup.body, -1, lateralFriction=float(rng.uniform(0.5, 1.0)), physicsClientId=client)
    background = _clutter(p, client, rng, sup, cfg.look, tex) if cfg.clutter else []
    items = list(items)
    source.check(items)
    chosen = rng.choice(np.asarray(items, dtype=object), size=n_objects, replace=len(items) < n_objects)
    source.check(chosen)
    area = cfg.pile_area[0] + cfg.pile_area[1] * n_objects
    dropped = [source.drop(p, client, rng, item, k, sup.centre, area, sup.z, cfg) for k, item in enumerate(chosen)]
    settle(p, client, [d.obj.body for d in dropped])
    kept = []
    for d in dropped:
        o = d.obj
        pos, orn = p.getBasePositionAndOrientation(o.body, physicsClientId=client)
        lo, _ = p.getAABB(o.body, physicsClientId=client)
        if lo[2] < sup.z - 0.02 or np.linalg.norm(np.subtract(pos[:2], sup.centre)) > cfg.keep_radius:
            p.removeBody(o.body, physicsClientId=client)  # fell off the table / rolled away
            continue
        o.position, o.orientation = list(pos), list(orn)
        kept.append(d)
    objects = [d.obj for d in kept]
    bg_bodies = [b["body"] for b in background if b["body"] >= 0]
    return Scene(
        sup.name, sup.body, sup.z, sup.centre, objects, [sup.body] + [o.body for o in objects] + bg_bodies,
        floor_z=sup.floor_z, background=background, shiny=[d.obj.body for d in kept if d.shiny],
        dark=[d.obj.body for d in kept if d.dark],
    )


# --------------------------------------------------------------------------- lights and rendering
@dataclass(frozen=True)
class LightingConfig:
    """Ranges of the random PyBullet lighting (each drawn uniformly)."""

    elevation_deg: tuple[float, float] = (35, 90)
    tint: tuple[float, float] = (0.85, 1.0)
    ambient: tuple[float, float] = (0.35, 0.7)
    diffuse: tuple[float, float] = (0.35, 0.75)
    specular: tuple[float, float] = (0.0, 0.3)
    shadow_probability: float = 0.6


def sample_lighting(rng: np.random.Generator, cfg: LightingConfig = LightingConfig()) -> dict:
    """Random PyBullet lighting (``getCameraImage`` keywords)."""
    el = rng.uniform(math.radians(cfg.elevation_deg[0]), math.radians(cfg.elevation_deg[1]))
    az = rng.uniform(0, 2 * math.pi)
    colour = rng.uniform(cfg.tint[0], cfg.tint[1], 3)
    return {
        "lightDirection": [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)],
        "lightColor": colour.tolist(),
        "lightDistance": float(rng.uniform(1.0, 3.0)),
        "lightAmbientCoeff": float(rng.uniform(*cfg.ambient)),
        "lightDiffuseCoeff": float(rng.uniform(*cfg.diffuse)),
        "lightSpecularCoeff": float(rng.uniform(*cfg.specular)),
        "shadow": int(rng.random() < cfg.shadow_probability),
    }


def render(p, client, T_world_cam, intr: cam.Intrinsics, lighting: dict | None = None):
    """Render ``(rgb uint8 HxWx3, depth float32 m, segmentation int32 body ids, -1 = none)``."""
    kw = dict(lighting or {})
    w, h, rgba, zbuf, seg = p.getCameraImage(
        intr.width,
        intr.height,
        viewMatrix=cam.view_matrix(T_world_cam),
        projectionMatrix=cam.projection_matrix(intr),
        renderer=p.ER_TINY_RENDERER,
        physicsClientId=client,
        **kw,
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3].copy()
    depth = cam.zbuffer_to_depth(np.asarray(zbuf, dtype=np.float64).reshape(h, w))
    seg = np.asarray(seg, dtype=np.int32).reshape(h, w)
    return rgb, depth, seg


# --------------------------------------------------------------------------- sequence for rosbags
#: The known box of :func:`render_sequence` (m): full size along its x, y, z.
SEQUENCE_BOX_SIZE = (0.06, 0.04, 0.05)
#: Where the sequence's objects lie in the base frame (a table area in front of a robot base).
SEQUENCE_CENTRE = (0.5, 0.0)


@dataclass
class Frame:
    index: int
    rgb: np.ndarray  # uint8 HxWx3
    depth: np.ndarray  # float32 HxW, metres along the optical axis
    K: np.ndarray  # 3x3 float64
    T_base_camera: list  # [x, y, z, qx, qy, qz, qw]: optical frame in the base frame
    objects: list  # [(name, np.array([x, y, z]))] body origins in the base frame


def render_sequence(n_frames: int, seed: int, width: int = 640, height: int = 480, n_objects: int = 3):
    """Yield ``n_frames`` :class:`Frame` of a static scene seen by a slowly orbiting camera.

    The base frame is the world frame: support plane at ``z = 0``, objects around
    ``SEQUENCE_CENTRE``. The first object is always ``"box"``, an upright box of
    :data:`SEQUENCE_BOX_SIZE` whose reported position is its centre (top centre =
    position + half its height along z). Deterministic per ``seed``.
    """
    rng = np.random.default_rng(seed)
    p, client = connect()
    try:
        plane = p.loadURDF("plane.urdf", [0, 0, 0], physicsClientId=client)
        p.changeVisualShape(plane, -1, rgbaColor=[0.75, 0.72, 0.68, 1.0], physicsClientId=client)
        c = np.array(SEQUENCE_CENTRE, dtype=np.float64)
        half = [s / 2 for s in SEQUENCE_BOX_SIZE]
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=client)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=[0.85, 0.3, 0.2, 1], physicsClientId=client)
        yaw = rng.uniform(-math.pi, math.pi)
        box = p.createMultiBody(0.2, col, vis, [c[0] + rng.uniform(-0.03, 0.03), c[1] + rng.uniform(-0.03, 0.03), half[2] + 0.001],
                                p.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=client)
        named = [("box", box)]
        others = [i for i in catalogue() if i < 1000]
        for k in range(max(0, n_objects - 1)):
            spec = catalogue()[int(rng.choice(others))]
            ang = 2 * math.pi * (k + 1) / n_objects + rng.uniform(-0.3, 0.3)
            xy = c + 0.1 * np.array([math.cos(ang), math.sin(ang)])
            s = sample_scale(spec, rng)
            b = p.loadURDF(spec.urdf, [xy[0], xy[1], 0.08], p.getQuaternionFromEuler(rng.uniform(-3, 3, 3).tolist()),
                           globalScaling=s, physicsClientId=client)
            p.changeVisualShape(b, -1, rgbaColor=random_color(rng), physicsClientId=client)
            named.append((spec.name, b))
        settle(p, client, [b for _, b in named], max_steps=960)
        objects = [(name, np.array(p.getBasePositionAndOrientation(b, physicsClientId=client)[0])) for name, b in named]
        intr = cam.Intrinsics.d435(width, height)
        light = sample_lighting(rng)
        h0 = rng.uniform(0.45, 0.6)
        az0 = rng.uniform(0, 2 * math.pi)
        target = np.array([c[0], c[1], 0.0])
        for i in range(n_frames):
            az = az0 + math.radians(0.5) * i  # half a degree per frame
            tilt = math.radians(15.0 + 5.0 * math.sin(2 * math.pi * i / 90.0))
            eye = target + np.array([math.sin(tilt) * math.cos(az), math.sin(tilt) * math.sin(az), math.cos(tilt)]) * (h0 / math.cos(tilt))
            T = cam.look_at(eye, target, roll=az)
            rgb, depth, _ = render(p, client, T, intr, light)
            yield Frame(i, rgb, depth, intr.K, cam.pose_to_xyzquat(T), [(n, x.copy()) for n, x in objects])
    finally:
        disconnect(p, client)
