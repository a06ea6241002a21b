"""The four training stages as small modules: each owns only its forward pass and its named losses.

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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import roi_align

from dataset import color_jitter, normalize_frames
from models.criterion import LOSSES, WeightedBCELoss
from models.grounding_net import is_sounding, sounding_probability
from models.spectral import SpectralFrontend
from models.vision_net import MAP_STRIDE

# Which networks each stage builds. Order matters only for logging.
STAGE_NETS = {
    "grd": ("sound_ground", "frame_ground", "grounding"),
    "col": ("sound_ground", "frame_ground", "grounding", "sound", "frame", "synthesizer"),
    "ccol": ("sound_ground", "frame_ground", "grounding", "sound", "frame", "synthesizer"),
    "sop": ("sound", "frame", "synthesizer"),
    "cosep": ("sound", "frame", "synthesizer", "classifier"),
}

# Grounding audio inputs, run through the audio net once each: the mixture and the two solo tracks.
AUDIO_MIX, AUDIO_SOLO_A, AUDIO_SOLO_B = 0, 1, 2


@dataclass(frozen=True)
class StageConfig:
    """What a stage reads of the run's options: the stage is built from this alone, not argparse.

    Built from the parsed command line by `from_args`; tests may build it by keyword.
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


class Stage(nn.Module):
    """Shared machinery: spectrogram front end, frozen nets, grounding grid and separation masks.

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
        self._frozen = list(frozen)
        for module in self._frozen:
            module.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.config.reference_bn_drift:
            for module in self._frozen:
                module.eval()  # frozen means frozen: BatchNorm statistics must not drift
        return self

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
        if self.config.ground_audio_norm == "instance":
            # Each spectrogram standardised on its own: a recording's level and noise floor stop
            # dominating the (BatchNorm-free) audio encoder's features.
            mean = log_mags.mean(dim=(-2, -1), keepdim=True)
            std = log_mags.std(dim=(-2, -1), keepdim=True)
            log_mags = (log_mags - mean) / (std + 1e-5)
        return self.nets["sound_ground"](log_mags)

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

    # ------------------------------------------------------------------ sounding maps
    @property
    def map_kind(self) -> str:
        """The map the stage is judged and shown by: grounding where it has a grounding net."""
        return "grounding" if "grounding" in self.nets else "separation"

    def sounding_maps(
        self,
        spec: dict,
        whole_frames: torch.Tensor,
        boxes: torch.Tensor | None = None,
        kinds: tuple[str, ...] = ("grounding", "separation"),
    ) -> dict:
        """Where in each object's whole frame the model hears the mixture, per location at output
        stride 8, with each net the stage has (docs/method.md, "Sounding maps"):

        - 'grounding': the grounding head at every location against the mixture's audio feature,
          the probability that what is there sounds (--ground_map window: of a window of the
          object's detection box size centred there, needs `boxes`);
        - 'separation': Sound of Pixels' pixel-wise view, the energy of the sound each location's
          visual vector separates from the mixture.

        whole_frames uint8 (B, N, 3, T, H, W), boxes (B, N, 4) in their pixels -> each map of
        `kinds` the stage has, (B, N, H/8, W/8).
        """
        frames = normalize_frames(whole_frames)
        B, N = frames.shape[:2]
        maps = {}
        if "grounding" in self.nets and "grounding" in kinds:
            audio = self.grounding_audio(spec["log_mag_mix"])  # (B, Da)
            if self.config.ground_map == "window" and boxes is not None:
                maps["grounding"] = self._window_grounding(audio, frames, boxes)
            else:
                feat = self.nets["frame_ground"].forward_pixelwise(frames)  # (B, N, Dv, h, w)
                logits = self.nets["grounding"].forward_pixelwise(
                    audio.repeat_interleave(N, 0), feat.flatten(0, 1)
                )  # (B*N, h, w, 2)
                maps["grounding"] = sounding_probability(logits.float()).unflatten(0, (B, N))
        if "synthesizer" in self.nets and "separation" in kinds:
            sound_feat = self.nets["sound"](spec["log_mag_mix"])  # (B, C, F, T)
            feat = self.nets["frame"].forward_pixelwise(frames)  # (B, N, C, h, w)
            maps["separation"] = self._separated_energy(feat, sound_feat, spec["mag_mix_w"])
        return maps

    def _separated_energy(self, feat, sound_feat, mag_mix, max_values: int = 2**26):
        """Energy of the mixture through each location's mask, a few locations at a time so that
        the masks in memory stay under `max_values` (the paper's 256 x 256 spectrograms at 56 x 75
        locations would need tens of GB at once).

        feat (B, N, C, h, w), sound_feat (B, C, F, T), mag_mix (B, 1, F, T) -> (B, N, h, w).
        """
        B, N, C, h, w = feat.shape
        mag = mag_mix.float()[:, None, None]  # (B, 1, 1, 1, F, T)
        rows = max(1, max_values // (B * w * mag_mix[0].numel()))  # map rows per step
        energy = []
        for n in range(N):
            for top in range(0, h, rows):
                logits = self.nets["synthesizer"].forward_pixelwise(
                    feat[:, n, :, top : top + rows], sound_feat
                )  # (B, r, w, 1, F, T)
                masked = torch.sigmoid(logits.float()) * mag
                energy.append(masked.square().sum((-3, -2, -1)))  # (B, r, w)
        return torch.cat(energy, 1).view(B, N, h, w)

    def _window_grounding(self, audio, frames, boxes, chunk: int = 4096) -> torch.Tensor:
        """Grounding of a window at every location: the crop a detection box of the object's size
        would give if centred there, pooled and scored as the nets score crops.

        audio (B, Da), frames normalised (B, N, 3, T, H, W), boxes (B, N, 4) -> (B, N, h, w) on
        the pixelwise grid (cell centres every MAP_STRIDE pixels).
        """
        B, N, _, T, H, W = frames.shape
        S = self.config.img_size
        ys = torch.arange(MAP_STRIDE / 2, H, MAP_STRIDE, device=frames.device)
        xs = torch.arange(MAP_STRIDE / 2, W, MAP_STRIDE, device=frames.device)
        cy, cx = (c.flatten() for c in torch.meshgrid(ys, xs, indexing="ij"))  # (C,)
        half = (boxes[..., 2:] - boxes[..., :2]).float().clamp(min=1) / 2  # (B, N, 2): w/2, h/2
        centre = torch.stack([cx, cy], -1)  # (C, 2)
        corners = torch.cat(
            [centre - half[:, :, None], centre + half[:, :, None]], -1
        )  # (B, N, C, 4)
        images = frames.transpose(2, 3).reshape(B * N * T, 3, H, W)
        image_of = torch.arange(B * N * T, device=frames.device, dtype=corners.dtype)
        rois = torch.cat(
            [
                image_of.view(B, N, T, 1, 1).expand(-1, -1, -1, len(cx), 1),
                corners[:, :, None].expand(-1, -1, T, -1, -1),
            ],
            -1,
        ).transpose(2, 3)  # (B, N, C, T, 5)
        rois = rois.reshape(-1, 5)
        audio_of = audio.repeat_interleave(N * len(cx), 0)  # (B*N*C, Da)
        probs = []
        for start in range(0, len(rois), chunk * T):
            crops = roi_align(
                images, rois[start : start + chunk * T], (S, S), sampling_ratio=2, aligned=True
            )  # (K*T, 3, S, S)
            crops = crops.view(-1, T, 3, S, S).transpose(1, 2)  # (K, 3, T, S, S)
            feat = self.nets["frame_ground"].forward_multiframe(crops)  # (K, Dv)
            first = start // T
            logits = self.nets["grounding"](audio_of[first : first + len(feat)], feat)
            probs.append(sounding_probability(logits.float()))
        return torch.cat(probs).view(B, N, len(ys), len(xs))

    def forward(self, batch: dict) -> tuple[dict, dict]:
        raise NotImplementedError


def _ce_both(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair cross-entropy towards 'sounding' (class 0) and towards 'silent' (class 1)."""
    log_prob = F.log_softmax(logits.float(), dim=-1)
    return -log_prob[..., 0], -log_prob[..., 1]


def solo_grounding_losses(
    ce_sounding: torch.Tensor, ce_silent: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRD's solo terms on the solo rows of the CE grid, (B, 2, N): rows solo 0, solo 2.

    Positive (multiple instance): the solo track of video 0 matches object 0 or the other object of
    pseudo-video A, whichever fits best, per sample. Negative: the track of video 2 with object 0.
    """
    positive = torch.minimum(ce_sounding[:, 0, 0], ce_sounding[:, 0, 1]).mean()
    negative = ce_silent[:, 1, 0].mean()
    return positive, negative


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


class GRD(Stage):
    """Stage 1: grounding-only warm-up. Loss = MIL positive + negative (docs/method.md, GRD)."""

    def forward(self, batch):
        spec, frames = self.prepare(batch)
        # The mixture row only feeds evaluation; training skips it (1/3 of the audio net's work).
        logits = self.grounding_grid(spec, frames, with_mixture=not self.training)
        ce_sounding, ce_silent = _ce_both(logits[:, -2:])
        positive, negative = solo_grounding_losses(ce_sounding, ce_silent)
        losses = {"total": positive + negative, "grd_pos": positive, "grd_neg": negative}
        outputs = {} if self.training else grounding_outputs(logits)
        return losses, {**outputs, **spec}


class COL(Stage):
    """Stage 2: co-learning. Mixture grounding gates which object masks explain each pseudo-video.

    L = L_sep + w_solo (solo positive + solo negative) + w_mix (mixture MIL positives), with
    w_solo = --solo_grounding_weight and w_mix = --mix_grounding_weight (both 0.25 for COL).
    """

    def gated_separation_loss(self, masks, sounding_prob, spec, true_sounding=None):
        """Pseudo-video masks M_A = d0 m0 + d1 m1, M_B = d2 m2 + d3 m3 with d_n = [p_n > 0.5].

        The hard gate passes no gradient into grounding, as in the paper's code. With
        --diag_true_gate (a diagnostic), d_n is the truth, `true_sounding` (B, N).
        """
        B, N = masks.shape[:2]
        gate = true_sounding if self.config.diag_true_gate else is_sounding(sounding_prob)
        gate = gate.to(masks.dtype).detach()  # (B, N)
        pseudo_masks = (
            (gate[..., None, None, None] * masks).unflatten(1, (2, 2)).sum(2)
        )  # (B, 2, 1, F, T)
        targets = spec["gt_masks"][:, 0::2]  # sound of A, sound of B
        return self.sep_loss(pseudo_masks, targets, spec["weight"]).mean()

    def sounding_labels(self, masks, spec, true_sounding=None):
        """COL has no separation-chosen labels."""
        return None

    def grounding_losses(self, ce_sounding, ce_silent, masks, spec, labels=None):
        positive, negative = solo_grounding_losses(
            ce_sounding[:, AUDIO_SOLO_A:], ce_silent[:, AUDIO_SOLO_A:]
        )
        mix = ce_sounding[:, AUDIO_MIX].mean(0)  # (N,) batch-mean CEs
        # As the reference: the MIL minimum is between batch means, not per sample.
        mix_positive = torch.minimum(mix[0], mix[1]) + torch.minimum(mix[2], mix[3])
        return {"grd_pos": positive, "grd_neg": negative, "grd_mix": mix_positive}

    def forward(self, batch):
        spec, frames = self.prepare(batch)
        logits = self.grounding_grid(spec, frames)
        outputs = grounding_outputs(logits)
        masks = self.object_masks(spec, frames)
        ce_sounding, ce_silent = _ce_both(logits)
        losses = {
            "sep": self.gated_separation_loss(
                masks, outputs["sounding_prob"], spec, batch["sounding"]
            )
        }
        labels = self.sounding_labels(masks, spec, batch["sounding"])  # once per step
        losses.update(self.grounding_losses(ce_sounding, ce_silent, masks, spec, labels))
        losses["total"] = self.combine(losses)
        stats = self.label_stats(labels, batch["sounding"])
        return losses, {**outputs, "pred_masks": masks, **spec, "stats": stats}

    def label_stats(self, labels, sounding) -> dict:
        """Diagnostics logged beside the losses (never trained on); none for COL."""
        return {}

    def combine(self, losses):
        solo = losses["grd_pos"] + losses["grd_neg"]
        return (
            losses["sep"]
            + self.config.solo_grounding_weight * solo
            + self.config.mix_grounding_weight * losses["grd_mix"]
        )


class CCoL(COL):
    """Stage 3: cyclic co-learning. Separation errors choose the grounding labels (docs/method.md).

    Per pseudo-video, the object whose (ungated) mask explains the pseudo-video's sound better is
    the sounding one; the other is labelled silent only if its mask error also exceeds
    `silent_thres`. L = L_sep + w_mix (L_pos + L_neg) + w_solo L_solo (CCoL: w_mix 0.25,
    w_solo 0.5).
    """

    def sounding_labels(self, masks, spec, true_sounding=None):
        """Per-object weights of the 'sounding' / 'silent' CE.

        Returns (w_pos, w_neg), each (B, N). With --diag_true_labels (a diagnostic) they are the
        truth, `true_sounding` (B, N), instead of separation's choice.
        """
        if self.config.diag_true_labels:
            w_pos = true_sounding.to(masks.dtype)
            return w_pos, 1 - w_pos
        with torch.no_grad():
            targets = spec["gt_masks"][:, [0, 0, 2, 2]]  # each object vs its pseudo-video
            mask_error = self.sep_loss(masks, targets, spec["weight"]).float()  # (B, N) = d_n
            pairs = mask_error.unflatten(1, (2, 2))  # (B, 2, 2)
            first_sounds = torch.round(pairs[..., 1] / (pairs.sum(-1) + 1e-12))  # (B, 2): r1, r2
            w_pos = torch.stack([first_sounds, 1 - first_sounds], -1).flatten(1)  # (B, N)
            above_thres = (1 + torch.sign(mask_error - self.config.silent_thres)) / 2
            w_neg = (1 - w_pos) * above_thres
        return w_pos, w_neg

    def label_stats(self, labels, sounding):
        """How often separation picks the truly sounding object (the loader knows which objects
        are silent: it zeroed their audio), and how often it calls a silent / sounding object
        'silent'."""
        w_pos, w_neg = labels
        sounding = sounding.to(w_pos.dtype)
        return {
            "label_acc": (w_pos == sounding).float().mean(),
            "silent_label_rate": (w_neg * (1 - sounding)).sum() / (1 - sounding).sum().clamp(min=1),
            "false_silent_rate": (w_neg * sounding).sum() / sounding.sum().clamp(min=1),
        }

    def grounding_losses(self, ce_sounding, ce_silent, masks, spec, labels=None):
        w_pos, w_neg = labels if labels is not None else self.sounding_labels(masks, spec)
        first_sounds = w_pos[:, 0]  # r1 for pseudo-video A
        ce_first, ce_second = ce_sounding[:, AUDIO_SOLO_A, 0], ce_sounding[:, AUDIO_SOLO_A, 1]
        if self.config.ccol_broadcast_bug:
            # The reference's (B,) * (B, 1) turns the per-sample choice into a batch average.
            solo_positive = (
                ce_first.mean() * first_sounds.mean() + ce_second.mean() * (1 - first_sounds).mean()
            )
        else:
            solo_positive = (first_sounds * ce_first + (1 - first_sounds) * ce_second).mean()
        solo_negative = ce_silent[:, AUDIO_SOLO_B, 0].mean()
        return {
            "grd_solo": solo_positive + solo_negative,
            "grd_pos": (w_pos * ce_sounding[:, AUDIO_MIX]).sum(1).mean(),
            "grd_neg": (w_neg * ce_silent[:, AUDIO_MIX]).sum(1).mean(),
        }

    def combine(self, losses):
        mixture = losses["grd_pos"] + losses["grd_neg"]
        return (
            losses["sep"]
            + self.config.mix_grounding_weight * mixture
            + self.config.solo_grounding_weight * losses["grd_solo"]
        )


class SoP(Stage):
    """Sound of Pixels baseline.

    Every video in the mixture is separated by its whole-frame vector.
    """

    def forward(self, batch):
        spec, frames = self.prepare(batch)
        masks = self.object_masks(spec, frames)  # (B, N, 1, F, T)
        sep = self.sep_loss(masks, spec["gt_masks"], spec["weight"]).mean()
        return {"total": sep, "sep": sep}, {"pred_masks": masks, **spec}


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
    L = L_cosep + --classifier_weight L_consistency, with L_cosep the summed masks of each
    pseudo-video against its sound and L_consistency the classifier's cross-entropy on every
    object's separated spectrogram, whose gradient also reaches the masks.
    """

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
        losses["total"] = losses["cosep"] + self.config.classifier_weight * losses["consistency"]
        correct = logits.argmax(-1) == batch["class_ids"]  # (B, N)
        stats = {
            "class_acc": correct.float().mean(),
            "class_acc_sounding": correct[batch["sounding"]].float().mean(),
        }
        return losses, {"pred_masks": masks, **spec, "stats": stats}


STAGES = {"grd": GRD, "col": COL, "ccol": CCoL, "sop": SoP, "cosep": CoSep}
