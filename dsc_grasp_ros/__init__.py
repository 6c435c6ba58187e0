"""dsc_grasp_ros: DSC-GraspNet grasp perception for ROS 2.

Everything in this package except :mod:`dsc_grasp_ros.ros` is the ROS-free core: it imports
no rclpy, tf2_ros or message package and can be used from plain Python.
"""

__version__ = "0.1.0"
