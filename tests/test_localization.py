"""Sounding maps (the nets' pixel-wise forwards, the stage's maps), the localization scores, and the
loader's whole frames with true boxes."""

import json
import logging

import numpy as np
import pytest
import torch
from test_stages import tiny_stage

import localization
from dataset import DataError, MUSICMixDataset, normalize_frames
from dataset.truth import VideoTruth
from models.grounding_net import GroundingHead
from models.synthesizer_net import InnerProd
from models.vision_net import ResNet18Dilated, ResNet18Ground
from sounding_maps import separated_energy, sounding_maps

logging.disable(logging.WARNING)


def _strides(net):
    return [(m.stride, m.dilation, m.padding) for m in net.modules() if hasattr(m, "dilation")]


def test_ground_pixelwise_runs_at_stride_8_and_restores_the_net():
    torch.manual_seed(0)
    net = ResNet18Ground(width=8).eval()
    before = _strides(net)
    frames = torch.randn(2, 3, 3, 3, 64, 96)  # (B, N, 3, T, H, W)
    feat = net.forward_pixelwise(frames)
    assert feat.shape == (2, 3, 64, 8, 12)
    assert _strides(net) == before  # the trunk is back at stride 32 for the next forward
    # Max over frames of each frame's map, as forward_multiframe pools.
    per_frame = torch.stack([net.forward_pixelwise(frames[:, :, :, t : t + 1]) for t in range(3)])
    torch.testing.assert_close(feat, per_frame.amax(0))


def test_dilated_pixelwise_is_the_dilate_scale_8_net():
    """The stride-8 view of a dilate_scale-16 net is SoP's dilate_scale-8 net with its weights."""
    torch.manual_seed(0)
    net16 = ResNet18Dilated(width=8, fc_dim=6, dilate_scale=16).eval()
    net8 = ResNet18Dilated(width=8, fc_dim=6, dilate_scale=8).eval()
    net8.load_state_dict(net16.state_dict())
    frames = torch.randn(2, 3, 1, 40, 48)
    expected = torch.sigmoid(net8.forward_features_map(frames)[:, :, 0])  # (B, K, h, w)
    torch.testing.assert_close(net16.forward_pixelwise(frames), expected)
    assert net16.forward_features_map(frames).shape[-2:] == (3, 3)  # still stride 16


def test_heads_pixelwise_match_their_forward_at_each_location():
    torch.manual_seed(0)
    head = GroundingHead(16, 8, hidden=(12, 4), init_std=0)
    audio, feat_map = torch.randn(2, 16), torch.randn(2, 8, 3, 5)
    logits = head.forward_pixelwise(audio, feat_map)  # (B, h, w, 2)
    assert logits.shape == (2, 3, 5, 2)
    torch.testing.assert_close(logits[1, 2, 4], head(audio[1], feat_map[1, :, 2, 4]))
    synth = InnerProd(8)
    sound = torch.randn(2, 8, 10, 7)
    masks = synth.forward_pixelwise(feat_map, sound)  # (B, h, w, 1, F, T)
    assert masks.shape == (2, 3, 5, 1, 10, 7)
    torch.testing.assert_close(masks[0, 1, 3], synth(feat_map[0:1, :, 1, 3], sound[0:1])[0])


