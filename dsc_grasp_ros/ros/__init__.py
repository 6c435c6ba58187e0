"""The thin ROS 2 layer: converts messages to and from the core. Only this sub-package imports rclpy."""
