"""Command-line configuration: every option of main.py, grouped, with the reference defaults.

Defaults reproduce the authors' scripts (reference_method.md §1.10, §8). `--profile demo` swaps in a
small-compute configuration (narrow nets, short clips, small crops) that keeps the method the same
and trains on two CPU cores in minutes. The resolved arguments are saved to `ckpt/<id>/args.json`;
evaluation reads the architecture back from there.
"""
from __future__ import annotations

import argparse
import os

# Small-compute profile used by scripts/demo.sh on CPU. Only sizes change: same nets, losses, stages.
PROFILES = {
    "reference": {},
    "demo": dict(
        img_size=32, num_frames=2, aud_len=8191, stft_frame=510, stft_hop=128, warp_bins=64,
        arch_sound="unet6", unet_levels=6, ngf=8, vis_width=8, vggish_width=8,
        batch_size_per_gpu=32, dup_trainset=25, dup_valset=8, workers=1, num_val=64, num_vis=12,
        disp_iter=20,
        grounding_init_std=0.0, sound_ground_init="kaiming",
    ),
}

# What defines a trained model. Evaluation and later stages take these from the run's args.json,
# so a user never has to repeat architecture flags (and cannot get them wrong).
ARCH_KEYS = (
    "num_mix", "arch_sound_ground", "arch_frame_ground", "arch_sound", "arch_frame",
    "arch_synthesizer", "arch_grounding", "num_channels", "unet_levels", "ngf", "vis_width",
    "vggish_width", "img_pool", "num_frames", "stride_frames", "frame_rate", "img_size",
    "aud_len", "aud_rate", "stft_frame", "stft_hop", "warp_bins", "log_freq", "binary_mask",
    "mask_thres", "loss", "weighted_loss", "spec_input",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train or evaluate GRD / COL / CCoL / SoP on MUSIC mixtures.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run = p.add_argument_group("run")
    run.add_argument("--stage", default="ccol", choices=["grd", "col", "ccol", "sop"],
                     help="grounding warm-up, co-learning, cyclic co-learning, or the Sound-of-Pixels baseline")
    run.add_argument("--mode", default="train", choices=["train", "eval"])
    run.add_argument("--profile", default="reference", choices=sorted(PROFILES),
                     help="default sizes: the authors' ('reference') or the small CPU demo ('demo')")
    run.add_argument("--id", default="", help="run name; the run lives in <ckpt>/<id> (default: MUSIC_<STAGE>)")
    run.add_argument("--ckpt", default="ckpt", help="folder holding all runs")
    run.add_argument("--init_from", default="",
                     help="run folder of the previous stage whose best weights initialise this one")
    run.add_argument("--resume", action="store_true",
                     help="continue from <run>/checkpoint_latest.pt if it exists (else start fresh)")
    run.add_argument("--seed", type=int, default=1234)
    run.add_argument("--device", default="auto", help="'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1', ...")
    run.add_argument("--num_gpus", type=int, default=1,
                     help="GPUs for DataParallel (the original scripts' way); prefer torchrun for DDP")
    run.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA")
    run.add_argument("--compile", action="store_true", help="torch.compile the stage module")
    run.add_argument("--channels_last", action="store_true",
                     help="conv nets in channels-last memory format (CUDA with --amp: faster convolutions)")
    run.add_argument("--sync_bn", action="store_true",
                     help="DDP on CUDA: BatchNorm statistics over all GPUs (default: per GPU, as the reference)")

    data = p.add_argument_group("data")
    data.add_argument("--data_root", default=os.environ.get("DATA_ROOT", "data/synthetic"),
                      help="MUSIC data root (frames/, audio/, detection_results/, *.csv); env DATA_ROOT")
    data.add_argument("--list_train", default="", help="train index (default <data_root>/train.csv)")
    data.add_argument("--list_val", default="", help="val index (default <data_root>/val.csv)")
    data.add_argument("--list_test", default="", help="test video index (default <data_root>/test.csv)")
    data.add_argument("--list_sep", default="", help="test mixtures (default <data_root>/test_sep.csv)")
    data.add_argument("--split", default="test", choices=["val", "test"], help="split evaluated in eval mode")
    data.add_argument("--num_mix", type=int, default=4,
                      help="objects per sample: 4 for GRD/COL/CCoL (2 sounding + 2 silent); SoP uses 2")
    data.add_argument("--num_frames", type=int, default=3)
    data.add_argument("--stride_frames", type=int, default=1)
    data.add_argument("--frame_rate", type=float, default=1, help="fps of the extracted frames")
    data.add_argument("--img_size", type=int, default=224)
    data.add_argument("--aud_len", type=int, default=65535)
    data.add_argument("--aud_rate", type=int, default=11025)
    data.add_argument("--dup_trainset", type=int, default=40, help="passes over the train list per epoch")
    data.add_argument("--dup_valset", type=int, default=1,
                      help="passes over the val list, each with other fixed partners (more val mixtures)")
    data.add_argument("--batch_size_per_gpu", type=int, default=12)
    data.add_argument("--workers", type=int, default=8)
    data.add_argument("--num_val", type=int, default=-1, help="mixtures evaluated (-1: all)")
    data.add_argument("--crop_cache", default="",
                      help="crop cache folder from scripts/cache_crops.py for this --img_size (top boxes; whole "
                           "frames for --stage sop): the loader decodes no JPEG ('' = decode the frames)")
    data.add_argument("--on_error", default="raise", choices=["raise", "skip"],
                      help="bad sample: stop with an error naming the file, or skip it and count it")
    data.add_argument("--allow_test_leak", action="store_true",
                      help="train even though test videos are also listed in the train list (a warning)")

    spec = p.add_argument_group("spectrogram")
    spec.add_argument("--stft_frame", type=int, default=1022)
    spec.add_argument("--stft_hop", type=int, default=256)
    spec.add_argument("--warp_bins", type=int, default=256, help="frequency bins after the log-frequency warp")
    spec.add_argument("--log_freq", type=int, default=1)
    spec.add_argument("--binary_mask", type=int, default=0, help="binary (SoP) instead of ratio masks")
    spec.add_argument("--mask_thres", type=float, default=0.5)
    spec.add_argument("--loss", default="l1", choices=["l1", "l2", "bce"])
    spec.add_argument("--weighted_loss", type=int, default=1)
    spec.add_argument("--spec_input", default="log1p", choices=["log1p", "log"],
                      help="network input: log1p of the warped magnitude (CCoL) or its log "
                           "(Sound of Pixels; the U-Net's input BatchNorm rescales either)")

    model = p.add_argument_group("model")
    model.add_argument("--arch_sound_ground", default="vggish")
    model.add_argument("--arch_frame_ground", default="resnet18")
    model.add_argument("--arch_sound", default="unet7")
    model.add_argument("--arch_frame", default="resnet18dilated")
    model.add_argument("--arch_synthesizer", default="linear")
    model.add_argument("--arch_grounding", default="base")
    model.add_argument("--num_channels", type=int, default=32, help="audio-visual feature channels")
    model.add_argument("--unet_levels", type=int, default=7)
    model.add_argument("--ngf", type=int, default=64, help="U-Net base width")
    model.add_argument("--vis_width", type=int, default=64, help="ResNet-18 base width (64 = standard)")
    model.add_argument("--vggish_width", type=int, default=64, help="grounding audio CNN base width")
    model.add_argument("--img_pool", default="maxpool", choices=["maxpool", "avgpool"])
    model.add_argument("--sound_ground_init", default="default", choices=["default", "kaiming"],
                       help="grounding audio CNN init: PyTorch default as the reference (tiny features "
                            "at first), or Kaiming fan-in, on the visual features' scale (the demo uses it)")
    model.add_argument("--grounding_init_std", type=float, default=1e-4,
                       help="grounding MLP weight init N(0, std) as the reference; 0 = PyTorch default "
                            "(no slow start; the demo uses it)")
    model.add_argument("--sound_init", default="default", choices=["default", "sop"],
                       help="separation U-Net init: PyTorch's default (CCoL) or Sound of Pixels' "
                            "(conv N(0, 1e-3), BatchNorm weight N(1, 0.02))")
    model.add_argument("--weights_imagenet", default="",
                       help="local torchvision resnet18 ImageNet .pth (nothing is downloaded)")
    model.add_argument("--train_visual", default="auto", choices=["auto", "yes", "no"],
                       help="fine-tune the ResNet features; auto = only when no ImageNet weights are given")

    optim = p.add_argument_group("optimisation")
    optim.add_argument("--optimizer", default="adam", choices=["adam", "sgd"],
                       help="Adam without weight decay (CCoL) or SGD with momentum (Sound of Pixels)")
    optim.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (Adam's beta1)")
    optim.add_argument("--weight_decay", type=float, default=0.0)
    optim.add_argument("--num_epoch", type=int, default=60)
    optim.add_argument("--lr_sound_ground", type=float, default=1e-4)
    optim.add_argument("--lr_frame_ground", type=float, default=1e-4)
    optim.add_argument("--lr_sound", type=float, default=1e-4)
    optim.add_argument("--lr_frame", type=float, default=1e-4)
    optim.add_argument("--lr_synthesizer", type=float, default=1e-4)
    optim.add_argument("--lr_grounding", type=float, default=1e-4)
    optim.add_argument("--lr_steps", type=int, nargs="+", default=[30, 50], help="epochs where every lr ×0.1")

    method = p.add_argument_group("method")
    method.add_argument("--silent_thres", type=float, default=0.1,
                        help="CCoL: an unchosen object is labelled silent only if its mask error exceeds this")
    method.add_argument("--ccol_broadcast_bug", action="store_true",
                        help="restore the reference's (B,)x(B,1) broadcast in CCoL's solo grounding loss")
    method.add_argument("--reference_bn_drift", action="store_true",
                        help="let frozen ResNets' BatchNorm statistics update in training, as the reference")
    method.add_argument("--eval_silent", action="store_true",
                        help="silent-object evaluation: masks gated by grounding, leakage into silent slots")
    method.add_argument("--metrics_backend", default="fast", choices=["fast", "mir_eval"],
                        help="SDR/SIR/SAR implementation (fast agrees with mir_eval within 0.01 dB)")

    log = p.add_argument_group("logging")
    log.add_argument("--disp_iter", type=int, default=20)
    log.add_argument("--eval_epoch", type=int, default=1)
    log.add_argument("--best_by", default="loss", choices=["loss", "sdr"],
                     help="checkpoint_best: lowest validation loss (the reference) or highest validation SDR "
                          "(COL, CCoL, SoP; GRD always uses the loss)")
    log.add_argument("--num_vis", type=int, default=40, help="samples shown in the HTML visualization")
    return p


def _resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Derived values, computed once here; nothing writes args afterwards."""
    if not args.id:
        args.id = f"MUSIC_{args.stage.upper()}"
    root = args.data_root
    args.list_train = args.list_train or os.path.join(root, "train.csv")
    args.list_val = args.list_val or os.path.join(root, "val.csv")
    args.list_test = args.list_test or os.path.join(root, "test.csv")
    args.list_sep = args.list_sep or os.path.join(root, "test_sep.csv")
    if args.stage == "sop":
        if args.num_mix != 2:
            raise SystemExit(f"--stage sop mixes 2 whole-frame videos; got --num_mix {args.num_mix}")
    elif args.num_mix != 4:
        raise SystemExit(f"--stage {args.stage} needs --num_mix 4 (2 sounding + 2 silent objects)")
    if args.train_visual == "auto":
        args.train_visual = "no" if args.weights_imagenet else "yes"
    args.run_dir = os.path.join(args.ckpt, args.id)
    return args


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    pre, _ = parser.parse_known_args(argv)
    parser.set_defaults(**PROFILES[pre.profile])
    if pre.stage == "sop":
        # Sound of Pixels as its public scripts configure it (reference_method.md §9), on 1 fps frames:
        # 2 whole-frame videos, binary masks, BCE, frames 3 s apart, higher learning rates.
        # Its optimiser too: SGD (momentum 0.9, weight decay 1e-4), log-magnitude input, its init.
        parser.set_defaults(num_mix=2, binary_mask=1, loss="bce", stride_frames=3,
                            lr_sound=1e-3, lr_synthesizer=1e-3, lr_frame=1e-4, optimizer="sgd",
                            weight_decay=1e-4, spec_input="log", sound_init="sop")
    return _resolve(parser.parse_args(argv))
