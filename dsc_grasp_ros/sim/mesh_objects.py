"""The shared real object meshes (``../shared/objects``): names, sets, and a physically sane loader.

The folder (see its README.md) holds ``pile_train/NAME.urdf`` with ``NAME_visual.obj`` and
``NAME_collision.obj`` (the collision mesh is a set of convex parts, one ``o`` block each), and
``benchmark_objects.txt``: the 10 YCB objects of the closed-loop benchmark, never used for
training.

The URDFs carry the object's mass but a unit inertia placeholder at the mesh origin (near the
object's base, not its centre of mass). :func:`load_mesh_object` therefore computes volume, centre
of mass and the inertia tensor of the collision mesh (uniform density, signed tetrahedra per convex
part), writes a small URDF with the inertial frame at the centre of mass along the principal axes
(cached per object, scale and mass in a temporary folder), and loads it with
``URDF_USE_INERTIA_FROM_FILE``. Units are metres.

The folder is resolved relative to the project root (``<project>/../shared/objects``) unless a
path is given; nothing here uses an absolute path.

Object-wise split of the training objects: an object is held out (the ``test`` selection of
:func:`object_selection`) when the first byte of ``sha1(name)`` is divisible by
:data:`HELD_OUT_MOD`. The rule depends on the name alone, so it is stable whatever else is in the
folder. The benchmark set is **never** selected for synthetic data: :func:`object_selection`
raises :class:`BenchmarkObjectUsed` if a benchmark name slips in.
"""

from __future__ import annotations

import atexit
import difflib
import functools
import hashlib
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ObjectsNotFound",
    "UnknownObject",
    "objects_root",
    "benchmark_names",
    "training_names",
    "all_names",
    "resolve_names",
    "urdf_path",
    "mesh_properties",
    "load_mesh_object",
    "collision_vertices",
    "link_pose",
    "LATERAL_FRICTION",
]

#: Contact parameters applied to every loaded object (the URDFs' own 1.0 lateral friction,
#: a little spinning friction so a pinched object does not pivot freely about the finger axis).
LATERAL_FRICTION = 1.0
SPINNING_FRICTION = 0.002
ROLLING_FRICTION = 0.0001

BENCHMARK_FILE = "benchmark_objects.txt"
SUBFOLDER = "pile_train"
#: An object is in the held-out (test) selection when ``sha1(name)[0] % HELD_OUT_MOD == 0``.
HELD_OUT_MOD = 10


class ObjectsNotFound(FileNotFoundError):
    """The shared object folder (or one of its files) is missing; the message says what is expected."""


class UnknownObject(ValueError):
    """An object name that is not in the object folder; the message lists close matches."""


def _default_root() -> Path:
    # dsc_grasp_ros/sim/mesh_objects.py -> project root is parents[2]; shared data sits beside it
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "objects"


def objects_root(path=None) -> Path:
    """The object folder: ``path`` if given, else ``<project root>/../shared/objects``.

    Raises :class:`ObjectsNotFound` naming the folder and what it must contain when absent.
    """
    root = Path(path).expanduser() if path is not None else _default_root()
    root = root.resolve()
    if not (root / SUBFOLDER).is_dir():
        raise ObjectsNotFound(
            f"object folder {root} not found or incomplete: expected {root / SUBFOLDER}/NAME.urdf "
            f"(+ NAME_collision.obj, NAME_visual.obj) and {root / BENCHMARK_FILE} "
            "(the shared object meshes, ../shared/objects beside the project; pass --objects-root to use another)"
        )
    return root


def _names_in(folder: Path) -> list[str]:
    return sorted(f.stem for f in folder.glob("*.urdf"))


def all_names(root=None) -> list[str]:
    """Every object in ``pile_train`` (sorted)."""
    return _names_in(objects_root(root) / SUBFOLDER)


def benchmark_names(root=None) -> list[str]:
    """The benchmark set, in the order of ``benchmark_objects.txt``."""
    r = objects_root(root)
    f = r / BENCHMARK_FILE
    if not f.is_file():
        raise ObjectsNotFound(f"{f} not found: the object folder must list the benchmark set, one name a line")
    names = [ln.strip() for ln in f.read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]
    have = set(all_names(r))
    missing = [n for n in names if n not in have]
    if missing:
        raise ObjectsNotFound(f"{f} names objects without a URDF in {r / SUBFOLDER}: {missing}")
    return names


