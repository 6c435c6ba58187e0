"""--init-from: a model of another modality starts a run; stem channels are matched by name."""

import torch

from dsc_grasp_ros.core.model_io import ModelMetadata, save_model
from dsc_grasp_ros.core.network import dsc_graspnet
from dsc_grasp_ros.training.trainer import transfer_weights


def test_rgbd_weights_start_depth_and_rgb_models(tmp_path):
    torch.manual_seed(0)
    src = dsc_graspnet("rgbd")
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    path = save_model(tmp_path / "rgbd.pt", src, ModelMetadata("rgbd"))
    sw = src.state_dict()["stem.0.weight"]  # channels: depth, r, g, b
    for modality, idx in (("d", [0]), ("rgb", [1, 2, 3]), ("rgbd", [0, 1, 2, 3])):
        dst = dsc_graspnet(modality)
        msg = transfer_weights(dst, modality, str(path))
        n = len(dst.state_dict())
        assert msg.startswith(f"initialised {n}/{n} tensors")
        torch.testing.assert_close(dst.state_dict()["stem.0.weight"], sw[:, idx])
        torch.testing.assert_close(dst.state_dict()["blocks.10.pw.0.weight"], src.state_dict()["blocks.10.pw.0.weight"])
