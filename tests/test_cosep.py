"""Co-Separation baseline: its two losses by hand, the stage learning, and a tiny run end to end."""

import json
import logging
import math

import pytest
import torch
from conftest import main_py
from test_reference_config import assert_trunk_is, fake_torch_home, resnet_key
from test_stages import fake_batch, fit, tiny_args

import checkpoints
import localization
from dataset.layout import CLASS_TO_ID
from models.classifier_net import SpectrogramClassifier
from models.criterion import WeightedBCELoss, WeightedL1Loss
from stages import CoSep, StageConfig, consistency_loss, coseparation_loss
from training import build_nets, frozen_modules, param_groups

logging.disable(logging.WARNING)


def test_coseparation_loss_is_zero_when_the_object_masks_sum_to_the_video_mask():
    g = torch.Generator().manual_seed(0)
    gt = torch.zeros(2, 4, 1, 3, 5)
    gt[:, 0::2] = torch.rand(2, 2, 1, 3, 5, generator=g)  # objects 1 and 3 silent: no true mask
    share = torch.rand(2, 2, 1, 3, 5, generator=g)  # any split of each video's mask
    masks = torch.stack([gt[:, 0] * share[:, 0], gt[:, 0] * (1 - share[:, 0]),
                         gt[:, 2] * share[:, 1], gt[:, 2] * (1 - share[:, 1])], 1)  # fmt: skip
    weight = torch.rand(2, 1, 3, 5, generator=g)
    assert coseparation_loss(masks, gt, weight, WeightedL1Loss()) == pytest.approx(0, abs=1e-7)


def test_coseparation_loss_by_hand():
    """Weight 1: video A's masks sum to 0.3 against 0.5 (error 0.2), video B's to 1.0 against 0.4
    (error 0.6): the mean over the two videos is 0.4. The objects' own errors never count."""
    gt = torch.zeros(1, 4, 1, 2, 2)
    gt[:, 0], gt[:, 2] = 0.5, 0.4
    masks = torch.tensor([0.1, 0.2, 0.9, 0.1]).view(1, 4, 1, 1, 1).expand(-1, -1, -1, 2, 2)
    loss = coseparation_loss(masks, gt, torch.ones(1, 1, 2, 2), WeightedL1Loss())
    assert float(loss) == pytest.approx(0.4)


def test_coseparation_bce_clips_the_summed_masks_to_one():
    gt = torch.zeros(1, 4, 1, 2, 2)
    gt[:, 0] = gt[:, 2] = 1.0
    masks = torch.full((1, 4, 1, 2, 2), 0.9)  # each video's masks sum to 1.8
    loss = coseparation_loss(masks, gt, torch.ones(1, 1, 2, 2), WeightedBCELoss())
    assert float(loss) == pytest.approx(0, abs=1e-6)  # clipped to 1, its target: no error


def test_consistency_loss_by_hand():
    classes = len(CLASS_TO_ID)
    ids = torch.tensor([[0, 3, 5, 7]])
    assert float(consistency_loss(torch.zeros(1, 4, classes), ids)) == pytest.approx(
        math.log(classes)
    )
    sure = torch.nn.functional.one_hot(ids, classes).float() * 50
    assert float(consistency_loss(sure, ids)) == pytest.approx(0, abs=1e-6)
    wrong = torch.nn.functional.one_hot((ids + 1) % classes, classes).float() * 50
    assert float(consistency_loss(wrong, ids)) == pytest.approx(50, rel=1e-4)


def test_classifier_shapes_and_one_channel_stem():
    net = SpectrogramClassifier(len(CLASS_TO_ID), width=8)
    assert net.features[0].in_channels == 1
    assert net(torch.randn(6, 1, 32, 32)).shape == (6, len(CLASS_TO_ID))


def test_classifier_starts_from_the_visual_weights_but_its_one_channel_stem(request):
    """As CoSep's from ImageNet's: every layer but the replaced first convolution."""
    _, state = request.getfixturevalue(fake_torch_home.__name__)
    net = SpectrogramClassifier(len(CLASS_TO_ID), weights="imagenet")
    trunk = {k: v for k, v in net.features.state_dict().items() if not k.startswith("0.")}
    assert_trunk_is(trunk, state, resnet_key)
    assert net.features[0].weight.shape == (64, 1, 7, 7)


def _cosep(*extra):
    args = tiny_args("cosep", *extra)
    nets = build_nets(args)
    return CoSep(nets, StageConfig.from_args(args), frozen=frozen_modules(nets, args)), nets, args


def _labelled_batch(args, seed=0):
    batch = fake_batch(args, seed=seed)
    batch["class_ids"] = torch.tensor([[2, 5, 9, 7]]).expand(len(batch["mix"]), -1)
    return batch


