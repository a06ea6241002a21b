#!/usr/bin/env bash
# Co-Separation baseline: one mask per object (2 objects per pseudo-video, as CCoL's), the masks of
# each pseudo-video summed against its sound, plus a classifier on every separated spectrogram.
# Every hyperparameter is arguments.py's: as Co-Separation's published command, 150 epochs (its
# 35000 batches), Adam with weight decay 1e-4, lr_sound/lr_synthesizer/lr_classifier 1e-4,
# lr_frame 1e-5, classifier loss x 0.05, x0.1 after epochs 64 and 128, batch 80. It starts from
# scratch (no earlier stage). Variables as train_grd.sh.
source "$(dirname "$0")/_env.sh"
run_main --stage cosep --id "${ID:-MUSIC_CoSep}" --ckpt "$CKPT" --data_root "$DATA_ROOT" \
  --profile "$PROFILE" ${EPOCHS:+--num_epoch "$EPOCHS"} ${LR_STEPS:+--lr_steps $LR_STEPS} "$@"
