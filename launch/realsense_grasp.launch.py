"""RealSense D4xx + grasp_node + (optionally) rviz2: grasps from a live camera.

    ros2 launch dsc_grasp_ros realsense_grasp.launch.py rviz:=true target_frame:=panda_link0

Starts realsense2_camera's ``rs_launch.py`` (4.55+) with aligned depth and a 640x480x30 color and
depth profile, then this package's ``grasp.launch.py`` remapped to the camera's topics. For the
grasps to be in the robot frame, publish the camera's hand-eye calibration on /tf (tf2) or set
``static_camera_transform`` in the params file.

The Fast DDS profile (32 MB shared-memory segments, config/fastdds_large_images.xml) is set
*before* the camera is included: a process reads it when it starts, and without it the camera's
900 KB images fall back to UDP and most color/depth pairs are lost.

The colour profile is given twice: ``rgb_camera.color_profile`` (D415/D435/D455) and
``depth_module.color_profile`` (D405, whose colour stream belongs to the depth module); the
camera ignores the one it does not have.

rviz (``rviz:=true``, started by grasp.launch.py): config/grasp.rviz shows the node's topics and the
camera's colour image, in the node's ``namespace`` (the config's topics are relative, the image is
remapped to the camera's); the fixed frame is ``target_frame`` when given (``-f``), else the
config's ``camera_color_optical_frame``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration


def generate_launch_description():
    share = get_package_share_directory("dsc_grasp_ros")
    fastdds_xml = os.path.join(share, "config", "fastdds_large_images.xml")
    use_fastdds_profile = IfCondition(LaunchConfiguration("fastdds_profile"))
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
            DeclareLaunchArgument("approach", default_value="", description="optical | target_down; empty = the params file's"),
            DeclareLaunchArgument("view", default_value="", description="camera | down; empty = the params file's"),
            DeclareLaunchArgument("namespace", default_value="", description="Namespace of grasp_node (and rviz2)"),
            DeclareLaunchArgument("rviz", default_value="false", description="Start rviz2 with config/grasp.rviz"),
            DeclareLaunchArgument("fastdds_profile", default_value="true",
                                  description="Use the shipped Fast DDS profile (32 MB shared memory) for the camera and the node"),
            # before the camera include: the camera process takes its environment when it starts
            SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", fastdds_xml, condition=use_fastdds_profile),
            SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", fastdds_xml, condition=use_fastdds_profile),
            SetEnvironmentVariable("RMW_FASTRTPS_USE_QOS_FROM_XML", "0", condition=use_fastdds_profile),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(rs_launch),
                launch_arguments={
                    "camera_name": camera_name,
                    "camera_namespace": camera_namespace,
                    "align_depth.enable": "true",
                    "enable_sync": "true",
                    "rgb_camera.color_profile": "640,480,30",
                    "depth_module.color_profile": "640,480,30",  # D405: colour comes from the depth module
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
                    "approach": LaunchConfiguration("approach"),
                    "view": LaunchConfiguration("view"),
                    "fastdds_profile": LaunchConfiguration("fastdds_profile"),
                    "namespace": LaunchConfiguration("namespace"),
                    "rviz": LaunchConfiguration("rviz"),
                }.items(),
            ),
        ]
    )
