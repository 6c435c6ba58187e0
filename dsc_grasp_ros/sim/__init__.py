"""Synthetic grasp data from simulated grasp trials in PyBullet (Jacquard-style).

* :mod:`.camera` -- RealSense-D435-like pinhole camera: OpenGL matrices from ``K``, z-buffer to
  metric depth, poses, stereo depth-noise models (v1 ``stereo_depth``, v2 ``realsense_depth``).
* :mod:`.objects` -- the object catalogue (pybullet_data ``random_urdfs`` and other small objects),
  object scaling, held-out split.
* :mod:`.mesh_objects` -- the real object meshes of ``../shared/objects`` (benchmark / training
  sets, loader with inertia from the collision mesh).
* :mod:`.scene_v2` -- preset ``v2`` scenes: real meshes in clutter (never the benchmark set),
  backgrounds, far and tilted cameras; its held-out object split.
* :mod:`.gripper` -- a free-floating parallel-jaw gripper (two box fingers on prismatic joints).
* :mod:`.scene` -- scene generation and rendering; :func:`.scene.render_sequence` for rosbags.
* :mod:`.trials` -- grasp candidates, collision checks and physical grasp trials -> rectangles
  (v1 ``label_view``, v2 ``label_view_v2``).
* :mod:`.dataset` -- Jacquard-format writer, parallel, deterministic and resumable generation.

Nothing here imports ROS; everything runs headless (``pybullet.DIRECT``, CPU TinyRenderer).
"""
