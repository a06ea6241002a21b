"""Stage modules: losses are finite and fall when overfitting one batch; CCoL labels; gating."""

import dataclasses
import logging

import pytest
import torch

from arguments import TINY, parse_args
from stages import COL, STAGES, CCoL, StageConfig
from training import build_nets, frozen_modules, param_groups

logging.disable(logging.WARNING)


def tiny_args(stage, *extra):
    return parse_args([*TINY, "--data_root", "/nonexistent", "--stage", stage, *extra])


def fake_batch(args, batch_size=4, seed=0):
    """Sources with distinct spectra per object, so masks can actually be learned."""
    g = torch.Generator().manual_seed(seed)
    B, N, L = batch_size, args.num_mix, args.aud_len
    t = torch.arange(L) / args.aud_rate
    freqs = torch.tensor([220.0, 660.0, 1320.0, 2640.0])[:N]
    audios = 0.25 * torch.sin(
        2 * torch.pi * freqs[None, :, None] * t * (1 + 0.1 * torch.rand(B, N, 1, generator=g))
    )
    sounding = torch.ones(B, N, dtype=torch.bool)
    if args.stage != "sop":
        sounding[:, 1::2] = False
        audios = audios * sounding[..., None]
    frames = torch.randint(
        0,
        255,
        (B, N, 3, args.num_frames, args.img_size, args.img_size),
        generator=g,
        dtype=torch.uint8,
    )
    return {"audios": audios, "mix": audios.sum(1), "frames": frames, "sounding": sounding}


@pytest.mark.slow  # trains each stage for a few dozen steps
@pytest.mark.parametrize("stage", ["grd", "col", "ccol", "sop"])
def test_loss_finite_and_falls_when_overfitting(stage):
    torch.manual_seed(0)
    args = tiny_args(
        stage,
        "--lr_sound_ground",
        "1e-3",
        "--lr_grounding",
        "1e-3",
        "--lr_sound",
        "1e-3",
        "--lr_synthesizer",
        "1e-3",
        "--lr_frame",
        "1e-3",
        "--lr_frame_ground",
        "1e-3",
    )
    nets = build_nets(args)
    model = STAGES[stage](nets, StageConfig.from_args(args), frozen=frozen_modules(nets, args))
    optimizer = torch.optim.Adam(param_groups(nets, args))
    batch = fake_batch(args)
    steps, out = fit(model, batch, optimizer, steps=25)
    history = [losses["total"] for losses in steps]
    assert min(history[-5:]) < 0.8 * history[0], history
    if stage != "grd":
        assert out["pred_masks"].shape == (4, args.num_mix, 1, args.warp_bins, 32)
        assert ((out["pred_masks"] >= 0) & (out["pred_masks"] <= 1)).all()
    if stage != "sop":
        model.eval()
        with torch.no_grad():
            _, out = model(batch)
        assert out["sounding_prob"].shape == (4, 4) and out["solo_prob"].shape == (4, 4)


def test_grounding_grid_without_mixture_row_is_the_solo_rows():
    """GRD training skips the mixture row; the solo rows must be exactly those of the full grid."""
    torch.manual_seed(0)
    args = tiny_args("grd")
    model = STAGES["grd"](build_nets(args), StageConfig.from_args(args)).eval()
    with torch.no_grad():
        spec, frames = model.prepare(fake_batch(args))
        full = model.grounding_grid(spec, frames)
        solo = model.grounding_grid(spec, frames, with_mixture=False)
    assert full.shape == (4, 3, args.num_mix, 2) and solo.shape == (4, 2, args.num_mix, 2)
    torch.testing.assert_close(solo, full[:, 1:])


def test_stage_config_takes_what_the_stages_read_as_typed_frozen_values():
    args = tiny_args("ccol", "--weighted_loss", "0")
    config = StageConfig.from_args(args)
    assert config.weighted_loss is False and config.log_freq is True  # the 0/1 int flags
    assert config.solo_grounding_weight == args.solo_grounding_weight == 0.5
    assert StageConfig(**dataclasses.asdict(config)) == config  # tests may build it by keyword
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.silent_thres = 0.2


def _ccol(*extra):
    args = tiny_args("ccol", *extra)
    return CCoL(build_nets(args), StageConfig.from_args(args)), args


