"""arguments.py: an evaluation is configured by the run it evaluates (its args.json) and the
evaluation options of its command line, nothing else."""

import json
import os

import pytest

import checkpoints
from arguments import EVAL_ALSO, EVAL_OPTIONS, TINY, build_parser, parse_args

# Values a tiny demo run trains with that neither the reference nor the demo profile has.
TRAINED = ["--ground_map", "pixelwise", "--lr_steps", "3", "7", "--silent_thres", "0.2"]


@pytest.fixture
def demo_run(tmp_path):
    """A run folder holding the args.json a tiny demo CCoL run writes (no weights needed)."""
    args = parse_args([*TINY, *TRAINED, "--ckpt", str(tmp_path), "--id", "run"])
    os.makedirs(args.run_dir)
    checkpoints.save_args(args)
    return tmp_path, args


def evaluation(ckpt, *argv):
    return parse_args(["--mode", "eval", "--ckpt", str(ckpt), "--id", "run", *argv])


def test_eval_takes_every_option_but_its_own_from_the_run(demo_run):
    ckpt, trained = demo_run
    args = evaluation(ckpt)  # no --profile: the run's is demo
    shared = set(vars(trained)) - set(EVAL_OPTIONS) - {"run_dir"}
    assert {key: vars(args)[key] for key in shared} == {key: vars(trained)[key] for key in shared}
    assert (args.profile, args.ground_map, args.box_rule) == ("demo", "pixelwise", "video")
    assert (args.mode, args.run_dir) == ("eval", trained.run_dir)
    # Evaluation options not given are the run's too.
    assert (args.num_val, args.test_clips, args.num_vis) == (64, 4, 12)


def test_eval_options_come_from_the_command_line(demo_run, tmp_path):
    ckpt, trained = demo_run
    moved = str(tmp_path / "moved_data")
    args = evaluation(ckpt, "--num_val", "3", "--split", "val", "--data_root", moved,
                      "--eval_silent", "--workers", "0", "--batch_size", "2")  # fmt: skip
    assert (args.num_val, args.split, args.eval_silent) == (3, "val", True)
    assert (args.workers, args.batch_size, args.batch_size_per_gpu) == (0, 2, 2)
    # The run root's own index files follow the data; a list named on the command line is kept.
    assert args.list_test == os.path.join(moved, "test.csv")
    assert args.list_sep == os.path.join(moved, "test_sep.csv")
    other = str(tmp_path / "other_sep.csv")
    assert evaluation(ckpt, "--data_root", moved, "--list_sep", other).list_sep == other


def test_eval_refuses_a_value_other_than_the_runs(demo_run):
    ckpt, trained = demo_run
    with pytest.raises(SystemExit) as refused:
        evaluation(ckpt, "--ngf", "64", "--profile", "reference", "--lr_steps", "3")
    message = str(refused.value)
    assert "--ngf: given 64, the run's 8" in message
    assert "--profile: given reference, the run's demo" in message
    assert "--lr_steps: given 3, the run's 3 7" in message
    assert os.path.join(trained.run_dir, "args.json") in message
    # The run's own values may be repeated.
    assert evaluation(ckpt, *TINY, *TRAINED).ngf == 8


def test_an_option_the_run_lacks_has_its_default_under_the_runs_profile(demo_run):
    ckpt, trained = demo_run
    path = os.path.join(trained.run_dir, "args.json")
    with open(path) as f:
        saved = json.load(f)
    del saved["ground_map"], saved["box_rule"]  # a run made before these options existed
    with open(path, "w") as f:
        json.dump(saved, f)
    args = evaluation(ckpt)
    assert (args.ground_map, args.box_rule) == ("window", "video")  # the demo profile's


def test_eval_of_no_run_says_so(tmp_path):
    with pytest.raises(SystemExit, match="no run folder .*train first"):
        evaluation(tmp_path)
    (tmp_path / "run").mkdir()
    with pytest.raises(SystemExit, match="args.json not found"):
        evaluation(tmp_path)


def older_format(args) -> dict:
    """The args.json an older version wrote for `args`: an --arch_* name per net (the U-Net's
    depth in --arch_sound unetK, from before --unet_levels), 0/1 ints for --log_freq,
    --binary_mask and --weighted_loss, and --train_visual yes/no for --train_resnets."""
    saved = {k: v for k, v in vars(args).items() if k not in ("train_resnets", "unet_levels")}
    saved.update(
        arch_sound_ground="vggish",
        arch_frame_ground="resnet18",
        arch_grounding="base",
        arch_sound=f"unet{args.unet_levels}",
        arch_frame="resnet18dilated",
        arch_synthesizer="linear",
        arch_classifier="resnet18",
        log_freq=int(args.log_freq),
        binary_mask=int(args.binary_mask),
        weighted_loss=int(args.weighted_loss),
        train_visual="yes" if args.train_resnets else "no",
    )
    return saved


def test_a_run_saved_in_the_older_format_evaluates_as_it_was_trained(demo_run):
    ckpt, trained = demo_run
    with open(os.path.join(trained.run_dir, "args.json"), "w") as f:
        json.dump(older_format(trained), f)
    args = evaluation(ckpt)
    assert (args.unet_levels, args.log_freq, args.binary_mask, args.weighted_loss) == (
        5,
        True,
        False,
        True,
    )
    assert args.train_resnets is True and args.weights_imagenet == "none"
    # Its own values may still be repeated, in either spelling.
    assert evaluation(ckpt, "--unet_levels", "5", "--log_freq", "1", "--weighted_loss").ngf == 8
    with pytest.raises(SystemExit, match="--unet_levels: given 6, the run's 5"):
        evaluation(ckpt, "--unet_levels", "6")


def test_switches_take_the_flag_its_negation_and_the_former_spellings():
    args = parse_args([*TINY, "--amp", "--no-log_freq", "--weighted_loss", "0"])
    assert (args.amp, args.log_freq, args.weighted_loss, args.resume) == (True, False, False, False)
    assert parse_args([*TINY, "--binary_mask", "1"]).binary_mask is True
    # --train_resnets: unset, it trains exactly the random-init ResNets.
    assert parse_args(TINY).train_resnets is True and parse_args([]).train_resnets is False
    for argv, expected in (
        (["--no-train_resnets"], False),
        (["--train_visual", "no"], False),
        (["--train_visual", "yes"], True),
    ):
        assert parse_args([*TINY, *argv]).train_resnets is expected, argv
    with pytest.raises(SystemExit):
        parse_args([*TINY, "--amp", "maybe"])
    with pytest.raises(SystemExit):
        parse_args([*TINY, "--no-amp", "1"])


def test_eval_options_are_the_hardware_and_evaluation_groups_and_the_locations():
    groups = {
        group.title: {action.dest for action in group._group_actions}
        for group in build_parser()._action_groups
    }
    assert set(EVAL_OPTIONS) == groups["hardware"] | groups["evaluation"] | set(EVAL_ALSO)
    knobs = ("split", "num_val", "num_vis", "workers", "device", "metrics_backend")
    assert set(knobs) | {"eval_silent", "crop_cache", "amp"} <= set(EVAL_OPTIONS)
    assert {"split", "num_val", "num_vis", "metrics_backend", "eval_silent"} <= groups["evaluation"]
