"""Jacquard-format synthetic dataset generation: deterministic, parallel, resumable.

Layout (one folder per scene, ``<scene_id> = sim<seed:08d>``, view ``n = 0, 1, ...``)::

    <out>/dataset_config.json         generation settings (a resumed run must use the same)
    <out>/generation_log.jsonl        one line per scene generated: time, views, grasps, trials
    <out>/dataset.json                summary: counts, object indices used (rewritten at the end)
    <out>/<scene_id>/scene.json       manifest: seed, views written, objects (written last)
    <out>/<scene_id>/<n>_<scene_id>_RGB.png
                     <n>_<scene_id>_perfect_depth.tiff   float32 m, LZW (noise-free)
                     <n>_<scene_id>_stereo_depth.tiff    float32 m, LZW, D435-like noise, holes = -1
                     <n>_<scene_id>_mask.png             uint8 0/255, all objects
                     <n>_<scene_id>_grasps.txt           x;y;theta_deg;opening;jaw_size (CRLF)
                     <n>_<scene_id>_camera.json          K, size, pose, objects, trial stats

Scene ``i`` of a run with ``--seed S`` is generated from seed ``S + i`` alone in a fresh PyBullet
client, so its files do not depend on the number of workers or on which scenes ran before. A
scene is written into ``<out>/.tmp-<scene_id>-<pid>`` and renamed into place when complete, so a
scene folder that exists is complete; an interrupted run resumes by skipping those.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .presets import PRESETS, SceneConfig

FILE_KINDS = ("RGB.png", "perfect_depth.tiff", "stereo_depth.tiff", "mask.png", "grasps.txt", "camera.json")
_V1, _V2 = PRESETS["v1"], PRESETS["v2"]


@dataclass
class GenConfig:
    """A generation run: the preset (:data:`.presets.PRESETS`) and the settings a run may change.

    The defaults are the ``v1`` preset's; :meth:`of_preset` starts from another preset's.
    """

    views: int = _V1.views
    objects_per_scene: tuple[int, int] = _V1.objects_per_scene
    object_range: str = _V1.object_range
    width: int = 640
    height: int = 480
    candidates: int = _V1.label.candidates  # grasp candidates per object and view
    min_grasps: int = 3  # a view with fewer successful grasps is re-shot (new camera) or dropped
    camera_tries: int = 3
    max_attempts: int = 4  # new object sets for a scene before it is written empty
    hole_value: float = -1.0
    max_tilt_deg: float = _V1.camera.max_tilt_deg
    height_range: tuple[float, float] = _V1.camera.distance  # camera height above the support (v1)
    preset: str = "v1"
    # ---- v2 only (left out of a v1 configuration, so v1 digests and files are unchanged)
    dist_range: tuple[float, float] = _V2.camera.distance  # camera distance along its axis
    max_candidates_per_view: int = _V2.label.max_candidates_per_view
    objects_root: str | None = None
    #: the labeller's gripper stroke (:data:`.gripper.SIM_GRIPPERS`); left out of the settings file when it
    #: is the default Franka hand, so earlier data sets keep their digests
    gripper: str = "franka_hand"

    @classmethod
    def of_preset(cls, name: str, **kw) -> "GenConfig":
        """The preset ``name``'s defaults, overridden by ``kw``."""
        s = PRESETS[name]
        base = dict(preset=name, views=s.views, objects_per_scene=s.objects_per_scene, object_range=s.object_range,
                    candidates=s.label.candidates, max_tilt_deg=s.camera.max_tilt_deg)
        base["height_range" if s.camera.vertical else "dist_range"] = s.camera.distance
        if s.label.max_candidates_per_view is not None:
            base["max_candidates_per_view"] = s.label.max_candidates_per_view
        base.update(kw)
        return cls(**base)

    @classmethod
    def v2(cls, **kw) -> "GenConfig":
        """The ``v2`` preset's defaults, overridden by ``kw``."""
        return cls.of_preset("v2", **kw)

    def scene_config(self) -> SceneConfig:
        """The preset's :class:`.presets.SceneConfig` with this run's settings."""
        s = PRESETS[self.preset]
        camera = replace(s.camera, distance=tuple(self.height_range if s.camera.vertical else self.dist_range),
                         max_tilt_deg=self.max_tilt_deg)
        # a preset without a per-view candidate cap keeps none
        cap = self.max_candidates_per_view if s.label.max_candidates_per_view is not None else None
        label = replace(s.label, candidates=self.candidates, max_candidates_per_view=cap)
        return replace(s, views=self.views, objects_per_scene=tuple(self.objects_per_scene), object_range=self.object_range,
                       camera=camera, label=label)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["objects_per_scene"] = list(self.objects_per_scene)
        d["height_range"] = list(self.height_range)
        d["dist_range"] = list(self.dist_range)
        if self.preset == "v1":  # the first data set's settings file
            for k in ("preset", "dist_range", "max_candidates_per_view", "objects_root"):
                d.pop(k)
        else:
            d.pop("height_range")
        if self.gripper == "franka_hand":
            d.pop("gripper")
        d["generator_version"] = PRESETS[self.preset].generator_version
        return d

    def digest(self) -> str:
        return hashlib.sha1(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:12]


