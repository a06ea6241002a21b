"""Command-line configuration: every option of main.py, grouped, with the authors' defaults.

Defaults reproduce the authors' scripts. What differs between stages (every net's learning rate,
epochs, LR steps, loss weights, the SoP baseline's setup) lives in STAGE_DEFAULTS below, so
`python main.py --stage col` is the run `scripts/train_col.sh` starts. `--profile demo` swaps in a
small-compute configuration (narrow nets, short clips, small crops, short schedules) that keeps the
method the same and trains on two CPU cores in minutes. Defaults are layered, later wins:

    option default < STAGE_DEFAULTS[stage] < PROFILES[profile]
        < PROFILE_STAGE_DEFAULTS[profile][stage] < command line

`python main.py --stage col --profile demo --help` shows the defaults that result. The resolved
arguments are saved to `ckpt/<id>/args.json`; evaluation reads every option back from there but
its own (EVAL_OPTIONS).
"""

from __future__ import annotations

import argparse
import json
import os

from dataset import layout
from dataset.readers import BOX_RULES
from models.criterion import LOSSES
from models.vision_net import IMAGENET, NO_WEIGHTS, has_weights

# Per stage, as the authors' train_grd.sh / train_col.sh / train_ccol.sh (and Sound of Pixels' and
# Co-Separation's scripts for the two baselines) set them. Learning rates of nets a stage does not
# build are left out.
STAGE_DEFAULTS = {
    "grd": dict(
        num_epoch=40,
        lr_steps=[20, 30],
        lr_sound_ground=1e-4,
        lr_grounding=1e-4,
        lr_frame_ground=1e-4,
    ),
    "col": dict(
        num_epoch=60,
        lr_steps=[30, 50],
        lr_sound_ground=1e-5,
        lr_grounding=1e-5,
        lr_frame_ground=1e-5,
        lr_sound=1e-4,
        lr_synthesizer=1e-4,
        lr_frame=1e-4,
        solo_grounding_weight=0.25,
        mix_grounding_weight=0.25,
    ),
    "ccol": dict(
        num_epoch=60,
        lr_steps=[30, 50],
        lr_sound_ground=1e-4,
        lr_grounding=1e-4,
        lr_frame_ground=1e-4,
        lr_sound=1e-4,
        lr_synthesizer=1e-4,
        lr_frame=1e-4,
        solo_grounding_weight=0.5,
        mix_grounding_weight=0.25,
    ),
    # Sound of Pixels on 1 fps frames: 2 whole-frame videos, binary masks, BCE, frames 3 s apart,
    # SGD with momentum and weight decay, log-magnitude input, its U-Net init, batch 4 GPUs x 20.
    "sop": dict(
        num_epoch=100,
        lr_steps=[40, 80],
        batch_size=80,
        lr_sound=1e-3,
        lr_synthesizer=1e-3,
        lr_frame=1e-4,
        num_mix=2,
        binary_mask=True,
        loss="bce",
        stride_frames=3,
        optimizer="sgd",
        weight_decay=1e-4,
        spec_input="log",
        sound_init="sop",
    ),
    # Co-Separation as its README's training command and its options set it: Adam (beta1 0.9) with
    # weight decay 1e-4, U-Net 1e-4, visual net 1e-5, classifier 1e-4, classifier loss x 0.05,
    # weighted L1 on ratio masks, log-magnitude input, batch 80. Its 35000 batches of 80 are 150
    # epochs of MUSIC's 468 train videos x --dup_trainset 40; its LR drops after 15000 and 30000
    # batches, epochs 64 and 128.
    "cosep": dict(
        num_epoch=150,
        lr_steps=[64, 128],
        batch_size=80,
        lr_sound=1e-4,
        lr_synthesizer=1e-4,
        lr_frame=1e-5,
        lr_classifier=1e-4,
        classifier_weight=0.05,
        weight_decay=1e-4,
        spec_input="log",
    ),
}

# Small-compute profile used by scripts/demo.sh on CPU: same nets, losses and stages, smaller sizes,
# random-init ResNets (ImageNet weights need the full width).
PROFILES = {
    "reference": {},
    "demo": dict(
        img_size=32,
        num_frames=2,
        aud_len=8191,
        stft_frame=510,
        stft_hop=128,
        warp_bins=64,
        unet_levels=6,
        ngf=8,
        vis_width=16,
        vggish_width=8,
        batch_size=32,
        dup_trainset=25,
        dup_valset=8,
        workers=1,
        num_val=64,
        test_clips=4,
        num_vis=12,
        disp_iter=20,
        weights_imagenet=NO_WEIGHTS,
        grounding_init_std=0.0,
        sound_ground_init="kaiming",
        box_rule="video",
        ground_map="window",
    ),
}

