#!/usr/bin/env bash
# Stage 3: cyclic co-learning, initialised from the COL run (reference: 60 epochs, every lr 1e-4,
# x0.1 at epochs 30 and 50). Variables as train_grd.sh plus INIT (COL run folder).
source "$(dirname "$0")/_env.sh"
run_main --stage ccol --id "${ID:-MUSIC_CCoL}" --ckpt "$CKPT" --data_root "$DATA_ROOT" --profile "$PROFILE" \
  --init_from "${INIT:-$CKPT/MUSIC_COL}" --num_epoch "${EPOCHS:-60}" --lr_steps ${LR_STEPS:-30 50} \
  --lr_sound_ground 1e-4 --lr_grounding 1e-4 --lr_sound 1e-4 --lr_synthesizer 1e-4 --lr_frame 1e-4 \
  --lr_frame_ground 1e-4 "$@"
