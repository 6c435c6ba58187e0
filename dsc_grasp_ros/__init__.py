"""dsc_grasp_ros: DSC-GraspNet grasp perception for ROS 2.

Everything in this package except :mod:`dsc_grasp_ros.ros` is the ROS-free core: it imports
no rclpy, tf2_ros or message package and can be used from plain Python.
"""

import os as _os

__version__ = "0.1.0"

# GNU OpenMP (torch's CPU thread pool) spins waiting threads by default. On a robot PC whose cores
# are busy with other processes, two spinning torch threads measured 3.4-3.7 s per network forward
# instead of 0.25 s (README, Performance); PASSIVE waiting removes that collapse. It only acts when
# set before torch is first imported (this package is imported before torch by the node and the
# CLI). An OMP_WAIT_POLICY set by the user wins.
import sys as _sys  # noqa: E402

#: Whether torch's OpenMP threads wait passively: False when the user chose another policy, or when
#: torch was imported before this package without one (its thread pool then already spins).
PASSIVE_OPENMP = _os.environ.get("OMP_WAIT_POLICY", "PASSIVE" if "torch" not in _sys.modules else "").upper() == "PASSIVE"
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
