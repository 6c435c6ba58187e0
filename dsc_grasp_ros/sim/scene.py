"""Scene generation and rendering in a headless PyBullet client (DIRECT, CPU TinyRenderer).

A scene is a support (ground plane or table) with one or several objects dropped onto it and
left to settle, random colours / textures, random lighting and a D435-like camera looking down
from 0.35-0.7 m with a random tilt (0-20 degrees) and a random roll about its optical axis.

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
from .objects import ObjectSpec, catalogue, data_path, sample_scale

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
    support: str  # "plane" or "table"
    support_body: int
    support_z: float
    centre: np.ndarray  # xy centre of the object area on the support (world)
    objects: list[SceneObject]
    bodies: list[int]  # every body a gripper may collide with (support + objects)


def _load_object(p, client, spec: ObjectSpec, scale: float, position, orientation) -> int:
    return p.loadURDF(spec.urdf, position, orientation, globalScaling=scale, physicsClientId=client)


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


def build_scene(
    p,
    client,
    rng: np.random.Generator,
    object_indices,
    n_objects: int,
    support: str | None = None,
    area: float = 0.08,
    centre=None,
    textures: bool = True,
) -> Scene:
    """Support + ``n_objects`` random objects from ``object_indices``, dropped and settled."""
    cat = catalogue()
    if support is None:
        support = "table" if rng.random() < 0.4 else "plane"
    tex = texture_files() if textures else ()

    def surface_look():  # -> colour, texture file or None, texture tile size (m)
        if textures and rng.random() < 0.7:
            return [*rng.uniform(0.6, 1.0, 3), 1.0], tex[int(rng.integers(len(tex)))], float(rng.uniform(0.15, 0.6))
        return random_color(rng), None, 1.0

    if support == "table":
        sb = p.loadURDF("table/table.urdf", [0, 0, 0], physicsClientId=client)
        sz = TABLE_TOP_Z
        rgba, tfile, tile = surface_look()
        ground_mesh(p, client, (1.5, 1.0), sz + 0.0004, rgba, tfile, 1.5 / tile)
        rgba, tfile, tile = surface_look()
        ground_mesh(p, client, (6.0, 6.0), 0.0, rgba, tfile, 6.0 / tile)  # the floor around the table
    else:
        col = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client)
        sb = p.createMultiBody(0, col, -1, [0, 0, 0], physicsClientId=client)
        sz = 0.0
        rgba, tfile, tile = surface_look()
        ground_mesh(p, client, (4.0, 4.0), 0.0, rgba, tfile, 4.0 / tile)
    p.changeDynamics(sb, -1, lateralFriction=float(rng.uniform(0.5, 1.0)), physicsClientId=client)
    c = np.zeros(2) if centre is None else np.asarray(centre, dtype=np.float64)
    chosen = rng.choice(np.asarray(object_indices), size=n_objects, replace=len(object_indices) < n_objects)
    objs: list[SceneObject] = []
    for k, idx in enumerate(chosen):
        spec = cat[int(idx)]
        s = sample_scale(spec, rng)
        xy = c + rng.uniform(-area, area, 2)
        q = rng.standard_normal(4)
        q /= np.linalg.norm(q)
        z = sz + 0.06 + 0.08 * k
        body = _load_object(p, client, spec, s, [xy[0], xy[1], z], [0, 0, 0, 1])
        lo, hi = p.getAABB(body, physicsClientId=client)
        ext = np.maximum(np.subtract(hi, lo), 0.005)
        mass = float(rng.uniform(0.05, 0.3))
        inertia = mass / 12.0 * np.array([ext[1] ** 2 + ext[2] ** 2, ext[0] ** 2 + ext[2] ** 2, ext[0] ** 2 + ext[1] ** 2])
        p.changeDynamics(
            body, -1, mass=mass, localInertiaDiagonal=inertia.tolist(), lateralFriction=float(rng.uniform(0.5, 1.0)),
            spinningFriction=0.001, rollingFriction=0.0002, restitution=0.0, physicsClientId=client,
        )
        p.resetBasePositionAndOrientation(body, [xy[0], xy[1], z + 0.5 * float(np.max(ext))], q.tolist(), physicsClientId=client)
        if textures:
            if spec.index >= 1000 and rng.random() < 0.5:
                pass  # keep the object's own texture / colour
            else:
                p.changeVisualShape(body, -1, rgbaColor=random_color(rng), physicsClientId=client)
        objs.append(SceneObject(int(idx), spec.name, body, s, mass))
    settle(p, client, [o.body for o in objs])
    kept = []
    for o in objs:
        pos, orn = p.getBasePositionAndOrientation(o.body, physicsClientId=client)
        lo, hi = p.getAABB(o.body, physicsClientId=client)
        if lo[2] < sz - 0.02 or np.linalg.norm(np.subtract(pos[:2], c)) > 0.3:
            p.removeBody(o.body, physicsClientId=client)  # fell off the table / rolled away
            continue
        o.position, o.orientation = list(pos), list(orn)
        kept.append(o)
    return Scene(support, sb, sz, c, kept, [sb] + [o.body for o in kept])


# --------------------------------------------------------------------------- camera & lights
def sample_camera(
    rng: np.random.Generator,
    target,
    support_z: float,
    height=(0.35, 0.7),
    max_tilt_deg: float = 20.0,
    width: int = cam.D435_WIDTH,
    img_height: int = cam.D435_HEIGHT,
    jitter_intrinsics: bool = True,
) -> tuple[np.ndarray, cam.Intrinsics]:
    """A random downward-looking camera pose (optical frame in world) and D435-like intrinsics."""
    intr = cam.Intrinsics.d435(width, img_height)
    if jitter_intrinsics:
        s = width / cam.D435_WIDTH
        f = intr.fx * rng.uniform(0.98, 1.02)
        intr = cam.Intrinsics(width, img_height, f, f * rng.uniform(0.998, 1.002), intr.cx + rng.uniform(-4, 4) * s, intr.cy + rng.uniform(-4, 4) * s)
    h = rng.uniform(*height)
    tilt = math.radians(rng.uniform(0.0, max_tilt_deg))
    az = rng.uniform(0, 2 * math.pi)
    t = np.array([target[0], target[1], support_z], dtype=np.float64)
    eye = t + np.array([math.sin(tilt) * math.cos(az), math.sin(tilt) * math.sin(az), math.cos(tilt)]) * (h / math.cos(tilt))
    return cam.look_at(eye, t, roll=rng.uniform(0, 2 * math.pi)), intr


def sample_lighting(
    rng: np.random.Generator,
    elevation_deg: tuple[float, float] = (35, 90),
    tint: tuple[float, float] = (0.85, 1.0),
    ambient: tuple[float, float] = (0.35, 0.7),
    diffuse: tuple[float, float] = (0.35, 0.75),
    specular: tuple[float, float] = (0.0, 0.3),
    shadow_probability: float = 0.6,
) -> dict:
    """Random PyBullet lighting (``getCameraImage`` keywords); each range is drawn uniformly (defaults: v1)."""
    el = rng.uniform(math.radians(elevation_deg[0]), math.radians(elevation_deg[1]))
    az = rng.uniform(0, 2 * math.pi)
    colour = rng.uniform(tint[0], tint[1], 3)
    return {
        "lightDirection": [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)],
        "lightColor": colour.tolist(),
        "lightDistance": float(rng.uniform(1.0, 3.0)),
        "lightAmbientCoeff": float(rng.uniform(*ambient)),
        "lightDiffuseCoeff": float(rng.uniform(*diffuse)),
        "lightSpecularCoeff": float(rng.uniform(*specular)),
        "shadow": int(rng.random() < shadow_probability),
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


def sensor_rgb(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild colour-camera effects: exposure / white-balance gain, a little blur and noise."""
    import cv2

    x = rgb.astype(np.float32) * rng.uniform(0.85, 1.15) * rng.uniform(0.95, 1.05, 3)
    if rng.random() < 0.5:
        x = cv2.GaussianBlur(x, (3, 3), rng.uniform(0.3, 0.8))
    x += rng.normal(0.0, rng.uniform(0.5, 2.5), x.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


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
            b = _load_object(p, client, spec, sample_scale(spec, rng), [xy[0], xy[1], 0.08], p.getQuaternionFromEuler(rng.uniform(-3, 3, 3).tolist()))
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
