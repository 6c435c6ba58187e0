"""A closed-loop check of a model during training: a small run of the grasping benchmark.

Held-out image accuracy (the paper metric) does not see what a robot needs from the width head:
a model whose best grasps are wider than the gripper scores well on images and picks nothing,
because the detector rejects every such grasp (``too_wide``; the v3 models of docs/training.md).
``dsc-grasp train --closed-loop-trials N`` therefore runs, after every evaluation, ``N`` scenes
for each of ``CLOSED_LOOP_OBJECTS`` training objects through the same detector and Panda executor
as ``dsc-grasp bench``, and selects the checkpoint by grasp success (ties: held-out accuracy).

The objects are the synthetic data's *training* objects (``mesh_objects.object_selection('train')``):
never the benchmark set (the benchmark is the test, not a selection set), never the held-out
objects that "synthetic unseen" accuracy is reported on.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

#: Training objects per check (spread evenly over the sorted training objects).
CLOSED_LOOP_OBJECTS = 10
#: Scene seed of the check (``dsc-grasp bench`` uses 0 on the benchmark objects).
CLOSED_LOOP_SEED = 1000


def check_objects(n: int | None = None, root=None) -> list[str]:
    """``n`` (default :data:`CLOSED_LOOP_OBJECTS`) training objects spread evenly over the sorted
    training list (deterministic)."""
    from ..sim.mesh_objects import object_selection

    n = CLOSED_LOOP_OBJECTS if n is None else int(n)
    pool = object_selection("train", root)
    if n >= len(pool):
        return list(pool)
    step = len(pool) / n
    return [pool[int(i * step)] for i in range(n)]


def closed_loop_check(model_path, trials: int, objects: list[str] | None = None, seed: int = CLOSED_LOOP_SEED,
                      objects_root=None) -> dict:
    """Grasp success of the model file ``model_path`` on ``trials`` scenes per object.

    Returns ``{"success": rate, "successes", "trials", "outcomes": {class: count}, "objects"}``.
    Raises what the benchmark raises when the simulator or the object meshes are missing.
    """
    from ..bench.policies import ModelPolicy
    from ..bench.runner import run_benchmark

    objects = objects or check_objects(root=objects_root)
    # finger_check off: the check scores the network's own grasps (the finger check of the detector
    # moves and turns grasps until the fingers clear the object, which hides what training changes)
    policy = ModelPolicy(str(model_path), name="candidate", device="cpu", backend="eager", finger_check="off")
    try:
        records, _, _ = run_benchmark([policy], objects, int(trials), seed, objects_root=objects_root, progress=False, tiles=False)
    finally:
        policy.close()
    n = len(records)
    ok = sum(bool(r["success"]) for r in records)
    return {"success": ok / n if n else 0.0, "successes": ok, "trials": n,
            "outcomes": dict(Counter(r["outcome"] for r in records)), "objects": [Path(o).stem for o in objects]}
