"""Stage modules: losses are finite and fall when overfitting one batch; one loss vocabulary,
one weighted total; CCoL labels; gating."""

import argparse
import dataclasses
import logging

import pytest
import torch

from arguments import TINY, parse_args
from models.criterion import WeightedL1Loss
from stages import (
    GRD,
    LOSS_TERMS,
    STAGES,
    StageConfig,
    labelled_grounding_losses,
    separation_labels,
)
from training import build_nets, frozen_modules, param_groups

logging.disable(logging.WARNING)


def tiny_args(stage, *extra):
    """The tiny demo-profile arguments of `stage`, which the nets and optimisers are built from."""
    return parse_args([*TINY, "--data_root", "/nonexistent", "--stage", stage, *extra])


def tiny_stage(stage, nets=None, frozen=False, **config):
    """A stage module on the tiny nets (or `nets`), its StageConfig changed by keyword: the stage's
    own options are set on the config, not on a command line. Returns (stage, args)."""
    args = tiny_args(stage)
    nets = build_nets(args) if nets is None else nets
    model = STAGES[stage](
        nets,
        dataclasses.replace(StageConfig.from_args(args), **config),
        frozen=frozen_modules(nets, args) if frozen else (),
    )
    return model, args


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
    assert set(steps[0]) == {"total", *model.loss_weights()} and set(steps[0]) <= set(LOSS_TERMS)
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
    model, args = tiny_stage("grd")
    model.eval()
    with torch.no_grad():
        spec, frames = model.prepare(fake_batch(args))
        full = model.grounding_grid(spec, frames)
        solo = model.grounding_grid(spec, frames, with_mixture=False)
    assert full.shape == (4, 3, args.num_mix, 2) and solo.shape == (4, 2, args.num_mix, 2)
    torch.testing.assert_close(solo, full[:, 1:])


def test_stage_config_takes_what_the_stages_read_as_typed_frozen_values():
    args = tiny_args("ccol")
    config = StageConfig.from_args(args)
    assert config.solo_grounding_weight == args.solo_grounding_weight == 0.5
    assert StageConfig(**dataclasses.asdict(config)) == config  # tests may build it by keyword
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.silent_thres = 0.2
    # Runs saved their switches as 0/1 ints: the config holds bools whatever the namespace has.
    old = StageConfig.from_args(argparse.Namespace(**{**vars(args), "weighted_loss": 0}))
    assert old.weighted_loss is False and old.log_freq is True


# The named losses of each stage (LOSS_TERMS) and the weights of its total, as the paper's.
STAGE_LOSSES = {
    "grd": {"grd_solo_pos": 1, "grd_solo_neg": 1},
    "col": {"sep": 1, "grd_solo_pos": 0.25, "grd_solo_neg": 0.25, "grd_mix_pos": 0.25},
    "ccol": {
        **{"sep": 1, "grd_solo_pos": 0.5, "grd_solo_neg": 0.5},
        **{"grd_mix_pos": 0.25, "grd_mix_neg": 0.25},
    },
    "sop": {"sep": 1},
    "cosep": {"cosep": 1, "consistency": 0.05},
}


@pytest.mark.parametrize("stage", sorted(STAGE_LOSSES))
def test_total_is_the_weighted_sum_of_the_named_losses(stage):
    torch.manual_seed(0)
    model, args = tiny_stage(stage)
    batch = {**fake_batch(args), "class_ids": torch.tensor([[2, 5, 9, 7]]).expand(4, -1)}
    losses, _ = model.train()(batch)
    weights = STAGE_LOSSES[stage]
    assert list(losses) == ["total", *weights] and model.loss_weights() == weights
    total = sum(weights[key] * losses[key] for key in weights)
    torch.testing.assert_close(losses["total"], total)
    with pytest.raises(KeyError):  # a loss without a weight would be logged, never trained
        model.with_total({**losses, "extra": losses["total"]})


def test_a_loss_name_means_the_same_term_in_every_stage():
    """On the same nets and batch, GRD's and COL's solo terms are the same numbers, and COL's
    solo negative is CCoL's (CCoL's solo positive follows separation's label instead)."""
    torch.manual_seed(0)
    col, args = tiny_stage("col")
    ccol, _ = tiny_stage("ccol", nets=col.nets)
    grd = GRD(col.nets, StageConfig.from_args(tiny_args("grd")))
    batch = fake_batch(args)
    with torch.no_grad():
        losses = {m: m.eval()(batch)[0] for m in (grd, col, ccol)}
    for key in ("grd_solo_pos", "grd_solo_neg"):
        torch.testing.assert_close(losses[grd][key], losses[col][key])
    torch.testing.assert_close(losses[col]["grd_solo_neg"], losses[ccol]["grd_solo_neg"])
    torch.testing.assert_close(losses[col]["sep"], losses[ccol]["sep"])