def training_names(root=None) -> list[str]:
    """All ``pile_train`` objects minus the benchmark set (sorted)."""
    bench = set(benchmark_names(root))
    return [n for n in all_names(root) if n not in bench]


class BenchmarkObjectUsed(RuntimeError):
    """A benchmark object reached the training-data generator (never allowed)."""


def is_held_out(name: str) -> bool:
    return hashlib.sha1(name.encode()).digest()[0] % HELD_OUT_MOD == 0


def held_out_names(root=None) -> list[str]:
    """The non-benchmark objects that no training set is generated from (sorted): the synthetic
    test sets' objects (``object_selection("test")``, ``resolve_names("held-out")``)."""
    return [n for n in training_names(root) if is_held_out(n)]


def check_no_benchmark(names, root=None) -> None:
    """Raise :class:`BenchmarkObjectUsed` if any of ``names`` is a benchmark object."""
    bad = sorted(set(names) & set(benchmark_names(root)))
    if bad:
        raise BenchmarkObjectUsed(f"benchmark objects must never be used to generate training data: {bad}")


def object_selection(text: str | None, root=None) -> list[str]:
    """Object names for synthetic scenes (sorted): ``all`` (every non-benchmark object), ``train``
    (without the held-out ones), ``test`` (held-out only) or a comma-separated list of names.

    Benchmark objects are refused (:class:`BenchmarkObjectUsed`), also when named explicitly.
    """
    key = (text or "all").strip().lower()
    pool = training_names(root)
    if key == "all":
        sel = pool
    elif key == "train":
        sel = [n for n in pool if not is_held_out(n)]
    elif key in ("test", "held-out", "heldout"):
        sel = held_out_names(root)
    else:
        sel = resolve_names([s for s in text.split(",") if s.strip()], root)
        if any(s.endswith(".urdf") for s in sel):
            raise ValueError("object selections are names in the object folder, not .urdf paths")
    check_no_benchmark(sel, root)
    if not sel:
        raise ValueError(f"object selection {text!r} is empty")
    return sorted(sel)


def catalogue_index(name: str, root=None) -> int:
    """Stable integer id of an object: its index in the sorted list of all ``pile_train`` names."""
    key = None if root is None else str(root)
    if key not in _INDEX_CACHE:
        _INDEX_CACHE[key] = {n: i for i, n in enumerate(all_names(root))}
    return _INDEX_CACHE[key][name]


_INDEX_CACHE: dict = {}


def _unknown(name: str, known: list[str], root: Path) -> UnknownObject:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    if not close:  # substring matches help with long KIT names
        close = [k for k in known if name.lower() in k.lower()][:5]
    hint = f"; close matches: {', '.join(close)}" if close else ""
    return UnknownObject(f"unknown object {name!r}: no {name}.urdf in {root / SUBFOLDER} ({len(known)} objects){hint}")


def resolve_names(spec, root=None) -> list[str]:
    """An object selection -> list of names (or ``.urdf`` paths for objects outside the folder).

    ``spec``: ``"benchmark"`` (default set), ``"train"`` (everything else), ``"held-out"`` (the
    objects of ``train`` that no training set is generated from: ``object_selection("test")``),
    ``"all"``, a folder holding ``*.urdf`` files (their absolute paths are returned), or a comma-separated list of
    names / ``.urdf`` paths. A list or tuple of names is accepted too. Unknown names raise
    :class:`UnknownObject` with close matches.
    """
    if spec is None:
        spec = "benchmark"
    if isinstance(spec, (list, tuple)):
        items = [str(s).strip() for s in spec]
    else:
        text = str(spec).strip()
        key = text.lower()
        if key in ("benchmark", "bench", "test"):
            return benchmark_names(root)
        if key == "train":
            return training_names(root)
        if key == "all":
            return all_names(root)
        if key in ("held-out", "heldout"):
            return held_out_names(root)
        p = Path(text).expanduser()
        try:
            is_folder = "," not in text and p.is_dir()
        except OSError:  # e.g. a name longer than the file system allows: not a folder
            is_folder = False
        if is_folder:
            urdfs = sorted(p.glob("*.urdf"))
            if not urdfs:
                raise ObjectsNotFound(f"folder {p.resolve()} holds no *.urdf object files")
            return [str(u.resolve()) for u in urdfs]
        items = [s.strip() for s in text.split(",")]
    items = [s for s in items if s]
    if not items:
        raise UnknownObject(f"empty object selection {spec!r}: use benchmark, train, all, a folder or NAME[,NAME...]")
    r = None
    out = []
    for s in items:
        if s.endswith(".urdf"):
            if not Path(s).expanduser().is_file():
                raise ObjectsNotFound(f"object file {s} not found")
            out.append(str(Path(s).expanduser().resolve()))
            continue
        if r is None:
            r = objects_root(root)
            known = all_names(r)
            known_set = set(known)
        if s not in known_set:
            raise _unknown(s, known, r)
        out.append(s)
    return out