@pytest.mark.parametrize(
    "stage,names", [("ccol", {"grounding", "separation"}), ("sop", {"separation"})]
)
def test_stage_maps_one_per_net(stage, names):
    torch.manual_seed(0)
    model, args = tiny_stage(stage)
    model.eval()
    B, N, L = 2, args.num_mix, args.aud_len
    spec = model.frontend.analyse(0.1 * torch.randn(B, L))  # maps need the mixture alone
    whole = torch.randint(
        0, 255, (B, N, 3, 1, 2 * args.img_size, 3 * args.img_size), dtype=torch.uint8
    )
    with torch.no_grad():
        maps = sounding_maps(model.nets, model.config, spec, whole)
    assert set(maps) == names
    cells = (2 * args.img_size // 8, 3 * args.img_size // 8)
    for m in maps.values():
        assert m.shape == (B, N, *cells) and torch.isfinite(m).all() and (m >= 0).all()
    if "grounding" in maps:
        assert (maps["grounding"] <= 1).all()
        # each location is the head on that location's feature against the mixture's audio
        with torch.no_grad():
            feat = model.nets["frame_ground"].forward_pixelwise(normalize_frames(whole))
            audio = model.grounding_audio(spec["log_mag_mix"])  # (B, Da)
            logits = model.nets["grounding"](audio[1], feat[1, 2, :, 0, 1])
        torch.testing.assert_close(maps["grounding"][1, 2, 0, 1], logits.softmax(-1)[0])


def test_frame_scores_by_hand():
    truth = np.array(
        [[2, 2, 6, 6, 1], [10, 2, 14, 6, 0], [np.nan] * 5], np.float32
    )  # sounding 4x4 at (2, 2), silent 4x4 at (10, 2)
    heat = np.zeros((8, 16))
    heat[2:6, 2:6] = 1.0  # all on the sounding object
    scores = localization.frame_scores(heat, truth)
    assert scores == {"pointing": 1.0, "ciou": 1.0, "silent_energy": 0.0}
    heat[2:6, 10:14] = 3.0  # the peak moves to the silent object, which holds 3/4 of the mass
    scores = localization.frame_scores(heat, truth)
    assert scores["pointing"] == 0.0 and scores["silent_energy"] == pytest.approx(0.75)
    # cut at half the range: only the silent box is predicted -> |P & G| = 0
    assert scores["ciou"] == 0.0
    heat = np.ones((8, 16))  # flat: P is the whole frame, cIoU = |G| / (|G| + rest)
    assert localization.frame_scores(heat, truth)["ciou"] == pytest.approx(16 / 128)
    assert localization.frame_scores(heat, np.full((2, 5), np.nan)) == {}  # no truth, no score


def test_summarize_counts_only_defined_frames():
    frames = [
        {"pointing": 1.0, "ciou": 0.82, "silent_energy": 0.1},
        {"pointing": 0.0, "ciou": 0.32},
        {},
    ]
    out = localization.summarize(frames)
    assert out["loc_pointing_acc"] == 0.5 and out["loc_ciou"] == 0.5
    assert out["loc_silent_energy"] == pytest.approx(0.1) and out["loc_frames"] == 2
    # success rate 1 up to t = 0.3, 1/2 from 0.35 to 0.8, 0 after (21 thresholds, trapezoid)
    assert out["loc_auc"] == pytest.approx(0.3 + 0.75 * 0.05 + 0.5 * 0.45 + 0.25 * 0.05)
    assert localization.summarize([]) == {**dict.fromkeys(localization.LOC_KEYS), "loc_frames": 0}


def test_box_mask_uses_pixel_centres():
    mask = localization.box_mask(np.array([[0.6, 0, 2.4, 1]]), (2, 4))
    assert mask.tolist() == [[False, True, False, False], [False, False, False, False]]


# -------------------------------------------------------------------------------- data


def _one_video_root(tmp_path, annotation=None, gt_rows=None):
    (tmp_path / "frames" / "cello" / "v.mp4").mkdir(parents=True)
    if annotation is not None:
        (tmp_path / "annotations" / "cello").mkdir(parents=True)
        (tmp_path / "annotations" / "cello" / "v.json").write_text(json.dumps(annotation))
    if gt_rows is not None:
        (tmp_path / "gt_boxes" / "cello").mkdir(parents=True)
        np.save(tmp_path / "gt_boxes" / "cello" / "v.mp4.npy", np.array(gt_rows, np.float32))
    return str(tmp_path)


ANNOTATION = {
    "width": 200,
    "height": 100,
    "fps": 2,
    "num_video_frames": 4,
    "objects": [
        {"class": "cello", "sounding": True, "boxes": [[10, 10, 50, 90]] * 4},
        {"class": "flute", "sounding": False, "boxes": [None, [150, 20, 250, 60], None, None]},
    ],
}


def test_truth_from_annotations_is_scaled_clipped_and_per_frame(tmp_path):
    truth = VideoTruth(_one_video_root(tmp_path, ANNOTATION), "/cello/v.mp4", (100, 50))
    assert truth.available
    # extracted frame 1 (t = 0.5 s) shows video frame 1 at 2 fps: both objects, flute clipped
    np.testing.assert_allclose(truth.boxes(1), [[5, 5, 25, 45, 1], [75, 10, 100, 30, 0]])
    np.testing.assert_allclose(truth.boxes(2), [[5, 5, 25, 45, 1]])  # video frame 3: no flute


def test_truth_prefers_gt_boxes_and_checks_their_scores(tmp_path):
    rows = [[1, 3, 1, 0, 0, 10, 10], [1, 7, 0, 20, 0, 30, 10], [2, 3, 1, 5, 5, 8, 8]]
    truth = VideoTruth(_one_video_root(tmp_path, ANNOTATION, rows), "/cello/v.mp4", (100, 50))
    np.testing.assert_allclose(truth.boxes(1), [[0, 0, 10, 10, 1], [20, 0, 30, 10, 0]])
    bad = tmp_path / "gt_boxes" / "cello" / "v.mp4.npy"
    np.save(bad, np.array([[1, 3, 0.7, 0, 0, 10, 10]], np.float32))
    with pytest.raises(DataError, match="score") as err:
        VideoTruth(str(tmp_path), "/cello/v.mp4", (100, 50))
    assert str(bad) in str(err.value)
    assert not VideoTruth(str(tmp_path / "none"), "/cello/v.mp4", (100, 50)).available


def test_truth_rejects_an_annotation_without_a_box_per_frame(tmp_path):
    broken = {**ANNOTATION, "objects": [{"sounding": True, "boxes": [[0, 0, 5, 5]]}]}
    with pytest.raises(DataError, match="one box") as err:
        VideoTruth(_one_video_root(tmp_path, broken), "/cello/v.mp4", (100, 50))
    assert "v.json" in str(err.value)


def test_loader_whole_frames_and_truth(tiny_data_root):
    root = str(tiny_data_root)
    ds = MUSICMixDataset(
        root,
        f"{root}/test.csv",
        "test",
        sep_list=f"{root}/test_sep.csv",
        img_size=16,
        num_frames=1,
        aud_len=4096,
        map_size=32,
    )
    sample = ds[0]
    assert sample["whole_frames"].shape == (4, 3, 1, 32, 43)
    assert sample["whole_frames"].dtype == torch.uint8
    truth = sample["true_boxes"]  # (N, K, 5)
    present = torch.isfinite(truth).all(-1)
    assert present[0].any() and present[2].any()
    # each sounding video shows its sounding instrument; partners are silent in the mixture
    assert (truth[0][present[0]][:, 4] == 1).any() and (truth[2][present[2]][:, 4] == 1).any()
    assert (truth[1][present[1]][:, 4] == 0).all() and (truth[3][present[3]][:, 4] == 0).all()
    boxes = truth[present]
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 43).all() and (boxes[:, 3] <= 32).all()
    # the detection box, in map pixels, overlaps a true box of the same frame
    det = sample["map_boxes"][0]
    true = truth[0][present[0]]
    overlap_w = torch.minimum(det[2], true[:, 2]) - torch.maximum(det[0], true[:, 0])
    overlap_h = torch.minimum(det[3], true[:, 3]) - torch.maximum(det[1], true[:, 1])
    assert ((overlap_w > 0) & (overlap_h > 0)).any()
    train = MUSICMixDataset(root, f"{root}/train.csv", "train", img_size=16, map_size=32)
    assert "whole_frames" not in train[0]  # training never pays for maps