def test_ccol_label_choice_and_silent_threshold_by_hand():
    """d = weighted L1 of each object's mask against its pseudo-video target (weight 1 here)."""
    F_, T_ = 2, 2
    gt = torch.zeros(2, 4, 1, F_, T_)
    gt[:, 0], gt[:, 2] = 1.0, 0.5  # pseudo-video A target 1, B target 0.5
    # sample 0: A: object 0 error 0.05, object 1 error 0.5  -> 0 sounds; 1 silent (0.5 > 0.1)
    #           B: object 2 error 0.3,  object 3 error 0.05 -> 3 sounds; 2 silent (0.3 > 0.1)
    # sample 1: A: object 0 error 0.2, object 1 error 0.08  -> 1 sounds; 0 silent (0.2 > 0.1)
    #           B: object 2 error 0.0,  object 3 error 0.05 -> 2 sounds; 3 NOT labelled (0.05 < 0.1)
    errors = torch.tensor([[0.05, 0.5, 0.3, 0.05], [0.2, 0.08, 0.0, 0.05]])
    targets = gt[:, [0, 0, 2, 2]]
    masks = targets - errors[..., None, None, None]
    spec = {"gt_masks": gt, "weight": torch.ones(2, 1, F_, T_)}
    w_pos, w_neg = separation_labels(masks, spec, WeightedL1Loss(reduction="none"), 0.1)
    assert w_pos.tolist() == [[1, 0, 0, 1], [0, 1, 1, 0]]
    assert w_neg.tolist() == [[0, 1, 1, 0], [1, 0, 0, 0]]


def test_ccol_broadcast_flag_restores_reference_loss():
    """With the flag the solo positive is mean(CE_pos)*mean(r1) + mean(CE_pos1)*mean(1-r1)."""
    ce_sounding = torch.rand(3, 3, 4)
    ce_silent = torch.rand(3, 3, 4)
    r1 = torch.tensor([1.0, 0.0, 1.0])
    w_pos = torch.stack([r1, 1 - r1, 1 - r1, r1], 1)  # (B, N)
    w_neg = 1 - w_pos
    pos, pos1, neg = ce_sounding[:, 1, 0], ce_sounding[:, 1, 1], ce_silent[:, 2, 0].mean()
    fixed = labelled_grounding_losses(ce_sounding, ce_silent, w_pos, w_neg)
    buggy = labelled_grounding_losses(ce_sounding, ce_silent, w_pos, w_neg, broadcast_bug=True)
    torch.testing.assert_close(fixed["grd_solo_pos"], (r1 * pos + (1 - r1) * pos1).mean())
    torch.testing.assert_close(
        buggy["grd_solo_pos"], pos.mean() * r1.mean() + pos1.mean() * (1 - r1).mean()
    )
    for key in ("grd_solo_neg", "grd_mix_pos", "grd_mix_neg"):  # the bug is the solo positive's
        torch.testing.assert_close(fixed[key], buggy[key])
    torch.testing.assert_close(fixed["grd_solo_neg"], neg)
    mix_pos = (w_pos * ce_sounding[:, 0]).sum(1).mean()
    torch.testing.assert_close(fixed["grd_mix_pos"], mix_pos)


def test_gating_selects_masks_by_mixture_grounding():
    model, _ = tiny_stage("col")
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
    args = tiny_args("col", "--no-train_resnets")  # what is frozen is the nets' choice
    nets = build_nets(args)
    model = STAGES["col"](nets, StageConfig.from_args(args), frozen=frozen_modules(nets, args))
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
    fresh = separation_records(est, batch, args.metrics_backend)
    cache = {}
    first = separation_records(est, batch, args.metrics_backend, cache)
    assert sorted(cache) == [0, 1, 2, 3]
    assert [r["sdr_mix"] for r in first] == pytest.approx([r["sdr_mix"] for r in fresh])
    for index in cache:
        cache[index] = cache[index] * 0 + 123.0
    again = separation_records(est, batch, args.metrics_backend, cache)
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
    model, args = tiny_stage("grd", ground_audio_norm="instance")
    model.eval()
    batch = fake_batch(args)
    loud = {**batch, "audios": 40 * batch["audios"], "mix": 40 * batch["mix"]}
    with torch.no_grad():
        quiet_logits = model.grounding_grid(*model.prepare(batch))
        loud_logits = model.grounding_grid(*model.prepare(loud))
    plain_model, _ = tiny_stage("grd")  # --ground_audio_norm none, the demo's
    plain_model.eval()
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
