"""Bad input, round 3: each way users get data, options and runs wrong that once ran to exit 0 with
wrong data, gave a cryptic error, or destroyed files, now a clear error, a counted skip or a loud
warning (docs/robust_runs.md)."""

import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import REPO, TINY_ARGS
from PIL import Image
from test_dataset import (
    HEIGHT,
    NUM_FRAMES,
    RATE,
    WIDTH,
    detection_rows,
    make,
    make_root,
    write_frame,
)
from test_index import add_video

import checkpoints
import main
import utils
from arguments import TINY, parse_args
from dataset import DataError, layout
from dataset.index import read_index, read_sep_list
from scripts import check_data, create_index_files
from scripts.cache_crops import build_cache
from separation import object_tracks
from training import build_nets

CLIP = check_data.ClipSpec(
    aud_len=4095, sample_rate=RATE, num_frames=3, stride_frames=1, frame_rate=1
)

# One torch thread here, OMP_NUM_THREADS=1 in the processes started (conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory):
    return make_root(str(tmp_path_factory.mktemp("music")))


@pytest.fixture
def root(clean_root, tmp_path):
    """A private copy of test_dataset's root (val.csv: every video, test.csv: one per class)."""
    return shutil.copytree(clean_root, str(tmp_path / "music"))


def video0(root):
    return read_index(os.path.join(root, "val.csv"))[0]


def frame_path(root, video, k):
    return os.path.join(layout.frames_dir(root, video.frames), layout.frame_name(k))


def problems_of(root, clip=CLIP, **kw):
    """check_data's problems, less the test leak the root is made with (val lists every video)."""
    index = {s: os.path.join(root, f"{s}.csv") for s in ("val", "test")}
    problems, _ = check_data.check_root(root, clip, index, **kw)
    return [p for p in problems if p.kind != "test leak"]


def kinds_of(root, **kw):
    return sorted({p.kind for p in problems_of(root, **kw)})


def test_the_clean_root_has_no_problem(clean_root):
    assert problems_of(clean_root) == []
    make(clean_root, "val").preflight()
    make(clean_root, "test").preflight()


def run_main(*args, data_root, ckpt):
    """main.main in this process; returns its exit status."""
    with pytest.raises(SystemExit) as exit_:
        main.main([*TINY_ARGS, "--ckpt", str(ckpt), "--data_root", str(data_root), *map(str, args)])
    return exit_.value.code


def split_lists(root):
    """train.csv: vid0 of each class, val.csv: vid1; no test list."""
    lines = open(os.path.join(root, "val.csv")).read().splitlines()
    open(os.path.join(root, "train.csv"), "w").write("\n".join(lines[0::2]) + "\n")
    open(os.path.join(root, "val.csv"), "w").write("\n".join(lines[1::2]) + "\n")
    os.remove(os.path.join(root, "test.csv"))
    os.remove(os.path.join(root, "test_sep.csv"))
    return root


# ---------------------------------------------------------------- nothing lost


def test_a_second_run_of_one_id_is_refused_while_the_first_holds_it(tmp_path, caplog):
    run_dir = tmp_path / "ckpt" / "x"
    run_dir.mkdir(parents=True)
    (run_dir / "args.json").write_text('{"run": "A"}')
    with utils.run_lock(str(run_dir)), caplog.at_level(logging.ERROR):
        status = run_main("--id", "x", data_root=tmp_path / "none", ckpt=tmp_path / "ckpt")
    assert status == 1
    assert f"in use by pid {os.getpid()}" in caplog.text
    assert (run_dir / "args.json").read_text() == '{"run": "A"}'