def urdf_path(name: str, root=None) -> Path:
    """The URDF of ``name`` (a name in ``pile_train`` or a path to a ``.urdf``)."""
    if str(name).endswith(".urdf"):
        p = Path(name).expanduser().resolve()
        if not p.is_file():
            raise ObjectsNotFound(f"object file {p} not found")
        return p
    r = objects_root(root)
    p = r / SUBFOLDER / f"{name}.urdf"
    if not p.is_file():
        raise _unknown(str(name), all_names(r), r)
    return p


# --------------------------------------------------------------------------- mesh physics
@dataclass(frozen=True)
class MeshProperties:
    """Mass properties of a collision mesh at uniform density (object frame, metres, kg)."""

    mass: float
    volume: float
    com: tuple  # centre of mass (3,)
    principal_moments: tuple  # (3,) kg m^2 about the COM along the principal axes
    principal_axes: tuple  # 3x3 rotation, columns = principal axes in the object frame
    extent: tuple  # axis-aligned size of the collision mesh (3,)


def _read_obj_parts(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(vertices Nx3, triangles Mx3 global 0-based indices)]`` per ``o``/``g`` part."""
    verts, parts, cur = [], [], []
    with open(path) as f:
        for line in f:
            if line.startswith("v "):
                verts.append([float(a) for a in line.split()[1:4]])
            elif line.startswith("f "):
                idx = [int(tok.split("/")[0]) for tok in line.split()[1:]]
                idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
                for k in range(1, len(idx) - 1):  # fan-triangulate polygons
                    cur.append([idx[0], idx[k], idx[k + 1]])
            elif line.startswith(("o ", "g ")) and cur:
                parts.append(cur)
                cur = []
    if cur:
        parts.append(cur)
    V = np.asarray(verts, dtype=np.float64)
    if V.size == 0 or not parts:
        raise ValueError(f"collision mesh {path} has no vertices or faces")
    return [(V, np.asarray(t, dtype=np.int64)) for t in parts]


def _part_integrals(V: np.ndarray, T: np.ndarray):
    """Volume, first moments and second moments of one closed triangle mesh (signed tetrahedra)."""
    ref = V[np.unique(T)].mean(0)  # tetrahedra from the part's centroid: exact for a closed surface
    a, b, c = V[T[:, 0]] - ref, V[T[:, 1]] - ref, V[T[:, 2]] - ref
    vol6 = np.einsum("ij,ij->i", a, np.cross(b, c))  # 6 x signed volume per tetrahedron (ref, a, b, c)
    vol = vol6.sum() / 6.0
    if vol < 0:  # inward-facing winding
        vol6, vol = -vol6, -vol
    com = ((vol6 / 6.0)[:, None] * (a + b + c) / 4.0).sum(0) / max(vol, 1e-18) + ref
    # second moment  sum over tets of  integral x x^T dV  (relative to ref), closed form
    S = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            s = a[:, i] * a[:, j] + b[:, i] * b[:, j] + c[:, i] * c[:, j]
            t = (a[:, i] + b[:, i] + c[:, i]) * (a[:, j] + b[:, j] + c[:, j])
            S[i, j] = (vol6 / 120.0 * (s + t)).sum()
    # shift the second moment from ref to the world origin of the object frame
    S = S + vol * (np.outer(ref, com - ref) + np.outer(com - ref, ref) + np.outer(ref, ref))
    return vol, com, S


@functools.lru_cache(maxsize=512)
def _mesh_props_cached(path: str, scale: float, mass: float) -> MeshProperties:
    parts = _read_obj_parts(Path(path))
    vol_tot, first, second = 0.0, np.zeros(3), np.zeros((3, 3))
    allv = []
    for V, T in parts:
        Vs = V * scale
        vol, com, S = _part_integrals(Vs, T)
        vol_tot += vol
        first += vol * com
        second += S
        allv.append(Vs[np.unique(T)])
    allv = np.concatenate(allv)
    extent = allv.max(0) - allv.min(0)
    if vol_tot <= 1e-12:  # degenerate (open) mesh: fall back to the bounding box
        com = (allv.max(0) + allv.min(0)) / 2
        I = mass / 12.0 * np.diag([extent[1] ** 2 + extent[2] ** 2, extent[0] ** 2 + extent[2] ** 2, extent[0] ** 2 + extent[1] ** 2])
        vol_tot = float(np.prod(extent))
    else:
        com = first / vol_tot
        rho = mass / vol_tot
        S_com = second / vol_tot - np.outer(com, com)  # per unit volume, about the COM
        I = rho * vol_tot * (np.trace(S_com) * np.eye(3) - S_com)
    I = (I + I.T) / 2
    w, R = np.linalg.eigh(I)
    if np.linalg.det(R) < 0:
        R[:, 2] = -R[:, 2]
    floor = mass * 1e-6  # at least (1 mm)^2 * mass: keeps thin parts solvable
    w = np.maximum(w, floor)
    return MeshProperties(float(mass), float(vol_tot), tuple(float(x) for x in com), tuple(float(x) for x in w),
                          tuple(tuple(float(x) for x in row) for row in R), tuple(float(x) for x in extent))


def _urdf_fields(urdf: Path) -> tuple[float, Path, Path]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(urdf).getroot()
    except ET.ParseError as e:
        raise ValueError(f"object URDF {urdf} is not valid XML: {e}") from e
    m = root.find(".//inertial/mass")
    col = root.find(".//collision/geometry/mesh")
    vis = root.find(".//visual/geometry/mesh")
    if col is None or vis is None:
        raise ValueError(f"object URDF {urdf} needs a visual and a collision mesh")
    mass = float(m.get("value")) if m is not None else 0.1
    return mass, (urdf.parent / col.get("filename")).resolve(), (urdf.parent / vis.get("filename")).resolve()


def mesh_properties(name: str, root=None, scale: float = 1.0, mass: float | None = None) -> MeshProperties:
    """Mass properties of an object's collision mesh (mass from the URDF unless given)."""
    urdf = urdf_path(name, root)
    m_urdf, col, _ = _urdf_fields(urdf)
    return _mesh_props_cached(str(col), float(scale), float(m_urdf if mass is None else mass))