# The smallest sizes that keep every part of the method: 2 frames of 32 px crops, 4095-sample clips
# (0.37 s), 32 x 32 spectrograms, a 5-level U-Net, 8-channel nets. TINY, these sizes on the demo
# profile, is the configuration of the tests and of scripts/benchmark.py --sizes tiny.
TINY_SIZES = dict(
    aud_len=4095,
    stft_frame=254,
    stft_hop=128,
    warp_bins=32,
    unet_levels=5,
    ngf=8,
    vis_width=8,
    vggish_width=8,
    img_size=32,
    num_frames=2,
)


def as_flags(values: dict) -> list[str]:
    """The command-line flags that set `values`: {"ngf": 8} -> ["--ngf", "8"]."""
    return [flag for key, value in values.items() for flag in (f"--{key}", str(value))]


TINY = ["--profile", "demo", *as_flags(TINY_SIZES)]

# Per-stage values of a profile, where they differ from STAGE_DEFAULTS. The demo's short runs (a few
# hundred steps) need larger steps than the authors' 15k-step schedules; [] = no LR step.
PROFILE_STAGE_DEFAULTS = {
    "reference": {},
    "demo": {
        "grd": dict(
            num_epoch=13,
            lr_steps=[11],
            lr_sound_ground=3e-3,
            lr_grounding=3e-3,
            lr_frame_ground=3e-3,
        ),
        "col": dict(
            num_epoch=3,
            lr_steps=[],
            lr_sound_ground=1e-4,
            lr_grounding=1e-4,
            lr_frame_ground=1e-4,
            lr_sound=1e-3,
            lr_synthesizer=1e-3,
            lr_frame=1e-3,
        ),
        "ccol": dict(
            num_epoch=16,
            lr_steps=[13],
            lr_sound_ground=5e-4,
            lr_grounding=5e-4,
            lr_frame_ground=5e-4,
            lr_sound=5e-4,
            lr_synthesizer=5e-4,
            lr_frame=5e-4,
        ),
        # Sound of Pixels' SGD needs larger steps than Adam in a few hundred iterations.
        "sop": dict(
            num_epoch=12,
            lr_steps=[9],
            lr_sound=1e-2,
            lr_synthesizer=1e-2,
            lr_frame=1e-3,
        ),
        # As long as SoP's; Adam at the demo's COL rates, the classifier's too.
        "cosep": dict(
            num_epoch=12,
            lr_steps=[9],
            lr_sound=1e-3,
            lr_synthesizer=1e-3,
            lr_frame=1e-3,
            lr_classifier=1e-3,
        ),
    },
}

# Default run names (the scripts'), and the stage whose run initialises each stage
# (--init_from auto).
RUN_IDS = {
    "grd": "MUSIC_GRD",
    "col": "MUSIC_COL",
    "ccol": "MUSIC_CCoL",
    "sop": "MUSIC_SoP",
    "cosep": "MUSIC_CoSep",
}
PREVIOUS_STAGE = {"col": "grd", "ccol": "col"}
DEFAULT_STAGE, DEFAULT_PROFILE = "ccol", "reference"


def defaults_of(stage: str, profile: str) -> dict:
    """The table defaults of one stage under one profile (unknown names: none, argparse rejects
    them)."""
    return {
        **STAGE_DEFAULTS.get(stage, {}),
        **PROFILES.get(profile, {}),
        **PROFILE_STAGE_DEFAULTS.get(profile, {}).get(stage, {}),
    }


def _table_help(key: str) -> str:
    """'grd 0.0001, col 1e-05, ...; demo profile: grd 0.003, ...' for an option set per stage."""

    def show(value):
        if isinstance(value, list):
            return " ".join(map(str, value)) or "none"
        return f"{value:g}" if isinstance(value, float) else str(value)

    tables = [("", STAGE_DEFAULTS)] + [
        (f"{name} profile: ", table) for name, table in PROFILE_STAGE_DEFAULTS.items()
    ]
    parts = []
    for prefix, table in tables:
        values = [f"{stage} {show(row[key])}" for stage, row in table.items() if key in row]
        if values:
            parts.append(prefix + ", ".join(values))
    return "per stage: " + "; ".join(parts)


# What defines a trained model: a checkpoint loads only into nets built with these values
# (checkpoints.check_arch names the ones that differ).
ARCH_KEYS = (
    "num_mix",
    "num_channels",
    "unet_levels",
    "ngf",
    "vis_width",
    "vggish_width",
    "img_pool",
    "num_frames",
    "stride_frames",
    "frame_rate",
    "img_size",
    "aud_len",
    "aud_rate",
    "stft_frame",
    "stft_hop",
    "warp_bins",
    "log_freq",
    "binary_mask",
    "mask_thres",
    "loss",
    "weighted_loss",
    "spec_input",
    "ground_audio_norm",
)
DIAGNOSTICS = ("diag_true_labels", "diag_true_gate", "oracle_masks")
# Switches that older runs saved as 0/1 ints (upgrade_saved).
FORMER_INT_SWITCHES = ("log_freq", "binary_mask", "weighted_loss")
# Group titles; the options of these groups are EVAL_OPTIONS (below build_parser).
HARDWARE, EVALUATION = "hardware", "evaluation"
# The other options an evaluation chooses: where the run and the data are, its batch size (scores
# do not depend on it), what to do with a bad sample, and the oracle-mask diagnostic.
EVAL_ALSO = (
    *("mode", "id", "ckpt", "data_root", "list_val", "list_test", "list_sep", "batch_size"),
    *("on_error", "oracle_masks"),
)
# Index files a run reads when no --list_* names one: the root's own (dataset.layout.LIST_FILES).
DEFAULT_LISTS = {f"list_{name}": file for name, file in layout.LIST_FILES.items()}


