"""RealSense D4xx + grasp_node + (optionally) rviz2: grasps from a live camera.

    ros2 launch dsc_grasp_ros realsense_grasp.launch.py rviz:=true target_frame:=panda_link0

Starts realsense2_camera's ``rs_launch.py`` with aligned depth and a 640x480x30 color and depth
profile, then this package's ``grasp.launch.py`` remapped to the camera's topics. For the grasps
to be in the robot frame, publish the camera's hand-eye calibration on /tf (tf2) or set
``static_camera_transform`` in the params file.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("dsc_grasp_ros")
    rs_launch = os.path.join(get_package_share_directory("realsense2_camera"), "launch", "rs_launch.py")

    camera_name = LaunchConfiguration("camera_name")
    camera_namespace = LaunchConfiguration("camera_namespace")

    return LaunchDescription(
        [
            DeclareLaunchArgument("camera_name", default_value="camera"),
            DeclareLaunchArgument("camera_namespace", default_value="camera"),
            DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "dsc_grasp.yaml")),
            DeclareLaunchArgument("target_frame", default_value="", description="empty = the params file's"),
            DeclareLaunchArgument("device", default_value=""),
            DeclareLaunchArgument("rviz", default_value="false", description="Start rviz2 with config/grasp.rviz"),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(rs_launch),
                launch_arguments={
                    "camera_name": camera_name,
                    "camera_namespace": camera_namespace,
                    "align_depth.enable": "true",
                    "enable_sync": "true",
                    "rgb_camera.color_profile": "640,480,30",
                    "depth_module.depth_profile": "640,480,30",
                    "pointcloud.enable": "false",
                }.items(),
            ),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(os.path.join(share, "launch", "grasp.launch.py")),
                launch_arguments={
                    "camera_ns": ["/", camera_namespace, "/", camera_name],
                    "params_file": LaunchConfiguration("params_file"),
                    "target_frame": LaunchConfiguration("target_frame"),
                    "device": LaunchConfiguration("device"),
                }.items(),
            ),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", PathJoinSubstitution([share, "config", "grasp.rviz"])],
                condition=IfCondition(LaunchConfiguration("rviz")),
                output="screen",
            ),
        ]
    )
