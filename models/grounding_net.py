"""Audio-visual grounding head: does this object make this sound? (docs/method.md)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Class indices of the grounding logits, as in the reference.
SOUNDING, SILENT = 0, 1


class GroundingHead(nn.Module):
    """MLP on concatenated audio and visual features: 2-way logits, class 0 = sounding
    (Tian et al. 2021).

    logits = 2 * fc3(ReLU(fc2(ReLU(fc1([f_audio, f_visual]))))). The reference's unused
    fc_v1, fc_v2, fc_a1, fc_a2 are left out; drop their keys when loading its checkpoints.
    Linear weights start from N(0, init_std) with init_std = 1e-4 as the reference's `weights_init`
    (biases keep PyTorch's default). Such tiny weights in three stacked layers make the encoders'
    gradients vanish below Adam's epsilon until the head has grown, a long plateau that the
    reference's 15k iterations absorb; `init_std=0` keeps PyTorch's default init instead.

    Args:
        audio_dim: size of the audio feature (8w of VGGishGround).
        visual_dim: size of the visual feature (8w of ResNet18Ground).
        hidden: sizes of fc1 and fc2 outputs.
        init_std: std of the Linear weights' normal init; 0 keeps PyTorch's default init.

    Shape:
        feat_audio (..., audio_dim), feat_visual (..., visual_dim) -> (..., 2); leading dims
        broadcast, e.g. audio (B, 1, D) against objects (B, N, D) gives (B, N, 2).
    """

    def __init__(
        self,
        audio_dim: int = 512,
        visual_dim: int = 512,
        hidden: tuple[int, int] = (512, 128),
        init_std: float = 1e-4,
    ):
        super().__init__()
        self.fc1 = nn.Linear(audio_dim + visual_dim, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], 2)
        if init_std > 0:
            for fc in (self.fc1, self.fc2, self.fc3):
                nn.init.normal_(fc.weight, 0.0, init_std)

    def forward(self, feat_audio: torch.Tensor, feat_visual: torch.Tensor) -> torch.Tensor:
        lead = torch.broadcast_shapes(feat_audio.shape[:-1], feat_visual.shape[:-1])
        feat = torch.cat([feat_audio.expand(*lead, -1), feat_visual.expand(*lead, -1)], dim=-1)
        return 2 * self.fc3(F.relu(self.fc2(F.relu(self.fc1(feat)))))  # (..., 2)

    def forward_pixelwise(self, feat_audio: torch.Tensor, feat_map: torch.Tensor) -> torch.Tensor:
        """The head at every location of a visual feature map: (B, Da), (B, Dv, h, w) ->
        (B, h, w, 2) logits."""
        return self(feat_audio[:, None, None], feat_map.permute(0, 2, 3, 1))


# An object sounds when its sounding probability exceeds this: the gate of COL's separation loss,
# of the silent-object evaluation and of separate_video, and the grounding accuracy's decision.
SOUNDING_THRESHOLD = 0.5


def sounding_probability(logits: torch.Tensor) -> torch.Tensor:
    """Probability of class 0 (sounding): (..., 2) -> (...)."""
    return logits.softmax(dim=-1)[..., SOUNDING]


def is_sounding(prob):
    """The sounding decision on probabilities (a tensor or an array of any shape)."""
    return prob > SOUNDING_THRESHOLD