def active_diagnostics(args) -> list[str]:
    """The diagnostic options a run or an evaluation uses: its numbers are not the method's."""
    return [name for name in DIAGNOSTICS if getattr(args, name, False)]


_TRUTH = {"1": True, "yes": True, "true": True, "0": False, "no": False, "false": False}


class Switch(argparse.BooleanOptionalAction):
    """The one style of boolean option: --x sets it, --no-x clears it.

    `--x 0|1` and `--x no|yes` parse too: the spelling of the former int and yes/no options,
    which scripts and tests still pass.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.nargs = "?"

    def __call__(self, parser, namespace, values, option_string=None):
        if values is None:
            return super().__call__(parser, namespace, values, option_string)
        if option_string.startswith("--no-") or values.lower() not in _TRUTH:
            raise argparse.ArgumentError(
                self, f"takes no value (or one of {', '.join(_TRUTH)}), got {values!r}"
            )
        setattr(namespace, self.dest, _TRUTH[values.lower()])


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    def _format_action_invocation(self, action):
        # '--amp, --no-amp', not '--amp [AMP], --no-amp [AMP]': the value is the old spelling.
        if isinstance(action, Switch):
            return ", ".join(action.option_strings)
        return super()._format_action_invocation(action)


def build_parser(
    stage: str = DEFAULT_STAGE, profile: str = DEFAULT_PROFILE
) -> argparse.ArgumentParser:
    """All options, with the defaults of `stage` under `profile` (those --help shows)."""
    p = argparse.ArgumentParser(
        description="Train or evaluate GRD / COL / CCoL / SoP / CoSep on MUSIC mixtures.",
        formatter_class=_HelpFormatter,
    )
    run = p.add_argument_group("run")
    run.add_argument(
        "--stage",
        default=DEFAULT_STAGE,
        choices=list(STAGE_DEFAULTS),
        help="grounding warm-up, co-learning, cyclic co-learning, or the Sound-of-Pixels or "
        "Co-Separation baseline",
    )
    run.add_argument(
        "--mode",
        default="train",
        choices=["train", "eval"],
        help="train the stage, or evaluate the trained run <ckpt>/<id> on --split",
    )
    run.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        choices=sorted(PROFILES),
        help="default sizes and schedules: the authors' ('reference') or the small "
        "CPU demo ('demo')",
    )
    run.add_argument(
        "--id",
        default="",
        help="run name; the run lives in <ckpt>/<id> ('' = "
        + ", ".join(f"{name} for {stage}" for stage, name in RUN_IDS.items())
        + ")",
    )
    run.add_argument("--ckpt", default="ckpt", help="folder holding all runs")
    run.add_argument(
        "--init_from",
        default="auto",
        help="run folder of the previous stage whose weights initialise this one; "
        "'auto' = "
        + ", ".join(f"<ckpt>/{RUN_IDS[prev]} for {stage}" for stage, prev in PREVIOUS_STAGE.items())
        + ", none for the other stages; 'none' = start from scratch",
    )
    run.add_argument(
        "--init_checkpoint",
        default="latest",
        choices=["latest", "best"],
        help="which checkpoint of --init_from: its last epoch (as the authors' "
        "scripts) or its best validation epoch",
    )
    run.add_argument(
        "--resume",
        action=Switch,
        default=False,
        help="continue from <run>/checkpoint_latest.pt if it exists (else start fresh)",
    )
    run.add_argument(
        "--seed", type=int, default=1234, help="seed of the data sampling and the nets' init"
    )

    data = p.add_argument_group("data")
    data.add_argument(
        "--data_root",
        default=os.environ.get("DATA_ROOT", "data/synthetic"),
        help="MUSIC data root (frames/, audio/, detection_results/, *.csv); env DATA_ROOT",
    )
    data.add_argument(
        "--list_train", default="", help="train index (default <data_root>/train.csv)"
    )
    data.add_argument("--list_val", default="", help="val index (default <data_root>/val.csv)")
    data.add_argument(
        "--list_test", default="", help="test video index (default <data_root>/test.csv)"
    )
    data.add_argument(
        "--list_sep", default="", help="test mixtures (default <data_root>/test_sep.csv)"
    )
    data.add_argument(
        "--num_mix",
        type=int,
        default=4,
        help="objects per sample: 4 for GRD/COL/CCoL/CoSep (2 sounding + 2 silent); SoP uses 2",
    )
    data.add_argument(
        "--num_frames", type=int, default=3, help="frames per object, around the clip's centre"
    )
    data.add_argument(
        "--stride_frames", type=int, default=1, help="extracted frames between two used frames"
    )
    data.add_argument("--frame_rate", type=float, default=1, help="fps of the extracted frames")
    data.add_argument(
        "--img_size", type=int, default=224, help="side of the square object crops (pixels)"
    )
    data.add_argument(
        "--box_rule",
        default="frame",
        choices=BOX_RULES,
        help="object box in each frame: the frame's top-scoring box of any class (frame, the "
        "authors' loader) or the box of the class the detector is surest of over the whole "
        "video (video: a silent instrument or false positive that wins a few frames does not "
        "replace the played one); a --crop_cache must be built with the same rule",
    )
    data.add_argument(
        "--aud_len", type=int, default=65535, help="clip length in samples (65535: ~6 s)"
    )
    data.add_argument("--aud_rate", type=int, default=11025, help="audio sample rate (Hz)")
    data.add_argument(
        "--dup_trainset", type=int, default=40, help="passes over the train list per epoch"
    )
    data.add_argument(
        "--dup_valset",
        type=int,
        default=1,
        help="passes over the val list, each with other fixed partners (more val mixtures)",
    )
    data.add_argument(
        "--color_jitter",
        type=float,
        default=0.0,
        help="training: random brightness, contrast and saturation per object in "
        "[1-x, 1+x] (0 = none, as the reference)",
    )
    data.add_argument(
        "--on_error",
        default="raise",
        choices=["raise", "skip"],
        help="bad sample: stop with an error naming the file, or skip it and count it",
    )
    data.add_argument(
        "--allow_test_leak",
        action=Switch,
        default=False,
        help="train even though the train list holds test videos (with a warning)",
    )

    spec = p.add_argument_group("spectrogram")
    spec.add_argument(
        "--stft_frame", type=int, default=1022, help="STFT window and FFT size (samples)"
    )
    spec.add_argument("--stft_hop", type=int, default=256, help="STFT hop (samples)")
    spec.add_argument(
        "--warp_bins", type=int, default=256, help="frequency bins after the log-frequency warp"
    )
    spec.add_argument(
        "--log_freq", action=Switch, default=True, help="warp the frequency axis to a log scale"
    )
    spec.add_argument(
        "--binary_mask", action=Switch, default=False, help="binary (SoP) instead of ratio masks"
    )
    spec.add_argument(
        "--mask_thres",
        type=float,
        default=0.5,
        help="binary masks: threshold of the predicted mask before the inverse STFT",
    )
    spec.add_argument(
        "--loss", default="l1", choices=sorted(LOSSES), help="separation loss on the masks"
    )
    spec.add_argument(
        "--weighted_loss",
        action=Switch,
        default=True,
        help="weight the mask loss by the log mixture magnitude",
    )
    spec.add_argument(
        "--spec_input",
        default="log1p",
        choices=["log1p", "log"],
        help="network input: log1p of the warped magnitude (CCoL) or its log "
        "(Sound of Pixels; the U-Net's input BatchNorm rescales either)",
    )

    # Each net has one architecture (models.build_nets); these options size and start them.
    model = p.add_argument_group("model")
    model.add_argument("--num_channels", type=int, default=32, help="audio-visual feature channels")
    model.add_argument(
        "--unet_levels",
        type=int,
        default=7,
        help="depth of the separation U-Net: its stride-2 levels (7: the authors' unet7)",
    )
    model.add_argument("--ngf", type=int, default=64, help="U-Net base width")
    model.add_argument(
        "--vis_width", type=int, default=64, help="ResNet-18 base width (64 = standard)"
    )
    model.add_argument(
        "--vggish_width", type=int, default=64, help="grounding audio CNN base width"
    )
    model.add_argument(
        "--img_pool",
        default="maxpool",
        choices=["maxpool", "avgpool"],
        help="pooling of the visual features over frames (and space, for separation)",
    )
    model.add_argument(
        "--sound_ground_init",
        default="default",
        choices=["default", "kaiming"],
        help="grounding audio CNN init: PyTorch default as the reference (tiny "
        "features at first), or Kaiming fan-in, on the visual features' scale "
        "(the demo uses it)",
    )
    model.add_argument(
        "--ground_audio_norm",
        default="none",
        choices=["none", "instance"],
        help="grounding audio input: as it is (the reference) or each spectrogram "
        "standardised (zero mean, unit variance)",
    )
    model.add_argument(
        "--grounding_init_std",
        type=float,
        default=1e-4,
        help="grounding MLP weight init N(0, std) as the reference; 0 = PyTorch "
        "default (no slow start; the demo uses it)",
    )
    model.add_argument(
        "--sound_init",
        default="default",
        choices=["default", "sop"],
        help="separation U-Net init: PyTorch's default (CCoL) or Sound of Pixels' "
        "(conv N(0, 1e-3), BatchNorm weight N(1, 0.02))",
    )
    model.add_argument(
        "--weights_imagenet",
        default=IMAGENET,
        help=f"ResNet-18 init: '{IMAGENET}' = torchvision's ImageNet weights "
        f"through its weights API (its cache under $TORCH_HOME, downloaded "
        f"there when online), a path of a torchvision resnet18 state_dict, or "
        f"'{NO_WEIGHTS}' (random init)",
    )
    model.add_argument(
        "--train_resnets",
        "--train_visual",
        action=Switch,
        default=None,
        help="train the ResNet-18 features, or freeze them (--no-train_resnets); None = only "
        "without ImageNet weights (with them they stay frozen, as in the paper). "
        "--train_visual yes|no: the former spelling",
    )
    model.add_argument(
        "--ground_map",
        default="pixelwise",
        choices=["pixelwise", "window"],
        help="grounding map: the head on each location of the ResNet's feature map (pixelwise), "
        "or on a detection-box-sized window cropped at each location and pooled as a crop "
        "(window: for nets that only ever saw object crops, such as the demo's)",
    )
    model.add_argument(
        "--map_size",
        type=int,
        default=0,
        help="height of the whole 4:3 frames that sounding maps and localization scores use "
        "(0: twice --img_size, as an instrument spans about half a MUSIC frame; -1: no maps)",
    )

    optim = p.add_argument_group("optimisation")
    optim.add_argument(
        "--batch_size",
        type=int,
        default=48,
        help="mixtures per step over all GPUs, whatever their number (the authors': "
        "4 GPUs x 12); each GPU gets batch_size / GPUs",
    )
    optim.add_argument(
        "--optimizer",
        default="adam",
        choices=["adam", "sgd"],
        help="Adam without weight decay (CCoL) or SGD with momentum (Sound of Pixels)",
    )
    optim.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (Adam's beta1)")
    optim.add_argument(
        "--weight_decay", type=float, default=0.0, help="L2 weight decay of every group"
    )
    optim.add_argument("--num_epoch", type=int, help="training epochs; " + _table_help("num_epoch"))
    for key, net in (
        ("lr_sound_ground", "grounding audio net"),
        ("lr_frame_ground", "grounding visual net"),
        ("lr_grounding", "grounding head"),
        ("lr_sound", "separation U-Net"),
        ("lr_frame", "separation visual net"),
        ("lr_synthesizer", "synthesizer"),
        ("lr_classifier", "CoSep classifier"),
    ):
        optim.add_argument(
            f"--{key}",
            type=float,
            help=f"learning rate of the {net} (None: not built); " + _table_help(key),
        )
    optim.add_argument(
        "--lr_steps",
        type=int,
        nargs="+",
        help="epochs after which every learning rate is multiplied by 0.1; "
        + _table_help("lr_steps"),
    )
    optim.add_argument(
        "--sync_bn",
        action=Switch,
        default=False,
        help="DDP on CUDA: BatchNorm statistics over all GPUs (off: per GPU, as the reference)",
    )

    method = p.add_argument_group("method")
    method.add_argument(
        "--silent_thres",
        type=float,
        default=0.1,
        help="CCoL: an unchosen object is labelled silent only if its mask error exceeds this",
    )
    method.add_argument(
        "--ccol_broadcast_bug",
        action=Switch,
        default=False,
        help="restore the reference's (B,)x(B,1) broadcast in CCoL's solo grounding loss",
    )
    method.add_argument(
        "--reference_bn_drift",
        action=Switch,
        default=False,
        help="as the authors' code: frozen ResNets' BatchNorm layers stay in train "
        "mode (batch statistics, running statistics updated), each object run "
        "through them separately",
    )
    method.add_argument(
        "--solo_grounding_weight",
        type=float,
        help="COL/CCoL: weight of the solo-track grounding losses (GRD's loss is "
        "these terms alone); " + _table_help("solo_grounding_weight"),
    )
    method.add_argument(
        "--mix_grounding_weight",
        type=float,
        help="COL/CCoL: weight of the mixture grounding losses; "
        + _table_help("mix_grounding_weight"),
    )
    method.add_argument(
        "--classifier_weight",
        type=float,
        help="CoSep: weight of the object-consistency loss (cross-entropy of the classifier on "
        "each object's separated spectrogram); " + _table_help("classifier_weight"),
    )

    hardware = p.add_argument_group(
        HARDWARE, "how a run computes, never what; an evaluation chooses its own"
    )
    hardware.add_argument(
        "--device", default="auto", help="'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1', ..."
    )
    hardware.add_argument(
        "--num_gpus",
        type=int,
        default=1,
        help="GPUs for DataParallel in one process (the original scripts' way); under "
        "torchrun (DDP, preferred) each process is one GPU and this stays 1",
    )
    hardware.add_argument(
        "--workers", type=int, default=8, help="DataLoader worker processes (per process)"
    )
    hardware.add_argument(
        "--crop_cache",
        default="",
        help="crop cache folder from scripts/cache_crops.py for this --img_size (top "
        "boxes; whole frames for --stage sop): the loader decodes no JPEG ('' = "
        "decode the frames)",
    )
    hardware.add_argument("--amp", action=Switch, default=False, help="bf16 autocast on CUDA")
    hardware.add_argument(
        "--compile", action=Switch, default=False, help="torch.compile the stage module"
    )
    hardware.add_argument(
        "--channels_last",
        action=Switch,
        default=False,
        help="conv nets in channels-last memory format (CUDA with --amp: faster convolutions)",
    )

    evaluation = p.add_argument_group(
        EVALUATION,
        "what is scored and how. An evaluation of a trained run (--mode eval) chooses these, "
        f"the {HARDWARE} options and "
        + ", ".join("--" + key for key in EVAL_ALSO)
        + "; every other option is the run's, from its args.json",
    )
    evaluation.add_argument(
        "--split", default="test", choices=["val", "test"], help="split evaluated in eval mode"
    )
    evaluation.add_argument(
        "--num_val",
        type=int,
        default=-1,
        help="mixtures scored by every evaluation, whatever its split: each validation, "
        "--test_every's test scores and --mode eval's --split (-1: all)",
    )
    evaluation.add_argument(
        "--test_clips",
        type=int,
        default=1,
        help="clip positions per evaluation video, spread over the video: each test_sep.csv row "
        "is scored K times, and val repeats (--dup_valset) cycle through the K positions "
        "(1, the default: the authors' single centre clip)",
    )
    evaluation.add_argument(
        "--num_vis", type=int, default=40, help="samples shown in the HTML visualization"
    )
    evaluation.add_argument(
        "--metrics_backend",
        default="fast",
        choices=["fast", "mir_eval"],
        help="SDR/SIR/SAR implementation (fast agrees with mir_eval within 0.01 dB)",
    )
    evaluation.add_argument(
        "--eval_silent",
        action=Switch,
        default=False,
        help="silent-object evaluation: leakage into silent slots, masks gated by grounding "
        "where the stage grounds (CoSep's are scored as they are)",
    )

    diag = p.add_argument_group(
        "diagnostics",
        "off by default; each replaces one link of the cycle by the truth, to see which link "
        "limits a recipe (docs/method.md, 'Diagnostic ladder'). Runs and results that use one "
        "are labelled as diagnostics.",
    )
    diag.add_argument(
        "--diag_true_labels",
        action=Switch,
        default=False,
        help="CCoL: train grounding with the true sounding labels instead of the ones separation "
        "chooses",
    )
    diag.add_argument(
        "--diag_true_gate",
        action=Switch,
        default=False,
        help="COL/CCoL: gate the separation loss with the true sounding objects instead of "
        "mixture grounding",
    )
    diag.add_argument(
        "--oracle_masks",
        action=Switch,
        default=False,
        help="evaluation: separate with the ideal masks (mixture x true mask) instead of the "
        "model's: the ceiling of the masks at these spectrogram sizes",
    )

    log = p.add_argument_group("logging")
    log.add_argument(
        "--disp_iter", type=int, default=20, help="log the running losses every this many steps"
    )
    log.add_argument(
        "--eval_epoch", type=int, default=1, help="validate every this many epochs (and the last)"
    )
    log.add_argument(
        "--best_by",
        default="loss",
        choices=["loss", "sdr"],
        help="checkpoint_best: lowest validation loss (the reference) or highest "
        "validation SDR (COL, CCoL, SoP; GRD always uses the loss)",
    )
    log.add_argument(
        "--test_every",
        type=int,
        default=0,
        help="learning curves: also score the test mixtures every N epochs into "
        "history.json's 'test' (never used for checkpoint choice; 0 = never)",
    )
    p.set_defaults(**defaults_of(stage, profile))
    return p


def _group_options(title: str) -> tuple[str, ...]:
    """The options of the --help group `title` (argparse has no public API for groups)."""
    (group,) = [g for g in build_parser()._action_groups if g.title == title]
    return tuple(action.dest for action in group._group_actions)


# What an evaluation of a trained run (--mode eval, separation.load_run) chooses: the options of
# the hardware and evaluation groups and EVAL_ALSO. Every other option is the run's, read back
# from its args.json, so that a run is evaluated as it was trained; a command line that sets one
# otherwise is refused.
EVAL_OPTIONS = (*EVAL_ALSO, *_group_options(HARDWARE), *_group_options(EVALUATION))


# The lowest value of each numeric option (inclusive; None options are nets a stage does not build).
# A zero or negative size, step, period or rate would otherwise fail deep inside torch after the
# run has started, or train: a negative learning rate climbs the loss.
MINIMA = {
    **dict.fromkeys(
        ("num_gpus", "batch_size", "num_frames", "stride_frames", "img_size", "aud_len"), 1
    ),
    **dict.fromkeys(("aud_rate", "dup_trainset", "dup_valset", "test_clips", "stft_hop"), 1),
    **dict.fromkeys(("warp_bins", "num_channels", "ngf", "vis_width", "vggish_width"), 1),
    **dict.fromkeys(("disp_iter", "eval_epoch"), 1),
    **dict.fromkeys(("workers", "num_epoch", "test_every", "num_vis", "weight_decay"), 0),
    **dict.fromkeys(("silent_thres", "grounding_init_std"), 0),
    **dict.fromkeys(("solo_grounding_weight", "mix_grounding_weight", "classifier_weight"), 0),
    **dict.fromkeys(
        ("lr_sound_ground", "lr_frame_ground", "lr_grounding", "lr_sound", "lr_frame"), 0
    ),
    **dict.fromkeys(("lr_synthesizer", "lr_classifier"), 0),
    "unet_levels": 2,
    "stft_frame": 2,
    "map_size": -1,
    "num_val": -1,
}
# Options in [0, 1].
UNIT_RANGE = ("mask_thres", "momentum", "color_jitter")


def _validate(args: argparse.Namespace) -> None:
    """Every option in its range, checked once at parse time; the error names the option."""

    def refuse(name, rule):
        raise SystemExit(f"--{name} {getattr(args, name)}: {rule}")

    for name, lowest in MINIMA.items():
        value = getattr(args, name, None)
        if value is not None and value < lowest:
            refuse(name, f"must be at least {lowest}")
    for name in UNIT_RANGE:
        if not 0 <= getattr(args, name) <= 1:
            refuse(name, "must lie in [0, 1]")
    if args.frame_rate <= 0:
        refuse("frame_rate", "must be positive")
    if args.num_val == 0:
        refuse("num_val", "must be -1 (all) or at least 1")
    if any(step < 1 for step in args.lr_steps or ()):
        refuse("lr_steps", "epochs must be at least 1")
    if args.stft_hop > args.stft_frame:
        refuse("stft_hop", f"must not exceed --stft_frame {args.stft_frame}")
    if args.aud_len < args.stft_frame:
        refuse("aud_len", f"a clip must hold one STFT window (--stft_frame {args.stft_frame})")
    if args.stage != "grd":  # the U-Net halves both axes of the spectrogram at every level
        levels = args.unet_levels
        factor, frames = 2**levels, 1 + args.aud_len // args.stft_hop
        bins = args.warp_bins if args.log_freq else args.stft_frame // 2 + 1
        if frames % factor:
            refuse(
                "aud_len",
                f"gives 1 + aud_len // stft_hop = {frames} STFT frames, which a {levels}-level "
                f"U-Net needs divisible by {factor} (e.g. --aud_len "
                f"{-(-frames // factor) * factor * args.stft_hop - 1})",
            )
        if bins % factor:
            refuse(
                "warp_bins" if args.log_freq else "stft_frame",
                f"gives {bins} frequency bins, which a {levels}-level U-Net needs divisible by "
                f"{factor}",
            )


def _resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Derived values, computed once here; nothing writes args afterwards."""
    _validate(args)
    if not args.id:
        args.id = RUN_IDS[args.stage]
    if args.init_from == "auto":
        previous = PREVIOUS_STAGE.get(args.stage)
        args.init_from = os.path.join(args.ckpt, RUN_IDS[previous]) if previous else ""
    elif args.init_from == "none":
        args.init_from = ""
    for key, name in DEFAULT_LISTS.items():
        setattr(args, key, getattr(args, key) or os.path.join(args.data_root, name))
    if args.stage == "sop":
        if args.num_mix != 2:
            raise SystemExit(
                f"--stage sop mixes 2 whole-frame videos; got --num_mix {args.num_mix}"
            )
    elif args.num_mix != 4:
        raise SystemExit(f"--stage {args.stage} needs --num_mix 4 (2 sounding + 2 silent objects)")
    # One global batch whatever the GPU count: DataParallel splits it over --num_gpus inside one
    # process, torchrun starts WORLD_SIZE processes of one GPU each.
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and args.num_gpus > 1:
        raise SystemExit(
            f"--num_gpus {args.num_gpus} is DataParallel inside one process; under "
            f"torchrun each of the {world_size} processes is one GPU: leave "
            f"--num_gpus at 1"
        )
    gpus = max(world_size, args.num_gpus)
    if args.batch_size % gpus:
        raise SystemExit(f"--batch_size {args.batch_size} does not split evenly over {gpus} GPUs")
    args.batch_size_per_gpu = args.batch_size // gpus
    args.map_height = 2 * args.img_size if args.map_size == 0 else max(args.map_size, 0)
    if args.weights_imagenet == IMAGENET and args.vis_width != 64:
        raise SystemExit(
            f"ImageNet ResNet-18 weights need --vis_width 64 (got {args.vis_width}); "
            f"pass --weights_imagenet {NO_WEIGHTS} for narrower random-init ResNets, or the "
            f"path of weights of that width (scripts/pretrain_visual.py)"
        )
    if args.train_resnets is None:
        args.train_resnets = not has_weights(args.weights_imagenet)
    args.run_dir = os.path.join(args.ckpt, args.id)
    return args


