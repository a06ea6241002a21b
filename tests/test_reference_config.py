"""The paper's configuration: stage tables, global batch, chaining, ImageNet weights through
torchvision's cache, per-object BatchNorm batches, every option documented, and MUSIC-21 classes."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from conftest import REPO, TINY_ARGS, TINY_RUN, main_py, run

import checkpoints
from arguments import (
    PROFILE_STAGE_DEFAULTS,
    STAGE_DEFAULTS,
    TINY_SIZES,
    Switch,
    as_flags,
    build_parser,
    parse_args,
)
from dataset import layout
from dataset.index import read_index
from models.vision_net import IMAGENET_WEIGHTS, ResNet18Dilated, ResNet18Ground, imagenet_cache_path
from stages import STAGES, StageConfig
from training import build_nets, frozen_modules

# The reference profile at tiny sizes: the ResNets keep the width ImageNet weights need (64).
TINY_REFERENCE = [
    *as_flags({key: value for key, value in TINY_SIZES.items() if key != "vis_width"}),
    *TINY_RUN,
    "--num_val",
    "4",
]


# ----------------------------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------------------------
def test_every_option_has_help_showing_its_default_and_every_boolean_is_a_switch():
    for stage in STAGE_DEFAULTS:
        parser = build_parser(stage, "reference")
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{action.dest} has no help text"
            shown = parser.formatter_class(prog="x")._get_help_string(action)
            assert "%(default)" in shown, action.dest
            # One style of boolean option: --x / --no-x (no store_true, no 0/1 ints).
            boolean = isinstance(action.default, bool) or action.dest == "train_resnets"
            assert boolean == isinstance(action, Switch), action.dest
    col = build_parser("col", "reference").format_help()
    assert "(default: 1e-05)" in col and "ccol 0.0001" in col


@pytest.mark.parametrize("stage", list(STAGE_DEFAULTS))
@pytest.mark.parametrize("profile", ["reference", "demo"])
def test_stage_tables_set_the_defaults_and_the_command_line_wins(stage, profile):
    args = parse_args(["--stage", stage, "--profile", profile])
    expected = {**STAGE_DEFAULTS[stage], **PROFILE_STAGE_DEFAULTS[profile].get(stage, {})}
    for key, value in expected.items():
        if key != "batch_size" or profile == "reference":
            assert getattr(args, key) == value, key
    assert parse_args(["--stage", stage, "--profile", profile, "--num_epoch", "7"]).num_epoch == 7
    ids = {"grd": "MUSIC_GRD", "col": "MUSIC_COL", "ccol": "MUSIC_CCoL", "sop": "MUSIC_SoP",
           "cosep": "MUSIC_CoSep"}  # fmt: skip
    assert args.id == ids[stage]


def test_paper_values():
    grd, col, ccol = (parse_args(["--stage", s]) for s in ("grd", "col", "ccol"))
    assert (grd.num_epoch, grd.lr_steps, grd.lr_sound_ground) == (40, [20, 30], 1e-4)
    assert (col.num_epoch, col.lr_steps) == (60, [30, 50])
    assert (col.lr_grounding, col.lr_sound) == (1e-5, 1e-4)
    assert (col.solo_grounding_weight, col.mix_grounding_weight) == (0.25, 0.25)
    assert (ccol.solo_grounding_weight, ccol.mix_grounding_weight) == (0.5, 0.25)
    assert ccol.lr_grounding == 1e-4
    for args in (grd, col, ccol):
        assert (args.batch_size, args.weights_imagenet, args.train_resnets) == (
            48,
            "imagenet",
            False,
        )
    assert parse_args(["--stage", "ccol", "--profile", "demo"]).weights_imagenet == "none"


def test_global_batch_whatever_the_gpu_count(monkeypatch):
    assert parse_args([]).batch_size_per_gpu == 48
    assert parse_args(["--num_gpus", "4"]).batch_size_per_gpu == 12
    monkeypatch.setenv("WORLD_SIZE", "4")  # torchrun: one process per GPU
    assert parse_args([]).batch_size_per_gpu == 12
    with pytest.raises(SystemExit, match="under torchrun"):
        parse_args(["--num_gpus", "4"])
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(SystemExit, match="split evenly over 5 GPUs"):
        parse_args(["--num_gpus", "5"])


def test_init_from_previous_stage_latest_by_default():
    col = parse_args(["--stage", "col", "--ckpt", "runs"])
    assert col.init_from == os.path.join("runs", "MUSIC_GRD")
    assert parse_args(["--stage", "ccol"]).init_from == os.path.join("ckpt", "MUSIC_COL")
    assert parse_args(["--stage", "grd"]).init_from == ""
    assert parse_args(["--init_from", "none"]).init_from == ""
    assert parse_args([]).init_checkpoint == "latest"


# ----------------------------------------------------------------------------------------------
# ImageNet weights
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def fake_torch_home(tmp_path, monkeypatch):
    """A TORCH_HOME whose hub cache holds a stand-in for torchvision's ImageNet ResNet-18 file."""
    torch.manual_seed(3)
    state = torchvision.models.resnet18(weights=None).state_dict()
    for key, value in state.items():  # BatchNorm statistics recognisable too, and still valid
        if key.endswith("running_mean"):
            value.normal_(0, 0.1)
        elif key.endswith("running_var"):
            value.uniform_(0.5, 1.5)
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    path = imagenet_cache_path()
    assert path == str(home / "hub" / "checkpoints" / os.path.basename(IMAGENET_WEIGHTS.url))
    os.makedirs(os.path.dirname(path))
    torch.save(state, path)
    return home, state