@functools.lru_cache(maxsize=1)
def _cache_dir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="dsc_mesh_urdf_"))
    atexit.register(shutil.rmtree, str(d), True)
    return d


def _rpy(R: np.ndarray) -> tuple[float, float, float]:
    """Fixed-axis roll-pitch-yaw (URDF) of a rotation matrix: R = Rz(y) Ry(p) Rx(r)."""
    p = -math.asin(max(-1.0, min(1.0, R[2, 0])))
    if abs(math.cos(p)) > 1e-9:
        r = math.atan2(R[2, 1], R[2, 2])
        y = math.atan2(R[1, 0], R[0, 0])
    else:
        r = math.atan2(-R[1, 2], R[1, 1])
        y = 0.0
    return r, p, y


@functools.lru_cache(maxsize=512)
def _physical_urdf(urdf: str, scale: float, mass: float | None) -> str:
    m_urdf, col, vis = _urdf_fields(Path(urdf))
    m = float(m_urdf if mass is None else mass)
    props = _mesh_props_cached(str(col), float(scale), m)
    r, p, y = _rpy(np.asarray(props.principal_axes))
    ixx, iyy, izz = props.principal_moments
    cx, cy, cz = props.com
    s = f"{scale:.9g}"
    text = f"""<?xml version="1.0"?>
<robot name="{Path(urdf).stem}">
  <link name="base_link">
    <contact>
      <lateral_friction value="{LATERAL_FRICTION}"/>
      <rolling_friction value="{ROLLING_FRICTION}"/>
      <spinning_friction value="{SPINNING_FRICTION}"/>
    </contact>
    <inertial>
      <origin xyz="{cx:.9g} {cy:.9g} {cz:.9g}" rpy="{r:.9g} {p:.9g} {y:.9g}"/>
      <mass value="{m:.9g}"/>
      <inertia ixx="{ixx:.9g}" ixy="0" ixz="0" iyy="{iyy:.9g}" iyz="0" izz="{izz:.9g}"/>
    </inertial>
    <visual><geometry><mesh filename="{vis}" scale="{s} {s} {s}"/></geometry></visual>
    <collision><geometry><mesh filename="{col}" scale="{s} {s} {s}"/></geometry></collision>
  </link>
</robot>
"""
    key = abs(hash((urdf, scale, mass))) % 10**12
    out = _cache_dir() / f"{Path(urdf).stem}_{key}.urdf"
    out.write_text(text)
    return str(out)