def test_ccol_label_choice_and_silent_threshold_by_hand():
    """d = weighted L1 of each object's mask against its pseudo-video target (weight 1 here)."""
    model, args = _ccol("--weighted_loss", "0")
    F_, T_ = 2, 2
    gt = torch.zeros(2, 4, 1, F_, T_)
    gt[:, 0], gt[:, 2] = 1.0, 0.5  # pseudo-video A target 1, B target 0.5
    masks = torch.zeros(2, 4, 1, F_, T_)
    # sample 0: A: object 0 error 0.05, object 1 error 0.5  -> 0 sounds; 1 silent (0.5 > 0.1)
    #           B: object 2 error 0.3,  object 3 error 0.05 -> 3 sounds; 2 silent (0.3 > 0.1)
    # sample 1: A: object 0 error 0.2, object 1 error 0.08  -> 1 sounds; 0 silent (0.2 > 0.1)
    #           B: object 2 error 0.0,  object 3 error 0.05 -> 2 sounds; 3 NOT labelled (0.05 < 0.1)
    errors = torch.tensor([[0.05, 0.5, 0.3, 0.05], [0.2, 0.08, 0.0, 0.05]])
    targets = gt[:, [0, 0, 2, 2]]
    masks = targets - errors[..., None, None, None]
    spec = {"gt_masks": gt, "weight": torch.ones(2, 1, F_, T_)}
    w_pos, w_neg = model.sounding_labels(masks, spec)
    assert w_pos.tolist() == [[1, 0, 0, 1], [0, 1, 1, 0]]
    assert w_neg.tolist() == [[0, 1, 1, 0], [1, 0, 0, 0]]


def test_ccol_broadcast_flag_restores_reference_loss():
    """With the flag the solo positive is mean(CE_pos)*mean(r1) + mean(CE_pos1)*mean(1-r1)."""
    ce_sounding = torch.rand(3, 3, 4)
    ce_silent = torch.rand(3, 3, 4)
    masks = torch.rand(3, 4, 1, 2, 2)
    spec = {"gt_masks": torch.rand(3, 4, 1, 2, 2), "weight": torch.ones(3, 1, 2, 2)}
    fixed, _ = _ccol()
    buggy, _ = _ccol("--ccol_broadcast_bug")
    w_pos, _ = fixed.sounding_labels(masks, spec)
    r1 = w_pos[:, 0]
    pos, pos1, neg = ce_sounding[:, 1, 0], ce_sounding[:, 1, 1], ce_silent[:, 2, 0].mean()
    got_fixed = fixed.grounding_losses(ce_sounding, ce_silent, masks, spec)["grd_solo"]
    got_buggy = buggy.grounding_losses(ce_sounding, ce_silent, masks, spec)["grd_solo"]
    torch.testing.assert_close(got_fixed, (r1 * pos + (1 - r1) * pos1).mean() + neg)
    torch.testing.assert_close(
        got_buggy, pos.mean() * r1.mean() + pos1.mean() * (1 - r1).mean() + neg
    )


def test_gating_selects_masks_by_mixture_grounding():
    args = tiny_args("col", "--weighted_loss", "0")
    model = COL(build_nets(args), StageConfig.from_args(args))
    gt = torch.zeros(1, 4, 1, 2, 2)
    gt[:, 0], gt[:, 2] = 1.0, 1.0
    spec = {"gt_masks": gt, "weight": torch.ones(1, 1, 2, 2)}
    masks = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(1, 4, 1, 1, 1).expand(1, 4, 1, 2, 2)
    # Gate opens objects 0 and 3: A = m0 = 1 (exact), B = m3 = 1 (exact) -> zero loss.
    assert (
        float(model.gated_separation_loss(masks, torch.tensor([[0.9, 0.1, 0.2, 0.7]]), spec)) == 0
    )
    # Gate opens 1 and 2 instead: both pseudo-video masks are 0 against targets of 1.
    assert (
        float(model.gated_separation_loss(masks, torch.tensor([[0.1, 0.9, 0.7, 0.2]]), spec)) == 1
    )
    # Both objects of A open: M_A = m0 + m1 = 1; B closed: M_B = 0 -> loss 0.5.
    assert (
        float(model.gated_separation_loss(masks, torch.tensor([[0.9, 0.9, 0.2, 0.2]]), spec)) == 0.5
    )