def test_window_grounding_map_follows_the_object():
    """--ground_map window: a box-sized window at every location, scored as a crop. Moving the
    picture by one cell (8 px) moves the map by one cell."""
    torch.manual_seed(0)
    model, args = tiny_stage("grd")
    model.eval()
    assert model.config.ground_map == "window"  # the demo profile's
    spec = model.frontend.analyse(0.1 * torch.randn(1, args.aud_len))
    H, W = 48, 64
    frame = torch.zeros(1, 1, 3, 1, H, W + 8, dtype=torch.uint8)
    frame[..., 12:36, 16:40] = torch.randint(0, 255, (3, 1, 24, 24), dtype=torch.uint8)
    boxes = torch.tensor([[[16.0, 12.0, 40.0, 36.0]]])  # (B, N, 4): the patch
    with torch.no_grad():
        here = sounding_maps(model.nets, model.config, spec, frame[..., :W], boxes)
        moved = sounding_maps(model.nets, model.config, spec, frame[..., 8 : W + 8], boxes)
    here, moved = here["grounding"][0, 0], moved["grounding"][0, 0]
    assert here.shape == (H // 8, W // 8)
    # the picture moved 8 px left: what cell j saw, cell j - 1 sees now (windows inside the frame)
    torch.testing.assert_close(moved[:, 1:5], here[:, 2:6], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(here[:, 2:6], here[:, 3:7])  # the map does vary with the window


def test_separation_map_is_the_energy_through_each_locations_mask_in_any_chunks():
    torch.manual_seed(0)
    model, args = tiny_stage("sop")
    model.eval()
    B, N, C, h, w = 2, 2, args.num_channels, 3, 4
    feat = torch.rand(B, N, C, h, w)
    sound_feat = torch.randn(B, C, 16, 9)
    mag = torch.rand(B, 1, 16, 9)
    with torch.no_grad():
        whole = separated_energy(model.nets, feat, sound_feat, mag)
        row_by_row = separated_energy(model.nets, feat, sound_feat, mag, max_values=1)
        mask = torch.sigmoid(model.nets["synthesizer"](feat[1, 0, :, 2, 3][None], sound_feat[1:]))
    torch.testing.assert_close(row_by_row, whole)
    torch.testing.assert_close(whole[1, 0, 2, 3], (mask * mag[1]).square().sum())
