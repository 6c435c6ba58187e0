"""Sub-commands of ``dsc-grasp`` (see :mod:`dsc_grasp_ros.cli`)."""
