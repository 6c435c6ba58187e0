"""Synthetic grasp data from simulated grasp trials in PyBullet (Jacquard-style).

* :mod:`.camera` -- RealSense-D435-like pinhole camera: OpenGL matrices from ``K``, z-buffer to
  metric depth, poses, a stereo depth-noise model.
* :mod:`.objects` -- the object catalogue (pybullet_data ``random_urdfs`` and other small objects),
  object scaling, held-out split.
* :mod:`.gripper` -- a free-floating parallel-jaw gripper (two box fingers on prismatic joints).
* :mod:`.scene` -- scene generation and rendering; :func:`.scene.render_sequence` for rosbags.
* :mod:`.trials` -- grasp candidates, collision checks and physical grasp trials -> rectangles.
* :mod:`.dataset` -- Jacquard-format writer, parallel, deterministic and resumable generation.

Nothing here imports ROS; everything runs headless (``pybullet.DIRECT``, CPU TinyRenderer).
"""
