"""Launch grasp_node (a managed node that configures and activates itself).

    ros2 launch dsc_grasp_ros grasp.launch.py
    ros2 launch dsc_grasp_ros grasp.launch.py namespace:=left camera_ns:=/camera/camera \
        params_file:=/path/to/my_params.yaml target_frame:=panda_link0 use_sim_time:=true

Inputs are remapped to the realsense2_camera 4.5x aligned-depth topics under ``camera_ns``.
``target_frame``, ``device``, ``approach``, ``view``, ``mode`` and ``gripper`` given here override the
params file; left empty, the params file's values are used. A tilted camera on a robot:
``target_frame:=panda_link0 approach:=target_down`` (and ``view:=down`` for the depth model). A
MoveIt client that asks for grasps (``~/plan_grasps``): ``mode:=request``.

``rviz:=true`` starts rviz2 with ``rviz_config`` (default config/grasp.rviz) in the node's
``namespace``: the config's topics are relative (``grasp_node/markers``, ``color/image_raw``), so they
follow the namespace, and the camera image is remapped like the node's input. The fixed frame is
``target_frame`` when given (``-f``), else the config's ``camera_color_optical_frame``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

#: Launch arguments that, when not empty, override the node parameter of the same name.
PARAMETER_ARGS = ("target_frame", "device", "approach", "view", "mode", "gripper")


def camera_topic_prefix(camera_ns: str) -> str:
    """``/camera/camera`` style prefix of the camera topics without empty parts: ``camera_namespace:=''``
    in realsense_grasp.launch.py gives ``//camera``, which would make an invalid remap."""
    parts = [p for p in camera_ns.split("/") if p]
    return "/" + "/".join(parts) if parts else ""


def _grasp_node(context):
    overrides = {"use_sim_time": LaunchConfiguration("use_sim_time").perform(context).lower() in ("true", "1", "yes")}
    for name in PARAMETER_ARGS:
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    camera_ns = camera_topic_prefix(LaunchConfiguration("camera_ns").perform(context))
    return [
        LifecycleNode(
            package="dsc_grasp_ros",
            executable="grasp_node",
            name="grasp_node",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            emulate_tty=True,
            parameters=[LaunchConfiguration("params_file"), overrides],
            remappings=[
                ("color/image_raw", camera_ns + "/color/image_raw"),
                ("color/camera_info", camera_ns + "/color/camera_info"),
                ("depth/image_raw", camera_ns + "/aligned_depth_to_color/image_raw"),
            ],
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        )
    ]


def _rviz(context):
    """rviz2 in the node's namespace (the config's relative topics follow it), camera image remapped."""
    if LaunchConfiguration("rviz").perform(context).lower() not in ("true", "1", "yes"):
        return []
    args = ["-d", LaunchConfiguration("rviz_config").perform(context)]
    target = LaunchConfiguration("target_frame").perform(context)
    if target:
        args += ["-f", target]  # rviz2 --fixed-frame: the config's frame is the camera's
    camera_ns = camera_topic_prefix(LaunchConfiguration("camera_ns").perform(context))
    return [Node(package="rviz2", executable="rviz2", name="rviz2", namespace=LaunchConfiguration("namespace"), arguments=args,
                 remappings=[("color/image_raw", camera_ns + "/color/image_raw")], output="screen")]


def generate_launch_description():
    share = get_package_share_directory("dsc_grasp_ros")
    default_params = os.path.join(share, "config", "dsc_grasp.yaml")
    default_rviz = os.path.join(share, "config", "grasp.rviz")
    fastdds_xml = os.path.join(share, "config", "fastdds_large_images.xml")
    use_fastdds_profile = IfCondition(LaunchConfiguration("fastdds_profile"))

    return LaunchDescription(
        [
            DeclareLaunchArgument("namespace", default_value="", description="Namespace of grasp_node"),
            DeclareLaunchArgument("camera_ns", default_value="/camera/camera",
                                  description="Namespace of the RealSense topics (realsense2_camera 4.54: /camera)"),
            DeclareLaunchArgument("params_file", default_value=default_params, description="grasp_node parameters (YAML)"),
            DeclareLaunchArgument("use_sim_time", default_value="false", description="Use /clock (bag replay, simulation)"),
            DeclareLaunchArgument("target_frame", default_value="",
                                  description="Frame of the published grasps (robot base); empty = the params file's"),
            DeclareLaunchArgument("device", default_value="", description="auto | cpu | cuda | cuda:N; empty = the params file's"),
            DeclareLaunchArgument("approach", default_value="",
                                  description="optical | target_down (grasps approach along target_frame's -z); empty = the params file's"),
            DeclareLaunchArgument("view", default_value="",
                                  description="camera | down (the network sees a virtual straight-down view; needs approach "
                                  "target_down); empty = the params file's"),
            DeclareLaunchArgument("mode", default_value="",
                                  description="stream | request (inference only when ~/plan_grasps asks); empty = the params file's"),
            DeclareLaunchArgument("gripper", default_value="",
                                  description="franka_hand | robotiq_2f_85 | robotiq_2f_140; empty = the params file's"),
            DeclareLaunchArgument("rviz", default_value="false", description="Start rviz2 in the node's namespace"),
            DeclareLaunchArgument("rviz_config", default_value=default_rviz,
                                  description="rviz2 config (relative topics: they follow the namespace)"),
            DeclareLaunchArgument("log_level", default_value="info"),
            DeclareLaunchArgument("fastdds_profile", default_value="true",
                                  description="Use the shipped Fast DDS profile (32 MB shared memory) for large images"),
            SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", fastdds_xml, condition=use_fastdds_profile),
            SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", fastdds_xml, condition=use_fastdds_profile),
            SetEnvironmentVariable("RMW_FASTRTPS_USE_QOS_FROM_XML", "0", condition=use_fastdds_profile),
            OpaqueFunction(function=_grasp_node),
            OpaqueFunction(function=_rviz),
        ]
    )
