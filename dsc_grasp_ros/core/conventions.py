"""The conventions every part of the package shares. One concept, one place.

Image grasps
    A grasp in an image is ``(u, v, angle, width_px)`` plus a quality.

    * ``u`` is the column, ``v`` the row (pixel centres at integer coordinates, as in
      ``sensor_msgs/CameraInfo``), both in *full-image* pixels unless a name says otherwise.
    * ``angle`` (radians) is the direction of the **jaw-closing axis** in the image, measured
      counter-clockwise as a person sees the image (image ``v`` points down, so a closing axis
      pointing at pixel offset ``(du, dv)`` has ``angle = atan2(-dv, du)``). A parallel gripper is
      symmetric, so angles are wrapped to ``[-pi/2, pi/2)`` (:func:`wrap_angle`). This is the
      GR-ConvNet / GG-CNN convention, so their datasets' labels map onto ours unchanged.
    * ``width_px`` is the gripper **opening** along the closing axis, in pixels.

Rectangles
    A grasp rectangle is 4 corners ``(x, y) = (u, v)``; edge p0->p1 runs along the closing axis
    (its length is the opening), edge p1->p2 along the jaws (its length is the jaw size). This is
    the Cornell corner order. A predicted grasp becomes a rectangle with jaw size
    ``opening * PREDICTED_JAW_RATIO`` (GR-ConvNet's ``length / 2``).

Network maps
    The network predicts four maps: quality in [0, 1], ``cos 2θ``, ``sin 2θ`` and width. The width
    map holds ``width_px_in_network_input / WIDTH_SCALE_PX`` (clipped to [0, 1] in targets); the
    same constant decodes it (the value used is stored in each model's metadata). GR-ConvNet trains
    with ``width / (size / 2)`` but decodes with ``* 150``; we use one scale for both.

Grasp poses (metric, 6-DoF)
    The tool-centre-point (TCP) frame matches the Franka hand TCP: ``+z`` is the approach
    direction (into the scene, along the camera's optical axis for a top-down grasp), the jaws
    close along ``±y``, ``x = y × z``. Poses are first expressed in the camera *optical* frame
    (``x`` right, ``y`` down, ``z`` forward, REP 103), then transformed to the target frame.
"""

from __future__ import annotations

import math

import numpy as np

#: Width map value 1.0 corresponds to this many pixels of the network input.
WIDTH_SCALE_PX: float = 150.0

#: Jaw size of a predicted rectangle relative to its opening (GR-ConvNet: length / 2).
PREDICTED_JAW_RATIO: float = 0.5

#: Network input size used by the paper and by all shipped models.
INPUT_SIZE: int = 224

#: Smallest image side (pixels) the detector accepts. The region of interest is resized to the
#: INPUT_SIZE network input, so any size "runs", but the network's receptive field spans the whole
#: input (coordinate attention pools whole rows and columns; measured: every input pixel moves the
#: centre output) and below 32 px the frame is upsampled more than 7x: the network would see
#: interpolation, not objects, and return meaningless (e.g. width-0) grasps.
MIN_IMAGE_SIDE: int = 32


def wrap_angle(angle):
    """Wrap a grasp angle (scalar or array, radians) into ``[-pi/2, pi/2)``."""
    return (np.asarray(angle, dtype=np.float64) + math.pi / 2) % math.pi - math.pi / 2


def angle_difference(a, b):
    """Absolute difference of two grasp angles modulo pi, in ``[0, pi/2]``."""
    d = np.abs(wrap_angle(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))
    return np.minimum(d, math.pi - d)


def closing_axis_px(angle):
    """Unit pixel direction ``(du, dv)`` of the jaw-closing axis for ``angle``."""
    return np.array([math.cos(angle), -math.sin(angle)])
