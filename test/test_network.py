"""The network matches Table I / Eq. (4)-(6): shapes at every level, parameter count, modalities,
the heads' dropout (HeadDropout: drop rate, expectation, gradient, seed), and
both up-sampling orders."""

import pytest
import torch

from dsc_grasp_ros.core.network import (
    CHANNEL_ORDER,
    UPSAMPLE_ORDERS,
    CoordinateAttention,
    CSPBlock,
    DepthSepConv,
    DSCGraspNet,
    DSCGraspNetConfig,
    count_parameters,
    dsc_graspnet,
)

PAPER_PARAMS_RGB = 0.643e6


@pytest.mark.parametrize("order", UPSAMPLE_ORDERS)
def test_parameter_count_within_3_percent_of_paper(order):
    n = count_parameters(dsc_graspnet("rgb", upsample_order=order))
    assert abs(n - PAPER_PARAMS_RGB) / PAPER_PARAMS_RGB < 0.03, (order, n)


def conv_flops(net, shape):
    """2 x multiply-adds of every Conv2d for one input (forward hooks)."""
    total = [0]

    def hook(m, _, out):
        total[0] += 2 * out.numel() * m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups

    hooks = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net.eval()(torch.zeros(shape))
    for h in hooks:
        h.remove()
    return total[0]


def test_default_is_csp_first_with_the_authors_cost():
    net = dsc_graspnet("rgbd")
    assert net.cfg.upsample_order == "csp_first"
    # the documented counts (module docstring, README): 1.83 vs 3.33 GFLOPs at 224 RGB-D
    assert conv_flops(net, (1, 4, 224, 224)) == pytest.approx(1.828e9, rel=2e-3)
    assert conv_flops(dsc_graspnet("rgbd", upsample_order="eq5"), (1, 4, 224, 224)) == pytest.approx(3.330e9, rel=2e-3)


@pytest.mark.parametrize("order", UPSAMPLE_ORDERS)
@pytest.mark.parametrize("modality,channels", [("d", 1), ("rgb", 3), ("rgbd", 4)])
def test_outputs_at_input_resolution(modality, channels, order):
    net = dsc_graspnet(modality, upsample_order=order).eval()
    assert net.in_channels == channels == len(CHANNEL_ORDER[modality])
    with torch.no_grad():
        out = net(torch.randn(2, channels, 224, 224))
    assert len(out) == 4
    for o in out:
        assert o.shape == (2, 1, 224, 224)


def test_backbone_levels_match_table_1():
    net = DSCGraspNet(4).eval()
    with torch.no_grad():
        feats = net.forward_features(torch.randn(1, 4, 224, 224))
        p = net.forward_up(feats)
    assert [tuple(f.shape[1:]) for f in feats] == [(32, 224, 224), (64, 112, 112), (128, 56, 56), (256, 28, 28)]
    assert tuple(p.shape[1:]) == (net.p_channels, 224, 224) == (32 + 16, 224, 224)  # Concat(C1, Up(CSP))
    # Table I: stem 3x3 to 32, 11 DepthSepConv blocks, the last five 5x5 at 256 channels.
    assert net.stem[0].kernel_size == (3, 3) and net.stem[0].out_channels == 32
    assert len(net.blocks) == 11
    strides = [b.dw[0].stride[0] for b in net.blocks]
    assert strides == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1]
    assert all(b.dw[0].kernel_size == (5, 5) and b.pw[0].out_channels == 256 for b in net.blocks[-5:])
    assert all(isinstance(b.ca, CoordinateAttention) for b in net.blocks)


def test_depthsepconv_is_depthwise_then_pointwise_with_attention():
    blk = DepthSepConv(32, 64, 3, 2)
    assert blk.dw[0].groups == 32 and blk.pw[0].kernel_size == (1, 1)
    assert isinstance(blk.dw[2], torch.nn.Mish) and isinstance(blk.pw[1], torch.nn.BatchNorm2d)
    assert blk(torch.randn(1, 32, 16, 16)).shape == (1, 64, 8, 8)
    # reduction 32 with the CA paper's floor of 8 hidden channels
    assert CoordinateAttention(256, 32).conv1.out_channels == 8


def test_csp_block_halves_paths_and_keeps_residual():
    csp = CSPBlock(96, 32, n=1)
    assert csp.path1[0].out_channels == 16 and csp.path2[0][0].out_channels == 16
    assert csp.transition[0].in_channels == 32
    assert csp(torch.randn(1, 96, 8, 8)).shape == (1, 32, 8, 8)


