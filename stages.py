"""The training stages as small modules: each owns only its forward pass and its named losses.

Objects are stacked on one axis: a CCoL sample holds N = 4 objects, where objects (0, 1) form
pseudo-video A and (2, 3) pseudo-video B; 0 and 2 sound, 1 and 3 are silent objects of other classes
(the model is not told which). The mixture is the sound of A plus the sound of B.
Grounding logits use class 0 = sounding, class 1 = silent, as the reference.

    GRD  (stage 1)  solo grounding warm-up
    COL  (stage 2)  grounding-gated separation + grounding
    CCoL (stage 3)  separation chooses the grounding labels
    SoP  baseline   Sound of Pixels: 2 whole-frame videos, binary masks, BCE
    CoSep baseline  Co-Separation: each pseudo-video's object masks sum to its sound, plus an
                    object-consistency classifier on every separated spectrogram
Each is described under its name in docs/method.md, "Stages".

A stage is built from a StageConfig (StageConfig.from_args of the run's arguments). It returns its
losses under the names of LOSS_TERMS, each meaning the same in every stage that has it, so that
the history curves of GRD -> COL -> CCoL compare term by term; 'total', what the stage trains, is
their sum weighted by the stage's `loss_weights`. Sounding maps are in sounding_maps.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dataset import color_jitter, normalize_frames
from models.criterion import LOSSES, WeightedBCELoss
from models.grounding_net import is_sounding, sounding_probability
from models.spectral import SpectralFrontend

# Which networks each stage builds. Order matters only for logging.
STAGE_NETS = {
    "grd": ("sound_ground", "frame_ground", "grounding"),
    "col": ("sound_ground", "frame_ground", "grounding", "sound", "frame", "synthesizer"),
    "ccol": ("sound_ground", "frame_ground", "grounding", "sound", "frame", "synthesizer"),
    "sop": ("sound", "frame", "synthesizer"),
    "cosep": ("sound", "frame", "synthesizer", "classifier"),
}

# Every loss a stage returns (history keys: as they are in 'train', with 'loss_' in 'val'), and
# what it is. "CE" is a cross-entropy of the grounding head towards 'sounding' or 'silent'.
LOSS_TERMS = {
    "total": "what the stage trains: its other terms summed with its loss_weights",
    "sep": "separation: mask loss of each (pseudo-)video's mask against its sound's true mask; "
    "SoP: a video's own mask; COL, CCoL: the sum of its two objects' masks, each gated by its "
    "mixture grounding (p > 0.5)",
    "cosep": "CoSep's separation: as 'sep' with the two object masks of each pseudo-video summed "
    "ungated",
    "consistency": "CoSep's object consistency: the classifier's CE on each object's separated "
    "spectrogram against the object's class",
    "grd_solo_pos": "solo grounding, positive: 'sounding' CE of object 0's solo clip with the "
    "object of pseudo-video A that makes it; GRD, COL: the better fitting of objects 0 and 1 per "
    "sample (multiple instance); CCoL: the one separation labels sounding",
    "grd_solo_neg": "solo grounding, negative: 'silent' CE of object 2's solo clip with object 0",
    "grd_mix_pos": "mixture grounding, positive: 'sounding' CE against the mixture of each "
    "pseudo-video's sounding object, summed over the two; COL: the better fitting of its two "
    "objects, by batch mean (the reference's multiple instance); CCoL: the one separation labels "
    "sounding, per sample",
    "grd_mix_neg": "mixture grounding, negative: 'silent' CE against the mixture of the objects "
    "separation labels silent, summed over objects (CCoL)",
}

# Grounding audio inputs, run through the audio net once each: the mixture and the two solo tracks.
AUDIO_MIX, AUDIO_SOLO_A, AUDIO_SOLO_B = 0, 1, 2


@dataclass(frozen=True)
class StageConfig:
    """What a stage reads of the run's options: the stage is built from this alone, not argparse.

    Built from the parsed command line by `from_args`; tests may build it by keyword (or change a
    field with dataclasses.replace).
    """

    # Spectrogram front end and separation loss (the SpectralFrontend and models.criterion.LOSSES).
    stft_frame: int
    stft_hop: int
    warp_bins: int
    log_freq: bool
    binary_mask: bool
    mask_thres: float
    weighted_loss: bool
    spec_input: str
    loss: str
    # Visual input: crop side (pixels) of the window grounding map, training colour jitter, and
    # the reference's BatchNorm behaviour of frozen ResNets.
    img_size: int
    color_jitter: float
    reference_bn_drift: bool
    # Grounding: the audio input's normalisation and the kind of sounding map.
    ground_audio_norm: str
    ground_map: str
    # Loss weights; None where the stage has no such term (resolved per stage by arguments.py).
    solo_grounding_weight: float | None
    mix_grounding_weight: float | None
    classifier_weight: float | None
    # CCoL's labels: the silent threshold and the reference's broadcast bug.
    silent_thres: float
    ccol_broadcast_bug: bool
    # Diagnostics: the truth instead of mixture grounding's gate / separation's labels.
    diag_true_gate: bool
    diag_true_labels: bool

    @classmethod
    def from_args(cls, args) -> StageConfig:
        """The options of resolved arguments (arguments.parse_args), by field name; the 0/1 int
        flags become bools."""
        values = {}
        for field in dataclasses.fields(cls):
            value = getattr(args, field.name)
            values[field.name] = bool(value) if field.type == "bool" else value
        return cls(**values)


def grounding_audio(nets: nn.ModuleDict, log_mags: torch.Tensor, norm: str) -> torch.Tensor:
    """The grounding audio feature of each spectrogram: (M, 1, F, T) -> (M, Da).

    norm: --ground_audio_norm, 'instance' to standardise each spectrogram first.
    """
    if norm == "instance":
        # Each spectrogram standardised on its own: a recording's level and noise floor stop
        # dominating the (BatchNorm-free) audio encoder's features.
        mean = log_mags.mean(dim=(-2, -1), keepdim=True)
        std = log_mags.std(dim=(-2, -1), keepdim=True)
        log_mags = (log_mags - mean) / (std + 1e-5)
    return nets["sound_ground"](log_mags)


class Stage(nn.Module):
    """Shared machinery: spectrogram front end, frozen nets, grounding grid, separation masks and
    the weighted sum of the named losses.

    A stage declares `loss_weights` and returns `with_total(losses)` from its forward pass.

    Args:
        nets: ModuleDict with the networks in STAGE_NETS[stage].
        config: the options the stage reads (StageConfig.from_args of the run's arguments).
        frozen: modules that stay in eval() with requires_grad False (frozen BatchNorm stats too).
    """

    def __init__(self, nets: nn.ModuleDict, config: StageConfig, frozen: list[nn.Module] = ()):
        super().__init__()
        self.nets = nets
        self.frontend = SpectralFrontend(
            n_fft=config.stft_frame,
            hop=config.stft_hop,
            warp_bins=config.warp_bins,
            log_freq=config.log_freq,
            binary_mask=config.binary_mask,
            mask_thres=config.mask_thres,
            weighted_loss=config.weighted_loss,
            log_input=config.spec_input,
        )
        self.sep_loss = LOSSES[config.loss](reduction="none")
        self.config = config
        unknown = set(self.loss_weights()) - set(LOSS_TERMS)
        if unknown:
            raise ValueError(f"{type(self).__name__} weighs losses not in LOSS_TERMS: {unknown}")
        self._frozen = list(frozen)
        for module in self._frozen:
            module.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.config.reference_bn_drift:
            for module in self._frozen:
                module.eval()  # frozen means frozen: BatchNorm statistics must not drift
        return self

    # ------------------------------------------------------------------ losses
    def loss_weights(self) -> dict[str, float]:
        """The weight of each of the stage's losses (LOSS_TERMS names) in its total."""
        raise NotImplementedError

    def with_total(self, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The named losses with 'total' first: their sum weighted by loss_weights."""
        weights = self.loss_weights()
        if set(losses) != set(weights):  # a term without a weight is never trained
            raise KeyError(f"losses {sorted(losses)} but weights for {sorted(weights)}")
        return {"total": sum(weights[k] * losses[k] for k in weights), **losses}

    # ------------------------------------------------------------------ inputs
    def prepare(self, batch: dict) -> tuple[dict, torch.Tensor]:
        with torch.autocast(batch["mix"].device.type, enabled=False):
            spec = self.frontend(batch["audios"].float(), batch["mix"].float())
        frames = batch["frames"]  # (B, N, 3, T, H, W) uint8
        if self.training and self.config.color_jitter > 0:
            frames = color_jitter(frames, self.config.color_jitter)
        frames = normalize_frames(frames)  # float
        return spec, frames

    # ------------------------------------------------------------------ grounding
    def grounding_audio(self, log_mags: torch.Tensor) -> torch.Tensor:
        """The grounding audio feature of each spectrogram: (M, 1, F, T) -> (M, Da)."""
        return grounding_audio(self.nets, log_mags, self.config.ground_audio_norm)

    def mixture_grounding(self, spec: dict, frames: torch.Tensor) -> torch.Tensor:
        """Sounding probability of each object against its mixture alone (no solo rows).

        frames normalised (B, N, 3, T, S, S) -> (B, N).
        """
        audio = self.grounding_audio(spec["log_mag_mix"])  # (B, Da)
        visual = self.nets["frame_ground"].forward_objects(frames)  # (B, N, Dv)
        return sounding_probability(self.nets["grounding"](audio[:, None], visual).float())

    def grounding_grid(
        self, spec: dict, frames: torch.Tensor, with_mixture: bool = True
    ) -> torch.Tensor:
        """Logits of every (audio, object) pair: audio in [mixture, solo 0, solo 2] x the N objects.

        Returns (B, 3, N, 2), or (B, 2, N, 2) without the mixture row when `with_mixture` is False.
        The audio net runs once per distinct spectrogram (3 per sample), not once per pair as in
        the reference (8).
        """
        B, N = frames.shape[:2]
        log_mags = spec["log_mags"]  # (B, N, 1, F, T)
        rows = [spec["log_mag_mix"]] if with_mixture else []
        audio_in = torch.stack(rows + [log_mags[:, 0], log_mags[:, 2]], 1)  # (B, R, 1, F, T)
        R = audio_in.shape[1]
        audio_feat = self.grounding_audio(audio_in.flatten(0, 1)).view(B, R, -1)  # (B, R, Da)
        visual_feat = self.nets["frame_ground"].forward_objects(
            frames, separately=self.config.reference_bn_drift
        )  # (B, N, Dv)
        pairs_a = audio_feat[:, :, None].expand(-1, -1, N, -1)  # (B, R, N, Da)
        pairs_v = visual_feat[:, None].expand(-1, R, -1, -1)  # (B, R, N, Dv)
        return self.nets["grounding"](pairs_a, pairs_v)  # (B, R, N, 2)

    # ------------------------------------------------------------------ separation
    def object_masks(self, spec: dict, frames: torch.Tensor) -> torch.Tensor:
        """One mask per object from the mixture: U-Net features x visual vector (inner product).

        Returns mask probabilities (B, N, 1, F, T) in the (warped) spectrogram domain.
        """
        sound_feat = self.nets["sound"](spec["log_mag_mix"])  # (B, C, F, T)
        visual_vec = self.nets["frame"].forward_objects(
            frames, separately=self.config.reference_bn_drift
        )  # (B, N, C)
        logits = self.nets["synthesizer"](visual_vec, sound_feat)  # (B, N, 1, F, T)
        return torch.sigmoid(logits)


# ---------------------------------------------------------------------- grounding losses
def _ce_both(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair cross-entropy towards 'sounding' (class 0) and towards 'silent' (class 1)."""
    log_prob = F.log_softmax(logits.float(), dim=-1)
    return -log_prob[..., 0], -log_prob[..., 1]


def solo_mil_losses(ce_sounding: torch.Tensor, ce_silent: torch.Tensor) -> dict:
    """grd_solo_pos and grd_solo_neg of GRD and COL on the solo rows of the CE grid, (B, 2, N):
    rows solo 0, solo 2.

    Positive (multiple instance): the solo track of video 0 matches object 0 or the other object of
    pseudo-video A, whichever fits best, per sample. Negative: the track of video 2 with object 0.
    """
    return {
        "grd_solo_pos": torch.minimum(ce_sounding[:, 0, 0], ce_sounding[:, 0, 1]).mean(),
        "grd_solo_neg": ce_silent[:, 1, 0].mean(),
    }


def mixture_mil_positive(ce_mix: torch.Tensor) -> torch.Tensor:
    """COL's grd_mix_pos from the mixture row's 'sounding' CEs (B, N): per pseudo-video the smaller
    of its two objects' batch-mean CEs, summed over the two pseudo-videos -> ()."""
    mix = ce_mix.mean(0)  # (N,) batch-mean CEs
    # As the reference: the multiple-instance minimum is between batch means, not per sample.
    return torch.minimum(mix[0], mix[1]) + torch.minimum(mix[2], mix[3])


def separation_labels(
    masks: torch.Tensor, spec: dict, sep_loss: nn.Module, silent_thres: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """CCoL's labels: per-object weights (w_pos, w_neg), each (B, N), of the 'sounding' / 'silent'
    CE, chosen by how well each object's (ungated) mask (B, N, 1, F, T) explains its pseudo-video.

    In each pseudo-video the object with the smaller mask error d_n sounds; the other is labelled
    silent only if its error also exceeds `silent_thres`. No gradient.
    """
    with torch.no_grad():
        targets = spec["gt_masks"][:, [0, 0, 2, 2]]  # each object vs its pseudo-video
        mask_error = sep_loss(masks, targets, spec["weight"]).float()  # (B, N) = d_n
        pairs = mask_error.unflatten(1, (2, 2))  # (B, 2, 2)
        first_sounds = torch.round(pairs[..., 1] / (pairs.sum(-1) + 1e-12))  # (B, 2): r1, r2
        w_pos = torch.stack([first_sounds, 1 - first_sounds], -1).flatten(1)  # (B, N)
        above_thres = (1 + torch.sign(mask_error - silent_thres)) / 2
        w_neg = (1 - w_pos) * above_thres
    return w_pos, w_neg


def labelled_grounding_losses(
    ce_sounding: torch.Tensor,
    ce_silent: torch.Tensor,
    w_pos: torch.Tensor,
    w_neg: torch.Tensor,
    broadcast_bug: bool = False,
) -> dict:
    """CCoL's grounding terms from the CE grid (B, 3, N) and the labels (B, N) of
    separation_labels: grd_solo_pos, grd_solo_neg, grd_mix_pos and grd_mix_neg.

    broadcast_bug: the reference's (B,) * (B, 1) in the solo positive, which turns the per-sample
    choice into a batch average (--ccol_broadcast_bug).
    """
    first_sounds = w_pos[:, 0]  # r1 for pseudo-video A
    ce_first, ce_second = ce_sounding[:, AUDIO_SOLO_A, 0], ce_sounding[:, AUDIO_SOLO_A, 1]
    if broadcast_bug:
        solo_positive = (
            ce_first.mean() * first_sounds.mean() + ce_second.mean() * (1 - first_sounds).mean()
        )
    else:
        solo_positive = (first_sounds * ce_first + (1 - first_sounds) * ce_second).mean()
    return {
        "grd_solo_pos": solo_positive,
        "grd_solo_neg": ce_silent[:, AUDIO_SOLO_B, 0].mean(),
        "grd_mix_pos": (w_pos * ce_sounding[:, AUDIO_MIX]).sum(1).mean(),
        "grd_mix_neg": (w_neg * ce_silent[:, AUDIO_MIX]).sum(1).mean(),
    }


def label_stats(w_pos: torch.Tensor, w_neg: torch.Tensor, sounding: torch.Tensor) -> dict:
    """Diagnostics of CCoL's labels (B, N), logged beside the losses, never trained on: how often
    separation picks the truly sounding object (the loader knows which objects are silent: it
    zeroed their audio), and how often it calls a silent / sounding object 'silent'."""
    sounding = sounding.to(w_pos.dtype)
    return {
        "label_acc": (w_pos == sounding).float().mean(),
        "silent_label_rate": (w_neg * (1 - sounding)).sum() / (1 - sounding).sum().clamp(min=1),
        "false_silent_rate": (w_neg * sounding).sum() / sounding.sum().clamp(min=1),
    }


def grounding_outputs(logits: torch.Tensor) -> dict:
    """Probabilities used by evaluation: mixture grounding of every object, and the 4 solo pairs."""
    prob = logits.float().softmax(-1)[..., 0]  # (B, 3, N)
    solo = torch.stack(
        [
            prob[:, AUDIO_SOLO_A, 0],
            prob[:, AUDIO_SOLO_A, 1],
            prob[:, AUDIO_SOLO_B, 2],
            prob[:, AUDIO_SOLO_B, 3],
        ],
        1,
    )  # (B, 4)
    return {"sounding_prob": prob[:, AUDIO_MIX], "solo_prob": solo}


# ---------------------------------------------------------------------- stages
class GRD(Stage):
    """Stage 1: grounding-only warm-up. Loss = solo positive + negative (docs/method.md, GRD)."""

    def loss_weights(self):
        return {"grd_solo_pos": 1.0, "grd_solo_neg": 1.0}

    def forward(self, batch):
        spec, frames = self.prepare(batch)
        # The mixture row only feeds evaluation; training skips it (1/3 of the audio net's work).
        logits = self.grounding_grid(spec, frames, with_mixture=not self.training)
        ce_sounding, ce_silent = _ce_both(logits[:, -2:])
        losses = self.with_total(solo_mil_losses(ce_sounding, ce_silent))
        outputs = {} if self.training else grounding_outputs(logits)
        return losses, {**outputs, **spec}


class GatedSeparation(Stage):
    """What COL and CCoL share: the grounding grid, every object's mask, and the separation loss
    of the pseudo-videos' masks gated by mixture grounding."""

    def gated_separation_loss(self, masks, sounding_prob, spec, true_sounding=None):
        """Pseudo-video masks M_A = d0 m0 + d1 m1, M_B = d2 m2 + d3 m3 with d_n = [p_n > 0.5].

        The hard gate passes no gradient into grounding, as in the paper's code. With
        --diag_true_gate (a diagnostic), d_n is the truth, `true_sounding` (B, N).
        """
        gate = true_sounding if self.config.diag_true_gate else is_sounding(sounding_prob)
        gate = gate.to(masks.dtype).detach()  # (B, N)
        pseudo_masks = (
            (gate[..., None, None, None] * masks).unflatten(1, (2, 2)).sum(2)
        )  # (B, 2, 1, F, T)
        targets = spec["gt_masks"][:, 0::2]  # sound of A, sound of B
        return self.sep_loss(pseudo_masks, targets, spec["weight"]).mean()

    def separate_gated(self, batch) -> tuple[torch.Tensor, dict, dict]:
        """Returns the grounding logits (B, 3, N, 2); the outputs: grounding_outputs, pred_masks
        (B, N, 1, F, T) and the front end's spectrograms; and the losses so far, {'sep'}."""
        spec, frames = self.prepare(batch)
        logits = self.grounding_grid(spec, frames)
        outputs = grounding_outputs(logits)
        masks = self.object_masks(spec, frames)
        sep = self.gated_separation_loss(masks, outputs["sounding_prob"], spec, batch["sounding"])
        return logits, {**outputs, "pred_masks": masks, **spec}, {"sep": sep}


class COL(GatedSeparation):
    """Stage 2: co-learning. Mixture grounding gates which object masks explain each pseudo-video.

    L = sep + w_solo (grd_solo_pos + grd_solo_neg) + w_mix grd_mix_pos, with
    w_solo = --solo_grounding_weight and w_mix = --mix_grounding_weight (both 0.25 for COL).
    """

    def loss_weights(self):
        solo, mix = self.config.solo_grounding_weight, self.config.mix_grounding_weight
        return {"sep": 1.0, "grd_solo_pos": solo, "grd_solo_neg": solo, "grd_mix_pos": mix}

    def forward(self, batch):
        logits, outputs, losses = self.separate_gated(batch)
        ce_sounding, ce_silent = _ce_both(logits)
        losses.update(solo_mil_losses(ce_sounding[:, AUDIO_SOLO_A:], ce_silent[:, AUDIO_SOLO_A:]))
        losses["grd_mix_pos"] = mixture_mil_positive(ce_sounding[:, AUDIO_MIX])
        return self.with_total(losses), outputs


class CCoL(GatedSeparation):
    """Stage 3: cyclic co-learning. Separation errors choose the grounding labels (docs/method.md).

    Per pseudo-video, the object whose (ungated) mask explains the pseudo-video's sound better is
    the sounding one; the other is labelled silent only if its mask error also exceeds
    --silent_thres. L = sep + w_mix (grd_mix_pos + grd_mix_neg) + w_solo (grd_solo_pos +
    grd_solo_neg) (CCoL: w_mix 0.25, w_solo 0.5).
    """

    def loss_weights(self):
        solo, mix = self.config.solo_grounding_weight, self.config.mix_grounding_weight
        return {
            "sep": 1.0,
            "grd_solo_pos": solo,
            "grd_solo_neg": solo,
            "grd_mix_pos": mix,
            "grd_mix_neg": mix,
        }

    def sounding_labels(self, masks, spec, true_sounding=None):
        """separation_labels (w_pos, w_neg), each (B, N); with --diag_true_labels (a diagnostic)
        the truth, `true_sounding` (B, N), instead."""
        if self.config.diag_true_labels:
            w_pos = true_sounding.to(masks.dtype)
            return w_pos, 1 - w_pos
        return separation_labels(masks, spec, self.sep_loss, self.config.silent_thres)

    def forward(self, batch):
        logits, outputs, losses = self.separate_gated(batch)
        # outputs hold the front end's gt_masks and weight; labels once per step
        w_pos, w_neg = self.sounding_labels(outputs["pred_masks"], outputs, batch["sounding"])
        ce_sounding, ce_silent = _ce_both(logits)
        losses.update(
            labelled_grounding_losses(
                ce_sounding, ce_silent, w_pos, w_neg, self.config.ccol_broadcast_bug
            )
        )
        stats = label_stats(w_pos, w_neg, batch["sounding"])
        return self.with_total(losses), {**outputs, "stats": stats}


class SoP(Stage):
    """Sound of Pixels baseline.

    Every video in the mixture is separated by its whole-frame vector.
    """

    def loss_weights(self):
        return {"sep": 1.0}

    def forward(self, batch):
        spec, frames = self.prepare(batch)
        masks = self.object_masks(spec, frames)  # (B, N, 1, F, T)
        sep = self.sep_loss(masks, spec["gt_masks"], spec["weight"]).mean()
        return self.with_total({"sep": sep}), {"pred_masks": masks, **spec}


def coseparation_loss(masks, gt_masks, weight, sep_loss, objects_per_video: int = 2):
    """Co-Separation's loss: the summed masks of each video's objects against that video's mask.

    Objects come grouped by video (objects_per_video consecutive ones each). The target is the sum
    of the objects' true masks: the loader's silent objects have none, so it is the true mask of
    the video's sound. Masks of a BCE loss are clipped to [0, 1] after summing, as CoSep's.

    masks, gt_masks (B, N, 1, F, T), weight (B, 1, F, T) -> () mean over videos and samples.
    """
    video_masks = masks.unflatten(1, (-1, objects_per_video)).sum(2)  # (B, V, 1, F, T)
    targets = gt_masks.unflatten(1, (-1, objects_per_video)).sum(2)
    if isinstance(sep_loss, WeightedBCELoss):
        video_masks = video_masks.clamp(0, 1)
    return sep_loss(video_masks, targets, weight).mean()


def consistency_loss(logits: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
    """Co-Separation's object-consistency loss: the cross-entropy of the classifier's guess of
    each separated spectrogram against its object's class.

    logits (B, N, C), class_ids (B, N) -> () mean over the objects.
    """
    return F.cross_entropy(logits.flatten(0, 1).float(), class_ids.flatten())


class CoSep(Stage):
    """Co-Separation baseline (Gao and Grauman, ICCV 2019; docs/method.md, CoSep).

    Pseudo-video A holds objects (0, 1), B objects (2, 3), as CCoL's; CoSep is not told that 1 and
    3 are silent, so like every detected object of its paper they get a mask and a class to match.
    L = cosep + --classifier_weight consistency, with cosep the summed masks of each pseudo-video
    against its sound and consistency the classifier's cross-entropy on every object's separated
    spectrogram, whose gradient also reaches the masks.
    """

    def loss_weights(self):
        return {"cosep": 1.0, "consistency": self.config.classifier_weight}

    def separated_logits(self, masks: torch.Tensor, spec: dict) -> torch.Tensor:
        """The classifier on each object's separated spectrogram, as the nets' input is logged.

        masks (B, N, 1, F, T) -> (B, N, C) class logits.
        """
        separated = spec["mag_mix_w"][:, None] * masks  # (B, N, 1, F, T)
        logits = self.nets["classifier"](self.frontend.log(separated.flatten(0, 1)))
        return logits.unflatten(0, masks.shape[:2])

    def forward(self, batch):
        spec, frames = self.prepare(batch)
        masks = self.object_masks(spec, frames)  # (B, N, 1, F, T)
        logits = self.separated_logits(masks, spec)  # (B, N, C)
        losses = {
            "cosep": coseparation_loss(masks, spec["gt_masks"], spec["weight"], self.sep_loss),
            "consistency": consistency_loss(logits, batch["class_ids"]),
        }
        correct = logits.argmax(-1) == batch["class_ids"]  # (B, N)
        stats = {
            "class_acc": correct.float().mean(),
            "class_acc_sounding": correct[batch["sounding"]].float().mean(),
        }
        return self.with_total(losses), {"pred_masks": masks, **spec, "stats": stats}


STAGES = {"grd": GRD, "col": COL, "ccol": CCoL, "sop": SoP, "cosep": CoSep}
