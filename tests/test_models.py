"""Tests for the networks, losses and builders (models/)."""

import logging

import pytest
import torch
import torch.nn.functional as F
import torchvision

from arguments import TINY, parse_args
from dataset.layout import CLASS_TO_ID
from models import build_nets, count_parameters
from models.audio_net import UNet, VGGishGround
from models.classifier_net import SpectrogramClassifier
from models.criterion import WeightedBCELoss, WeightedL1Loss, WeightedL2Loss
from models.grounding_net import SOUNDING, GroundingHead, sounding_probability
from models.synthesizer_net import InnerProd
from models.vision_net import ResNet18, ResNet18Dilated, ResNet18Ground, load_imagenet

torch.manual_seed(0)

# Every net build_nets knows, by name, and its one architecture.
CLASSES = {
    "sound_ground": VGGishGround,
    "frame_ground": ResNet18Ground,
    "grounding": GroundingHead,
    "sound": UNet,
    "frame": ResNet18Dilated,
    "synthesizer": InnerProd,
    "classifier": SpectrogramClassifier,
}


# ---------------------------------------------------------------------------------------- audio
def test_vggish_shape_and_layout():
    net = VGGishGround(width=8)
    assert net(torch.randn(2, 1, 64, 64)).shape == (2, 64)
    convs = [i for i, m in enumerate(net.features) if isinstance(m, torch.nn.Conv2d)]
    assert convs == [0, 3, 6, 8, 11, 13]  # the reference's features.{i} keys
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_vggish_is_global_max_pool():
    net = VGGishGround(width=4)
    x = torch.randn(1, 1, 32, 48)
    torch.testing.assert_close(net(x), net.features(x).amax(dim=(2, 3)))


def test_unet_reference_size_shape_and_keys():
    net = UNet(levels=7, ngf=4, fc_dim=8)
    assert net(torch.randn(1, 1, 256, 256)).shape == (1, 8, 256, 256)
    keys = net.state_dict().keys()
    assert {
        "bn0.weight",
        "unet_block.model.0.weight",
        "unet_block.model.4.bias",
        "unet_block.model.1.model.1.weight",
        "unet_block.model.1.model.2.running_mean",
    } <= keys
    down_channels = [
        m.out_channels
        for m in net.modules()
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (4, 4)
    ]
    assert down_channels == [4, 8, 16, 32, 32, 32, 32]  # ngf * (1, 2, 4, 8, 8, 8, 8)


@pytest.mark.parametrize("levels", [2, 4, 5])
def test_unet_other_depths(levels):
    net = UNet(levels=levels, ngf=4, fc_dim=6)
    size = 2**levels * 2
    assert net(torch.randn(2, 1, size, size)).shape == (2, 6, size, size)


def test_unet_rejects_indivisible_input():
    net = UNet(levels=7, ngf=2, fc_dim=4)
    with pytest.raises(ValueError, match=r"\(1, 1, 128, 96\)"):
        net(torch.randn(1, 1, 128, 96))
    with pytest.raises(ValueError):
        UNet(levels=1)


# ---------------------------------------------------------------------------------------- vision
def test_resnet18_width64_is_torchvision():
    assert (
        count_parameters(ResNet18(64))
        == count_parameters(torchvision.models.resnet18()) - 512 * 1000 - 1000
    )


def test_resnet18_ground_shapes_and_pooling():
    net = ResNet18Ground(width=8).eval()
    frames = torch.randn(2, 3, 3, 64, 64)  # (B, 3, T, H, W)
    feat = net.forward_multiframe(frames)
    assert feat.shape == (2, 64)
    per_frame = torch.stack([net(frames[:, :, t]) for t in range(3)], dim=1)  # (B, T, C)
    torch.testing.assert_close(feat, per_frame.amax(1))
    assert len(net.features) == 9  # conv1 ... layer4, avgpool
    # Leading dims: the N objects of a batch in one call.
    assert net.forward_multiframe(torch.randn(2, 4, 3, 2, 64, 64)).shape == (2, 4, 64)
    avg = ResNet18Ground(width=8, pool="avgpool").eval()
    avg.load_state_dict(net.state_dict())
    torch.testing.assert_close(avg.forward_multiframe(frames), per_frame.mean(1))


