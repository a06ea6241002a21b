"""scripts/ceilings.py: the supervised ceilings of a profile's grounding encoders on a data root."""

import json

from arguments import TINY
from scripts import ceilings

SCORES = ("solo_acc", "mix_top2", "mix_top2_close", "crop_acc")


def tiny(root, *flags) -> list[str]:
    """The script's command line for the tiny sizes on `root`, 8 clips per step."""
    return ["--root", str(root), *TINY, "--batch", "8", *map(str, flags)]


def test_report_has_every_ceiling_in_range(tiny_data_root, tmp_path):
    out = tmp_path / "report" / "ceilings.json"
    assert ceilings.main(tiny(tiny_data_root, "--steps", "3", "--out", out)) == 0
    report = json.loads(out.read_text())
    assert report["probe"]["steps"] == 3 and report["probe"]["batch"] == 8
    settings = report["settings"]
    assert (settings["profile"], settings["aud_len"], settings["stft_hop"]) == ("demo", 4095, 128)
    assert settings["spectrogram"] == [32, 32]
    assert report["classes"] == ["cello", "flute", "trumpet", "xylophone"]
    for split in ("val", "test", "val+test"):
        assert all(0 <= report[split][key] <= 1 for key in SCORES), report[split]
        # Every val/test video heard and seen at each of the 4 clip positions.
        assert report[split]["solo_count"] == report[split]["crop_count"] > 0
        assert report[split]["mixture_close_count"] <= report[split]["mixture_count"]
    assert report["val+test"]["solo_count"] == 2 * report["val"]["solo_count"]
    assert report["chance"]["solo_acc"] == 0.25 and report["seconds"] > 0


def test_same_seed_same_numbers_and_the_audio_probe_learns(tiny_data_root):
    opts, args = ceilings.parse(tiny(tiny_data_root, "--steps", "30"))
    first, second = ceilings.measure(opts, args), ceilings.measure(opts, args)
    first.pop("seconds"), second.pop("seconds")
    assert first == second
    # One train video per class: the probe fits its clips well above chance (0.25) in 30 steps.
    assert first["train"]["audio_train_acc"] >= 0.6
