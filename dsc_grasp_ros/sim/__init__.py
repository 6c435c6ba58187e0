"""Synthetic grasp data from simulated grasp trials in PyBullet (Jacquard-style).

* :mod:`.camera` -- RealSense-D435-like pinhole camera: OpenGL matrices from ``K``, z-buffer to
  metric depth, poses, stereo depth-noise models (``stereo_depth``, ``realsense_depth``), random camera poses and the colour-sensor model.
* :mod:`.objects` -- the object catalogue (pybullet_data ``random_urdfs`` and other small objects),
  object scaling, held-out split.
* :mod:`.mesh_objects` -- the real object meshes of ``../shared/objects`` (benchmark / training
  sets, held-out split, selection that never yields a benchmark object, loader with inertia from
  the collision mesh).
* :mod:`.gripper` -- a free-floating parallel-jaw gripper (two box fingers on prismatic joints).
* :mod:`.scene` -- the scene builder (supports, background clutter, object sources), lighting and
  rendering; :func:`.scene.render_sequence` for rosbags.
* :mod:`.trials` -- grasp candidates, collision checks and physical grasp trials -> rectangles.
* :mod:`.presets` -- ``SceneConfig`` and the presets ``v1`` / ``v2`` / ``cornell`` / ``wrist``: the settings that make one
  data set or the other out of the same builder and labeller.
* :mod:`.dataset` -- Jacquard-format writer, parallel, deterministic and resumable generation.

Nothing here imports ROS; everything runs headless (``pybullet.DIRECT``, CPU TinyRenderer).
"""