def test_resnet18_dilated_reference_stride():
    net = ResNet18Dilated(width=8, fc_dim=8).eval()
    assert len(net.features) == 8  # conv1 ... layer4
    feat_map = net.forward_features_map(torch.randn(1, 3, 1, 224, 224))
    assert feat_map.shape == (1, 8, 1, 14, 14)  # output stride 16
    frames = torch.randn(2, 3, 2, 64, 64)
    vec = net.forward_multiframe(frames)
    assert vec.shape == (2, 8)
    torch.testing.assert_close(
        vec, torch.sigmoid(net.forward_features_map(frames).amax(dim=(2, 3, 4)))
    )
    assert net.forward_multiframe(torch.randn(2, 4, 3, 1, 64, 64)).shape == (2, 4, 8)
    assert ResNet18Dilated(width=8, dilate_scale=8).forward_features_map(
        torch.randn(1, 3, 1, 64, 64)
    ).shape[-2:] == (8, 8)
    with pytest.raises(ValueError, match="dilate_scale"):
        ResNet18Dilated(width=8, dilate_scale=4)
    with pytest.raises(ValueError, match="sigmoid"):
        ResNet18Dilated(width=8, activation="softplus")


@pytest.fixture(scope="module")
def torchvision_resnet18(tmp_path_factory):
    torch.manual_seed(1)
    resnet = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(resnet.state_dict(), path)
    return resnet, str(path)


def test_loads_torchvision_imagenet_state_dict(torchvision_resnet18):
    resnet, path = torchvision_resnet18
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = torch.nn.Sequential(*list(resnet.children())[:-1])(images).flatten(1)  # (2, 512)
        ground = ResNet18Ground(width=64, weights=path).eval()
        torch.testing.assert_close(ground(images), expected)
        frames = images[:, :, None]  # T = 1
        torch.testing.assert_close(ground.forward_multiframe(frames), expected)
        dilated = ResNet18Dilated(width=64, weights=path)
    torch.testing.assert_close(dilated.features[4][0].conv1.weight, resnet.layer1[0].conv1.weight)
    torch.testing.assert_close(
        dilated.features[7][1].bn2.running_var, resnet.layer4[1].bn2.running_var
    )
    assert dilated.features[7][1].conv2.dilation == (2, 2)


def test_load_errors(torchvision_resnet18, tmp_path):
    _, path = torchvision_resnet18
    # A local file may hold any width (the demo's pretrained trunks); a width-64 file into a
    # width-8 net is a shape mismatch that names the layers, and torchvision's own weights need 64.
    with pytest.raises(ValueError, match="shape mismatches"):
        ResNet18Ground(width=8, weights=path)
    with pytest.raises(ValueError, match="width 64"):
        load_imagenet(ResNet18(8), "imagenet")
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_imagenet(ResNet18(64), str(tmp_path / "nowhere.pth"))
    state = torch.load(path, weights_only=True)
    state["layer2.0.conv1.weight"] = torch.zeros(1, 1, 3, 3)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(ValueError, match="layer2.0.conv1.weight"):
        load_imagenet(ResNet18(64), str(bad))


def test_builders_say_nothing_about_weights_a_checkpoint_may_replace(caplog):
    """Which weights the ResNets hold is said once they are loaded (training.log_visual_weights)."""
    with caplog.at_level(logging.DEBUG):
        build_nets(parse_args(TINY), ["frame_ground", "frame", "classifier"])
    assert not caplog.records


# ---------------------------------------------------------------------------------------- heads
def test_grounding_head_shapes_init_and_class_convention():
    head = GroundingHead(audio_dim=16, visual_dim=24, hidden=(12, 6))
    assert abs(head.fc1.weight.std().item() - 1e-4) < 3e-5
    audio, visual = torch.randn(2, 4, 16), torch.randn(2, 4, 24)
    logits = head(audio, visual)
    assert logits.shape == (2, 4, 2)
    x = F.relu(head.fc2(F.relu(head.fc1(torch.cat([audio, visual], -1)))))
    torch.testing.assert_close(logits, 2 * head.fc3(x))
    # One audio feature against N objects broadcasts.
    torch.testing.assert_close(
        head(audio[:, :1], visual), head(audio[:, :1].expand(-1, 4, -1), visual)
    )
    assert SOUNDING == 0
    torch.testing.assert_close(
        sounding_probability(torch.tensor([[3.0, 1.0]])),
        torch.softmax(torch.tensor([[3.0, 1.0]]), -1)[:, 0],
    )


def test_inner_prod_matches_loop():
    synth = InnerProd(fc_dim=5)
    with torch.no_grad():
        synth.scale.uniform_(0.5, 2.0)
        synth.bias.fill_(0.3)
    feat_img, feat_sound = torch.randn(2, 3, 5), torch.randn(2, 5, 4, 6)
    masks = synth(feat_img, feat_sound)
    assert masks.shape == (2, 3, 1, 4, 6)
    for b in range(2):
        for n in range(3):
            expected = (
                sum(feat_img[b, n, k] * synth.scale[k] * feat_sound[b, k] for k in range(5))
                + synth.bias
            )
            torch.testing.assert_close(masks[b, n, 0], expected)
    single = synth(feat_img[:, 1], feat_sound)
    assert single.shape == (2, 1, 4, 6)
    torch.testing.assert_close(single, masks[:, 1])
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        synth(torch.randn(2, 3, 4), feat_sound)


