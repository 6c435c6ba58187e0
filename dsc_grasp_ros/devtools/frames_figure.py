"""The picture of the frames of a published grasp (docs/ros.md, "Frames"): camera optical frame,
our grasp frame on the observed surface, the robot's TCP frame at the grasp depth (here the Robotiq
2F-85 preset's, turned 90 degrees about the approach), the pre-grasp pose and the retreat, for one
top-down grasp on a box, computed with the core gripper model.

    python -m dsc_grasp_ros.devtools.frames_figure docs/img/grasp_frames.png
"""

from __future__ import annotations

import sys

import numpy as np


def draw(path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..core.geometry import quaternion_to_rotation, rotation_to_quaternion
    from ..core.gripper import preset

    g = preset("franka_hand").with_overrides(tcp_transform=preset("robotiq_2f_85").tcp_transform)
    # a box 6 cm high on the table (z = 0), a camera 0.45 m above it, tilted
    box_c, box_h = np.array([0.5, 0.0]), 0.06
    surface = np.array([0.5, 0.0, box_h])
    R_grasp = np.diag([1.0, -1.0, -1.0]) @ np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # down, jaws along x of base
    q_grasp = rotation_to_quaternion(R_grasp)
    ex = g.execution(surface, q_grasp, plane=(np.array([0.0, 0.0, 1.0]), 0.0))
    tcp_p, tcp_q = g.to_tcp(ex.grasp_position, ex.quaternion)
    cam_p = np.array([0.32, -0.12, 0.45])
    z = surface - cam_p
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    R_cam = np.column_stack([x, np.cross(z, x), z])

    fig = plt.figure(figsize=(7.5, 6.0))
    ax = fig.add_subplot(projection="3d")

    def frame(p, R, name, scale=0.05, style="-", at=(0.0, 0.012, 0.012)):
        for i, c in enumerate("rgb"):
            ax.quiver(*p, *(R[:, i] * scale), color=c, linestyle=style, arrow_length_ratio=0.15, linewidth=1.8)
        ax.plot(*np.stack([p, p + np.asarray(at)]).T, color="0.6", linewidth=0.6)
        ax.text(*(p + np.asarray(at)), name, fontsize=8)

    # table and box
    xx, yy = np.meshgrid([0.3, 0.7], [-0.2, 0.2])
    ax.plot_surface(xx, yy, np.zeros_like(xx), color=(0.8, 0.78, 0.72), alpha=0.35)
    hx, hy = 0.03, 0.05
    corners = np.array([[box_c[0] + sx * hx, box_c[1] + sy * hy] for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))])
    for zz in (0.0, box_h):
        ax.plot(corners[:, 0], corners[:, 1], zz, color="0.35")
    for cx, cy in corners[:4]:
        ax.plot([cx, cx], [cy, cy], [0.0, box_h], color="0.35")
    frame(cam_p, R_cam, "camera optical frame\n(z forward, x right, y down)")
    frame(surface, R_grasp, "grasp frame on the surface\n(+z approach, jaws along y)", at=(-0.12, -0.05, 0.10))
    frame(ex.pre_grasp_position, R_grasp, f"pre-grasp ({g.approach_distance:.2f} m back)", style="--", at=(0.0, 0.05, 0.08))
    frame(tcp_p, quaternion_to_rotation(tcp_q), f"TCP frame at grasp_depth {g.grasp_depth:.3f} m\n(tcp_transform: Robotiq 2F-85)", scale=0.04,
          at=(0.12, 0.12, -0.02))
    ax.plot(*np.stack([ex.pre_grasp_position, ex.grasp_position]).T, color="k", linestyle=":", linewidth=1)
    ax.quiver(*ex.grasp_position, *(ex.retreat * g.retreat_distance * 0.5), color="purple", arrow_length_ratio=0.1)
    ax.text(*(ex.grasp_position + ex.retreat * g.retreat_distance * 0.5 + np.array([0.0, -0.06, 0.0])), "retreat", color="purple", fontsize=8)
    ax.set_xlim(0.3, 0.7)
    ax.set_ylim(-0.2, 0.2)
    ax.set_zlim(0.0, 0.4)
    ax.set_box_aspect((0.4, 0.4, 0.4))
    ax.set_xlabel("x (m, target_frame)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")
    ax.view_init(elev=18, azim=-60)
    ax.set_title("Frames of one grasp (axes: x red, y green, z blue)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    draw(args[0] if args else "docs/img/grasp_frames.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
