"""Batched, on-device spectrogram front end.

STFT, log-frequency warp, the mixture's analysis (network input, reconstruction), and the
training targets (ground-truth masks, loss weight).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# The reference adds this to the mixture magnitude before dividing by it (ratio masks).
MAG_EPS = 1e-10


def frames_from_length(length: int, hop: int = 256) -> int:
    """Number of STFT frames of a `length`-sample clip with center=True (65535 -> 256)."""
    return 1 + length // hop


def length_from_frames(num_frames: int, hop: int = 256) -> int:
    """Samples the iSTFT of `num_frames` frames gives without an explicit length (256 -> 65280)."""
    return hop * (num_frames - 1)


def _window(n_fft: int, like: torch.Tensor) -> torch.Tensor:
    # Periodic Hann, as scipy.signal.get_window('hann', n_fft) used by librosa.
    return torch.hann_window(n_fft, periodic=True, device=like.device, dtype=like.dtype)


def stft(wav: torch.Tensor, n_fft: int = 1022, hop: int = 256) -> torch.Tensor:
    """Complex STFT matching `librosa.stft(wav, n_fft, hop, pad_mode='reflect')`.

    Shape: (..., L) -> (..., n_fft // 2 + 1, 1 + L // hop), complex.
    """
    *lead, length = wav.shape
    spec = torch.stft(
        wav.reshape(-1, length),
        n_fft,
        hop_length=hop,
        window=_window(n_fft, wav),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    return spec.reshape(*lead, *spec.shape[-2:])


def istft(
    mag: torch.Tensor,
    phase: torch.Tensor,
    n_fft: int = 1022,
    hop: int = 256,
    length: int | None = None,
) -> torch.Tensor:
    """Inverse of `stft` from magnitude and phase (librosa.istft with center=True).

    Without `length` the output has hop * (T - 1) samples, as librosa's (65280 for T = 256).
    Shape: mag, phase (..., F, T) -> (..., L).
    """
    *lead, freq_bins, num_frames = mag.shape
    spec = torch.polar(mag.float(), phase.float()).reshape(-1, freq_bins, num_frames)
    window = torch.hann_window(n_fft, periodic=True, device=mag.device)
    wav = torch.istft(spec, n_fft, hop_length=hop, window=window, center=True, length=length)
    return wav.reshape(*lead, wav.shape[-1])


def log_freq_grid(
    out_bins: int, num_frames: int, warp: bool = True, device=None, dtype=torch.float32
) -> torch.Tensor:
    """The reference's `warpgrid`: a `F.grid_sample` grid that resamples the frequency axis.

    x (time) is the identity. For the warp, output row y_out reads input row
    y_in = (21^((y_out + 1) / 2) - 11) / 10 (log-spaced, dense at low frequencies); the unwarp
    uses the inverse, y = log(10 * y_out + 11) / log(21) * 2 - 1. All in [-1, 1] coordinates.

    Shape: (1, out_bins, num_frames, 2), last dim (x, y).
    """
    x = torch.linspace(-1, 1, num_frames, device=device, dtype=torch.float64)
    y = torch.linspace(-1, 1, out_bins, device=device, dtype=torch.float64)
    if warp:
        y = (torch.pow(21.0, (y + 1) / 2) - 11) / 10
    else:
        y = torch.log(10 * y + 11) / math.log(21) * 2 - 1
    grid_y, grid_x = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).unsqueeze(0).to(dtype)


def _resample_freq(spec: torch.Tensor, out_bins: int, warp: bool) -> torch.Tensor:
    if spec.dim() < 2:
        raise ValueError(f"expected a spectrogram (..., F, T), got shape {tuple(spec.shape)}")
    *lead, freq_bins, num_frames = spec.shape
    flat = spec.reshape(-1, 1, freq_bins, num_frames)  # (M, 1, F, T)
    grid = log_freq_grid(out_bins, num_frames, warp, spec.device, spec.dtype)
    # align_corners=True reproduces grid_sample of PyTorch <= 1.2, which the authors trained with.
    out = F.grid_sample(
        flat, grid.expand(flat.shape[0], -1, -1, -1), mode="bilinear", align_corners=True
    )  # (M, 1, out_bins, T)
    return out.reshape(*lead, out_bins, num_frames)


def warp_log_freq(spec: torch.Tensor, out_bins: int = 256) -> torch.Tensor:
    """Linear-frequency spectrogram to log-frequency: (..., F, T) -> (..., out_bins, T).

    With align_corners=True output row k reads input bin
    (F - 1) * (21^(k / (out_bins - 1)) - 1) / 20.
    """
    return _resample_freq(spec, out_bins, warp=True)


def unwarp_log_freq(spec: torch.Tensor, freq_bins: int = 512) -> torch.Tensor:
    """Inverse of `warp_log_freq`: (..., Fw, T) -> (..., freq_bins, T)."""
    return _resample_freq(spec, freq_bins, warp=False)


def _over_objects(mag_mix: torch.Tensor, mags: torch.Tensor) -> torch.Tensor:
    # A (B, 1, F, T) mixture against (B, N, 1, F, T) sources gets an object axis.
    return mag_mix.unsqueeze(1) if mags.dim() == mag_mix.dim() + 1 else mag_mix


def ratio_masks(mags: torch.Tensor, mag_mix: torch.Tensor, max_value: float = 5.0) -> torch.Tensor:
    """Ratio masks |S_n| / |S_mix| clamped to [0, max_value] (the reference's ground truth).

    Shape: mags (B, N, 1, F, T), mag_mix (B, 1, F, T) -> (B, N, 1, F, T); equal shapes also work.
    """
    return (mags / _over_objects(mag_mix, mags)).clamp(0.0, max_value)


def binary_masks(mags: torch.Tensor, mag_mix: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Binary masks [|S_n| > threshold * |S_mix|] (Sound-of-Pixels' ground truth).

    Shape: as `ratio_masks`.
    """
    return (mags > threshold * _over_objects(mag_mix, mags)).to(mags.dtype)


def loss_weight(mag_mix: torch.Tensor) -> torch.Tensor:
    """Per-bin loss weight clamp(log1p(|S_mix|), 1e-3, 10): loud bins count more.

    Shape preserved.
    """
    return torch.log1p(mag_mix).clamp(1e-3, 10.0)


class SpectralFrontend(torch.nn.Module):
    """Waveforms to every spectrogram the nets and losses need, batched on the model's device.

    Two uses: `analyse(mix)` gives what separating a mixture needs (inference: the networks'
    input and what reconstruction multiplies), `forward(audios, mix)` adds the per-object
    magnitudes and the training targets, all in one batched STFT.

    Args:
        n_fft: STFT size (1022 gives F = 512 bins).
        hop: STFT hop in samples.
        warp_bins: frequency bins after the log-frequency warp (Fw).
        log_freq: warp to log frequency; when off, the "warped" outputs are the linear ones
            (Fw = F).
        binary_mask: binary ground-truth masks (SoP) instead of ratio masks clamped to [0, 5]
            (CCoL).
        mask_thres: threshold of the binary masks, as a fraction of the mixture magnitude.
        weighted_loss: loss weight clamp(log1p(mag_mix_w), 1e-3, 10); ones when off.
        log_input: 'log1p' (CCoL) or 'log' (Sound of Pixels, floored at MAG_EPS) of the warped
            magnitudes, the networks' input.

    Shape:
        mix (B, L); audios (B, N, L) per-object clips, already scaled as they enter the mixture
        (silent objects are zeros). Outputs are dicts of float32 tensors, all detached:
          analyse:  mag_mix (B, 1, F, T), phase_mix (B, 1, F, T)   linear-frequency mixture
                    mag_mix_w (B, 1, Fw, T), log_mag_mix (B, 1, Fw, T)   warped; network input
          forward:  those, and mags_w (B, N, 1, Fw, T), log_mags (B, N, 1, Fw, T), and
                    `targets`: gt_masks (B, N, 1, Fw, T), weight (B, 1, Fw, T)
        with F = n_fft // 2 + 1 and T = 1 + L // hop.
    """

    def __init__(
        self,
        n_fft: int = 1022,
        hop: int = 256,
        warp_bins: int = 256,
        log_freq: bool = True,
        binary_mask: bool = False,
        mask_thres: float = 0.5,
        weighted_loss: bool = True,
        log_input: str = "log1p",
    ):
        super().__init__()
        if log_input not in ("log1p", "log"):
            raise ValueError(f"log_input must be 'log1p' or 'log', got {log_input!r}")
        self.log_input = log_input
        self.n_fft = n_fft
        self.hop = hop
        self.freq_bins = n_fft // 2 + 1
        self.warp_bins = warp_bins if log_freq else self.freq_bins
        self.log_freq = log_freq
        self.binary_mask = binary_mask
        self.mask_thres = mask_thres
        self.weighted_loss = weighted_loss

    def warp(self, spec: torch.Tensor) -> torch.Tensor:
        """(..., F, T) -> (..., Fw, T); the identity when log_freq is off."""
        return warp_log_freq(spec, self.warp_bins) if self.log_freq else spec

    def unwarp(self, spec: torch.Tensor) -> torch.Tensor:
        """(..., Fw, T) -> (..., F, T), e.g. predicted masks back to the STFT grid for the iSTFT."""
        return unwarp_log_freq(spec, self.freq_bins) if self.log_freq else spec

    def istft(
        self, mag: torch.Tensor, phase: torch.Tensor, length: int | None = None
    ) -> torch.Tensor:
        """(..., F, T) magnitude and phase -> (..., L) waveform."""
        return istft(mag, phase, self.n_fft, self.hop, length)

    def reconstruct(
        self, masks: torch.Tensor, spec: dict, length: int | None = None, threshold: bool = True
    ) -> torch.Tensor:
        """Object waveforms from warped masks: unwarp, x mixture magnitude, mixture phase, iSTFT.

        A model trained on binary masks separates with its masks thresholded at `mask_thres`
        (Sound of Pixels' test-time rule) unless `threshold` is False; ratio masks are used as
        they are. Output is clipped to [-1, 1], as the authors' evaluation does.
        Shape: masks (B, N, 1, Fw, T), spec from analyse() or forward() -> (B, N, L).
        """
        B, N = masks.shape[:2]
        mag_mix, phase_mix = spec["mag_mix"], spec["phase_mix"]  # (B, 1, F, T)
        if self.binary_mask and threshold:
            masks = (masks > self.mask_thres).to(masks.dtype)
        masks = self.unwarp(masks.flatten(0, 1).float()).view(B, N, 1, *mag_mix.shape[-2:])
        est_mag = mag_mix[:, None] * masks  # (B, N, 1, F, T)
        wav = self.istft(est_mag[:, :, 0], phase_mix.expand(-1, N, -1, -1), length)
        return wav.clamp(-1, 1)

    def log(self, mag: torch.Tensor) -> torch.Tensor:
        """The networks' input transform (`log_input`) of a magnitude, shape preserved."""
        # Silent sources have zero magnitude: the plain log is floored where log1p needs nothing.
        return torch.log1p(mag) if self.log_input == "log1p" else torch.log(mag.clamp_min(MAG_EPS))

    def targets(self, mags_w: torch.Tensor, mag_mix_w: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training targets of warped magnitudes: each object's true mask and the loss weight.

        mags_w (B, N, 1, Fw, T), mag_mix_w (B, 1, Fw, T) -> gt_masks (B, N, 1, Fw, T) and
        weight (B, 1, Fw, T).
        """
        if self.binary_mask:
            gt_masks = binary_masks(mags_w, mag_mix_w, self.mask_thres)
        else:
            gt_masks = ratio_masks(mags_w, mag_mix_w)
        weight = loss_weight(mag_mix_w) if self.weighted_loss else torch.ones_like(mag_mix_w)
        return {"gt_masks": gt_masks, "weight": weight}

    def _mixture(
        self, spec_mix: torch.Tensor, mag_mix: torch.Tensor, mag_mix_w: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        # The outputs of analyse from the mixture's complex STFT and magnitude (B, 1, F, T) and its
        # warped magnitude (B, 1, Fw, T), however they were batched.
        return {
            "mag_mix": mag_mix,
            "phase_mix": spec_mix.angle(),
            "mag_mix_w": mag_mix_w,
            "log_mag_mix": self.log(mag_mix_w),
        }

    @torch.no_grad()
    def analyse(self, mix: torch.Tensor) -> dict[str, torch.Tensor]:
        """What separating the mixture needs, and nothing about its sources: mix (B, L)."""
        if mix.dim() != 2:
            raise ValueError(f"expected mix (B, L), got {tuple(mix.shape)}")
        # Signal processing stays float32 even under AMP; float64 input is cast.
        with torch.autocast(device_type=mix.device.type, enabled=False):
            spec_mix = stft(mix.unsqueeze(1).float(), self.n_fft, self.hop)  # (B, 1, F, T)
            mag_mix = spec_mix.abs() + MAG_EPS
            return self._mixture(spec_mix, mag_mix, self.warp(mag_mix))

    @torch.no_grad()
    def forward(self, audios: torch.Tensor, mix: torch.Tensor) -> dict[str, torch.Tensor]:
        """analyse(mix), the objects' warped magnitudes and their `targets`."""
        if audios.dim() != 3 or mix.dim() != 2 or audios.shape[::2] != mix.shape:
            raise ValueError(
                f"expected audios (B, N, L) and mix (B, L), got {tuple(audios.shape)} "
                f"and {tuple(mix.shape)}"
            )
        with torch.autocast(device_type=mix.device.type, enabled=False):
            wavs = torch.cat([mix.unsqueeze(1), audios], dim=1).float()  # (B, 1+N, L)
            spec = stft(wavs, self.n_fft, self.hop)  # (B, 1+N, F, T): one batched STFT
            mags = torch.cat([spec[:, :1].abs() + MAG_EPS, spec[:, 1:].abs()], dim=1)
            warped = self.warp(mags)  # (B, 1+N, Fw, T)
            mixture = self._mixture(spec[:, :1], mags[:, :1], warped[:, :1])
            mags_w = warped[:, 1:].unsqueeze(2)  # (B, N, 1, Fw, T)
            targets = self.targets(mags_w, mixture["mag_mix_w"])
        return {**mixture, "mags_w": mags_w, "log_mags": self.log(mags_w), **targets}