def assert_trunk_is(trunk_state: dict, state: dict, prefix_map) -> None:
    for key, value in trunk_state.items():
        torch.testing.assert_close(value, state[prefix_map(key)], msg=key)


def resnet_key(features_key: str) -> str:
    """features.<i>.rest -> torchvision's name (the trunk's children in torchvision's order)."""
    names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    index, rest = features_key.split(".", 1)
    return f"{names[int(index)]}.{rest}"


def test_resnets_carry_the_cached_imagenet_weights_frozen(fake_torch_home):
    _, state = fake_torch_home
    args = parse_args(["--stage", "col", *TINY_REFERENCE])
    nets = build_nets(args)
    stage = STAGES["col"](
        nets, StageConfig.from_args(args), frozen=frozen_modules(nets, args)
    ).train()
    assert_trunk_is(nets["frame_ground"].features.state_dict(), state, resnet_key)
    assert_trunk_is(nets["frame"].features.state_dict(), state, resnet_key)
    for net in (nets["frame_ground"], nets["frame"].features):
        assert not any(p.requires_grad for p in net.parameters())
        assert not any(m.training for m in net.modules())
    assert stage.nets["frame"].fc.weight.requires_grad


def test_offline_without_cache_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))

    def offline(url, *args, **kwargs):  # nothing is downloaded in tests
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(FileNotFoundError) as err:
        ResNet18Ground(weights="imagenet")
    message = str(err.value)
    for part in (
        "resnet18-f37072fd.pth",
        str(tmp_path / "empty" / "hub" / "checkpoints"),
        "--weights_imagenet none",
    ):
        assert part in message


# ----------------------------------------------------------------------------------------------
# --reference_bn_drift: each object its own BatchNorm batch
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make_net", [lambda: ResNet18Ground(width=8), lambda: ResNet18Dilated(width=8, fc_dim=4)]
)
def test_objects_run_separately_through_train_mode_batchnorm(make_net):
    torch.manual_seed(0)
    net, reference = make_net(), make_net()
    reference.load_state_dict(net.state_dict())
    frames = torch.randn(2, 4, 3, 2, 32, 32)  # (B, N, 3, T, H, W)
    per_object = torch.stack([reference.forward_multiframe(frames[:, n]) for n in range(4)], 1)
    torch.testing.assert_close(net.forward_objects(frames, separately=True), per_object)
    bn = net.features[1]
    assert int(bn.num_batches_tracked) == 4  # one update per object
    torch.testing.assert_close(bn.running_mean, reference.features[1].running_mean)
    together = net.forward_objects(frames)  # default: one batch of all objects
    assert int(bn.num_batches_tracked) == 5
    assert not torch.allclose(together, per_object)
    net.eval()  # running statistics: no difference
    torch.testing.assert_close(
        net.forward_objects(frames, separately=True), net.forward_objects(frames)
    )


def test_reference_bn_drift_runs_frozen_batchnorm_in_train_mode_per_object(fake_torch_home):
    args = parse_args(["--stage", "grd", *TINY_REFERENCE, "--reference_bn_drift"])
    nets = build_nets(args)
    stage = STAGES["grd"](
        nets, StageConfig.from_args(args), frozen=frozen_modules(nets, args)
    ).train()
    calls = []
    bn1 = nets["frame_ground"].features[1]
    bn1.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    frames = torch.randint(0, 255, (3, 4, 3, 2, 32, 32), dtype=torch.uint8)
    spec = {"log_mags": torch.rand(3, 4, 1, 32, 16), "log_mag_mix": torch.rand(3, 1, 32, 16)}
    stage.grounding_grid(spec, frames.float(), with_mixture=False)
    assert calls == [3 * 2] * 4  # B x T images, once per object


