"""Launch grasp_node (a managed node that configures and activates itself).

    ros2 launch dsc_grasp_ros grasp.launch.py
    ros2 launch dsc_grasp_ros grasp.launch.py namespace:=left camera_ns:=/camera/camera \
        params_file:=/path/to/my_params.yaml target_frame:=panda_link0 use_sim_time:=true

Inputs are remapped to the realsense2_camera 4.5x aligned-depth topics under ``camera_ns``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("dsc_grasp_ros")
    default_params = os.path.join(share, "config", "dsc_grasp.yaml")
    fastdds_xml = os.path.join(share, "config", "fastdds_large_images.xml")

    namespace = LaunchConfiguration("namespace")
    camera_ns = LaunchConfiguration("camera_ns")
    params_file = LaunchConfiguration("params_file")
    use_sim_time = LaunchConfiguration("use_sim_time")
    target_frame = LaunchConfiguration("target_frame")
    device = LaunchConfiguration("device")
    log_level = LaunchConfiguration("log_level")
    use_fastdds_profile = LaunchConfiguration("fastdds_profile")

    return LaunchDescription(
        [
            DeclareLaunchArgument("namespace", default_value="", description="Namespace of grasp_node"),
            DeclareLaunchArgument("camera_ns", default_value="/camera/camera",
                                  description="Namespace of the RealSense topics (4.54: /camera)"),
            DeclareLaunchArgument("params_file", default_value=default_params, description="grasp_node parameters (YAML)"),
            DeclareLaunchArgument("use_sim_time", default_value="false", description="Use /clock (bag replay, simulation)"),
            DeclareLaunchArgument("target_frame", default_value="",
                                  description="Frame of the published grasps (robot base); empty = camera optical frame"),
            DeclareLaunchArgument("device", default_value="auto", description="auto | cpu | cuda | cuda:N"),
            DeclareLaunchArgument("log_level", default_value="info"),
            DeclareLaunchArgument("fastdds_profile", default_value="true",
                                  description="Use the shipped Fast DDS profile (32 MB shared memory) for large images"),
            SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", fastdds_xml, condition=IfCondition(use_fastdds_profile)),
            SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", fastdds_xml, condition=IfCondition(use_fastdds_profile)),
            SetEnvironmentVariable("RMW_FASTRTPS_USE_QOS_FROM_XML", "0", condition=IfCondition(use_fastdds_profile)),
            LifecycleNode(
                package="dsc_grasp_ros",
                executable="grasp_node",
                name="grasp_node",
                namespace=namespace,
                output="screen",
                emulate_tty=True,
                parameters=[
                    params_file,
                    {
                        "use_sim_time": ParameterValue(use_sim_time, value_type=bool),
                        "target_frame": ParameterValue(target_frame, value_type=str),
                        "device": ParameterValue(device, value_type=str),
                    },
                ],
                remappings=[
                    ("color/image_raw", [camera_ns, "/color/image_raw"]),
                    ("color/camera_info", [camera_ns, "/color/camera_info"]),
                    ("depth/image_raw", [camera_ns, "/aligned_depth_to_color/image_raw"]),
                ],
                arguments=["--ros-args", "--log-level", log_level],
            ),
        ]
    )
