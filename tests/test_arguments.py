"""arguments.py: an evaluation is configured by the run it evaluates (its args.json) and the
evaluation options of its command line, nothing else."""

import json
import os

import pytest

import checkpoints
from arguments import EVAL_OPTIONS, TINY, parse_args

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