def test_the_lock_goes_with_its_holder_even_killed(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, utils\n"
            "with utils.run_lock(sys.argv[1]):\n"
            "    print('held', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(utils.RunInUse, match=f"in use by pid {holder.pid}"):
            with utils.run_lock(str(tmp_path)):
                pass
    finally:
        holder.kill()
        holder.wait()
    with utils.run_lock(str(tmp_path)):  # free again: no stale lock after kill -9
        pass


def test_evaluations_share_a_run_and_a_training_excludes_them(tmp_path):
    """The demo scores one run with two evaluations at once; neither may run beside a training."""
    with utils.run_lock(str(tmp_path), shared=True), utils.run_lock(str(tmp_path), shared=True):
        with pytest.raises(utils.RunInUse, match="in use by an evaluation"):
            with utils.run_lock(str(tmp_path)):
                pass
    with utils.run_lock(str(tmp_path)):
        with pytest.raises(utils.RunInUse, match=f"in use by pid {os.getpid()} \\(a training"):
            with utils.run_lock(str(tmp_path), shared=True):
                pass
    with utils.run_lock(str(tmp_path), shared=True):  # the training left no pid behind
        with pytest.raises(utils.RunInUse, match="in use by an evaluation"):
            with utils.run_lock(str(tmp_path)):
                pass


@pytest.fixture
def index_root(tmp_path):
    for class_name in ("accordion", "cello", "flute", "tuba", "violin"):
        for v in range(6):
            add_video(str(tmp_path), class_name, f"v{v}", range(1, 9))
    return str(tmp_path)


def test_index_files_are_not_replaced_without_overwrite_and_old_ones_are_kept(index_root, capsys):
    create_index_files.main(["--root", index_root, "--seed", "1"])
    names = ("train.csv", "val.csv", "test.csv", "test_sep.csv")
    old = {name: open(os.path.join(index_root, name)).read() for name in names}
    linked = os.path.join(index_root, "run_copy_of_test.csv")
    os.link(os.path.join(index_root, "test.csv"), linked)  # a run's hard-linked copy
    with pytest.raises(SystemExit, match="already holds train.csv.*--overwrite"):
        create_index_files.main(["--root", index_root, "--seed", "2"])
    assert {name: open(os.path.join(index_root, name)).read() for name in names} == old
    capsys.readouterr()

    create_index_files.main(["--root", index_root, "--seed", "2", "--overwrite"])
    out = capsys.readouterr().out
    assert open(os.path.join(index_root, "test.csv")).read() != old["test.csv"]
    assert open(linked).read() == old["test.csv"]  # replaced, not rewritten through the link
    (backup,) = os.listdir(os.path.join(index_root, "index_backup"))
    for name in names:
        assert open(os.path.join(index_root, "index_backup", backup, name)).read() == old[name]
    assert "videos of the old test.csv are now in train or val" in out
    assert not [n for n in os.listdir(index_root) if n.startswith(".tmp")]


# ---------------------------------------------------------------- frames, boxes, index rows


def test_frames_smaller_than_the_detections_were_made_for_are_refused(root):
    """Frames extracted again at 40x30: the 48x36 frames' green box reaches 2 px past them."""
    video = video0(root)
    for k in range(1, NUM_FRAMES + 1):
        path = frame_path(root, video, k)
        Image.open(path).resize((40, 30)).save(path, quality=95)
    with pytest.raises(DataError, match="reach past the 40x30 frames") as err:
        make(root, "val")[0]
    assert layout.detection_path(root, video.frames) in str(err.value)
    assert kinds_of(root) == ["boxes outside the image"]


def write_frame_at(path, frame_id, size):
    write_frame(path, frame_id)
    Image.open(path).resize(size).save(path, quality=95)


def test_a_frame_of_another_size_inside_a_video_is_refused(root):
    video = video0(root)
    centre = frame_path(root, video, NUM_FRAMES // 2 + 1)  # a val sample's centre frame
    write_frame_at(centre, NUM_FRAMES // 2 + 1, (2 * WIDTH, 2 * HEIGHT))
    with pytest.raises(DataError, match=f"frame is {2 * WIDTH}x{2 * HEIGHT}") as err:
        make(root, "val")[0]
    assert centre in str(err.value)
    assert kinds_of(root) == ["frame sizes differ"]


def test_a_last_frame_of_another_size_is_found_up_front(root):
    last = frame_path(root, video0(root), NUM_FRAMES)
    write_frame_at(last, NUM_FRAMES, (2 * WIDTH, 2 * HEIGHT))
    with pytest.raises(DataError, match="frames of two sizes") as err:
        make(root, "val").preflight()
    assert last in str(err.value)


def test_normalised_boxes_are_refused(root):
    path = layout.detection_path(root, video0(root).frames)
    rows = detection_rows(NUM_FRAMES)
    rows[:, 3:7] /= [WIDTH, HEIGHT, WIDTH, HEIGHT]
    np.save(path, rows)
    with pytest.raises(DataError, match="normalised") as err:
        make(root, "val")[0]
    assert path in str(err.value)
    assert kinds_of(root) == ["boxes normalised"]


def rewrite_line(csv_path, number, edit):
    lines = open(csv_path).read().splitlines()
    lines[number] = edit(lines[number])
    open(csv_path, "w").write("\n".join(lines) + "\n")


def test_a_row_of_one_videos_audio_and_another_videos_frames_is_refused(root):
    val = os.path.join(root, "val.csv")
    other = read_index(val)[2]
    rewrite_line(val, 0, lambda line: f"{line.split(',')[0]},{other.frames},{NUM_FRAMES}")
    with pytest.raises(DataError, match="line 1: audio .* and frames .* are of different videos"):
        make(root, "val")
    assert kinds_of(root) == ["audio and frames differ"]


def test_a_video_listed_twice_is_refused(root):
    val = os.path.join(root, "val.csv")
    with open(val, "a") as f:
        f.write(open(val).readline())
    with pytest.raises(DataError, match="line 11: .* is listed again \\(first at line 1\\)"):
        make(root, "val")
    assert kinds_of(root) == ["listed twice"]


def test_an_index_listing_fewer_frames_than_on_disk_is_named_stale(root):
    """The folder holds 8 frames and detections up to 8; the CSV says 6: the index is wrong."""
    val = os.path.join(root, "val.csv")
    rewrite_line(val, 0, lambda line: line.rsplit(",", 1)[0] + ",6")
    with pytest.raises(DataError, match="val.csv:1 lists 6 frames.*holds 8.*index is stale") as err:
        make(root, "val")[0]
    assert err.value.path == val


def test_val_videos_in_train_are_found(root, tmp_path, caplog):
    split_lists(root)
    with open(os.path.join(root, "train.csv"), "a") as f:
        f.write(open(os.path.join(root, "val.csv")).readline())
    status = run_main("--num_epoch", "0", "--id", "v", data_root=root, ckpt=tmp_path / "ckpt")
    assert "val videos of" in str(status) and "also listed in" in str(status)
    assert not (tmp_path / "ckpt" / "v").exists()
    index = {s: os.path.join(root, f"{s}.csv") for s in ("train", "val")}
    problems, _ = check_data.check_root(root, CLIP, index)
    assert [p.kind for p in problems] == ["val in train"]


def test_test_rows_with_too_few_videos_or_a_repeated_class_are_found(root):
    sep = os.path.join(root, "test_sep.csv")
    rows = read_sep_list(sep)
    second = rows[1]
    rows[0][1] = rows[0][0]  # the row's own video twice: its class twice
    rows[1] = rows[1][:2]

    def write():
        open(sep, "w").write("\n".join(", ".join(r) for r in rows) + "\n")

    write()
    details = [p.detail for p in problems_of(root) if p.kind == "mixture list"]
    assert details == [
        f"row 1 repeats a class: {rows[0][:4]}",
        "row 2 holds 2 videos, a mixture needs 4",
    ]
    rows[1] = second
    write()
    with pytest.raises(DataError, match="row 1 repeats a class") as err:
        make(root, "test").preflight()  # before any sample is drawn
    assert err.value.path == sep


def test_check_data_checks_what_the_runs_profile_and_stage_read(root, capsys):
    assert check_data.run_clip("demo", "ccol", {}) == check_data.ClipSpec(8191, RATE, 2, 1, 1, 4)
    assert check_data.run_clip("reference", "sop", {"aud_len": 4095}) == check_data.ClipSpec(
        4095, RATE, 3, 3, 1, 2
    )
    os.remove(layout.detection_path(root, video0(root).frames))
    val = f"val={os.path.join(root, 'val.csv')}"
    assert check_data.main([root, "--index", val, "--profile", "demo", "--stage", "sop"]) == 0
    assert check_data.main([root, "--index", val, "--profile", "demo"]) == 1
    assert "detections missing: 1" in capsys.readouterr().out


# ---------------------------------------------------------------- audio


def test_digital_silence_is_not_trained_as_a_sounding_object(root):
    wav = layout.audio_path(root, video0(root).audio)
    sf.write(wav, np.zeros(8 * RATE), RATE, subtype="PCM_16")  # a muted download
    ds = make(root, "train", max_samples=1)  # sample 0: video 0 sounds
    with pytest.raises(DataError, match="digital silence") as err:
        ds[0]
    assert wav in str(err.value)
    skipping = make(root, "train", max_samples=1, on_error="skip")
    assert skipping[0] is None and skipping.error_summary()[wav]["count"] == 1
    assert kinds_of(root) == ["audio silent"]


def test_a_silent_stretch_as_long_as_a_clip_is_reported(root):
    wav = layout.audio_path(root, video0(root).audio)
    samples, rate = sf.read(wav, dtype="float32")
    samples[RATE : 2 * RATE] = 0  # 1 s of zeros, a clip is 0.37 s
    sf.write(wav, samples, rate, subtype="PCM_16")
    (problem,) = problems_of(root)
    assert problem.kind == "audio silent" and "for 1.00 s" in problem.detail


def test_float_audio_above_full_scale_is_said_and_how_it_is_handled(root, caplog):
    wav = layout.audio_path(root, video0(root).audio)
    samples, rate = sf.read(wav, dtype="float32")
    sf.write(wav, samples * 4, rate, subtype="FLOAT")  # peaks at 1.2
    ds = make(root, "val")
    with caplog.at_level(logging.WARNING):
        ds[0]
        ds[0]
    warnings = [r.getMessage() for r in caplog.records if wav in r.getMessage()]
    assert len(warnings) == 1 and "above full scale" in warnings[0]
    assert "hard-clipped to [-1, 1]" in warnings[0]
    assert kinds_of(root) == ["audio out of range"]


def test_a_half_length_wav_stops_training_before_the_first_epoch(root, tmp_path, caplog):
    split_lists(root)
    wav = layout.audio_path(root, read_index(os.path.join(root, "train.csv"))[0].audio)
    samples, rate = sf.read(wav, dtype="float32")
    sf.write(wav, samples[: len(samples) // 2], rate, subtype="PCM_16")
    # No epoch at all: only an up-front check can find it.
    with caplog.at_level(logging.ERROR):
        status = run_main(
            "--stage", "grd", "--num_epoch", "0", "--id", "h", data_root=root, ckpt=tmp_path
        )
    assert status == 1
    log = (tmp_path / "h" / "train.log").read_text()
    assert wav in log and "shorter than its frames" in log


def test_a_train_set_smaller_than_one_batch_says_so(root, tmp_path):
    split_lists(root)
    status = run_main(
        "--stage",
        "grd",
        "--batch_size",
        "16",
        "--dup_trainset",
        "1",
        "--id",
        "b",
        data_root=root,
        ckpt=tmp_path,
    )
    assert "5 training samples per epoch" in str(status) and "fewer than one batch" in str(status)


# ---------------------------------------------------------------- caches


@pytest.fixture
def cached(root):
    cache = os.path.join(root, "crop_cache")
    assert build_cache(root, cache, [os.path.join(root, "val.csv")], 16, "ccol", workers=1) == 0
    return root, cache


def test_a_crop_cache_whose_detections_changed_is_refused_then_rebuilt(cached, capsys):
    root, cache = cached
    path = layout.detection_path(root, video0(root).frames)
    rows = detection_rows(NUM_FRAMES)
    rows[:, 2] = rows[::-1, 2]  # other scores: other top boxes
    np.save(path, rows)
    with pytest.raises(DataError, match="stale: its detection file changed"):
        make(root, "val", crop_cache=cache).preflight()
    capsys.readouterr()
    assert build_cache(root, cache, [os.path.join(root, "val.csv")], 16, "ccol", workers=1) == 0
    assert "9 already cached, 1 to build" in capsys.readouterr().out
    make(root, "val", crop_cache=cache).preflight()


def test_a_crop_cache_of_another_data_root_is_refused(cached, tmp_path):
    root, cache = cached
    other = shutil.copytree(root, str(tmp_path / "other"))
    video = video0(other)
    for k in range(1, NUM_FRAMES + 1):  # frames of the same size extracted again
        path = frame_path(other, video, k)
        Image.open(path).save(path, quality=60)
    with pytest.raises(DataError, match=f"stale: its frames changed.*from {root}") as err:
        make(other, "val", crop_cache=cache)[0]
    assert video.frames.lstrip("/") in str(err.value)
    make(shutil.copytree(root, str(tmp_path / "copy")), "val", crop_cache=cache).preflight()


# ---------------------------------------------------------------- options, checkpoints, runs


@pytest.mark.parametrize(
    "flags,option",
    [
        (["--img_size", "0"], "--img_size 0"),
        (["--disp_iter", "0"], "--disp_iter 0"),
        (["--num_frames", "0"], "--num_frames 0"),
        (["--aud_len", "100"], "--aud_len 100"),
        (["--aud_len", "4200"], "--aud_len 4200"),  # 1 + 4200 // 128 = 33 STFT frames, not 32k
        (["--stft_hop", "0"], "--stft_hop 0"),
        (["--eval_epoch", "0"], "--eval_epoch 0"),
        (["--batch_size", "0"], "--batch_size 0"),
        (["--workers", "-1"], "--workers -1"),
        (["--lr_sound=-0.001"], "--lr_sound -0.001"),
        (["--lr_frame_ground=-1"], "--lr_frame_ground -1.0"),
        (["--momentum", "1.5"], "--momentum 1.5"),
        (["--frame_rate", "0"], "--frame_rate 0.0"),
        (["--lr_steps", "0"], "--lr_steps [0]"),
    ],
)
def test_options_out_of_range_are_refused_at_parse_time_naming_the_option(flags, option):
    with pytest.raises(SystemExit) as err:
        parse_args([*TINY, "--stage", "ccol", *flags])
    assert str(err.value).startswith(option + ":")


def test_every_shipped_configuration_is_in_range():
    for stage in ("grd", "col", "ccol", "sop"):
        for profile in ([], ["--profile", "demo"], TINY):
            parse_args(["--stage", stage, *profile])


def test_col_from_a_sop_run_is_refused_naming_the_missing_nets(tmp_path):
    sop = tmp_path / "sop"
    sop.mkdir()
    nets = build_nets(parse_args([*TINY, "--stage", "sop"]))
    state = {"nets": {k: v.state_dict() for k, v in nets.items()}, "epoch": 3, "stage": "sop"}
    torch.save(state, checkpoints.path_of(str(sop), "latest"))
    status = run_main(
        "--stage", "col", "--id", "col", "--init_from", sop, data_root=tmp_path, ckpt=tmp_path
    )
    assert status == 1
    log = (tmp_path / "col" / "train.log").read_text()
    assert "is a sop run and holds no sound_ground, frame_ground, grounding network" in log


def test_a_ckpt_that_cannot_be_created_is_one_line(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with caplog.at_level(logging.ERROR):
        status = run_main("--id", "x", data_root=tmp_path / "none", ckpt=blocker / "ckpt")
    assert status == 1 and f"cannot write {blocker / 'ckpt'}" in caplog.text


def test_separating_with_another_videos_detections_is_refused():
    rows = detection_rows(NUM_FRAMES)  # 8 frames of detections for a video of 5
    with pytest.raises(DataError, match="rows are for frames past the video's last frame 5"):
        object_tracks(rows, 5, {1: "red", 2: "green"})
