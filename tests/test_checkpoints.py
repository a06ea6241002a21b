"""The one atomic writer (umask, errors naming the path and cause); checkpoints.py's run loading."""

import argparse
import errno
import json
import logging
import os
import subprocess

import numpy as np
import pytest
import torch
from conftest import mounted_tmpfs

import checkpoints
import utils


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_files_get_the_umask_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        utils.atomic_write_json({"a": 1}, str(tmp_path / "a.json"))
        utils.atomic_torch_save({"w": torch.zeros(2)}, str(tmp_path / "a.pt"))
        utils.atomic_save_npy(np.zeros(2), str(tmp_path / "a.npy"))
    finally:
        os.umask(old)
    for name in ("a.json", "a.pt", "a.npy"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["a.json", "a.npy", "a.pt"]  # no temp file left


def test_no_space_is_named_with_the_path_and_the_old_file_survives(tmp_path):
    path = str(tmp_path / "checkpoint.pt")
    utils.atomic_torch_save({"epoch": 1}, path)

    def full_disk(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(utils.WriteError, match=f"no space left on {path}"):
        utils.atomic_write(path, full_disk)
    assert torch.load(path)["epoch"] == 1 and os.listdir(tmp_path) == ["checkpoint.pt"]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 256 kB tmpfs (root only): a real full disk, and a real read-only one once remounted."""
    with mounted_tmpfs(tmp_path / "disk", "256k") as mount:
        if mount is None:
            pytest.skip("mounting a tmpfs needs root")
        yield mount


def test_torch_save_on_a_full_disk_says_no_space_left(small_tmpfs):
    """torch.save reports a full disk as 'unexpected pos' or 'basic_ios::clear'.

    The writer keeps ENOSPC.
    """
    path = str(small_tmpfs / "checkpoint_latest.pt")
    utils.atomic_torch_save({"epoch": 1}, path)
    with pytest.raises(utils.WriteError, match=f"no space left on {path}"):
        utils.atomic_torch_save({"epoch": 2, "w": torch.zeros(100_000)}, path)
    assert torch.load(path)["epoch"] == 1 and os.listdir(small_tmpfs) == ["checkpoint_latest.pt"]


def test_read_only_folder_is_found_by_check_writable(small_tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    with pytest.raises(
        utils.WriteError, match=f"cannot write {small_tmpfs}: read-only file system"
    ):
        utils.check_writable(str(small_tmpfs))


def run_namespace(run_dir, **kw) -> argparse.Namespace:
    from arguments import parse_args

    args = parse_args(
        [
            "--ckpt",
            str(run_dir.parent),
            "--id",
            run_dir.name,
            "--profile",
            "demo",
            *kw.pop("argv", []),
        ]
    )
    return argparse.Namespace(**{**vars(args), **kw})


def tiny_nets():
    return torch.nn.ModuleDict({"sound": torch.nn.Linear(2, 2), "grounding": torch.nn.Linear(2, 1)})


def saved_run(tmp_path, epochs=(1,)):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    args = run_namespace(run_dir)
    nets = tiny_nets()
    optimizer = torch.optim.Adam(nets.parameters())
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[5])
    checkpoints.save_args(args)
    for epoch in epochs:
        checkpoints.save(checkpoints.RunState(nets, optimizer, scheduler, epoch), args, "latest")
    checkpoints.save(checkpoints.RunState(nets, optimizer, scheduler, epochs[0]), args, "best")
    return run_dir, args, nets, optimizer, scheduler


def test_resume_on_a_run_without_checkpoint_says_it_starts_fresh(tmp_path, caplog):
    run_dir = tmp_path / "new"
    args = run_namespace(run_dir, argv=["--resume"])
    nets = tiny_nets()
    optimizer = torch.optim.Adam(nets.parameters())
    with caplog.at_level(logging.WARNING, logger="ccol"):
        assert checkpoints.resume(checkpoints.RunState(nets, optimizer, None), args) is None
    assert f"{run_dir} holds no checkpoint yet, starting a fresh run" in caplog.text


def test_truncated_latest_says_what_to_do(tmp_path):
    run_dir, args, *_ = saved_run(tmp_path)
    latest = run_dir / "checkpoint_latest.pt"
    latest.write_bytes(latest.read_bytes()[:100])
    with pytest.raises(checkpoints.CheckpointError) as err:
        checkpoints.load_latest(args)
    message = str(err.value)
    assert "checkpoint_latest.pt is unreadable" in message
    assert f"copy {run_dir / 'checkpoint_best.pt'} over it and run again with --resume" in message
    assert "start a new run with another --id" in message


def test_a_run_folder_holds_one_checkpoint_format(tmp_path):
    """Each checkpoint is one file with every net: no per-network weight files beside it."""
    run_dir, args, nets, optimizer, scheduler = saved_run(tmp_path, epochs=(1, 2))
    assert sorted(os.listdir(run_dir)) == [
        "args.json",
        "checkpoint_best.pt",
        "checkpoint_latest.pt",
    ]
    latest = checkpoints.load(str(run_dir / "checkpoint_latest.pt"))
    assert (latest["epoch"], sorted(latest["nets"])) == (2, ["grounding", "sound"])
    history = {"train": [{"epoch": 1}], "val": []}
    state = checkpoints.RunState(nets, optimizer, scheduler, 1, history, best=0.5)
    checkpoints.save(state, args, "latest")
    resumed = checkpoints.resume(checkpoints.RunState(tiny_nets(), optimizer, scheduler), args)
    assert (resumed.epoch, resumed.history, resumed.best) == (1, history, 0.5)
    assert torch.equal(resumed.nets["sound"].weight, nets["sound"].weight)


def test_initialise_from_latest_or_best(tmp_path):
    run_dir, _, nets, optimizer, scheduler = saved_run(tmp_path, epochs=(1, 2))
    fresh = torch.nn.ModuleDict({"sound": torch.nn.Linear(2, 2), "frame": torch.nn.Linear(2, 2)})
    assert checkpoints.initialise_from(fresh, str(run_dir), "latest")["epoch"] == 2
    assert checkpoints.initialise_from(fresh, str(run_dir), "best")["epoch"] == 1
    assert torch.equal(fresh["sound"].weight, nets["sound"].weight)
    with pytest.raises(checkpoints.CheckpointError, match="shares no network"):
        checkpoints.initialise_from(
            torch.nn.ModuleDict({"frame": torch.nn.Linear(2, 2)}), str(run_dir)
        )


def test_a_run_made_before_an_option_existed_had_its_default():
    """An architecture option added after a run was trained is absent from its arguments: the run
    is accepted while the option keeps its default, and refused when it is set otherwise."""
    from arguments import parse_args

    args = parse_args(["--stage", "sop", "--profile", "demo"])
    saved = {k: v for k, v in vars(args).items() if k != "ground_audio_norm"}
    checkpoints.check_arch(saved, args, "old.pt")
    other = parse_args(["--stage", "sop", "--profile", "demo", "--ngf", "16"])
    with pytest.raises(checkpoints.CheckpointError, match="'ngf': \\(8, 16\\)"):
        checkpoints.check_arch(saved, other, "old.pt")


def test_saved_arguments_of_the_older_format_pass_the_architecture_check():
    """An older run's saved arguments (--arch_sound unetK for the depth, before --unet_levels;
    0/1 switches; --train_visual) match the nets the same options build today, not the demo
    profile's default depth 6; another depth is refused."""
    from test_arguments import older_format

    from arguments import TINY, parse_args

    args = parse_args([*TINY, "--stage", "sop", "--unet_levels", "4"])
    saved = older_format(args)
    checkpoints.check_arch(saved, args, "old.pt")
    deeper = parse_args([*TINY, "--stage", "sop"])
    with pytest.raises(checkpoints.CheckpointError, match="'unet_levels': \\(4, 5\\)"):
        checkpoints.check_arch(saved, deeper, "old.pt")
