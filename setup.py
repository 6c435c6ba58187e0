"""ament_python package definition (colcon) that also installs with pip (the .venv workflow)."""

from glob import glob
import os

from setuptools import find_packages, setup

package_name = "dsc_grasp_ros"


def files(pattern):
    return [f for f in glob(pattern) if os.path.isfile(f)]


setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", files("launch/*")),
        ("share/" + package_name + "/config", files("config/*")),
        ("share/" + package_name + "/models", files("models/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="dsc_grasp_ros maintainers",
    maintainer_email="maintainers@dsc-grasp-ros.org",
    description="DSC-GraspNet grasp perception for ROS 2",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "dsc-grasp = dsc_grasp_ros.cli:main",
            "grasp_node = dsc_grasp_ros.ros.grasp_node:main",
        ],
    },
)