# ----------------------------------------------------------------------------------------------
# The scripts: train_grd.sh on frozen ImageNet features; train_col.sh is main.py --stage col
# ----------------------------------------------------------------------------------------------
def test_train_grd_script_uses_frozen_imagenet_and_train_col_script_is_main_py(
    fake_torch_home, tiny_data_root, tmp_path, monkeypatch
):
    _, state = fake_torch_home  # TORCH_HOME is set for the subprocesses too
    ckpt = tmp_path / "ckpt"
    monkeypatch.setenv("DATA_ROOT", str(tiny_data_root))
    monkeypatch.setenv("CKPT", str(ckpt))
    run(["bash", "scripts/train_grd.sh", *TINY_REFERENCE, "--num_epoch", "1"])
    grd = ckpt / "MUSIC_GRD"
    assert "ResNet-18 features: imagenet weights, frozen" in (grd / "train.log").read_text()
    trained = checkpoints.load(str(grd / "checkpoint_latest.pt"))["nets"]["frame_ground"]
    assert_trunk_is({k[len("features.") :]: v for k, v in trained.items()}, state, resnet_key)

    # Both runs start from the GRD run's latest weights; no epoch is needed to compare the configs.
    extra = [*TINY_REFERENCE, "--num_epoch", "0"]
    run([sys.executable, "main.py", "--stage", "col", "--ckpt", str(ckpt), *extra])  # env DATA_ROOT
    monkeypatch.setenv("ID", "from_script")
    run(["bash", "scripts/train_col.sh", *extra])
    by_main = json.loads((ckpt / "MUSIC_COL" / "args.json").read_text())
    by_script = json.loads((ckpt / "from_script" / "args.json").read_text())
    assert by_main.pop("id") == "MUSIC_COL" and by_script.pop("id") == "from_script"
    assert by_main.pop("run_dir") != by_script.pop("run_dir")
    assert by_main == by_script
    assert by_main["init_from"] == str(grd) and by_main["lr_grounding"] == 1e-5
    assert "initialised" in (ckpt / "from_script" / "train.log").read_text()
    assert "checkpoint_latest.pt" in (ckpt / "from_script" / "train.log").read_text()


# ----------------------------------------------------------------------------------------------
# MUSIC-21
# ----------------------------------------------------------------------------------------------
def test_one_class_table_covers_music21():
    with open(os.path.join(REPO, "data", "music_lists", "MUSIC21_solo_videos.json")) as f:
        music21 = set(json.load(f)["videos"])
    assert set(layout.CLASS_TO_ID) == music21 and len(set(layout.CLASS_TO_ID.values())) == 21
    assert [layout.CLASS_TO_ID[c] for c in layout.MUSIC_CLASSES] == list(range(11))  # ids kept


def rename_class(root, old: str, new: str) -> None:
    """Every trace of class `old` in a synthetic root becomes `new` (folders and annotations)."""
    for kind in (layout.VIDEOS, layout.FRAMES, layout.AUDIO, layout.ANNOTATIONS):
        if os.path.isdir(os.path.join(root, kind, old)):
            os.rename(os.path.join(root, kind, old), os.path.join(root, kind, new))
    for folder, _, files in os.walk(os.path.join(root, layout.ANNOTATIONS)):
        for name in files:
            path = os.path.join(folder, name)
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write(text.replace(f'"{old}"', f'"{new}"'))


def test_a_class_outside_the_11_indexes_detects_trains_and_evaluates(tiny_data_root, tmp_path):
    root = tmp_path / "music21"
    shutil.copytree(
        tiny_data_root,
        root,
        ignore=shutil.ignore_patterns("*.csv", layout.DETECTIONS, "crop_cache"),
    )
    rename_class(str(root), "xylophone", "bagpipe")
    py = sys.executable
    out = run(
        [py, "scripts/create_index_files.py", "--root", root, "--seed", "1", "--sep-per-video", "2"]
    ).stdout
    assert not [
        line for line in out.splitlines() if line.startswith("dropped") and "bagpipe" in line
    ]
    assert any(e.class_name == "bagpipe" for e in read_index(str(root / "train.csv")))
    assert any(e.class_name == "bagpipe" for e in read_index(str(root / "test.csv")))
    run([py, "scripts/detect_objects.py", "--root", root, "--from-annotations"])
    folder = root / layout.DETECTIONS / "bagpipe"
    bagpipe_rows = np.concatenate([np.load(path) for path in folder.iterdir()])
    assert layout.detection_class_id("bagpipe") == 12 and 12 in bagpipe_rows[:, 1].astype(int)

    ckpt = tmp_path / "ckpt"
    main_py(
        "--stage",
        "ccol",
        "--id",
        "m21",
        "--num_epoch",
        "1",
        "--init_from",
        "none",
        ckpt=ckpt,
        data_root=root,
    )
    main_py("--mode", "eval", "--id", "m21", ckpt=ckpt, data_root=root)
    results = json.loads((ckpt / "m21" / "results.json").read_text())
    assert results["num_mixtures"] > 0 and results["sdr"] is not None
    assert "bagpipe" in (ckpt / "m21" / "eval_test.csv").read_text()


@pytest.mark.slow
def test_unknown_class_folder_is_a_clear_error(tmp_path):
    os.makedirs(tmp_path / layout.AUDIO / "theremin")
    (tmp_path / layout.AUDIO / "theremin" / "a.wav").write_bytes(b"")
    cmd = [sys.executable, "scripts/create_index_files.py", "--root", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "theremin" in proc.stderr and "MUSIC21_CLASSES" in proc.stderr


def test_tiny_args_are_still_the_demo_profile():
    # The shared test configuration stays on random-init ResNets: nothing downloads in tests.
    assert parse_args(TINY_ARGS).weights_imagenet == "none"
