"""The benchmark's world: table, Panda, one dropped object per scene, the authors' camera.

World layout (metres; the world frame is not the robot base, so every pose goes through the
camera -> ``panda_link0`` transform as on a robot):

* table top at world ``z = 0``, 1.4 x 1.6 m, centred at the origin; the workspace is the square
  ``|x|, |y| <= workspace_half`` (0.10 m) around the origin.
* Panda base ``panda_link0`` at world ``(0, -0.55, 0)``, turned +90 degrees about z (its x axis
  points at the workspace): the workspace centre is 0.55 m in front of the robot.
* camera ``top`` (the authors' geometry): 0.7 m above the workspace centre, looking straight
  down, 640x480, 60 degree vertical field of view (fx = fy = 415.7 px, principal point at the
  image centre); ``oblique``: 0.7 m from the workspace centre, tilted 30 degrees from vertical,
  on the side opposite the robot. Depth: exact z-buffer depth plus Gaussian noise of
  ``depth_noise`` (2 mm) drawn on a grid 8x coarser than the image and upsampled bilinearly.
* objects: one per scene, dropped with its lowest point 15-20 cm above the table at a uniform
  random (x, y) in the workspace and a uniform random orientation, then left to settle. An object
  that rolls out of ``settled_half`` (0.16 m) is dropped again (same seed stream).

The arm waits in a park pose (folded back, out of the view) while the image is taken.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

from ..sim import camera as cam
from ..sim import mesh_objects as mo
from ..sim.scene import connect, disconnect, ground_mesh, random_color, render, settle, texture_files
from .panda import Panda

TABLE_SIZE = (1.4, 1.6)
BASE_XY = (0.0, -0.55)
BASE_YAW = math.pi / 2

TABLE_TEXTURES = ("none", "checker", "wood", "speckle")
LIGHTINGS = ("fixed", "random")
CAMERAS = ("top", "oblique")


@dataclass
class SceneSettings:
    """Scene settings of a run (all recorded in the report)."""

    camera: str = "top"  # "top" (authors) or "oblique"
    camera_distance: float = 0.7  # m from the workspace centre
    oblique_tilt_deg: float = 30.0
    width: int = 640
    height: int = 480
    vfov_deg: float = 60.0
    depth_noise: float = 0.002  # m, Gaussian sigma per coarse cell
    noise_cell: int = 8  # px; noise is drawn on a (H/cell x W/cell) grid and upsampled
    table_color: tuple = (0.62, 0.6, 0.56)  # RGB in [0, 1]
    table_texture: str = "none"  # none | checker | wood | speckle | path to an image
    lighting: str = "fixed"  # fixed | random (drawn per scene from its seed)
    object_color: str = "random"  # random (per scene, from its seed) | R,G,B
    workspace_half: float = 0.10
    settled_half: float = 0.16
    drop_height: tuple = (0.15, 0.20)

    def validate(self) -> "SceneSettings":
        if self.camera not in CAMERAS:
            raise ValueError(f"camera must be one of {CAMERAS}, got {self.camera!r}")
        if self.lighting not in LIGHTINGS:
            raise ValueError(f"lighting must be one of {LIGHTINGS}, got {self.lighting!r}")
        if self.table_texture not in TABLE_TEXTURES:
            import os

            if not os.path.isfile(self.table_texture):
                raise ValueError(f"table texture must be one of {TABLE_TEXTURES} or an image file, got {self.table_texture!r}")
        c = tuple(float(x) for x in self.table_color)
        if len(c) != 3 or not all(0.0 <= x <= 1.0 for x in c):
            raise ValueError(f"table colour must be 3 values in [0, 1], got {self.table_color}")
        self.table_color = c
        if not (0.0 <= self.depth_noise <= 0.05):
            raise ValueError(f"depth noise must be in [0, 0.05] m, got {self.depth_noise}")
        if not (0.1 <= self.camera_distance <= 1.5):
            raise ValueError(f"camera distance must be in [0.1, 1.5] m, got {self.camera_distance}")
        if not (0.02 <= self.workspace_half <= 0.2):
            raise ValueError(f"workspace half-size must be in [0.02, 0.2] m, got {self.workspace_half}")
        if self.object_color != "random":
            oc = [float(x) for x in str(self.object_color).split(",")]
            if len(oc) != 3 or not all(0 <= x <= 1 for x in oc):
                raise ValueError(f"object colour must be 'random' or R,G,B in [0, 1], got {self.object_color!r}")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SceneState:
    """One settled scene and its image: shared by every policy (see :meth:`BenchWorld.restore`)."""

    object_name: str
    trial: int
    seed: int  # the scene's own seed (derived from the run seed, the object and the trial)
    body: int
    rest_pose: tuple  # (COM position, orientation, linear velocity, angular velocity) after settling
    start_com: np.ndarray  # world, after settling
    T_world_link: np.ndarray
    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray
    drops: int  # how many drops it took
    settle_steps: int
    color: list = field(default_factory=list)
    lighting: dict | None = None


def scene_seed(run_seed: int, name: str, trial: int) -> int:
    """Seed of scene (object, trial): the same for every policy and independent of run order."""
    return int(np.random.SeedSequence([int(run_seed), zlib.crc32(name.encode()), int(trial)]).generate_state(1)[0])


def fixed_lighting() -> dict:
    return {"lightDirection": [0.3, 0.4, 1.0], "lightColor": [1.0, 1.0, 1.0], "lightDistance": 2.0, "lightAmbientCoeff": 0.55,
            "lightDiffuseCoeff": 0.55, "lightSpecularCoeff": 0.1, "shadow": 0}


class BenchWorld:
    """A PyBullet client with the table, the robot and the camera; builds one scene at a time."""

    def __init__(self, settings: SceneSettings | None = None, objects_root=None):
        self.settings = (settings or SceneSettings()).validate()
        self.objects_root = mo.objects_root(objects_root)
        self.p, self.c = connect()
        p, c = self.p, self.c
        s = self.settings
        half = [TABLE_SIZE[0] / 2, TABLE_SIZE[1] / 2, 0.05]
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=c)
        self.table = p.createMultiBody(0, col, -1, [0, 0, -0.05], physicsClientId=c)
        p.changeDynamics(self.table, -1, lateralFriction=0.8, rollingFriction=0.003, spinningFriction=0.003, restitution=0.0, physicsClientId=c)
        tex = None
        if s.table_texture != "none":
            files = texture_files()
            tex = {"wood": files[0], "checker": files[1], "speckle": files[3]}.get(s.table_texture, s.table_texture)
        ground_mesh(p, c, TABLE_SIZE, 0.0004, [*s.table_color, 1.0], tex, TABLE_SIZE[0] / 0.3)
        ground_mesh(p, c, (6.0, 6.0), -0.75, [0.35, 0.35, 0.38, 1.0])  # floor (seen by an oblique camera)
        T_wb = np.eye(4)
        cy, sy = math.cos(BASE_YAW), math.sin(BASE_YAW)
        T_wb[:3, :3] = [[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]]
        T_wb[:3, 3] = [BASE_XY[0], BASE_XY[1], 0.0]
        self.robot = Panda(p, c, T_wb)
        # camera
        f = (s.height / 2) / math.tan(math.radians(s.vfov_deg) / 2)
        self.intr = cam.Intrinsics(s.width, s.height, f, f, (s.width - 1) / 2, (s.height - 1) / 2)
        if s.camera == "top":
            self.T_world_cam = cam.look_at([0.0, 0.0, s.camera_distance], [0.0, 0.0, 0.0])
        else:
            t = math.radians(s.oblique_tilt_deg)
            eye = [0.0, s.camera_distance * math.sin(t), s.camera_distance * math.cos(t)]
            self.T_world_cam = cam.look_at(eye, [0.0, 0.0, 0.0])
        self.T_base_cam = self.robot.world_to_base(self.T_world_cam)

    def close(self) -> None:
        disconnect(self.p, self.c)

    # ----------------------------------------------------------------- scenes
    def build(self, name: str, trial: int, run_seed: int = 0) -> SceneState:
        """Drop ``name``, settle it, render the image; the physics state is saved for all policies."""
        p, c, s = self.p, self.c, self.settings
        seed = scene_seed(run_seed, name, trial)
        rng = np.random.default_rng(seed)
        color = random_color(rng) if s.object_color == "random" else [*(float(x) for x in s.object_color.split(",")), 1.0]
        lighting = fixed_lighting() if s.lighting == "fixed" else _random_lighting(rng)
        verts = mo.collision_vertices(name, self.objects_root)
        self.robot.park()
        body = mo.load_mesh_object(p, c, name, [0, 0, 1.0], [0, 0, 0, 1], root=self.objects_root, rgba=color)
        drops, steps = 0, 0
        while True:
            drops += 1
            q = rng.standard_normal(4)
            q /= np.linalg.norm(q)
            xy = rng.uniform(-s.workspace_half, s.workspace_half, 2)
            h = rng.uniform(*s.drop_height)
            # put the link frame so that the rotated mesh's lowest point is h above the table
            from ..core.geometry import quaternion_to_rotation

            lowest = float((verts @ quaternion_to_rotation(q).T)[:, 2].min())
            p.resetBasePositionAndOrientation(body, [0, 0, 0], [0, 0, 0, 1], physicsClientId=c)
            T0 = mo.link_pose(p, c, body)  # link pose when the COM frame is at the origin
            T_link = np.eye(4)
            T_link[:3, :3] = quaternion_to_rotation(q)
            T_link[:3, 3] = [xy[0], xy[1], h - lowest]
            T_com = T_link @ np.linalg.inv(T0)
            from ..core.geometry import rotation_to_quaternion

            p.resetBasePositionAndOrientation(body, T_com[:3, 3].tolist(), rotation_to_quaternion(T_com[:3, :3]).tolist(), physicsClientId=c)
            p.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0], physicsClientId=c)
            steps += settle(p, c, [body], max_steps=960)
            com = np.array(p.getBasePositionAndOrientation(body, physicsClientId=c)[0])
            if (np.abs(com[:2]) <= s.settled_half).all() and com[2] > -0.01:
                break
            if drops >= 10:
                raise RuntimeError(f"object {name} did not come to rest in the workspace after 10 drops (scene seed {seed})")
        rgb, depth, seg = render(p, c, self.T_world_cam, self.intr, lighting)
        if s.depth_noise > 0:
            depth = depth + self.depth_noise(rng, depth.shape)
        pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=c)
        lin, ang = p.getBaseVelocity(body, physicsClientId=c)
        rest = (tuple(pos), tuple(orn), tuple(lin), tuple(ang))
        return SceneState(name, trial, seed, body, rest, com, mo.link_pose(p, c, body), rgb, depth.astype(np.float32), seg,
                          drops, steps, color, lighting)

    def depth_noise(self, rng: np.random.Generator, shape) -> np.ndarray:
        """Gaussian noise (sigma = ``depth_noise``) on a grid ``noise_cell`` times coarser, upsampled bilinearly."""
        import cv2

        s = self.settings
        h, w = shape
        gh, gw = max(2, math.ceil(h / s.noise_cell) + 1), max(2, math.ceil(w / s.noise_cell) + 1)
        g = rng.normal(0.0, s.depth_noise, (gh, gw)).astype(np.float32)
        up = cv2.resize(g, ((gw - 1) * s.noise_cell, (gh - 1) * s.noise_cell), interpolation=cv2.INTER_LINEAR)
        return up[:h, :w]

    def restore(self, scene: SceneState) -> None:
        """Put the scene back as it was after settling, independent of what ran before.

        The object is removed and loaded afresh at its rest pose and velocity (a new body: no
        contact manifold or solver warm-start survives from an earlier trial), the arm is
        teleported to the park pose with zero velocity. ``saveState``/``restoreState`` keep
        PyBullet's contact caches, which made a marginal grasp's outcome depend on the policies
        tried before it on the same scene.
        """
        p, c = self.p, self.c
        p.removeBody(scene.body, physicsClientId=c)
        pos, orn, lin, ang = scene.rest_pose
        scene.body = mo.load_mesh_object(p, c, scene.object_name, [0, 0, 1.0], [0, 0, 0, 1], root=self.objects_root, rgba=scene.color)
        p.resetBasePositionAndOrientation(scene.body, list(pos), list(orn), physicsClientId=c)
        p.resetBaseVelocity(scene.body, list(lin), list(ang), physicsClientId=c)
        self.robot.park()

    def discard(self, scene: SceneState) -> None:
        self.p.removeBody(scene.body, physicsClientId=self.c)

    def truth(self, scene: SceneState) -> dict:
        """Ground truth for the oracle, in the robot base frame."""
        V = mo.collision_vertices(scene.object_name, self.objects_root)
        T_base_link = self.robot.world_to_base(scene.T_world_link)
        com_b = self.robot.world_to_base(_translation(scene.start_com))[:3, 3]
        return {"object": scene.object_name, "vertices": V @ T_base_link[:3, :3].T + T_base_link[:3, 3],
                "com": com_b, "support_z": float(self.robot.world_to_base(_translation([0, 0, 0]))[2, 3])}


def _translation(x) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = x
    return T


def _random_lighting(rng: np.random.Generator) -> dict:
    from ..sim.scene import sample_lighting

    return sample_lighting(rng)