# ---------------------------------------------------------------------------------------- losses
def test_weighted_l1_hand_computed():
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])  # (2, 1, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    weight = torch.tensor([[[[1.0, 1.0], [2.0, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    per_sample = WeightedL1Loss()(pred, target, weight)
    torch.testing.assert_close(per_sample, torch.tensor([(0 + 2 + 6 + 0) / 4, 1.0]))
    torch.testing.assert_close(
        WeightedL1Loss("mean")(pred, target, weight), torch.mean(weight * (pred - target).abs())
    )  # the reference's L1Loss
    torch.testing.assert_close(
        WeightedL2Loss()(pred, target, weight), torch.tensor([(4 + 18) / 4, 1.0])
    )
    torch.testing.assert_close(WeightedL1Loss()(pred, target), torch.tensor([2.25, 1.0]))


@pytest.mark.parametrize("loss_class", [WeightedL1Loss, WeightedL2Loss, WeightedBCELoss])
def test_losses_zero_at_target_and_object_axis(loss_class):
    target = torch.randint(0, 2, (2, 3, 1, 4, 5)).float()  # (B, N, 1, F, T)
    weight = torch.rand(2, 1, 4, 5) + 0.1  # (B, 1, F, T)
    loss = loss_class()(target, target, weight)
    assert loss.shape == (2, 3)
    torch.testing.assert_close(loss, torch.zeros(2, 3))
    pred = torch.rand(2, 3, 1, 4, 5).clamp(0.05, 0.95)
    per_object = loss_class()(pred, target, weight)
    torch.testing.assert_close(per_object[:, 1], loss_class()(pred[:, 1], target[:, 1], weight))
    torch.testing.assert_close(loss_class("mean")(pred, target, weight), per_object.mean())


def test_bce_matches_torch():
    pred, target, weight = (
        torch.rand(2, 1, 4, 5),
        torch.randint(0, 2, (2, 1, 4, 5)).float(),
        torch.rand(2, 1, 4, 5),
    )
    pred[0, 0, 0, 0] = 0.0  # log(0) is clamped at -100 as in torch
    torch.testing.assert_close(
        WeightedBCELoss("mean")(pred, target, weight),
        F.binary_cross_entropy(pred, target, weight=weight),
    )


def test_losses_reject_bad_shapes():
    loss = WeightedL1Loss()
    with pytest.raises(ValueError, match=r"\(2, 1, 4, 5\).*\(2, 1, 4, 6\)"):
        loss(torch.zeros(2, 1, 4, 5), torch.zeros(2, 1, 4, 6), torch.ones(2, 1, 4, 5))
    with pytest.raises(ValueError, match=r"\(2, 1, 3, 5\)"):
        loss(torch.zeros(2, 1, 4, 5), torch.zeros(2, 1, 4, 5), torch.ones(2, 1, 3, 5))
    with pytest.raises(ValueError):
        loss(torch.zeros(4, 5), torch.zeros(4, 5), None)
    with pytest.raises(ValueError, match="reduction"):
        WeightedL1Loss("sum")


# ---------------------------------------------------------------------------------------- builders
def test_build_nets_builds_each_net_by_name_from_the_options():
    args = parse_args([*TINY, "--unet_levels", "3", "--ngf", "2", "--num_channels", "4"])
    nets = build_nets(args, CLASSES)
    assert list(nets) == list(CLASSES)
    for name, net_class in CLASSES.items():
        assert type(nets[name]) is net_class, name
    assert (nets["sound"].levels, nets["synthesizer"].scale.shape) == (3, (4,))
    assert nets["classifier"].num_classes == len(CLASS_TO_ID)
    assert list(build_nets(args, ["sound", "frame"])) == ["sound", "frame"]
    with pytest.raises(ValueError, match=r"unknown nets \['nope'\], expected some of \["):
        build_nets(args, ["sound", "nope"])


def test_count_parameters():
    net = InnerProd(fc_dim=7)
    assert count_parameters(net) == 8
    net.scale.requires_grad_(False)
    assert count_parameters(net, trainable_only=True) == 1


def test_bce_finite_gradient_on_saturated_predictions():
    logits = torch.tensor([-200.0, 200.0, 0.0]).view(1, 1, 1, 3).requires_grad_()
    target = torch.tensor([1.0, 0.0, 1.0]).view(1, 1, 1, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = WeightedBCELoss("mean")(torch.sigmoid(logits), target, torch.ones(1, 1, 1, 3))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