@pytest.mark.slow  # trains the stage for a few dozen steps
def test_cosep_losses_fall_when_training():
    torch.manual_seed(0)
    model, nets, args = _cosep(
        "--lr_sound", "1e-3", "--lr_synthesizer", "1e-3", "--lr_frame", "1e-3",
        "--lr_classifier", "1e-3",
    )  # fmt: skip
    assert args.classifier_weight == 0.05  # CoSep's published weight, the demo's too
    optimizer = torch.optim.Adam(param_groups(nets, args))
    batch = _labelled_batch(args)
    history, out = fit(model, batch, optimizer, steps=20)
    first, last = history[0], history[-1]
    assert last["consistency"] < 0.5 * first["consistency"], history
    assert last["cosep"] < 0.8 * first["cosep"], history
    assert out["pred_masks"].shape == (4, 4, 1, args.warp_bins, 32)
    assert set(out["stats"]) == {"class_acc", "class_acc_sounding"}


def test_consistency_gradient_reaches_the_separation_nets():
    """The classifier judges the separated spectrograms: its loss also moves the masks."""
    model, nets, args = _cosep()
    model.train()
    losses, _ = model(_labelled_batch(args))
    losses["consistency"].backward()
    for name in ("sound", "frame", "synthesizer", "classifier"):
        grads = [p.grad for p in nets[name].parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name


def test_cosep_trains_the_frame_head_not_the_frozen_trunk():
    """With pretrained weights the visual trunk stays frozen, as in the CCoL stages; the frame
    net's head, the U-Net, the synthesizer and the classifier learn."""
    model, nets, args = _cosep("--no-train_resnets")
    assert not any(p.requires_grad for p in nets["frame"].features.parameters())
    groups = {g["name"]: g["lr"] for g in param_groups(nets, args)}
    assert groups == {
        "sound": args.lr_sound,
        "frame": args.lr_frame,
        "synthesizer": args.lr_synthesizer,
        "classifier": args.lr_classifier,
    }


def test_reference_profile_is_cosep_published_setup():
    args = tiny_args("cosep", "--profile", "reference", "--weights_imagenet", "none")
    assert (args.classifier_weight, args.lr_classifier, args.lr_sound, args.lr_frame) == (
        0.05,
        1e-4,
        1e-4,
        1e-5,
    )
    assert (args.optimizer, args.weight_decay, args.batch_size, args.num_mix) == (
        "adam",
        1e-4,
        80,
        4,
    )
    assert (args.num_epoch, args.lr_steps, args.loss, args.spec_input) == (
        150,
        [64, 128],
        "l1",
        "log",
    )
    assert args.id == "MUSIC_CoSep" and args.init_from == ""


def test_cosep_end_to_end(tiny_data_root, tmp_path):
    """Trains, evaluates (also under the silent-object protocol) and writes its pages."""
    common = dict(ckpt=tmp_path, data_root=tiny_data_root)
    main_py("--stage", "cosep", "--id", "cosep", "--num_epoch", "2", **common)
    run = tmp_path / "cosep"
    history = json.loads((run / "history.json").read_text())
    assert len(history["train"]) == 2
    assert {"cosep", "consistency", "class_acc"} <= set(history["train"][-1])
    assert "classifier" in checkpoints.load(str(run / "checkpoint_best.pt"))["nets"]
    main_py("--mode", "eval", "--id", "cosep", "--num_val", "-1", **common)
    main_py("--mode", "eval", "--id", "cosep", "--num_val", "-1", "--eval_silent", **common)
    result = json.loads((run / "results.json").read_text())
    assert result["stage"] == "cosep" and result["num_mixtures"] == 8
    assert result["sdr"] is not None and result["grounding_acc"] is None
    for key in localization.LOC_KEYS:  # from its separation maps
        measured = result[key] is not None or key == "loc_silent_energy"
        assert measured and 0 <= (result[key] or 0) <= 1, (key, result)
    rows = (run / "eval_test.csv").read_text().splitlines()
    assert len(rows) == 1 + 8 * 2  # the 2 sounding sources of each mixture
    silent = json.loads((run / "results_silent.json").read_text())
    # No grounding: the silent objects' masks are scored as separated, nothing is gated off.
    assert silent["silent_gate"] == "none" and silent["sounding_gated_off"] is None
    assert -100 <= silent["silent_leakage_db"] <= 0
    assert silent["sdr"] == pytest.approx(result["sdr"])
    page = (run / "visualization" / "test_silent" / "index.html").read_text()
    assert "no grounding gate" in page and "silent-slot leakage" in page
    page = (run / "visualization" / "test" / "index.html").read_text()
    for card in ("separation map", "predicted mask", "leaked estimate (silent object)", "<audio"):
        assert card in page, card
    assert "cosep" in (tmp_path / "index.html").read_text()