def load_mesh_object(p, client, name, position, orientation, root=None, scale: float = 1.0, mass: float | None = None,
                     rgba=None) -> int:
    """Load object ``name`` into PyBullet client ``client`` -> body id.

    ``position`` / ``orientation`` (quaternion x, y, z, w) place the object's *mesh origin* (its
    URDF link frame), as ``loadURDF`` does. The inertial frame is the collision mesh's centre of
    mass and principal axes at uniform density; ``mass`` overrides the URDF's mass. Friction:
    lateral :data:`LATERAL_FRICTION`, spinning 0.002, rolling 1e-4, no restitution. ``rgba``
    colours the (untextured) visual mesh.
    """
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"object scale must be a positive number, got {scale}")
    if mass is not None and not (mass > 0 and math.isfinite(mass)):
        raise ValueError(f"object mass must be a positive number, got {mass}")
    urdf = urdf_path(name, root)
    phys = _physical_urdf(str(urdf), float(scale), None if mass is None else float(mass))
    body = p.loadURDF(phys, list(position), list(orientation), flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client)
    p.changeDynamics(body, -1, lateralFriction=LATERAL_FRICTION, spinningFriction=SPINNING_FRICTION,
                     rollingFriction=ROLLING_FRICTION, restitution=0.0, physicsClientId=client)
    if rgba is not None:
        p.changeVisualShape(body, -1, rgbaColor=list(rgba), physicsClientId=client)
    return body


@functools.lru_cache(maxsize=512)
def _collision_vertices_cached(col: str, scale: float) -> np.ndarray:
    parts = _read_obj_parts(Path(col))
    V = np.concatenate([Vp[np.unique(T)] for Vp, T in parts]) * scale
    V.setflags(write=False)
    return V


def collision_vertices(name: str, root=None, scale: float = 1.0) -> np.ndarray:
    """Vertices (Nx3, read-only) of the object's collision mesh in its link frame (the mesh origin)."""
    _, col, _ = _urdf_fields(urdf_path(name, root))
    return _collision_vertices_cached(str(col), float(scale))


def link_pose(p, client, body: int) -> np.ndarray:
    """4x4 world pose of a loaded object's link frame (mesh origin).

    PyBullet reports the base pose of the *inertial* frame (centre of mass, principal axes); the
    link frame is that pose times the inverse of the local inertial frame.
    """
    from ..core.geometry import quaternion_to_rotation

    pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=client)
    info = p.getDynamicsInfo(body, -1, physicsClientId=client)
    W = np.eye(4)
    W[:3, :3] = quaternion_to_rotation(orn)
    W[:3, 3] = pos
    L = np.eye(4)
    L[:3, :3] = quaternion_to_rotation(info[4])
    L[:3, 3] = info[3]
    return W @ np.linalg.inv(L)