def test_frozen_nets_stay_in_eval_and_get_no_gradient():
    args = tiny_args("col", "--train_visual", "no")
    nets = build_nets(args)
    model = COL(nets, StageConfig.from_args(args), frozen=frozen_modules(nets, args))
    model.train()
    assert not nets["frame_ground"].training and not nets["frame"].features.training
    assert nets["frame"].fc.training and nets["sound"].training
    bn = next(m for m in nets["frame_ground"].modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    losses, _ = model(fake_batch(args))
    losses["total"].backward()
    torch.testing.assert_close(bn.running_mean, before)
    assert all(p.grad is None for p in nets["frame_ground"].parameters())
    assert all(p.grad is None for p in nets["frame"].features.parameters())
    assert nets["frame"].fc.weight.grad is not None
    names = {g["name"] for g in param_groups(nets, args)}
    assert "frame_ground" not in names and "frame" in names


def test_separation_records_reuse_cached_mixture_sdr():
    """Validation caches each fixed mixture's own SDR.

    The cached values are the computed ones, and used.
    """
    from evaluation import separation_records

    args = tiny_args("ccol")
    batch = fake_batch(args)
    batch["index"] = torch.arange(4)
    batch["clip"] = torch.zeros(4, dtype=torch.long)
    batch["infos"] = [[f"audio/violin/v{b}{n}.wav" for n in range(4)] for b in range(4)]
    est = batch["audios"] + 0.05 * torch.randn_like(batch["audios"])
    fresh = separation_records(est, batch, args)
    cache = {}
    first = separation_records(est, batch, args, cache)
    assert sorted(cache) == [0, 1, 2, 3]
    assert [r["sdr_mix"] for r in first] == pytest.approx([r["sdr_mix"] for r in fresh])
    for index in cache:
        cache[index] = cache[index] * 0 + 123.0
    again = separation_records(est, batch, args, cache)
    assert all(r["sdr_mix"] == 123.0 for r in again)
    assert [r["sdr"] for r in again] == pytest.approx([r["sdr"] for r in fresh])


def test_sop_uses_its_own_optimiser_input_and_init():
    """SoP as Sound of Pixels runs it: SGD with momentum and weight decay, the frame net's last
    layer at the sound rate, log-magnitude input, tiny conv init; CCoL keeps Adam and log1p."""
    from training import make_optimizer

    args = tiny_args("sop")
    assert (args.optimizer, args.weight_decay, args.spec_input, args.sound_init) == (
        "sgd",
        1e-4,
        "log",
        "sop",
    )
    nets = build_nets(args)
    optimizer = make_optimizer(nets, args)
    assert isinstance(optimizer, torch.optim.SGD)
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs["frame_fc"] == lrs["sound"] == args.lr_sound and lrs["frame"] == args.lr_frame
    assert optimizer.param_groups[0]["momentum"] == 0.9
    conv = nets["sound"].unet_block.model[0]
    assert conv.weight.std() < 3e-3
    ccol = tiny_args("ccol")
    assert isinstance(make_optimizer(build_nets(ccol), ccol), torch.optim.Adam)
    assert ccol.spec_input == "log1p"


def test_ground_audio_norm_makes_grounding_level_invariant():
    """With --ground_audio_norm instance a recording's level no longer changes the grounding logits
    (log1p is nearly a shift for loud bins, and the shift is standardised away)."""
    torch.manual_seed(0)
    args = tiny_args("grd", "--ground_audio_norm", "instance")
    model = STAGES["grd"](build_nets(args), StageConfig.from_args(args)).eval()
    batch = fake_batch(args)
    loud = {**batch, "audios": 40 * batch["audios"], "mix": 40 * batch["mix"]}
    with torch.no_grad():
        quiet_logits = model.grounding_grid(*model.prepare(batch))
        loud_logits = model.grounding_grid(*model.prepare(loud))
    plain = tiny_args("grd")
    plain_model = STAGES["grd"](build_nets(plain), StageConfig.from_args(plain)).eval()
    with torch.no_grad():
        plain_gap = (
            (
                plain_model.grounding_grid(*plain_model.prepare(batch))
                - plain_model.grounding_grid(*plain_model.prepare(loud))
            )
            .abs()
            .mean()
        )
    assert (quiet_logits - loud_logits).abs().mean() < 0.2 * plain_gap


def fit(model, batch, optimizer, steps: int) -> tuple[list[dict], dict]:
    """`steps` optimizer steps on one batch: each step's losses as floats (all finite), and the
    last step's outputs."""
    model.train()
    history = []
    for _ in range(steps):
        losses, out = model(batch)
        assert all(torch.isfinite(v) for v in losses.values()), losses
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    return history, out