def test_other_sizes_and_bad_channels():
    net = dsc_graspnet("d").eval()
    with torch.no_grad():
        assert net(torch.randn(1, 1, 96, 128))[0].shape == (1, 1, 96, 128)
    with pytest.raises(ValueError, match="in_channels"):
        DSCGraspNet(2)
    with pytest.raises(ValueError, match="modality"):
        dsc_graspnet("ir")


def _csp_resolutions(net, size=224):
    """The spatial size each up-path CSP block runs at."""
    seen = []
    hooks = [s.csp.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1])) for s in net.up]
    with torch.no_grad():
        net.eval()(torch.zeros(1, net.in_channels, size, size))
    for h in hooks:
        h.remove()
    return seen


def test_upsample_orders_differ_where_the_csp_blocks_run():
    # csp_first (the prose): CSP at 28, 56, 112, then up-sampling; eq5: concatenation first, CSP at 56/112/224
    assert _csp_resolutions(dsc_graspnet("d")) == [28, 56, 112]
    eq5 = dsc_graspnet("d", upsample_order="eq5")
    assert _csp_resolutions(eq5) == [56, 112, 224]
    assert eq5.p_channels == 32 and eq5.cfg.up_channels == (128, 64, 32)


def test_config_validation():
    with pytest.raises(ValueError, match="upsample_order"):
        DSCGraspNetConfig(upsample_order="deconv")
    with pytest.raises(ValueError, match="3 stages"):
        DSCGraspNetConfig(up_channels=(64, 32))
    assert DSCGraspNetConfig(upsample_order="csp_first", up_channels=[96, 48, 24]).up_channels == (96, 48, 24)


# ---------------------------------------------------------------- the heads' dropout
def _head_dropout_input(channels_last: bool):
    x = torch.rand(4, 16, 32, 48) + 0.5
    return x.to(memory_format=torch.channels_last) if channels_last else x


@pytest.mark.parametrize("channels_last", [False, True])
def test_head_dropout_keeps_the_expectation_and_drops_p(channels_last):
    from dsc_grasp_ros.core.network import HeadDropout

    torch.manual_seed(0)
    x = _head_dropout_input(channels_last)
    d = HeadDropout(0.1).train()
    y = d(x)
    dropped = (y == 0).double().mean().item()
    n = x.numel()
    assert abs(dropped - 0.1) < 4 * (0.1 * 0.9 / n) ** 0.5  # 98,304 elements: within 4 sigma of p
    kept = y != 0
    scale = 32768 / (32768 - round(0.1 * 32768))
    assert torch.allclose(y[kept], x[kept] * scale)
    # the expectation is the input's: the mean over many masks of one element
    ys = torch.stack([d(x) for _ in range(200)])
    assert abs(ys.mean().item() / x.mean().item() - 1.0) < 0.005
    # masks are independent across the channels-last layout (no repeating 4-element pattern)
    a = (y == 0).flatten().double()
    assert abs(torch.corrcoef(torch.stack([a[:-1], a[1:]]))[0, 1].item()) < 0.02


def test_head_dropout_gradient_is_the_mask_and_the_seed_repeats_it():
    from dsc_grasp_ros.core.network import HeadDropout

    d = HeadDropout(0.25).train()
    x = _head_dropout_input(True).requires_grad_(True)
    torch.manual_seed(3)
    y = d(x)
    y.sum().backward()
    scale = 32768 / (32768 - round(0.25 * 32768))
    assert torch.allclose(x.grad, (y != 0).float() * scale)
    torch.manual_seed(3)
    assert torch.equal(d(x.detach()), y.detach())  # torch's generator: a resumed run draws the same masks


def test_head_dropout_is_identity_in_eval_and_nn_dropout_elsewhere():
    from dsc_grasp_ros.core.network import HeadDropout

    x = _head_dropout_input(False)
    assert torch.equal(HeadDropout(0.1).eval()(x), x)
    assert torch.equal(HeadDropout(0.0).train()(x), x)
    assert torch.equal(HeadDropout(1.0).train()(x), torch.zeros_like(x))
    assert isinstance(HeadDropout(0.1), torch.nn.Dropout)  # exporters and state dicts see a Dropout
    net = dsc_graspnet("rgbd")
    assert all(isinstance(h[0], HeadDropout) for h in net.heads.values())
    # no parameters: a model saved with nn.Dropout heads loads unchanged
    assert not any("heads.quality.0" in k for k in net.state_dict())