def stage_and_profile(argv=None) -> tuple[str, str]:
    """--stage and --profile alone, so that the parser is built with their defaults."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--stage", default=DEFAULT_STAGE)
    pre.add_argument("--profile", default=DEFAULT_PROFILE)
    known, _ = pre.parse_known_args(argv)
    return known.stage, known.profile


def saved_args(run_dir: str) -> dict:
    """The arguments a run was trained with, from its args.json."""
    path = os.path.join(run_dir, "args.json")
    if not os.path.isdir(run_dir):
        raise SystemExit(
            f"no run folder {run_dir}: train first or pass --id/--ckpt of a trained run"
        )
    if not os.path.isfile(path):
        raise SystemExit(f"{path} not found: is {run_dir} a trained run?")
    try:
        with open(path) as f:
            return upgrade_saved(json.load(f))
    except (OSError, ValueError) as err:
        raise SystemExit(f"{path} is unreadable ({err})") from err


def upgrade_saved(saved: dict) -> dict:
    """The arguments of a run saved by an older version, in today's option names and types.

    Older runs name the U-Net depth --arch_sound unetK (--unet_levels came later), save the
    switches --log_freq, --binary_mask and --weighted_loss as 0/1, and --train_resnets as
    --train_visual yes/no (resolved). Options a run predates otherwise take their defaults
    (arguments._evaluated_run, checkpoints.check_arch).
    """
    saved = dict(saved)
    depth = str(saved.get("arch_sound", ""))[len("unet") :]
    if "unet_levels" not in saved and depth.isdigit():
        saved["unet_levels"] = int(depth)
    if "train_resnets" not in saved and saved.get("train_visual") in ("yes", "no"):
        saved["train_resnets"] = saved["train_visual"] == "yes"
    for key in FORMER_INT_SWITCHES:
        if saved.get(key) in (0, 1):
            saved[key] = bool(saved[key])
    return saved


def _shown(value) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value)) or "none"
    return str(value)


def _evaluated_run(args: argparse.Namespace, argv) -> argparse.Namespace:
    """The run <ckpt>/<id> as it was trained, with the EVAL_OPTIONS the command line gives.

    An option the run's args.json lacks (added after it was trained) had its default under the
    run's stage and profile. Any other option given with a value other than the run's is refused.
    """
    run_id = args.id or RUN_IDS[args.stage]
    run_dir = os.path.join(args.ckpt, run_id)
    saved = saved_args(run_dir)
    parser = build_parser(saved.get("stage", DEFAULT_STAGE), saved.get("profile", DEFAULT_PROFILE))
    defaults = vars(parser.parse_args([]))
    # Parsed over placeholders: what is still a placeholder was not on the command line.
    unset = object()
    given = {
        key: value
        for key, value in vars(
            parser.parse_args(argv, argparse.Namespace(**dict.fromkeys(defaults, unset)))
        ).items()
        if value is not unset
    }
    run = {**defaults, **{key: value for key, value in saved.items() if key in defaults}}
    conflicts = [
        f"--{key}: given {_shown(value)}, the run's {_shown(run[key])}"
        for key, value in given.items()
        if key not in EVAL_OPTIONS and value != run[key]
    ]
    if conflicts:
        raise SystemExit(
            f"{run_dir} was trained with other values ({'; '.join(conflicts)}). An evaluation "
            f"takes every option from {os.path.join(run_dir, 'args.json')} except "
            f"{', '.join('--' + key for key in EVAL_OPTIONS)}: leave these out"
        )
    for key in ("list_val", "list_test", "list_sep"):
        # The run root's own index files follow --data_root when the data has moved.
        if key not in given and run[key] == os.path.join(run["data_root"], DEFAULT_LISTS[key]):
            run[key] = ""
    chosen = {key: value for key, value in given.items() if key in EVAL_OPTIONS}
    return argparse.Namespace(**{**run, **chosen, "mode": "eval", "ckpt": args.ckpt, "id": run_id})


def parse_args(argv=None) -> argparse.Namespace:
    """The resolved arguments: of a training run from the command line; of an evaluation
    (--mode eval), the trained run's own with the command line's EVAL_OPTIONS."""
    args = build_parser(*stage_and_profile(argv)).parse_args(argv)
    return _resolve(_evaluated_run(args, argv) if args.mode == "eval" else args)
