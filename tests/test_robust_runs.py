"""Bad input and bad disks in whole runs of main.py: refused leaks, evaluation that counts what it
scored, NaN audio named, read-only and full run folders found before any compute is lost."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
from conftest import main_py, mounted_tmpfs, nan_wav

import training
from dataset.index import read_index, read_sep_list

# One torch thread here, OMP_NUM_THREADS=1 in the processes started (conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


def data_copy(tiny_data_root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data_root, data, ignore=shutil.ignore_patterns("videos"))
    return data


def run_copy(trained_runs, folder, run="ccol"):
    shutil.copytree(
        trained_runs / run, folder / run, ignore=shutil.ignore_patterns("visualization")
    )
    return folder / run


def list_video(csv_path, video):
    with open(csv_path, "a") as f:
        f.write(f"{video.audio},{video.frames},{video.num_frames}\n")


QUICK = ["--stage", "grd", "--num_val", "4", "--num_vis", "0", "--dup_trainset", "1"]


def test_train_test_leak_is_refused_before_the_run_folder_exists(tiny_data_root, tmp_path):
    data = data_copy(tiny_data_root, tmp_path)
    list_video(data / "train.csv", read_index(data / "test.csv")[0])
    with pytest.raises(AssertionError, match="test videos are also listed in .*--allow_test_leak"):
        main_py(*QUICK, "--id", "leak", "--num_epoch", "1", ckpt=tmp_path / "ckpt", data_root=data)
    assert not (tmp_path / "ckpt" / "leak").exists()


def test_allowed_train_leak_and_val_test_overlap_warn_loudly(tiny_data_root, tmp_path):
    data = data_copy(tiny_data_root, tmp_path)
    test = read_index(data / "test.csv")
    list_video(data / "train.csv", test[0])
    list_video(data / "val.csv", test[1])
    main_py(
        *QUICK,
        "--id",
        "leak",
        "--num_epoch",
        "0",
        "--allow_test_leak",
        ckpt=tmp_path,
        data_root=data,
    )
    log = (tmp_path / "leak" / "train.log").read_text()
    assert "!!! 1 train videos are also test videos" in log and "--allow_test_leak" in log
    assert "!!! 1 val videos are also test videos" in log


def test_evaluation_counts_only_the_mixtures_it_scored(trained_runs, tiny_data_root, tmp_path):
    run_dir = run_copy(trained_runs, tmp_path)
    data = data_copy(tiny_data_root, tmp_path)
    video = read_index(data / "test.csv")[0]
    wav = nan_wav(data, video)
    rows = read_sep_list(data / "test_sep.csv")
    bad = sum(
        video.audio in (row[0], row[2]) for row in rows
    )  # slots 0 and 2 sound: their audio is read
    assert 0 < bad < len(rows)

    with pytest.raises(
        AssertionError
    ) as failure:  # by default: an error naming the file, no NaN scores
        main_py("--mode", "eval", "--id", "ccol", ckpt=tmp_path, data_root=data)
    assert f"{wav}: audio holds NaN or inf samples" in str(failure.value)
    assert "Traceback" not in str(failure.value)

    proc = main_py(
        "--mode", "eval", "--id", "ccol", "--on_error", "skip", ckpt=tmp_path, data_root=data
    )
    result = json.loads((run_dir / "results.json").read_text())
    assert result["num_mixtures"] == len(rows) - bad and result["num_skipped"] == bad
    assert result["data_root"] == os.path.abspath(data)
    assert result["split_file"] == os.path.abspath(data / "test_sep.csv")
    assert result["checkpoint"] == os.path.abspath(run_dir / "checkpoint_best.pt")
    assert all(v is None or np.isfinite(v) for v in result.values() if isinstance(v, float))
    assert f"{bad} of {len(rows)} mixtures skipped" in proc.stdout
    umask = os.umask(0)
    os.umask(umask)
    for name in ("results.json", "summary.json", "checkpoint_best.pt", "history.json"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_validation_counts_its_skipped_mixtures(tiny_data_root, tmp_path):
    data = data_copy(tiny_data_root, tmp_path)
    nan_wav(data, read_index(data / "val.csv")[0])
    main_py(
        *QUICK,
        "--id",
        "skip",
        "--num_epoch",
        "1",
        "--on_error",
        "skip",
        "--num_val",
        "-1",
        "--dup_valset",
        "1",
        ckpt=tmp_path,
        data_root=data,
    )
    val = json.loads((tmp_path / "skip" / "history.json").read_text())["val"][-1]
    assert val["num_skipped"] > 0 and val["num_mixtures"] + val["num_skipped"] == len(
        read_index(data / "val.csv")
    )


def nan_batch():
    audios = torch.zeros(2, 4, 8)
    audios[1, 2, 3] = float("nan")
    return {
        "audios": audios,
        "infos": [
            ["/a/0.wav", "/b/0.wav", "/c/0.wav", "/d/0.wav"],
            ["/a/1.wav", "/b/1.wav", "/c/1.wav", "/d/1.wav"],
        ],
    }


def test_non_finite_loss_names_the_batch_files_and_the_checkpoint_only_if_there_is_one(tmp_path):
    with pytest.raises(training.NonFiniteLoss) as err:
        training.check_finite({"total": float("nan")}, 0, 5, str(tmp_path), nan_batch())
    assert "non-finite audio from ['/c/1.wav']" in str(err.value)
    assert "no checkpoint was written yet" in str(err.value) and "is kept" not in str(err.value)
    (tmp_path / "checkpoint_latest.pt").write_bytes(b"x")
    clean = {**nan_batch(), "audios": torch.zeros(2, 4, 8)}
    with pytest.raises(training.NonFiniteLoss) as err:
        training.check_finite({"total": float("inf")}, 0, 5, str(tmp_path), clean)
    assert f"the last good checkpoint {tmp_path / 'checkpoint_latest.pt'} is kept" in str(err.value)
    assert "the model diverged" in str(err.value)


@pytest.fixture
def tmpfs(tmp_path):
    """A tmpfs to fill or remount read-only (root only; elsewhere None: a chmod-ed folder stands
    in)."""
    with mounted_tmpfs(tmp_path / "disk", "64m") as mount:
        yield mount


def test_read_only_run_folder_is_refused_before_the_first_epoch(
    trained_runs, tiny_data_root, tmp_path, tmpfs
):
    if tmpfs is not None:
        ckpt = tmpfs
        run_dir = run_copy(trained_runs, ckpt)
        subprocess.run(["mount", "-o", "remount,ro", str(ckpt)], check=True)
        cause = "read-only file system"
    else:
        ckpt = tmp_path
        run_dir = run_copy(trained_runs, ckpt)
        run_dir.chmod(0o555)
        cause = "permission denied"
    try:
        with pytest.raises(AssertionError) as failure:
            main_py(
                "--stage",
                "ccol",
                "--id",
                "ccol",
                "--num_epoch",
                "3",
                "--resume",
                ckpt=ckpt,
                data_root=tiny_data_root,
            )
    finally:
        if tmpfs is None:
            run_dir.chmod(0o755)  # so that pytest can remove it
    assert f"cannot write {run_dir}: {cause}" in str(failure.value)
    assert "[train]" not in str(failure.value) and "Traceback" not in str(failure.value)


def test_full_disk_while_saving_names_the_path_and_resume_works_once_freed(tiny_data_root, tmpfs):
    if tmpfs is None:
        pytest.skip("filling a disk needs a tmpfs (root)")
    main_py(*QUICK, "--id", "full", "--num_epoch", "1", ckpt=tmpfs, data_root=tiny_data_root)
    ballast = tmpfs / "ballast"
    free = shutil.disk_usage(tmpfs).free
    ballast.write_bytes(b"\0" * (free - 64 * 1024))  # room for the logs, not for a checkpoint
    with pytest.raises(AssertionError) as failure:
        main_py(
            *QUICK,
            "--id",
            "full",
            "--num_epoch",
            "2",
            "--resume",
            ckpt=tmpfs,
            data_root=tiny_data_root,
        )
    assert "no space left on " + str(tmpfs / "full") in str(failure.value)
    assert "Traceback" not in str(failure.value)
    ballast.unlink()
    main_py(
        *QUICK, "--id", "full", "--num_epoch", "2", "--resume", ckpt=tmpfs, data_root=tiny_data_root
    )
    history = json.loads((tmpfs / "full" / "history.json").read_text())
    assert [h["epoch"] for h in history["train"]] == [1, 2]