def scene_id(seed: int) -> str:
    return f"sim{int(seed):08d}"


def view_files(scene_dir: Path, sid: str, n: int) -> list[Path]:
    return [scene_dir / f"{n}_{sid}_{kind}" for kind in FILE_KINDS]


def scene_complete(out: Path, sid: str) -> bool:
    d = Path(out) / sid
    m = d / "scene.json"
    if not m.is_file():
        return False
    try:
        views = json.loads(m.read_text())["views"]
    except (ValueError, KeyError):
        return False
    return all(f.is_file() for n in range(len(views)) for f in view_files(d, sid, n))


def _r(x, nd=6):
    return [round(float(v), nd) for v in np.asarray(x, dtype=np.float64).reshape(-1)]


def _write_grasps(path: Path, rects: np.ndarray) -> None:
    from ..core.grasp import rects_to_jacquard

    rows = rects_to_jacquard(rects)
    path.write_text("".join(f"{x:.5f};{y:.5f};{t:.4f};{o:.4f};{j:.4f}\r\n" for x, y, t, o, j in rows), newline="")


def _json_lines(d: dict) -> str:
    """JSON with one top-level key per line (compact values): readable and diff-friendly."""
    return "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in d.items()) + "\n}\n"


def _write_view(d: Path, sid: str, n: int, view: dict) -> None:
    import cv2
    import tifffile

    rgb_f, pd_f, sd_f, mask_f, grasps_f, cam_f = view_files(d, sid, n)
    if not cv2.imwrite(str(rgb_f), cv2.cvtColor(view["rgb"], cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {rgb_f}")
    tifffile.imwrite(str(pd_f), view["depth"].astype(np.float32), compression="lzw")
    tifffile.imwrite(str(sd_f), view["stereo"].astype(np.float32), compression="lzw")
    cv2.imwrite(str(mask_f), view["mask"])
    _write_grasps(grasps_f, view["rects"])
    cam_f.write_text(_json_lines(view["meta"]))


def generate_scene(seed: int, out, cfg: GenConfig) -> dict:
    """Generate scene ``seed`` into ``<out>/<scene_id>`` (atomically); returns a log record."""
    t0 = time.perf_counter()
    if cfg.preset not in PRESETS:
        raise ValueError(f"unknown preset {cfg.preset!r}: use {' or '.join(PRESETS)}")
    rng = np.random.default_rng(seed)
    views, scene_meta, trials = _scene_views(seed, cfg, rng)
    return _write_scene(Path(out), scene_id(seed), seed, cfg, views, scene_meta, trials, t0)


class _Shot(NamedTuple):
    """One rendered and labelled camera pose."""

    T: np.ndarray
    intr: object
    pose_info: dict
    light: dict
    rgb: np.ndarray
    depth: np.ndarray
    seg: np.ndarray
    rects: np.ndarray
    owners: list
    stats: object


def _insert_after(d: dict, key: str, fields: dict) -> dict:
    """``d`` with ``fields`` placed right after ``key`` (the files keep a fixed key order)."""
    out = {}
    for k, v in d.items():
        out[k] = v
        if k == key:
            out.update(fields)
    return out


def _scene_views(seed: int, cfg: GenConfig, rng: np.random.Generator) -> tuple[list, dict, int]:
    """Build scenes (up to ``cfg.max_attempts`` object sets) and label their views -> (views, scene manifest
    fields, trials run). Every preset goes through here; its :class:`.presets.SceneConfig` sets the scene."""
    from . import gripper as grip
    from . import scene as sc

    sc_cfg = cfg.scene_config()
    items = sc.OBJECT_SOURCES[sc_cfg.objects](cfg.objects_root).select(cfg.object_range)
    tag = {"preset": sc_cfg.name} if sc_cfg.detailed_manifest else {}
    sid = scene_id(seed)
    views: list[dict] = []
    trials = 0
    scene_meta: dict = {}
    for attempt in range(cfg.max_attempts):
        p, client = sc.connect()
        try:
            n_obj = int(rng.integers(cfg.objects_per_scene[0], cfg.objects_per_scene[1] + 1))
            scene = sc.build_scene(p, client, rng, sc_cfg, items, n_obj, cfg.objects_root)
            if not scene.objects:
                continue
            g = grip.create(p, client, spec=grip.sim_gripper(cfg.gripper))
            state = p.saveState(physicsClientId=client)
            objects = [o.as_dict() for o in scene.objects]
            views = []
            for _ in range(cfg.views):
                best, n_trials = _best_shot(p, client, g, state, scene, cfg, sc_cfg, rng)
                trials += n_trials
                if len(best.rects) < cfg.min_grasps:
                    continue
                meta = _view_meta(sid, seed, len(views), tag, cfg, scene, objects, best)
                views.append(_finish(best, scene, meta, cfg, sc_cfg, rng))
            scene_meta = {
                "scene_id": sid,
                "seed": int(seed),
                **tag,
                "attempt": attempt,
                "support": scene.support,
                "objects": [{"index": o["index"], "name": o["name"], "scale": o["scale"]} for o in objects],
                "object_indices": sorted({o["index"] for o in objects}),
                "names": _names(objects, sc_cfg),
            }
            if views:
                break
        finally:
            sc.disconnect(p, client)
    return views, scene_meta, trials


def _best_shot(p, client, g, state, scene, cfg: GenConfig, sc_cfg, rng) -> tuple[_Shot, int]:
    """Up to ``cfg.camera_tries`` random cameras, each rendered and labelled -> (the shot with the most
    grasps, stopping at the first with ``cfg.min_grasps``; trials run)."""
    from . import camera as cam
    from . import scene as sc
    from .trials import label_view

    best, trials = None, 0
    for _ in range(cfg.camera_tries):
        T, intr, pose_info = cam.sample_camera(rng, scene.centre, scene.support_z, sc_cfg.camera, cfg.width, cfg.height)
        light = sc.sample_lighting(rng, sc_cfg.lighting)
        p.restoreState(stateId=state, physicsClientId=client)
        rgb, depth, seg = sc.render(p, client, T, intr, light)
        rects, owners, stats = label_view(p, client, g, state, scene, T, intr.K, depth, seg, rng, sc_cfg.label)
        trials += stats.trials
        if best is None or len(rects) > len(best.rects):
            best = _Shot(T, intr, pose_info, light, rgb, depth, seg, rects, owners, stats)
        if len(rects) >= cfg.min_grasps:
            break
    return best, trials


def _view_meta(sid: str, seed: int, n: int, tag: dict, cfg: GenConfig, scene, objects: list[dict], shot: _Shot) -> dict:
    """The view's ``camera.json`` (the fields every preset writes, in file order)."""
    from . import camera as cam

    by_body = {o.body: o.index for o in scene.objects}
    visible = {int(b): int((shot.seg == b).sum()) for b in by_body}
    intr, T, stats = shot.intr, shot.T, shot.stats
    return {
        "scene_id": sid,
        "view": n,
        "seed": int(seed),
        **tag,
        "image_size": [intr.width, intr.height],
        "K": [_r(row) for row in intr.K],
        "depth_unit": "m",
        "T_world_camera": [_r(row) for row in T],
        "camera_pose": _r(cam.pose_to_xyzquat(T)),
        "camera_frame": "optical (x right, y down, z forward); pose of camera in world",
        "support": scene.support,
        "support_z": scene.support_z,
        "objects": [dict(o, visible_pixels=visible[o["body"]]) for o in objects],
        "grasp_objects": [by_body[b] for b in shot.owners],
        "grasps_metric_columns": ["opening_m", "jaw_m", "tcp_offset_m", "surface_depth_m", "contact_width_m", "trial_opening_m"],
        "grasps_metric": stats.metric,
        "lighting": {k: (_r(v, 4) if isinstance(v, list) else round(float(v), 4)) for k, v in shot.light.items()},
        "stereo_hole_value": cfg.hole_value,
        "trials": stats.as_dict(),
        "gripper": _gripper_meta(cfg.gripper),
    }


def _gripper_meta(name: str) -> dict:
    """The labeller's gripper in ``camera.json`` (its name only when it is not the default Franka hand)."""
    from . import gripper as grip

    spec = grip.sim_gripper(name)
    meta = {"max_opening": spec.max_opening, "jaw_size": spec.jaw_size, "grip_force": spec.grip_force}
    return meta if name == grip.DEFAULT_GRIPPER else {"name": name, **meta}


def _finish(shot: _Shot, scene, meta: dict, cfg: GenConfig, sc_cfg, rng) -> dict:
    """The view's files: the colour sensor and the depth model applied (in the preset's order), the
    mask, and the detailed manifest fields where the preset writes them."""
    from . import camera as cam

    def depth_model():
        if sc_cfg.depth_model == "realsense":
            return cam.realsense_depth(shot.depth, shot.intr.K, rng, rgb=shot.rgb, seg=shot.seg, shiny=scene.shiny,
                                       hole_value=cfg.hole_value, sensor=sc_cfg.depth_sensor)
        if sc_cfg.depth_model == "kinect":
            return cam.kinect_depth(shot.depth, shot.intr.K, rng, rgb=shot.rgb, seg=shot.seg, shiny=scene.shiny, hole_value=cfg.hole_value)
        if sc_cfg.depth_model != "stereo":
            raise ValueError(f"unknown depth model {sc_cfg.depth_model!r}: stereo, realsense or kinect")
        return cam.stereo_depth(shot.depth, shot.intr.K, rng, hole_value=cfg.hole_value), None

    if sc_cfg.depth_first:
        stereo, depth_info = depth_model()
        rgb = cam.sensor_rgb(shot.rgb, rng, sc_cfg.colour)
    else:
        rgb = cam.sensor_rgb(shot.rgb, rng, sc_cfg.colour)
        stereo, depth_info = depth_model()
    if sc_cfg.detailed_manifest:
        meta["objects"] = [dict(o, shiny=o["body"] in scene.shiny, dark=o["body"] in scene.dark) for o in meta["objects"]]
        meta = _insert_after(meta, "camera_frame", {"camera_distance_m": shot.pose_info["distance_m"], "camera_tilt_deg": shot.pose_info["tilt_deg"]})
        meta = _insert_after(meta, "support_z", {"floor_z": round(scene.floor_z, 4), "background": scene.background})
        meta = _insert_after(meta, "stereo_hole_value", {"stereo_model": depth_info})
    mask = np.isin(shot.seg, [o.body for o in scene.objects]).astype(np.uint8) * 255
    return {"rgb": rgb, "depth": shot.depth, "stereo": stereo, "mask": mask, "rects": shot.rects, "meta": meta}


def _names(objects: list[dict], sc_cfg) -> dict:
    """``{index: name}`` of the scene's objects: in scene order, or by index (the first data set's order)."""
    pairs = [(o["index"], o["name"]) for o in objects]
    if not sc_cfg.detailed_manifest:
        pairs = sorted(set(pairs))
    return {str(i): n for i, n in pairs}


def _write_scene(out: Path, sid: str, seed: int, cfg: GenConfig, views: list, scene_meta: dict, trials: int, t0: float) -> dict:
    """Write the views of one scene into ``<out>/<sid>`` atomically; returns the log record."""
    tmp = out / f".tmp-{sid}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for n, v in enumerate(views):
        _write_view(tmp, sid, n, v)
    scene_meta.setdefault("scene_id", sid)
    scene_meta.setdefault("seed", int(seed))
    scene_meta["views"] = [{"view": n, "grasps": int(len(v["rects"]))} for n, v in enumerate(views)]
    scene_meta["config_digest"] = cfg.digest()
    (tmp / "scene.json").write_text(_json_lines(scene_meta))
    final = out / sid
    if final.exists():  # an incomplete folder (files deleted by hand): replace it
        shutil.rmtree(final)
    os.rename(tmp, final)
    return {
        "scene": sid,
        "seed": int(seed),
        "seconds": round(time.perf_counter() - t0, 3),
        "views": len(views),
        "grasps": int(sum(len(v["rects"]) for v in views)),
        "trials": int(trials),
        "objects": scene_meta.get("object_indices", []),
    }


# --------------------------------------------------------------------------- runs
def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)


def _worker(task):
    seed, out, cfg = task
    try:
        return generate_scene(seed, out, cfg)
    except Exception as e:  # report, keep the run going; the scene stays missing and is retried on resume
        import traceback

        return {"scene": scene_id(seed), "seed": seed, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}


class OutputLocked(RuntimeError):
    pass


def _lock(out: Path) -> Path:
    lock = out / ".lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            pid = int(lock.read_text().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        alive = False
        if pid > 0:
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except PermissionError:
                alive = True
        if alive:
            raise OutputLocked(f"{out} is being written by process {pid} (remove {lock} if that is wrong)")
        lock.unlink(missing_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return lock


def check_config(out: Path, cfg: GenConfig) -> None:
    """Write ``dataset_config.json`` or check a resumed run uses the same settings."""
    f = out / "dataset_config.json"
    mine = cfg.as_dict()
    if f.exists():
        theirs = json.loads(f.read_text())
        if theirs != mine:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise ValueError(
                f"{out} was generated with other settings ({', '.join(diff)}); use another --out, or the same settings to resume"
            )
    else:
        f.write_text(json.dumps(mine, indent=1, sort_keys=True) + "\n")


def summarize(out) -> dict:
    """Counts over every complete scene in ``out`` (written to ``<out>/dataset.json`` by runs)."""
    out = Path(out)
    scenes = images = grasps = empty = 0
    objects: set[int] = set()
    names: dict[int, str] = {}
    per_image = []
    for m in sorted(out.glob("sim*/scene.json")):
        sid = m.parent.name
        if not scene_complete(out, sid):
            continue
        meta = json.loads(m.read_text())
        scenes += 1
        if not meta["views"]:
            empty += 1
        for v in meta["views"]:
            images += 1
            grasps += v["grasps"]
            per_image.append(v["grasps"])
        objects.update(meta.get("object_indices", []))
        names.update({int(k): v for k, v in meta.get("names", {}).items()})
    times = []
    log = out / "generation_log.jsonl"
    if log.exists():
        for line in log.read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if "seconds" in r:
                times.append(r["seconds"])
    return {
        "scenes": scenes,
        "empty_scenes": empty,
        "images": images,
        "grasps": grasps,
        "grasps_per_image": {"min": min(per_image), "median": float(np.median(per_image)), "max": max(per_image)} if per_image else None,
        "objects": sorted(objects),
        "n_objects": len(objects),
        "object_names": [names.get(i, str(i)) for i in sorted(objects)],
        "seconds_per_scene_median": float(np.median(times)) if times else None,
        "seconds_per_scene_mean": float(np.mean(times)) if times else None,
    }


def generate(
    out,
    n_scenes: int,
    seed: int = 0,
    workers: int = 1,
    cfg: GenConfig | None = None,
    progress: bool = True,
    log=print,
    time_limit: float | None = None,
) -> dict:
    """Generate scenes ``seed .. seed + n_scenes - 1`` into ``out``, skipping complete ones.

    ``time_limit`` (seconds): stop handing out scenes after this long; scenes in progress are
    abandoned (their temporary folders are removed by the next run) and a later run with the same
    arguments continues.
    """
    from tqdm import tqdm

    from .scene import OBJECT_SOURCES

    cfg = cfg or GenConfig()
    from .gripper import sim_gripper

    sim_gripper(cfg.gripper)  # fail early: an unknown gripper
    # fail early: bad ranges or names, benchmark objects, no object folder
    OBJECT_SOURCES[cfg.scene_config().objects](cfg.objects_root).select(cfg.object_range)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock(out)
    try:
        check_config(out, cfg)
        for stale in out.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        seeds = [seed + i for i in range(n_scenes)]
        todo = [s for s in seeds if not scene_complete(out, scene_id(s))]
        skipped = len(seeds) - len(todo)
        if skipped:
            log(f"resuming: {skipped} of {len(seeds)} scenes already complete in {out}")
        errors = []
        images = grasps = 0
        stopped = False
        t0 = time.perf_counter()
        bar = tqdm(total=len(seeds), initial=skipped, unit="scene", disable=not progress, dynamic_ncols=True, desc="sim-dataset")
        tasks = [(s, str(out), cfg) for s in todo]
        with open(out / "generation_log.jsonl", "a") as logf:
            if workers <= 1:
                _worker_init()
                results = map(_worker, tasks)
                pool = None
            else:
                import multiprocessing as mp

                pool = mp.get_context("spawn").Pool(workers, initializer=_worker_init)
                results = pool.imap_unordered(_worker, tasks)
            try:
                for r in results:
                    if time_limit is not None and time.perf_counter() - t0 > time_limit and "error" not in r:
                        stopped = True  # this result is complete on disk: count it, then stop
                    r["workers"] = workers
                    logf.write(json.dumps(r) + "\n")
                    logf.flush()
                    if "error" in r:
                        errors.append(r)
                        print(f"scene {r['scene']} failed: {r['error']}", file=sys.stderr)
                    else:
                        images += r["views"]
                        grasps += r["grasps"]
                    bar.update(1)
                    post = dict(images=images, grasps=grasps, errors=len(errors))
                    if time_limit is not None:
                        post["time_left_s"] = max(0, int(time_limit - (time.perf_counter() - t0)))
                    bar.set_postfix(post, refresh=False)
                    if stopped:
                        log(f"time limit of {time_limit:.0f} s reached: stopping (run again to continue)")
                        break
            finally:
                if pool is not None:
                    pool.terminate()
                    pool.join()
                bar.close()
        summary = summarize(out)
        summary["config"] = cfg.as_dict()
        (out / "dataset.json").write_text(json.dumps(summary, indent=1) + "\n")
        done = sum(1 for s_ in todo if scene_complete(out, scene_id(s_)))
        summary["this_run"] = {
            "generated": done,
            "skipped": skipped,
            "errors": len(errors),
            "stopped_at_time_limit": stopped,
            "remaining": len(seeds) - skipped - done,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        return summary
    finally:
        lock.unlink(missing_ok=True)
